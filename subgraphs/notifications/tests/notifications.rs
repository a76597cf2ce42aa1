//! The notifications subgraph served on its own over a real PostgreSQL: events in, email in the
//! outbox and items in the feed out; engagement; live delivery to the right user only;
//! idempotency; preferences and one-click unsubscribe.

mod common;

use std::time::Duration;

use common::*;
use pyairtable_kit::Caller;
use serde_json::json;

#[tokio::test]
async fn an_invitation_mails_the_address_and_puts_an_item_in_the_invitees_feed() {
    let harness = start(&[]).await;
    let owner = register(&harness, "owner@example.com", None).await;
    let ada = register(&harness, "ada@example.com", Some("fr")).await;
    let org = organization(&harness, owner, "Acme").await;
    invite(&harness, org, "Ada@Example.com").await;
    invite(&harness, org, "nobody@example.com").await;

    eventually("two invitation emails", || async { mails(&harness).len() == 2 }).await;
    let sent = mails(&harness);
    let to_ada = sent.iter().find(|m| m.to.eq_ignore_ascii_case("ada@example.com")).expect("mail to Ada");
    assert_eq!(to_ada.subject, "Rejoignez Acme sur PyAirtable", "Ada's locale is French");
    assert!(to_ada.text.contains("token=inv_abc"), "{}", to_ada.text);
    assert!(to_ada.html.as_deref().is_some_and(|h| h.contains("<strong>Acme</strong>")));
    assert!(to_ada.text.contains("/notifications/unsubscribe/"), "an account's mail can be unsubscribed");
    let to_nobody = sent.iter().find(|m| m.to == "nobody@example.com").expect("mail to the address");
    assert_eq!(to_nobody.subject, "Join Acme on PyAirtable");

    let client = harness.client(&Caller::user(ada));
    let feed = client.data(FEED, json!({})).await;
    assert_eq!(feed["unreadNotificationCount"], 1, "{feed}");
    let node = &feed["notifications"]["edges"][0]["node"];
    assert_eq!(node["workflow"], "member.invited");
    assert_eq!(node["title"], "Vous êtes invité à rejoindre Acme");
    let owners = harness.client(&Caller::user(owner)).data(FEED, json!({})).await;
    assert_eq!(owners["notifications"]["totalCount"], 0, "the inviter gets nothing: {owners}");
}

#[tokio::test]
async fn engagement_is_the_owners_own_and_separate_from_delivery() {
    let harness = start(&[]).await;
    let ada = register(&harness, "ada@example.com", None).await;
    let bob = register(&harness, "bob@example.com", None).await;
    let org = organization(&harness, bob, "Acme").await;
    for role in ["member", "admin"] {
        let payload =
            json!({ "organization_id": org, "user_id": ada, "role": role, "previous_role": "member" });
        publish(&harness, if role == "member" { "member.joined" } else { "role.changed" }, payload).await;
    }
    let ada_client = harness.client(&Caller::user(ada));
    eventually("two items", || async {
        ada_client.data(FEED, json!({})).await["unreadNotificationCount"] == 2
    })
    .await;
    let feed = ada_client.data(FEED, json!({})).await;
    let newest = &feed["notifications"]["edges"][0]["node"];
    assert_eq!(newest["title"], "Your role in Acme changed", "newest first: {feed}");
    assert_eq!(newest["body"], "You are now admin (was member).");
    let id = newest["id"].as_str().expect("id").to_owned();

    let mark = "mutation($id: ID!, $s: NotificationEngagement!) { markNotification(id: $id, status: $s) { id seenAt readAt } }";
    let bobs = harness.client(&Caller::user(bob));
    assert_eq!(bobs.error_code(mark, json!({ "id": id, "s": "READ" })).await, "NOT_FOUND");
    assert_eq!(ada_client.error_code(mark, json!({ "id": "nope", "s": "READ" })).await, "BAD_USER_INPUT");
    let read = ada_client.data(mark, json!({ "id": id, "s": "READ" })).await;
    assert!(read["markNotification"]["readAt"].is_string() && read["markNotification"]["seenAt"].is_string());
    let unread = ada_client.data(FEED, json!({ "f": { "unread": true } })).await;
    assert_eq!(unread["notifications"]["totalCount"], 1, "{unread}");

    let all = "mutation { markAllNotifications(status: ARCHIVED) }";
    assert_eq!(ada_client.data(all, json!({})).await["markAllNotifications"], 2);
    let feed = ada_client.data(FEED, json!({})).await;
    assert_eq!(
        (feed["notifications"]["totalCount"].as_i64(), feed["unreadNotificationCount"].as_i64()),
        (Some(0), Some(0))
    );
    let archived = ada_client.data(FEED, json!({ "f": { "archived": true } })).await;
    assert_eq!(archived["notifications"]["totalCount"], 2);
    // Delivery status is its own: the items were archived whatever their delivery was doing.
    eventually("both in-app deliveries sent", || async {
        let in_app = deliveries(&harness, "in_app").await;
        in_app.len() == 2 && in_app.iter().all(|(status, _, _)| status == "sent")
    })
    .await;
}

#[tokio::test]
async fn a_subscriber_receives_its_own_notifications_live_and_never_anothers() {
    let harness = start(&[]).await;
    let ada = register(&harness, "ada@example.com", None).await;
    let bob = register(&harness, "bob@example.com", None).await;
    let org = organization(&harness, ada, "Acme").await;
    let mut ada_socket = subscribe(&harness, ada).await;
    let mut bob_socket = subscribe(&harness, bob).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // both streams are listening

    publish(&harness, "member.joined", json!({ "organization_id": org, "user_id": bob, "role": "member" }))
        .await;
    let message = receive(&mut bob_socket, 10).await.expect("Bob's notification");
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["payload"]["data"]["notificationReceived"]["title"], "You joined Acme");
    assert_eq!(receive(&mut ada_socket, 1).await, None, "Ada gets nothing of Bob's");

    publish(&harness, "member.removed", json!({ "organization_id": org, "user_id": ada, "role": "owner" }))
        .await;
    let message = receive(&mut ada_socket, 10).await.expect("Ada's notification");
    assert_eq!(message["payload"]["data"]["notificationReceived"]["workflow"], "member.removed");
    assert_eq!(receive(&mut bob_socket, 1).await, None, "Bob gets nothing of Ada's");
}

#[tokio::test]
async fn an_event_applied_twice_sends_one_email_and_makes_one_item() {
    let harness = start(&[]).await;
    let ada = register(&harness, "ada@example.com", None).await;
    let org = organization(&harness, ada, "Acme").await;
    invite(&harness, org, "ada@example.com").await;
    eventually("the invitation", || async { mails(&harness).len() == 1 }).await;

    // Replay every event, as after a lost cursor: the unique keys hold.
    let db = harness.kit.db.clone();
    sqlx::query("update kit.event_cursors set position = 0 where consumer = 'notifications'")
        .execute(&db)
        .await
        .expect("rewind");
    publish(&harness, "organization.renamed", json!({ "organization_id": org, "name": "Acme" })).await;
    eventually("the replay", || async {
        let behind: bool = sqlx::query_scalar(
            "select position < (select max(id) from kit.events) from kit.event_cursors where consumer = 'notifications'",
        )
        .fetch_one(&db)
        .await
        .expect("cursor");
        !behind
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows: i64 = sqlx::query_scalar("select count(*) from notifications.deliveries")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(rows, 2, "one email and one in-app delivery");
    assert_eq!(mails(&harness).len(), 1, "one email");
    let feed = harness.client(&Caller::user(ada)).data(FEED, json!({})).await;
    assert_eq!(feed["notifications"]["totalCount"], 1, "one item: {feed}");
}

#[tokio::test]
async fn preferences_and_the_unsubscribe_link_suppress_non_critical_mail() {
    let harness = start(&[]).await;
    let ada = register(&harness, "ada@example.com", None).await;
    let bob = register(&harness, "bob@example.com", None).await;
    let org = organization(&harness, ada, "Acme").await;
    let client = harness.client(&Caller::user(ada));
    let set = "mutation($w: String, $c: NotificationChannel!, $e: Boolean!) {
        setNotificationPreference(workflow: $w, channel: $c, enabled: $e) }";
    assert_eq!(
        client.error_code(set, json!({ "w": "nope", "c": "EMAIL", "e": false })).await,
        "BAD_USER_INPUT"
    );
    client.data(set, json!({ "w": null, "c": "EMAIL", "e": false })).await;
    invite(&harness, org, "ada@example.com").await;
    invite(&harness, org, "bob@example.com").await;
    eventually("Bob's invitation", || async { mails(&harness).len() == 1 }).await;
    let feed = client.data(FEED, json!({})).await;
    assert_eq!(feed["notifications"]["totalCount"], 1, "Ada opted out of email, not of the feed: {feed}");

    let bobs_mail = mails(&harness).pop().expect("Bob's mail");
    assert_eq!(bobs_mail.to, "bob@example.com");
    let link =
        bobs_mail.text.split_whitespace().find(|w| w.contains("/notifications/unsubscribe/")).expect("link");
    let path = &link[link.find("/notifications/").expect("path")..];
    let url = format!("http://{}{path}", harness.server.addr);
    let answer = reqwest::get(&url).await.expect("GET");
    assert_eq!(answer.status(), 200);
    let forged = reqwest::get(format!("{url}x")).await.expect("GET");
    assert_eq!(forged.status(), 404);
    invite(&harness, org, "bob@example.com").await;
    let bobs = harness.client(&Caller::user(bob));
    eventually("Bob's second invitation in the feed", || async {
        bobs.data(FEED, json!({})).await["notifications"]["totalCount"] == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails(&harness).len(), 1, "Bob unsubscribed from invitation emails");
}

#[tokio::test]
async fn a_disabled_webhook_endpoint_alerts_the_organizations_admins_only() {
    let harness = start(&[]).await;
    let owner = register(&harness, "owner@example.com", None).await;
    let admin = register(&harness, "admin@example.com", None).await;
    let member = register(&harness, "member@example.com", None).await;
    let org = organization(&harness, owner, "Acme").await;
    publish(&harness, "member.joined", json!({ "organization_id": org, "user_id": admin, "role": "member" }))
        .await;
    let promoted =
        json!({ "organization_id": org, "user_id": admin, "role": "admin", "previous_role": "member" });
    publish(&harness, "role.changed", promoted).await;
    publish(
        &harness,
        "member.joined",
        json!({ "organization_id": org, "user_id": member, "role": "member" }),
    )
    .await;
    let disabled = json!({
        "organization_id": org, "endpoint_id": uuid::Uuid::now_v7(), "url": "https://hooks.example.com/in",
        "reason": "20 failures in a row",
    });
    publish(&harness, "webhook.endpoint_disabled", disabled).await;
    eventually("two alerts", || async { mails(&harness).len() == 2 }).await;
    let mut to: Vec<String> = mails(&harness).into_iter().map(|m| m.to).collect();
    to.sort();
    assert_eq!(to, ["admin@example.com", "owner@example.com"]);
    assert!(mails(&harness)[0].subject.contains("webhook of Acme was disabled"));
    let feed = harness.client(&Caller::user(member)).data(FEED, json!({})).await;
    let workflows: Vec<&str> = feed["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["workflow"].as_str())
        .collect();
    assert_eq!(workflows, ["member.joined"], "a member gets no alert: {feed}");
}

#[tokio::test]
async fn a_password_reset_is_critical_and_ignores_the_opt_out() {
    let harness = start(&[]).await;
    let ada = register(&harness, "ada@example.com", None).await;
    let set = "mutation { setNotificationPreference(channel: EMAIL, enabled: false) }";
    harness.client(&Caller::user(ada)).data(set, json!({})).await;
    let reset = json!({
        "user_id": ada, "email": "ada@example.com", "expires_minutes": 60,
        "reset_url": "http://127.0.0.1:4000/reset-password?token=rst_abc",
    });
    publish(&harness, "auth.password_reset_requested", reset).await;
    eventually("the reset email", || async { mails(&harness).len() == 1 }).await;
    let mail = mails(&harness).remove(0);
    assert_eq!(mail.subject, "Reset your password");
    assert!(mail.text.contains("token=rst_abc") && !mail.text.contains("unsubscribe"), "{}", mail.text);
}

#[tokio::test]
async fn a_user_chooses_the_language_of_their_notifications() {
    let harness = start(&[]).await;
    let ada = register(&harness, "ada@example.com", None).await;
    let owner = register(&harness, "owner@example.com", None).await;
    let org = organization(&harness, owner, "Acme").await;
    let client = harness.client(&Caller::user(ada));
    let set = "mutation($l: String!) { setNotificationLocale(locale: $l) }";
    assert_eq!(client.error_code(set, json!({ "l": "français" })).await, "BAD_USER_INPUT");
    let stranger = harness.client(&Caller::user(uuid::Uuid::now_v7()));
    assert_eq!(stranger.error_code(set, json!({ "l": "fr" })).await, "NOT_FOUND");
    eventually("Ada's account in the projection", || async {
        client.send(set, json!({ "l": "fr_ca" })).await.1["data"]["setNotificationLocale"] == "fr-CA"
    })
    .await;
    invite(&harness, org, "ada@example.com").await;
    eventually("the invitation", || async { mails(&harness).len() == 1 }).await;
    assert_eq!(mails(&harness)[0].subject, "Rejoignez Acme sur PyAirtable", "fr-CA falls back to fr");
}

const PREFERENCES: &str = "{ notificationPreferences { workflow title critical channel enabled source } }";

/// `(enabled, source)` of each (workflow or `*`, channel) entry of the caller's preferences.
async fn preferences(client: &pyairtable_kit::testing::GraphQLClient) -> Vec<(String, String, bool, String)> {
    let data = client.data(PREFERENCES, json!({})).await;
    let rows = data["notificationPreferences"].as_array().expect("a list").iter();
    rows.map(|p| {
        let workflow = p["workflow"].as_str().unwrap_or("*").to_owned();
        let channel = p["channel"].as_str().expect("channel").to_owned();
        (
            workflow,
            channel,
            p["enabled"].as_bool().expect("enabled"),
            p["source"].as_str().expect("source").into(),
        )
    })
    .collect()
}

fn entry<'a>(prefs: &'a [(String, String, bool, String)], workflow: &str, channel: &str) -> (bool, &'a str) {
    let found = prefs.iter().find(|(w, c, _, _)| w == workflow && c == channel);
    let (_, _, enabled, source) = found.unwrap_or_else(|| panic!("no entry {workflow} {channel}: {prefs:?}"));
    (*enabled, source.as_str())
}

#[tokio::test]
async fn preferences_show_every_workflow_and_channel_with_what_decided_them() {
    let harness = start(&[]).await;
    let (ada, bob) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let client = harness.client(&Caller::user(ada));
    let set = "mutation($w: String, $c: NotificationChannel!, $e: Boolean!) {
        setNotificationPreference(workflow: $w, channel: $c, enabled: $e) }";

    // Defaults: each workflow on each of its channels, then the four global entries; all on.
    let data = client.data(PREFERENCES, json!({})).await;
    let invited = data["notificationPreferences"]
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["workflow"] == "member.invited" && p["channel"] == "EMAIL");
    assert_eq!(
        invited,
        Some(&json!({ "workflow": "member.invited", "title": "Invitations to an organization",
            "critical": false, "channel": "EMAIL", "enabled": true, "source": "DEFAULT" })),
        "{data}"
    );
    let defaults = preferences(&client).await;
    assert_eq!(defaults.len(), 8 + 4, "8 workflow channels and 4 global entries: {defaults:?}");
    assert!(
        defaults.iter().all(|(w, _, on, source)| *on
            && source == if w == "auth.password_reset_requested" { "CRITICAL" } else { "DEFAULT" }),
        "{defaults:?}"
    );
    assert_eq!(entry(&defaults, "*", "SMS"), (true, "DEFAULT"));

    // A choice for one workflow changes that workflow on that channel only.
    client.data(set, json!({ "w": "member.joined", "c": "IN_APP", "e": false })).await;
    let after_workflow = preferences(&client).await;
    assert_eq!(entry(&after_workflow, "member.joined", "IN_APP"), (false, "WORKFLOW"));
    assert_eq!(entry(&after_workflow, "member.removed", "IN_APP"), (true, "DEFAULT"));
    assert_eq!(entry(&after_workflow, "*", "IN_APP"), (true, "DEFAULT"));

    // The global opt-out turns off every workflow on the channel, except where a workflow's own
    // choice says otherwise, and never a critical one.
    client.data(set, json!({ "w": "member.invited", "c": "EMAIL", "e": true })).await;
    client.data(set, json!({ "w": null, "c": "EMAIL", "e": false })).await;
    client.data(set, json!({ "w": "auth.password_reset_requested", "c": "EMAIL", "e": false })).await;
    let after_global = preferences(&client).await;
    assert_eq!(entry(&after_global, "*", "EMAIL"), (false, "GLOBAL"));
    assert_eq!(entry(&after_global, "webhook.endpoint_disabled", "EMAIL"), (false, "GLOBAL"));
    assert_eq!(entry(&after_global, "member.invited", "EMAIL"), (true, "WORKFLOW"));
    assert_eq!(entry(&after_global, "webhook.endpoint_disabled", "IN_APP"), (true, "DEFAULT"));
    assert_eq!(entry(&after_global, "auth.password_reset_requested", "EMAIL"), (true, "CRITICAL"));

    // Another user sees none of it: their own defaults only.
    let bobs = preferences(&harness.client(&Caller::user(bob))).await;
    assert_eq!(bobs, defaults, "Bob sees only his own (default) preferences");
    let anonymous = harness.client(&Caller::anonymous());
    assert_eq!(anonymous.error_code(PREFERENCES, json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn what_the_preferences_show_is_what_the_consumer_does() {
    let harness = start(&[]).await;
    let ada = register(&harness, "ada@example.com", None).await;
    let org = organization(&harness, ada, "Acme").await;
    let client = harness.client(&Caller::user(ada));
    let set = "mutation($w: String, $c: NotificationChannel!, $e: Boolean!) {
        setNotificationPreference(workflow: $w, channel: $c, enabled: $e) }";
    client.data(set, json!({ "w": null, "c": "IN_APP", "e": false })).await;
    client.data(set, json!({ "w": "role.changed", "c": "IN_APP", "e": true })).await;
    let shown = preferences(&client).await;
    assert_eq!(entry(&shown, "member.joined", "IN_APP"), (false, "GLOBAL"));
    assert_eq!(entry(&shown, "role.changed", "IN_APP"), (true, "WORKFLOW"));

    publish(&harness, "member.joined", json!({ "organization_id": org, "user_id": ada, "role": "member" }))
        .await;
    let promoted =
        json!({ "organization_id": org, "user_id": ada, "role": "admin", "previous_role": "member" });
    publish(&harness, "role.changed", promoted).await;
    eventually("the role change in the feed", || async {
        client.data(FEED, json!({})).await["notifications"]["totalCount"] == 1
    })
    .await;
    // Events apply in order: member.joined was decided before role.changed made its item.
    let feed = client.data(FEED, json!({})).await;
    assert_eq!(feed["notifications"]["totalCount"], 1, "member.joined is off: {feed}");
    assert_eq!(feed["notifications"]["edges"][0]["node"]["workflow"], "role.changed");
}
