//! Helpers of the notifications subgraph's tests: the subgraph served on its own over a fresh
//! database, events published as other subgraphs publish them, the outbox, a WebSocket client.

#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pyairtable_kit::Caller;
use pyairtable_kit::identity::IDENTITY_HEADER;
use pyairtable_kit::testing::{SentEmail, SubgraphHarness, outbox, test_database};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use uuid::Uuid;

pub const FEED: &str = "query($f: NotificationFilter) { notifications(first: 10, filter: $f) {
    totalCount edges { node { id workflow title body seenAt readAt archivedAt } } } unreadNotificationCount }";

pub async fn start(extra: &[(&str, &str)]) -> SubgraphHarness {
    SubgraphHarness::start_on(test_database().await, extra, &[], pyairtable_notifications::subgraph).await
}

/// Publishes an event as its owning subgraph would (in a committed transaction).
pub async fn publish(harness: &SubgraphHarness, topic: &str, payload: Value) {
    let mut tx = harness.kit.db.begin().await.expect("begin");
    pyairtable_kit::events::publish(&mut tx, topic, &payload).await.expect("publish");
    tx.commit().await.expect("commit");
}

/// A user with an account (as the auth subgraph announces one).
pub async fn register(harness: &SubgraphHarness, email: &str, locale: Option<&str>) -> Uuid {
    let user = Uuid::now_v7();
    let mut payload = json!({ "user_id": user, "email": email, "display_name": email });
    if let Some(locale) = locale {
        payload["locale"] = json!(locale);
    }
    publish(harness, "user.registered", payload).await;
    user
}

/// An organization owned by `owner`, named `name`.
pub async fn organization(harness: &SubgraphHarness, owner: Uuid, name: &str) -> Uuid {
    let org = Uuid::now_v7();
    publish(
        harness,
        "organization.created",
        json!({ "organization_id": org, "owner_id": owner, "name": name }),
    )
    .await;
    org
}

/// `member.invited` as the tenants subgraph publishes it.
pub async fn invite(harness: &SubgraphHarness, org: Uuid, email: &str) {
    let payload = json!({
        "organization_id": org, "invitation_id": Uuid::now_v7(), "email": email, "role": "member",
        "invited_by": Uuid::now_v7(), "organization_name": "Acme",
        "accept_url": "http://127.0.0.1:4000/accept-invitation?token=inv_abc", "expires_days": 7,
    });
    publish(harness, "member.invited", payload).await;
}

pub fn mails(harness: &SubgraphHarness) -> Vec<SentEmail> {
    outbox(&harness.kit.config.data_dir.join("outbox"))
}

/// Waits up to 15 s for `check` to hold.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// `(status, attempts, last_error)` of every delivery on `channel`, oldest first.
pub async fn deliveries(harness: &SubgraphHarness, channel: &str) -> Vec<(String, i32, Option<String>)> {
    sqlx::query_as(
        "select status, attempts, last_error from notifications.deliveries where channel = $1 order by id",
    )
    .bind(channel)
    .fetch_all(&harness.kit.db)
    .await
    .expect("deliveries")
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `graphql-transport-ws` socket to the subgraph as the router opens it (signed identity on the
/// upgrade), subscribed to `notificationReceived`.
pub async fn subscribe(harness: &SubgraphHarness, user: Uuid) -> Socket {
    let url = harness.server.graphql_url().replace("http://", "ws://");
    let mut request = url.into_client_request().expect("request");
    let header = harness.key.sign(&Caller::user(user), chrono::Utc::now().timestamp());
    let headers = request.headers_mut();
    headers.insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    headers.insert(IDENTITY_HEADER, header.parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("the subgraph upgrades");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(receive(&mut socket, 10).await.expect("ack")["type"], "connection_ack");
    let query = "subscription { notificationReceived { id workflow title } }";
    send(&mut socket, json!({ "type": "subscribe", "id": "1", "payload": { "query": query } })).await;
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next text message within `secs` seconds, or `None`.
pub async fn receive(socket: &mut Socket, secs: u64) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.ok()??;
        match frame {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).expect("JSON")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
