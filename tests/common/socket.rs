//! A signed-in `graphql-transport-ws` client of the router, for the scenarios that watch
//! subscriptions (notifications, webhooks): connect and acknowledge, subscribe, read the next
//! message while answering the router's keep-alive pings.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket to the router, signed in with `token` in `connection_init`, acknowledged.
pub async fn connect(ws_url: &str, token: &str) -> Socket {
    let mut request = ws_url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    let mut socket = tokio_tungstenite::connect_async(request).await.expect("the router upgrades").0;
    let init =
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await.expect("send");
    assert_eq!(receive(&mut socket, 10).await.expect("ack")["type"], "connection_ack");
    socket
}

/// Starts the subscription `query` as operation `id`.
pub async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    let payload = json!({ "query": query, "variables": variables });
    let message = json!({ "id": id, "type": "subscribe", "payload": payload });
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next message of the protocol within `secs` seconds, or `None` (timeout or close). The
/// router's keep-alive pings (every 12 s) are answered and are not messages.
pub async fn receive(socket: &mut Socket, secs: u64) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await.ok()?? {
            Ok(Message::Text(text)) => {
                let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
                match message["type"].as_str() {
                    Some("ping") => {
                        let pong = json!({ "type": "pong" }).to_string();
                        socket.send(Message::text(pong)).await.ok()?;
                    }
                    Some("pong") => {}
                    _ => return Some(message),
                }
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
