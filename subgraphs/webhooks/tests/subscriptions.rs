//! Live delivery status over a WebSocket (graphql-transport-ws) to the subgraph, with the
//! router's signed identity on the upgrade: a member of the organization receives new messages
//! and attempts as they happen; a member of another organization cannot subscribe.

mod common;

use std::time::Duration;

use common::{Receiver, endpoint, harness, join, organization};
use futures::{SinkExt, StreamExt};
use pyairtable_kit::Caller;
use pyairtable_kit::testing::SubgraphHarness;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use uuid::Uuid;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws connection as `user`, acknowledged.
async fn connect(harness: &SubgraphHarness, user: Uuid) -> Socket {
    let url = format!("ws://{}/graphql", harness.server.addr);
    let mut request = url.into_client_request().expect("request");
    let identity = harness.key.sign(&Caller::user(user), chrono::Utc::now().timestamp());
    let headers = request.headers_mut();
    headers.insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    headers.insert(pyairtable_kit::identity::IDENTITY_HEADER, identity.parse().expect("header"));
    let mut socket = tokio_tungstenite::connect_async(request).await.expect("the subgraph upgrades").0;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

async fn receive(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.expect("in time");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

/// The error code a refused subscription ends with (a `next` carrying only errors, or `error`),
/// after which it completes.
async fn refusal(socket: &mut Socket, id: &str) -> String {
    let message = receive(socket).await;
    assert_eq!(message["id"], id, "{message}");
    let errors = if message["type"] == "error" { &message["payload"] } else { &message["payload"]["errors"] };
    assert!(message["payload"]["data"].is_null(), "no data: {message}");
    let code = errors[0]["extensions"]["code"].as_str().unwrap_or_default().to_owned();
    if message["type"] == "next" {
        assert_eq!(receive(socket).await, json!({ "id": id, "type": "complete" }));
    }
    code
}

async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    let payload = json!({ "query": query, "variables": variables });
    send(socket, json!({ "id": id, "type": "subscribe", "payload": payload })).await;
}

const ATTEMPTS: &str = "subscription($e: ID!) { webhookDeliveryUpdated(endpointId: $e) { succeeded responseStatus endpointId } }";
const MESSAGES: &str =
    "subscription($o: ID!) { webhookMessageCreated(organizationId: $o) { eventType endpointId } }";

#[tokio::test]
async fn members_see_messages_and_attempts_live_and_other_tenants_cannot_subscribe() {
    let harness = harness().await;
    let (ada, bob, eve) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let org = organization(&harness, ada).await;
    join(&harness, org, bob, "member").await;
    let other = organization(&harness, eve).await;
    let receiver = Receiver::start(&[500]).await;
    let (id, _) =
        endpoint(&harness.client(&Caller::user(ada)), org, &receiver.url, &["workspace.created"]).await;

    let mut bob_socket = connect(&harness, bob).await;
    subscribe(&mut bob_socket, "a", ATTEMPTS, json!({ "e": id })).await;
    subscribe(&mut bob_socket, "m", MESSAGES, json!({ "o": org })).await;
    let mut eve_socket = connect(&harness, eve).await;
    subscribe(&mut eve_socket, "a", ATTEMPTS, json!({ "e": id })).await;
    assert_eq!(refusal(&mut eve_socket, "a").await, "NOT_FOUND");
    subscribe(&mut eve_socket, "m", MESSAGES, json!({ "o": org })).await;
    assert_eq!(refusal(&mut eve_socket, "m").await, "NOT_FOUND");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let payload = json!({ "organization_id": org, "workspace_id": Uuid::now_v7(), "name": "Live" });
    harness.publish("workspace.created", payload).await;
    harness
        .publish("workspace.created", json!({ "organization_id": other, "workspace_id": Uuid::now_v7() }))
        .await;
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 3 {
        let next = receive(&mut bob_socket).await;
        assert_eq!(next["type"], "next", "{next}");
        seen.push(next);
    }
    let of = |sub: &str| {
        seen.iter().filter(|m| m["id"] == sub).map(|m| m["payload"]["data"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        of("m"),
        [json!({ "webhookMessageCreated": { "eventType": "workspace.created", "endpointId": id } })]
    );
    let attempts: Vec<Value> =
        of("a").iter().map(|d| d["webhookDeliveryUpdated"]["responseStatus"].clone()).collect();
    assert_eq!(attempts, [json!(500), json!(200)], "the failed attempt, then its retry 5 s later");
}
