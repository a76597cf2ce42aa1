//! Notifications through the router: an invitation mails the invitee and reaches their
//! `notificationReceived` subscription live over a WebSocket; another user's socket gets nothing;
//! each user reads their own preferences.

use std::time::Duration;

use pyairtable_kit::testing::{GraphQLClient, outbox};
use serde_json::{Value, json};

use super::socket::{Socket, connect, receive, subscribe};
use super::{bearer, invitation_token, sign_up};

/// A socket to the router, signed in with `token`, subscribed to `notificationReceived`.
async fn subscribed(ws_url: &str, token: &str) -> Socket {
    let mut socket = connect(ws_url, token).await;
    let query = "subscription { notificationReceived { id workflow title } }";
    subscribe(&mut socket, "n", query, json!({})).await;
    socket
}

fn received(message: &Option<Value>) -> &Value {
    &message.as_ref().expect("a message")["payload"]["data"]["notificationReceived"]
}

/// Ada owns an organization and invites Bob (who has an account): the invitation is in the
/// outbox and reaches Bob's socket live; after he accepts, "You joined" does too; Ada's socket
/// gets none of it.
pub async fn notification_scenario(router: &GraphQLClient, ws_url: &str, data_dir: &std::path::Path) {
    let (_, ada_token, _) = sign_up(router, "ada@example.com", "Ada").await;
    let (_, bob_token, _) = sign_up(router, "bob@example.com", "Bob").await;
    let ada = bearer(router, &ada_token);
    let org = ada.data("mutation { createOrganization(input: { name: \"Acme\" }) { id } }", json!({})).await
        ["createOrganization"]["id"]
        .clone();
    let mut ada_socket = subscribed(ws_url, &ada_token).await;
    let mut bob_socket = subscribed(ws_url, &bob_token).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // both subscriptions are listening

    let invite = "mutation($o: ID!) { inviteMember(input: { organizationId: $o, email: \"bob@example.com\", role: MEMBER }) { id } }";
    ada.data(invite, json!({ "o": org })).await;
    let live = receive(&mut bob_socket, 15).await;
    assert_eq!(received(&live)["workflow"], "member.invited", "{live:?}");
    assert_eq!(received(&live)["title"], "You are invited to join Acme");
    let token = invitation_token(data_dir, "bob@example.com").await;
    let mail = outbox(&data_dir.join("outbox")).into_iter().rev().find(|m| m.to == "bob@example.com");
    assert_eq!(mail.expect("the invitation").subject, "Join Acme on PyAirtable");

    let bob = bearer(router, &bob_token);
    bob.data("mutation($t: String!) { acceptInvitation(token: $t) { id } }", json!({ "t": token })).await;
    let joined = receive(&mut bob_socket, 15).await;
    assert_eq!(received(&joined)["title"], "You joined Acme", "{joined:?}");
    let feed = "{ notifications(first: 10) { edges { node { id } } } unreadNotificationCount }";
    let bobs = bob.data(feed, json!({})).await;
    assert_eq!(bobs["unreadNotificationCount"], 2, "{bobs}");
    // Ada's socket carries her own notifications only (creating Acme made her its owner).
    let adas = ids(&ada.data(feed, json!({})).await);
    let mut seen = Vec::new();
    while let Some(message) = receive(&mut ada_socket, 1).await {
        seen.push(received(&Some(message))["id"].as_str().expect("id").to_owned());
    }
    assert!(seen.iter().all(|id| adas.contains(id)), "Ada got {seen:?}, her feed is {adas:?}");
    assert!(seen.iter().all(|id| !ids(&bobs).contains(id)), "none of Bob's reached Ada");

    // Preferences through the router: Bob's global email opt-out is his, not Ada's.
    bob.data("mutation { setNotificationPreference(channel: EMAIL, enabled: false) }", json!({})).await;
    let prefs = "{ notificationPreferences { workflow channel enabled source } }";
    let invited_email = |data: &Value| {
        let list = data["notificationPreferences"].as_array().cloned().unwrap_or_default();
        list.into_iter().find(|p| p["workflow"] == "member.invited" && p["channel"] == "EMAIL")
    };
    let bobs = bob.data(prefs, json!({})).await;
    let expected =
        json!({ "workflow": "member.invited", "channel": "EMAIL", "enabled": false, "source": "GLOBAL" });
    assert_eq!(invited_email(&bobs), Some(expected), "{bobs}");
    let adas = ada.data(prefs, json!({})).await;
    assert_eq!(invited_email(&adas).map(|p| p["source"].clone()), Some(json!("DEFAULT")), "{adas}");
}

fn ids(feed: &Value) -> Vec<String> {
    let edges = feed["notifications"]["edges"].as_array().cloned().unwrap_or_default();
    edges.iter().filter_map(|e| e["node"]["id"].as_str().map(str::to_owned)).collect()
}
