//! GraphQL over WebSocket on `GET /graphql`: `graphql-transport-ws` (the graphql-ws library's
//! protocol) and the legacy `graphql-ws` (subscriptions-transport-ws). Credentials come in
//! `connection_init` (or the upgrade request's `Authorization`); every operation on the socket
//! goes through the same checks and budgets as an HTTP request. The protocol's close codes are
//! the router's own: 4400 bad message, 4401 operation before the acknowledgement, 4403 refused
//! credentials, 4408 no `connection_init` in time, 4409 duplicate operation id, 4429 a second
//! `connection_init`; 1012/1001 when the server stops.

mod operation;
mod protocol;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use pyairtable_kit::Caller;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use self::operation::{Event, Open, Operation, Writer};
use self::protocol::{Protocol, close, credentials, error_message};
use crate::auth::AuthError;
use crate::headers::Propagated;
use crate::pipeline::{GraphQLRequest, Pipeline};
use crate::response::GraphQLError;

/// Whether `headers` ask to upgrade to a WebSocket.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Who is at the other end, as the upgrade request said.
pub(crate) struct Client {
    /// Anonymous, with the client's address and user agent.
    pub(crate) caller: Caller,
    pub(crate) authorization: Option<String>,
    pub(crate) request_id: String,
    pub(crate) propagated: Propagated,
}

/// Accepts the WebSocket (charging the per-IP admission budget for the connection) and serves
/// it until either side closes it.
pub(crate) async fn accept(
    pipeline: Arc<Pipeline>,
    client: Client,
    headers: &HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = Protocol::chosen(headers) else {
        let message = "ask for the graphql-transport-ws or graphql-ws subprotocol";
        return (StatusCode::BAD_REQUEST, message).into_response();
    };
    let rate = pipeline.admit(&client.caller, None).await;
    if !rate.allowed() {
        crate::metrics::refusal("rate_limit");
        let mut response = (StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded").into_response();
        rate.write_headers(response.headers_mut());
        return response;
    }
    let lifecycle = pipeline.options().subscriptions.lifecycle.clone();
    let connection = Connection::new(pipeline, protocol, client);
    let upgrade = upgrade.read_buffer_size(pyairtable_kit::subgraph::WS_READ_BUFFER);
    upgrade.protocols([protocol.name()]).on_upgrade(move |socket| async move {
        match lifecycle {
            // Tracked, so a shutdown waits for the close handshake (within its grace period).
            Some(lifecycle) => drop(lifecycle.spawn(connection.serve(socket)).await),
            None => connection.serve(socket).await,
        }
    })
}

/// Why the loop ends: close with a code, or the socket is gone.
enum Flow {
    Continue,
    Close(u16, String),
    Gone,
}

struct Connection {
    pipeline: Arc<Pipeline>,
    protocol: Protocol,
    client: Client,
    /// The caller, once `connection_init` was accepted.
    caller: Option<Caller>,
    /// The credentials `connection_init` was accepted with (checked again at every keep-alive).
    authorization: Option<String>,
    api_key: Option<String>,
    init_received: bool,
    /// Running operations by id, with a generation so a reused id is not confused with an old one.
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
}

impl Connection {
    fn new(pipeline: Arc<Pipeline>, protocol: Protocol, client: Client) -> Self {
        Self {
            pipeline,
            protocol,
            client,
            caller: None,
            authorization: None,
            api_key: None,
            init_received: false,
            operations: HashMap::new(),
            generation: 0,
        }
    }

    async fn serve(mut self, socket: WebSocket) {
        let _open = Open::enter();
        let options = self.pipeline.options().subscriptions.clone();
        let (sink, mut incoming) = socket.split();
        let mut out = Writer { sink, timeout: options.write_timeout };
        let (tx, mut rx) = mpsc::channel::<Event>(options.buffer.max(1));
        let init = tokio::time::sleep(options.init_timeout);
        tokio::pin!(init);
        let start = tokio::time::Instant::now() + options.keepalive;
        let mut keepalive = tokio::time::interval_at(start, options.keepalive);
        let stop = async {
            match &options.lifecycle {
                Some(lifecycle) => {
                    lifecycle.stopping().await;
                    lifecycle.reason().map_or(1001, |r| r.websocket_close_code())
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stop);
        let end = loop {
            let flow = tokio::select! {
                code = &mut stop => Flow::Close(code, "the server is shutting down".into()),
                () = &mut init, if self.caller.is_none() => {
                    Flow::Close(close::INIT_TIMEOUT, "Connection initialisation timeout".into())
                }
                frame = incoming.next() => match frame {
                    None | Some(Err(_) | Ok(Message::Close(_))) => Flow::Gone,
                    Some(Ok(Message::Text(text))) => self.on_message(text.as_str(), &tx, &mut out).await,
                    Some(Ok(Message::Binary(_))) => {
                        Flow::Close(close::BAD_MESSAGE, "binary messages are not GraphQL".into())
                    }
                    Some(Ok(_)) => Flow::Continue,
                },
                Some(event) = rx.recv() => self.on_event(event, &mut out).await,
                _ = keepalive.tick(), if self.caller.is_some() => self.keepalive(&mut out).await,
            };
            match flow {
                Flow::Continue => {}
                Flow::Close(code, reason) => break Some((code, reason)),
                Flow::Gone => break None,
            }
        };
        for (_, (_, handle)) in self.operations.drain() {
            handle.abort();
        }
        if let Some((code, reason)) = end {
            out.close(code, &reason).await;
        }
    }

    /// Writes an operation's message, unless the client completed that operation meanwhile.
    async fn on_event(&mut self, event: Event, out: &mut Writer) -> Flow {
        let current = |ops: &HashMap<String, (u64, AbortHandle)>, id: &str, generation: u64| {
            ops.get(id).is_some_and(|(g, _)| *g == generation)
        };
        let message = match event {
            Event::Send(id, generation, text) => current(&self.operations, &id, generation).then_some(text),
            Event::Finished(id, generation, text) => {
                if !current(&self.operations, &id, generation) {
                    return Flow::Continue;
                }
                self.operations.remove(&id);
                text
            }
        };
        match message {
            Some(text) => {
                if out.text(text).await {
                    Flow::Continue
                } else {
                    Flow::Gone
                }
            }
            None => Flow::Continue,
        }
    }

    async fn on_message(&mut self, text: &str, tx: &mpsc::Sender<Event>, out: &mut Writer) -> Flow {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Flow::Close(close::BAD_MESSAGE, "Invalid message received".into());
        };
        let kind = message.get("type").and_then(Value::as_str).unwrap_or_default();
        match (self.protocol, kind) {
            (_, "connection_init") => self.init(message.get("payload"), out).await,
            (Protocol::TransportWs, "ping") => {
                let pong = match message.get("payload") {
                    Some(payload) => json!({ "type": "pong", "payload": payload }),
                    None => json!({ "type": "pong" }),
                };
                if out.text(pong.to_string()).await { Flow::Continue } else { Flow::Gone }
            }
            (Protocol::TransportWs, "pong") => Flow::Continue,
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                self.subscribe(&message, tx, out).await
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                let id = message.get("id").and_then(Value::as_str).unwrap_or_default();
                if let Some((_, handle)) = self.operations.remove(id) {
                    handle.abort();
                }
                Flow::Continue
            }
            (Protocol::Legacy, "connection_terminate") => Flow::Close(1000, "terminated".into()),
            _ => Flow::Close(close::BAD_MESSAGE, "Invalid message received".into()),
        }
    }

    async fn init(&mut self, payload: Option<&Value>, out: &mut Writer) -> Flow {
        if self.init_received {
            return Flow::Close(close::TOO_MANY_INITS, "Too many initialisation requests".into());
        }
        self.init_received = true;
        let authorization = payload.and_then(credentials).or_else(|| self.client.authorization.clone());
        let verified = match (self.pipeline.authenticator(), authorization.as_deref()) {
            (Some(authenticator), given) => authenticator.authenticate(given).await,
            (None, None) => Ok(Caller::anonymous()),
            (None, Some(_)) => Err(AuthError::InvalidToken("this router has no auth service".into())),
        };
        let mut caller = match verified {
            Ok(caller) => caller,
            Err(err) => return self.refuse(err, out).await,
        };
        caller.ip.clone_from(&self.client.caller.ip);
        caller.user_agent.clone_from(&self.client.caller.user_agent);
        self.api_key = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|token| token.starts_with("pat_"))
            .map(str::to_owned);
        self.caller = Some(caller);
        self.authorization = authorization;
        let mut acked = out.text(json!({ "type": "connection_ack" }).to_string()).await;
        if self.protocol == Protocol::Legacy {
            acked = acked && out.text(self.protocol.keepalive()).await;
        }
        if acked { Flow::Continue } else { Flow::Gone }
    }

    /// Pings the client, after checking that its credentials still hold: a socket whose token
    /// expired or whose session was revoked (logged out, removed) is closed with 4403.
    async fn keepalive(&mut self, out: &mut Writer) -> Flow {
        let pipeline = self.pipeline.clone();
        if let (Some(authenticator), Some(authorization)) = (pipeline.authenticator(), &self.authorization)
            && let Err(err @ AuthError::InvalidToken(_)) =
                authenticator.authenticate(Some(authorization)).await
        {
            return self.refuse(err, out).await;
        }
        if out.text(self.protocol.keepalive()).await { Flow::Continue } else { Flow::Gone }
    }

    async fn refuse(&mut self, err: AuthError, out: &mut Writer) -> Flow {
        tracing::info!(%err, "WebSocket refused at connection_init");
        let (code, reason) = match err {
            AuthError::InvalidToken(_) => (close::FORBIDDEN, "Forbidden"),
            AuthError::Unavailable(_) => (close::UNAVAILABLE, "authentication is unavailable; retry shortly"),
        };
        if self.protocol == Protocol::Legacy {
            let refusal = json!({ "type": "connection_error", "payload": { "message": reason } });
            if !out.text(refusal.to_string()).await {
                return Flow::Gone;
            }
        }
        Flow::Close(code, reason.into())
    }

    async fn subscribe(&mut self, message: &Value, tx: &mpsc::Sender<Event>, out: &mut Writer) -> Flow {
        let Some(caller) = self.caller.clone() else {
            return Flow::Close(close::UNAUTHORIZED, "Unauthorized".into());
        };
        let Some(id) = message.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) else {
            return Flow::Close(close::BAD_MESSAGE, "the operation needs an id".into());
        };
        if self.operations.contains_key(id) {
            return Flow::Close(close::DUPLICATE_ID, format!("Subscriber for {id} already exists"));
        }
        let payload = message.get("payload").cloned().unwrap_or(Value::Null);
        let Ok(request) = serde_json::from_value::<GraphQLRequest>(payload) else {
            return Flow::Close(close::BAD_MESSAGE, "Invalid message received: malformed payload".into());
        };
        let max = self.pipeline.options().subscriptions.max_per_connection;
        if self.operations.len() >= max {
            let error = GraphQLError::new(
                format!("at most {max} operations may run at once on one connection"),
                crate::limits::code::MAX_OPERATIONS_PER_CONNECTION,
            );
            let sent = out.text(error_message(id, &[error])).await;
            return if sent { Flow::Continue } else { Flow::Gone };
        }
        self.generation += 1;
        let operation = Operation {
            pipeline: self.pipeline.clone(),
            protocol: self.protocol,
            id: id.to_owned(),
            generation: self.generation,
            caller,
            api_key: self.api_key.clone(),
            request_id: format!("{}:{id}", self.client.request_id),
            propagated: self.client.propagated.clone(),
            tx: tx.clone(),
        };
        let handle = tokio::spawn(operation.run(request)).abort_handle();
        self.operations.insert(id.to_owned(), (self.generation, handle));
        Flow::Continue
    }
}
