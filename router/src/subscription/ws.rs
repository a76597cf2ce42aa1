//! GraphQL over WebSocket on `GET /graphql`: `graphql-transport-ws` (the graphql-ws library's
//! protocol) and the legacy `graphql-ws` (subscriptions-transport-ws). Credentials come in
//! `connection_init` (or the upgrade request's `Authorization`); every operation on the socket
//! goes through the same checks and budgets as an HTTP request. The protocol's close codes are
//! the router's own: 4400 bad message, 4401 operation before the acknowledgement, 4403 refused
//! credentials, 4408 no `connection_init` in time, 4409 duplicate operation id, 4429 a second
//! `connection_init`; 1012/1001 when the server stops.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use pyairtable_kit::Caller;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::auth::AuthError;
use crate::flow::RequestContext;
use crate::headers::Propagated;
use crate::pipeline::{GraphQLRequest, Pipeline};
use crate::reply::tag;
use crate::response::{GraphQLError, Response as GraphQLResponse};

/// The subprotocols, in the router's order of preference.
const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY: &str = "graphql-ws";

/// Close codes (graphql-transport-ws; the legacy protocol has none of its own).
mod close {
    pub const BAD_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
    /// The server could not check the credentials (the auth service is down).
    pub const UNAVAILABLE: u16 = 1011;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    TransportWs,
    Legacy,
}

impl Protocol {
    /// The first subprotocol the client offers that the router speaks; graphql-transport-ws
    /// when it offers none.
    fn chosen(headers: &HeaderMap) -> Option<Self> {
        let Some(offered) = headers.get(header::SEC_WEBSOCKET_PROTOCOL) else {
            return Some(Self::TransportWs);
        };
        offered.to_str().ok()?.split(',').map(str::trim).find_map(|p| match p {
            TRANSPORT_WS => Some(Self::TransportWs),
            LEGACY => Some(Self::Legacy),
            _ => None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::TransportWs => TRANSPORT_WS,
            Self::Legacy => LEGACY,
        }
    }

    fn next(self, id: &str, payload: &GraphQLResponse) -> String {
        let kind = if self == Self::TransportWs { "next" } else { "data" };
        json!({ "id": id, "type": kind, "payload": payload }).to_string()
    }

    fn keepalive(self) -> String {
        let kind = if self == Self::TransportWs { "ping" } else { "ka" };
        json!({ "type": kind }).to_string()
    }
}

fn error_message(id: &str, errors: &[GraphQLError]) -> String {
    json!({ "id": id, "type": "error", "payload": errors }).to_string()
}

fn complete_message(id: &str) -> String {
    json!({ "id": id, "type": "complete" }).to_string()
}

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
    upgrade.protocols([protocol.name()]).on_upgrade(move |socket| async move {
        match lifecycle {
            // Tracked, so a shutdown waits for the close handshake (within its grace period).
            Some(lifecycle) => drop(lifecycle.spawn(connection.serve(socket)).await),
            None => connection.serve(socket).await,
        }
    })
}

/// What an operation's task tells the connection.
enum Event {
    /// A message for the client, from operation `id` (of generation `u64`).
    Send(String, u64, String),
    /// The operation ended; its last message, if any.
    Finished(String, u64, Option<String>),
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

/// The socket's sending half, with a deadline per message (a client that does not read is cut).
struct Writer {
    sink: SplitSink<WebSocket, Message>,
    timeout: std::time::Duration,
}

impl Writer {
    async fn text(&mut self, text: String) -> bool {
        let sent = tokio::time::timeout(self.timeout, self.sink.send(Message::Text(text.into()))).await;
        match sent {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                tracing::info!("disconnected a WebSocket client that does not read its messages");
                metrics::counter!("router_websocket_slow_clients_total").increment(1);
                false
            }
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = tokio::time::timeout(self.timeout, self.sink.send(Message::Close(Some(frame)))).await;
    }
}

/// Counts an open WebSocket in `router_websocket_connections_active` until dropped.
struct Open;

impl Open {
    fn enter() -> Self {
        metrics::gauge!("router_websocket_connections_active").increment(1.0);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("router_websocket_connections_active").decrement(1.0);
    }
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

/// The `Authorization` value a client put in `connection_init`'s payload: `Authorization` or
/// `authorization` (`Bearer ...`), the same under `headers`, or a bare `authToken`/`token`.
fn credentials(payload: &Value) -> Option<String> {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let headers = payload.get("headers");
    let authorization = text(payload.get("Authorization"))
        .or_else(|| text(payload.get("authorization")))
        .or_else(|| text(headers.and_then(|h| h.get("Authorization"))))
        .or_else(|| text(headers.and_then(|h| h.get("authorization"))));
    authorization.or_else(|| {
        text(payload.get("authToken")).or_else(|| text(payload.get("token"))).map(|t| format!("Bearer {t}"))
    })
}

/// One operation on a socket, in its own task.
struct Operation {
    pipeline: Arc<Pipeline>,
    protocol: Protocol,
    id: String,
    generation: u64,
    caller: Caller,
    api_key: Option<String>,
    request_id: String,
    propagated: Propagated,
    tx: mpsc::Sender<Event>,
}

impl Operation {
    async fn run(self, request: GraphQLRequest) {
        let context = RequestContext {
            request_id: &self.request_id,
            get: false,
            api_key: self.api_key.as_deref(),
            propagated: self.propagated.clone(),
            stream: true,
        };
        let (id, generation) = (self.id.clone(), self.generation);
        let mut responses = match self.pipeline.start(request, &self.caller, context).await {
            Ok(responses) => responses,
            Err(answer) => {
                let errors = tag(answer.outcome.into_response(), &self.request_id).errors;
                let _ = self
                    .tx
                    .send(Event::Finished(id, generation, Some(error_message(&self.id, &errors))))
                    .await;
                return;
            }
        };
        while let Some(response) = responses.next().await {
            let text = self.protocol.next(&self.id, &tag(response, &self.request_id));
            // The connection is gone when nobody receives: stop reading the subgraph.
            if self.tx.send(Event::Send(id.clone(), generation, text)).await.is_err() {
                return;
            }
        }
        let _ = self.tx.send(Event::Finished(id, generation, Some(complete_message(&self.id)))).await;
    }
}
