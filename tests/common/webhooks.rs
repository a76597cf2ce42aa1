//! Webhooks through the router: an owner's endpoint at a real receiver on 127.0.0.1, its
//! messages and attempts live on the owner's `graphql-transport-ws` socket; a user of another
//! organization cannot subscribe to them and never gets their data.

use std::sync::{Arc, Mutex};

use pyairtable_kit::testing::{GraphQLClient, TestServer, spawn_app};
use serde_json::{Value, json};

use super::socket::{Socket, connect, receive, subscribe};
use super::{bearer, sign_up};

const ATTEMPTS: &str = "subscription($e: ID!) { webhookDeliveryUpdated(endpointId: $e) {
    messageId endpointId succeeded responseStatus responseBody latencyMs error } }";
const MESSAGES: &str = "subscription($o: ID!) { webhookMessageCreated(organizationId: $o) {
    id webhookId eventType endpointId status } }";

/// A receiver answering 200 that records the `webhook-id` of every request it gets.
async fn receiver() -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let log = log.clone();
        async move {
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
            log.lock().expect("log").push(id.to_owned());
            "received"
        }
    });
    (spawn_app(app).await, seen)
}

/// The error code a refused subscription ends with (`error`, or a `next` with errors and no
/// data, then `complete`).
async fn refusal(socket: &mut Socket, id: &str) -> String {
    let message = receive(socket, 20).await.expect("an answer to the subscription");
    assert_eq!(message["id"], id, "{message}");
    let errors = if message["type"] == "error" { &message["payload"] } else { &message["payload"]["errors"] };
    assert!(message["payload"]["data"].is_null(), "no data: {message}");
    let code = errors[0]["extensions"]["code"].as_str().unwrap_or_default().to_owned();
    if message["type"] == "next" {
        assert_eq!(receive(socket, 10).await, Some(json!({ "id": id, "type": "complete" })));
    }
    code
}

/// The `next` events of `socket` within `secs` seconds of each other, as (subscription id, data).
async fn events(
    socket: &mut Socket,
    secs: u64,
    until: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    while !until(&seen) {
        let Some(message) = receive(socket, secs).await else { break };
        assert_eq!(message["type"], "next", "{message}");
        let id = message["id"].as_str().expect("an id").to_owned();
        seen.push((id, message["payload"]["data"].clone()));
    }
    seen
}

/// Test-sends until both of the owner's subscriptions have carried a `webhook.test` (both are
/// listening through the router, down to the subgraph's bus).
async fn until_listening(owner: &GraphQLClient, socket: &mut Socket, endpoint: &Value) {
    let send = "mutation($e: ID!) { sendTestWebhook(endpointId: $e) { succeeded } }";
    let (mut attempts, mut messages) = (false, false);
    for _ in 0..30 {
        owner.data(send, json!({ "e": endpoint })).await;
        for (id, _) in events(socket, 1, |_| false).await {
            attempts |= id == "a";
            messages |= id == "m";
        }
        if attempts && messages {
            return;
        }
    }
    panic!("the subscriptions never carried a test message (attempts {attempts}, messages {messages})");
}

/// Ada owns Acme with an endpoint at a real receiver and subscribes to its attempts and to
/// Acme's messages; Eve (owner of another organization) is refused both, NOT_FOUND. Creating a
/// workspace reaches the receiver, and Ada's socket gets the message and its attempt (200) live;
/// Eve's socket gets nothing.
pub async fn webhook_scenario(router: &GraphQLClient, ws_url: &str) {
    let (_, ada_token, _) = sign_up(router, "ada@example.com", "Ada").await;
    let (_, eve_token, _) = sign_up(router, "eve@example.com", "Eve").await;
    let (ada, eve) = (bearer(router, &ada_token), bearer(router, &eve_token));
    let create_org = "mutation($n: String!) { createOrganization(input: { name: $n }) { id } }";
    let org = ada.data(create_org, json!({ "n": "Acme" })).await["createOrganization"]["id"].clone();
    eve.data(create_org, json!({ "n": "Other" })).await;
    let (server, seen) = receiver().await;
    let create = "mutation($o: ID!, $i: CreateWebhookEndpointInput!) {
        createWebhookEndpoint(organizationId: $o, input: $i) { id } }";
    let input = json!({ "url": format!("http://{}/hook", server.addr), "eventTypes": ["workspace.created"] });
    let endpoint =
        ada.data(create, json!({ "o": org, "i": input })).await["createWebhookEndpoint"]["id"].clone();

    let mut eve_socket = connect(ws_url, &eve_token).await;
    subscribe(&mut eve_socket, "a", ATTEMPTS, json!({ "e": endpoint })).await;
    assert_eq!(refusal(&mut eve_socket, "a").await, "NOT_FOUND", "another tenant's endpoint");
    subscribe(&mut eve_socket, "m", MESSAGES, json!({ "o": org })).await;
    assert_eq!(refusal(&mut eve_socket, "m").await, "NOT_FOUND", "another tenant's organization");
    let mut ada_socket = connect(ws_url, &ada_token).await;
    subscribe(&mut ada_socket, "a", ATTEMPTS, json!({ "e": endpoint })).await;
    subscribe(&mut ada_socket, "m", MESSAGES, json!({ "o": org })).await;
    until_listening(&ada, &mut ada_socket, &endpoint).await;

    let create_ws = "mutation($o: ID!) { createWorkspace(organizationId: $o, name: \"Live\") { id } }";
    ada.data(create_ws, json!({ "o": org })).await;
    let is_workspace = |(id, data): &(String, Value)| {
        id == "m" && data["webhookMessageCreated"]["eventType"] == "workspace.created"
    };
    let live = events(&mut ada_socket, 30, |seen| seen.iter().any(is_workspace)).await;
    let (_, message) = live.iter().find(|e| is_workspace(e)).expect("the message, live").clone();
    let message = &message["webhookMessageCreated"];
    assert_eq!((&message["endpointId"], &message["status"]), (&endpoint, &json!("PENDING")), "{message}");
    let ours = |(id, data): &(String, Value)| {
        id == "a" && data["webhookDeliveryUpdated"]["messageId"] == message["id"]
    };
    let live = [live.clone(), events(&mut ada_socket, 30, |seen| seen.iter().any(ours)).await].concat();
    let (_, attempt) = live.iter().find(|e| ours(e)).expect("the attempt, live").clone();
    let attempt = &attempt["webhookDeliveryUpdated"];
    assert_eq!(attempt["succeeded"], true, "{attempt}");
    assert_eq!((&attempt["responseStatus"], &attempt["responseBody"]), (&json!(200), &json!("received")));
    assert_eq!((&attempt["endpointId"], &attempt["error"]), (&endpoint, &Value::Null), "{attempt}");
    assert!(attempt["latencyMs"].as_i64().is_some_and(|ms| ms >= 0), "{attempt}");
    let webhook_id = message["webhookId"].as_str().expect("webhookId");
    assert!(seen.lock().expect("log").iter().any(|id| id == webhook_id), "the receiver got the message");

    let leaked = events(&mut eve_socket, 1, |_| false).await;
    assert!(leaked.is_empty(), "Eve's socket got {leaked:?}");
}
