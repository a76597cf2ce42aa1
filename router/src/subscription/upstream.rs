//! The router as a `graphql-transport-ws` client of a subgraph: one WebSocket per subscription,
//! opened with the same headers as an HTTP fetch (signed identity, request id, trace context).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::tungstenite::{self, Error as WsError};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::transport::{EventStream, SubgraphResponse, TransportError};

/// The subprotocol the router speaks to subgraphs.
const PROTOCOL: &str = "graphql-transport-ws";
/// The one operation id on a socket.
const ID: &str = "1";
/// How long a subgraph may take to acknowledge `connection_init`.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// TLS settings for `wss://` subgraphs: rustls on aws-lc-rs with the system's roots.
pub(crate) fn tls_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("no usable root certificates on this system for wss:// subgraphs".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Opens the socket, initialises it, subscribes, and streams the subgraph's `next` payloads.
pub(crate) async fn open(
    url: &str,
    headers: http::HeaderMap,
    tls: Option<Arc<rustls::ClientConfig>>,
    query: &str,
    variables: &Map<String, Value>,
) -> Result<EventStream, TransportError> {
    let mut request = url.into_client_request().map_err(|e| TransportError::Unreachable(e.to_string()))?;
    request.headers_mut().extend(headers);
    request
        .headers_mut()
        .insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static(PROTOCOL));
    let connector = tls.map(Connector::Rustls);
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(pyairtable_kit::subgraph::WS_READ_BUFFER);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector)
            .await
            .map_err(connect_error)?;
    send(&mut socket, json!({ "type": "connection_init", "payload": {} })).await?;
    tokio::time::timeout(ACK_TIMEOUT, acknowledged(&mut socket))
        .await
        .map_err(|_| TransportError::Timeout(ACK_TIMEOUT))??;
    let payload = json!({ "query": query, "variables": variables });
    send(&mut socket, json!({ "type": "subscribe", "id": ID, "payload": payload })).await?;
    Ok(futures::stream::unfold(Some(socket), |socket| async move {
        let mut socket = socket?;
        let (item, open) = next_event(&mut socket).await?;
        Some((item, open.then_some(socket)))
    })
    .boxed())
}

fn connect_error(err: WsError) -> TransportError {
    match err {
        WsError::Http(response) => TransportError::Status(response.status().as_u16()),
        other => TransportError::Unreachable(other.to_string()),
    }
}

async fn send(socket: &mut Socket, message: Value) -> Result<(), TransportError> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .map_err(|e| TransportError::Unreachable(e.to_string()))
}

/// Waits for `connection_ack`, answering pings meanwhile.
async fn acknowledged(socket: &mut Socket) -> Result<(), TransportError> {
    loop {
        match read(socket).await? {
            Some(message) if message["type"] == "connection_ack" => return Ok(()),
            Some(message) if message["type"] == "ping" => send(socket, json!({ "type": "pong" })).await?,
            Some(message) if message["type"] == "pong" => {}
            Some(message) => {
                let kind = message["type"].as_str().unwrap_or("?").to_owned();
                return Err(TransportError::Malformed(format!("expected connection_ack, got {kind:?}")));
            }
            None => return Err(TransportError::Unreachable("closed before connection_ack".into())),
        }
    }
}

/// The next event for the stream, and whether the subscription goes on after it; `None` when
/// the subgraph completed it.
async fn next_event(socket: &mut Socket) -> Option<(Result<SubgraphResponse, TransportError>, bool)> {
    loop {
        let message = match read(socket).await {
            Ok(Some(message)) => message,
            Ok(None) => {
                return Some((
                    Err(TransportError::Unreachable("the subgraph closed the socket".into())),
                    false,
                ));
            }
            Err(err) => return Some((Err(err), false)),
        };
        match message["type"].as_str() {
            Some("next") if message["id"] == ID => {
                let payload = message.get("payload").cloned().unwrap_or(Value::Null);
                return Some((SubgraphResponse::from_json(payload), true));
            }
            Some("error") if message["id"] == ID => {
                let errors = match message.get("payload") {
                    Some(Value::Array(errors)) => errors.clone(),
                    Some(other) => vec![other.clone()],
                    None => Vec::new(),
                };
                return Some((Ok(SubgraphResponse { data: None, errors }), false));
            }
            Some("complete") if message["id"] == ID => return None,
            Some("ping") => {
                if let Err(err) = send(socket, json!({ "type": "pong" })).await {
                    return Some((Err(err), false));
                }
            }
            Some("pong") => {}
            _ => {
                let error = TransportError::Malformed("an unexpected message on the subscription".into());
                return Some((Err(error), false));
            }
        }
    }
}

/// The next JSON message; `None` when the socket closed.
async fn read(socket: &mut Socket) -> Result<Option<Value>, TransportError> {
    loop {
        match socket.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map(Some)
                    .map_err(|e| TransportError::Malformed(e.to_string()));
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(TransportError::Malformed("a binary message from the subgraph".into()));
            }
            Some(Ok(_)) => {}
            Some(Err(tungstenite::Error::ConnectionClosed)) => return Ok(None),
            Some(Err(err)) => return Err(TransportError::Unreachable(err.to_string())),
        }
    }
}
