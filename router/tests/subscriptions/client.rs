//! A WebSocket client that speaks the GraphQL protocols message by message, so a test can send
//! what a well-behaved client would not.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What the router sent next.
#[derive(Debug)]
pub enum Received {
    Message(Value),
    /// The router closed the socket with this code and reason.
    Closed(Option<u16>, String),
}

pub struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(url: &str, protocol: &str) -> Self {
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let (socket, response) =
            tokio_tungstenite::connect_async(request).await.expect("the router upgrades");
        let chosen = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
        assert_eq!(chosen, Some(protocol), "the router speaks the protocol asked for");
        Self { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::text(message.to_string())).await.expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text.to_owned())).await.expect("send");
    }

    /// The next message (keep-alives included), or the close; within 10 s.
    pub async fn recv(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("the router said something within 10 s");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Received::Message(serde_json::from_str(text.as_str()).expect("JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) =
                        frame.map_or((None, String::new()), |f| (Some(f.code.into()), f.reason.to_string()));
                    return Received::Closed(code, reason);
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return Received::Closed(None, "the connection dropped".into()),
            }
        }
    }

    /// The next message that is not a keep-alive (`ping`, `ka`); pings are answered.
    pub async fn message(&mut self) -> Value {
        loop {
            match self.recv().await {
                Received::Message(m) if m["type"] == "ping" => self.send(json!({ "type": "pong" })).await,
                Received::Message(m) if m["type"] == "ka" || m["type"] == "pong" => {}
                Received::Message(m) => return m,
                Received::Closed(code, reason) => {
                    panic!("closed ({code:?}, {reason}) while a message was expected")
                }
            }
        }
    }

    /// The close code, skipping any message before it.
    pub async fn closed(&mut self) -> (Option<u16>, String) {
        loop {
            if let Received::Closed(code, reason) = self.recv().await {
                return (code, reason);
            }
        }
    }

    /// `connection_init` with `payload`, expecting `connection_ack`.
    pub async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload })).await;
        let ack = self.message().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
    }

    /// Starts operation `id` (`subscribe`, or `start` on the legacy protocol).
    pub async fn subscribe(&mut self, kind: &str, id: &str, query: &str, variables: Value) {
        self.send(json!({ "type": kind, "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }
}
