//! GraphQL over WebSocket through the router of either deployment mode: a signed-up user's
//! token in `connection_init`, operations on the socket, refusals with the protocol's codes.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(ws_url: &str) -> Socket {
    let mut request = ws_url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    tokio_tungstenite::connect_async(request).await.expect("the router upgrades").0
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next message, or the close code as `{"closed": code}`.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("in time");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Some(Ok(Message::Close(frame))) => return json!({ "closed": frame.map(|f| u16::from(f.code)) }),
            Some(Ok(_)) => {}
            _ => return json!({ "closed": null }),
        }
    }
}

/// `me` over the socket with `token`; an unknown subscription field is an error for its id only;
/// a forged token is refused with 4403.
pub async fn websocket_scenario(ws_url: &str, token: &str, display_name: &str) {
    let mut socket = connect(ws_url).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    let me = json!({ "query": "{ me { displayName organizations(first: 5) { totalCount } } }" });
    send(&mut socket, json!({ "type": "subscribe", "id": "me", "payload": me })).await;
    let next = receive(&mut socket).await;
    assert_eq!(next["payload"]["data"]["me"]["displayName"], display_name, "{next}");
    assert_eq!(receive(&mut socket).await, json!({ "id": "me", "type": "complete" }));
    let unknown = json!({ "query": "subscription { nothingHere }" });
    send(&mut socket, json!({ "type": "subscribe", "id": "bad", "payload": unknown })).await;
    let error = receive(&mut socket).await;
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("bad")), "{error}");
    assert!(error["payload"][0]["extensions"]["code"].is_string(), "{error}");
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(receive(&mut socket).await["type"], "pong");

    let mut forged = connect(ws_url).await;
    let payload = json!({ "Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." });
    send(&mut forged, json!({ "type": "connection_init", "payload": payload })).await;
    assert_eq!(receive(&mut forged).await, json!({ "closed": 4403 }));
}
