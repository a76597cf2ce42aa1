//! How the router reaches a subgraph: in process (one-process mode) or over HTTP (one service per
//! subgraph). Same planner, same executor; only this differs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pyairtable_kit::http::{REQUEST_ID, RequestId};
use pyairtable_kit::identity::IDENTITY_HEADER;
use pyairtable_kit::{Caller, IdentityKey, SubgraphService};
use serde_json::{Map, Value};

use crate::tree::Tree;

/// The largest subgraph response body the router reads.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// One request to a subgraph.
pub struct SubgraphRequest<'a> {
    pub query: &'a str,
    pub variables: &'a Map<String, Value>,
    pub caller: &'a Caller,
    pub request_id: &'a str,
    /// More variables, as JSON text the executor wrote (entity representations).
    pub written: &'a [(String, String)],
    /// The HTTP body (`{"query":…,"variables":…}`) when already written.
    pub body: Option<&'a Bytes>,
}

impl SubgraphRequest<'_> {
    /// Every variable as JSON values (the written ones parsed).
    pub fn all_variables(&self) -> Map<String, Value> {
        let mut all = self.variables.clone();
        for (name, json) in self.written {
            all.insert(name.clone(), serde_json::from_str(json).unwrap_or(Value::Null));
        }
        all
    }
}

/// The JSON body of a GraphQL request over HTTP, written from borrowed parts: `variables`, then
/// the `written` ones copied in as they are.
pub fn request_body(query: &str, variables: &Map<String, Value>, written: &[(String, String)]) -> Bytes {
    let size = query.len() + written.iter().map(|(n, j)| n.len() + j.len() + 4).sum::<usize>() + 64;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"{\"query\":");
    // Serializing strings and JSON values into memory cannot fail.
    let _ = serde_json::to_writer(&mut out, query);
    out.extend_from_slice(b",\"variables\":{");
    let mut first = true;
    for (name, value) in variables.iter().filter(|(name, _)| !written.iter().any(|(n, _)| n == *name)) {
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = serde_json::to_writer(&mut out, name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value);
    }
    for (name, json) in written {
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = serde_json::to_writer(&mut out, name);
        out.push(b':');
        out.extend_from_slice(json.as_bytes());
    }
    out.extend_from_slice(b"}}");
    Bytes::from(out)
}

/// A subgraph's answer: its data as the executor's tree, its errors as JSON.
#[derive(Debug, Default, Clone)]
pub struct SubgraphResponse {
    pub data: Option<Tree>,
    pub errors: Vec<Value>,
}

impl SubgraphResponse {
    /// Reads a GraphQL response body.
    pub fn from_json(body: Value) -> Result<Self, TransportError> {
        Self::from_tree(Tree::from(body))
    }

    /// Reads a GraphQL response body parsed into a tree.
    pub fn from_tree(body: Tree) -> Result<Self, TransportError> {
        let Tree::Object(mut body) = body else {
            return Err(TransportError::Malformed("the response is not a JSON object".into()));
        };
        let data = body.remove("data").filter(|d| !d.is_null());
        let errors = match body.remove("errors") {
            Some(Tree::Array(errors)) => errors.into_iter().map(Tree::into_value).collect(),
            Some(Tree::Null) | None => Vec::new(),
            Some(_) => return Err(TransportError::Malformed("`errors` is not a list".into())),
        };
        if data.is_none() && errors.is_empty() {
            return Err(TransportError::Malformed("neither data nor errors".into()));
        }
        Ok(Self { data, errors })
    }
}

/// Why a subgraph could not be asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("circuit open after repeated failures")]
    CircuitOpen,
    #[error("does not support {0}")]
    Unsupported(&'static str),
}

impl TransportError {
    /// What a client may be told: the kind of failure, without addresses or low-level causes
    /// (those go to the log with the request id).
    pub fn public_message(&self) -> String {
        match self {
            Self::Unreachable(_) => "could not be reached".into(),
            Self::Timeout(after) => format!("did not answer within {} ms", after.as_millis()),
            Self::Status(status) => format!("answered HTTP {status}"),
            Self::Malformed(_) => "sent a malformed response".into(),
            Self::CircuitOpen => "is failing; requests to it are paused".into(),
            Self::Unsupported(what) => format!("does not support {what}"),
        }
    }

    /// Whether asking again may help: the subgraph could not be reached or failed on its side.
    /// A timeout is not retried (it would multiply the client's wait), nor a malformed answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Status(status) => *status >= 500,
            Self::Timeout(_) | Self::Malformed(_) | Self::CircuitOpen | Self::Unsupported(_) => false,
        }
    }

    /// The `outcome` label of the fetch metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Status(_) => "http_error",
            Self::Malformed(_) => "malformed",
            Self::CircuitOpen => "circuit_open",
            Self::Unsupported(_) => "unsupported",
        }
    }
}

/// A subgraph's events for one subscription, until it ends it (or fails).
pub type EventStream = BoxStream<'static, Result<SubgraphResponse, TransportError>>;

/// A way to send a GraphQL request to one subgraph.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn fetch(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError>;

    /// Whether requests are sent as a JSON body (written once by the caller, shared by retries).
    fn wants_body(&self) -> bool {
        false
    }

    /// Opens a subscription: the stream yields each event the subgraph sends.
    async fn subscribe(&self, _request: SubgraphRequest<'_>) -> Result<EventStream, TransportError> {
        Err(TransportError::Unsupported("subscriptions"))
    }
}

/// Calls a subgraph schema in this process.
pub struct InProcess(pub Arc<dyn SubgraphService>);

impl InProcess {
    fn request(request: &SubgraphRequest<'_>) -> async_graphql::Request {
        let variables = async_graphql::Variables::from_json(Value::Object(request.all_variables()));
        async_graphql::Request::new(request.query)
            .variables(variables)
            .data(request.caller.clone())
            .data(RequestId(request.request_id.to_owned()))
    }
}

fn in_process_response(response: &async_graphql::Response) -> Result<SubgraphResponse, TransportError> {
    let json = serde_json::to_value(response).map_err(|e| TransportError::Malformed(e.to_string()))?;
    SubgraphResponse::from_json(json)
}

#[async_trait::async_trait]
impl Transport for InProcess {
    async fn fetch(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError> {
        let response = self.0.execute(Self::request(&request)).await;
        in_process_response(&response)
    }

    async fn subscribe(&self, request: SubgraphRequest<'_>) -> Result<EventStream, TransportError> {
        let events = self.0.execute_stream(Self::request(&request), None);
        Ok(events.map(|response| in_process_response(&response)).boxed())
    }
}

/// Calls a subgraph over HTTP with pooled keep-alive connections: HTTP/1.1, or HTTP/2 when
/// asked (`h2c` with prior knowledge on `http://`) or when a TLS server offers it by ALPN
/// (`https://`). With an identity key it signs the caller's identity for the subgraph.
pub struct Http {
    url: http::Uri,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    key: Option<IdentityKey>,
    /// TLS for `wss://` subscriptions, made at the first one.
    tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl Http {
    /// A client for `url`; `http2` speaks HTTP/2 only (prior knowledge on `http://`).
    pub fn new(url: &str, key: Option<IdentityKey>, http2: bool) -> Result<Self, String> {
        let url: http::Uri = url.parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(format!("{url} is not an http:// or https:// URL"));
        }
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.enforce_http(false);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let connector = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("TLS setup: {e}"))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .http2_only(http2)
            .build(connector);
        Ok(Self { url, client, key, tls: std::sync::OnceLock::new() })
    }

    /// The headers every request to the subgraph carries: the propagated client headers, the
    /// request id, the signed identity and the trace context.
    fn headers(&self, request: &SubgraphRequest<'_>) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for (name, value) in crate::headers::current().iter() {
            headers.append(name.clone(), value.clone());
        }
        if let Ok(id) = http::HeaderValue::from_str(request.request_id) {
            headers.insert(REQUEST_ID, id);
        }
        if let Some(key) = &self.key {
            let signed = key.sign(request.caller, chrono::Utc::now().timestamp());
            if let Ok(value) = http::HeaderValue::from_str(&signed) {
                headers.insert(IDENTITY_HEADER, value);
            }
        }
        pyairtable_kit::traces::inject_trace_context(&mut headers);
        headers
    }

    async fn send(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError> {
        let body = match request.body {
            Some(body) => body.clone(),
            None => request_body(request.query, request.variables, request.written),
        };
        let mut http_request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/graphql-response+json, application/json")
            .body(Full::new(body))
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        http_request.headers_mut().extend(self.headers(&request));
        let response = self
            .client
            .request(http_request)
            .await
            .map_err(|e| TransportError::Unreachable(format!("{e:?}")))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| TransportError::Unreachable(e.to_string()))?
            .to_bytes();
        if status.is_server_error() {
            return Err(TransportError::Status(status.as_u16()));
        }
        match Tree::from_slice(&bytes) {
            Ok(json) => SubgraphResponse::from_tree(json)
                .map_err(|e| if status.is_success() { e } else { TransportError::Status(status.as_u16()) }),
            Err(_) if !status.is_success() => Err(TransportError::Status(status.as_u16())),
            Err(e) => Err(TransportError::Malformed(e.to_string())),
        }
    }
}

#[async_trait::async_trait]
impl Transport for Http {
    async fn fetch(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError> {
        self.send(request).await
    }

    fn wants_body(&self) -> bool {
        true
    }

    /// A WebSocket to the subgraph's URL (`ws://` for `http://`, `wss://` for `https://`),
    /// speaking `graphql-transport-ws`; one socket per subscription.
    async fn subscribe(&self, request: SubgraphRequest<'_>) -> Result<EventStream, TransportError> {
        let url = self.url.to_string();
        let (url, secure) = match url.strip_prefix("https://") {
            Some(rest) => (format!("wss://{rest}"), true),
            None => (format!("ws://{}", url.trim_start_matches("http://")), false),
        };
        let tls = if secure {
            let made = self.tls.get_or_init(|| crate::subscription::upstream::tls_config().map(Arc::new));
            Some(made.clone().map_err(TransportError::Unreachable)?)
        } else {
            None
        };
        let headers = self.headers(&request);
        crate::subscription::upstream::open(&url, headers, tls, request.query, request.variables).await
    }
}

/// Reaches every subgraph over HTTP, at the URL the supergraph names unless `urls` overrides it.
pub struct HttpSubgraphs {
    /// Signs the caller's identity for the subgraphs (none for subgraphs outside this platform).
    pub key: Option<IdentityKey>,
    /// `name = url` overrides (`--subgraph name=url`).
    pub urls: Vec<(String, String)>,
    /// Subgraphs spoken to in HTTP/2 with prior knowledge (`all` for every one).
    pub http2: Vec<String>,
}

impl crate::gateway::Connector for HttpSubgraphs {
    fn connect(&self, subgraph: &crate::SubgraphInfo) -> Result<Arc<dyn Transport>, String> {
        let name = &subgraph.name;
        let configured = self.urls.iter().find(|(n, _)| n == name).map(|(_, url)| url);
        let url = configured
            .or(subgraph.url.as_ref())
            .ok_or_else(|| format!("no URL in the supergraph; give --subgraph {name}=URL"))?;
        let http2 = self.http2.iter().any(|n| n == name || n == "all");
        Ok(Arc::new(Http::new(url, self.key.clone(), http2)?))
    }
}
