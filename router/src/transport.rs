//! How the router reaches a subgraph: in process (one-process mode) or over HTTP (one service per
//! subgraph). Same planner, same executor; only this differs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pyairtable_kit::http::{REQUEST_ID, RequestId};
use pyairtable_kit::identity::IDENTITY_HEADER;
use pyairtable_kit::{Caller, IdentityKey, SubgraphService};
use serde_json::{Map, Value};

/// The largest subgraph response body the router reads.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// One request to a subgraph.
pub struct SubgraphRequest<'a> {
    pub query: &'a str,
    pub variables: &'a Map<String, Value>,
    pub caller: &'a Caller,
    pub request_id: &'a str,
}

/// A subgraph's answer, as JSON.
#[derive(Debug, Default, Clone)]
pub struct SubgraphResponse {
    pub data: Option<Value>,
    pub errors: Vec<Value>,
}

impl SubgraphResponse {
    /// Reads a GraphQL response body.
    pub fn from_json(body: Value) -> Result<Self, TransportError> {
        let Value::Object(mut body) = body else {
            return Err(TransportError::Malformed("the response is not a JSON object".into()));
        };
        let data = body.remove("data").filter(|d| !d.is_null());
        let errors = match body.remove("errors") {
            Some(Value::Array(errors)) => errors,
            Some(Value::Null) | None => Vec::new(),
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
        }
    }

    /// Whether asking again may help: the subgraph could not be reached or failed on its side.
    /// A timeout is not retried (it would multiply the client's wait), nor a malformed answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Status(status) => *status >= 500,
            Self::Timeout(_) | Self::Malformed(_) | Self::CircuitOpen => false,
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
        }
    }
}

/// A way to send a GraphQL request to one subgraph.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn fetch(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError>;
}

/// Calls a subgraph schema in this process.
pub struct InProcess(pub Arc<dyn SubgraphService>);

#[async_trait::async_trait]
impl Transport for InProcess {
    async fn fetch(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError> {
        let variables = async_graphql::Variables::from_json(Value::Object(request.variables.clone()));
        let gql = async_graphql::Request::new(request.query)
            .variables(variables)
            .data(request.caller.clone())
            .data(RequestId(request.request_id.to_owned()));
        let response = self.0.execute(gql).await;
        let json = serde_json::to_value(&response).map_err(|e| TransportError::Malformed(e.to_string()))?;
        SubgraphResponse::from_json(json)
    }
}

/// Calls a subgraph over HTTP with pooled keep-alive connections: HTTP/1.1, or HTTP/2 when
/// asked (`h2c` with prior knowledge on `http://`) or when a TLS server offers it by ALPN
/// (`https://`). With an identity key it signs the caller's identity for the subgraph.
pub struct Http {
    url: http::Uri,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    key: Option<IdentityKey>,
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
        Ok(Self { url, client, key })
    }

    async fn send(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError> {
        let body = serde_json::json!({ "query": request.query, "variables": request.variables });
        let mut builder = http::Request::post(self.url.clone());
        for (name, value) in crate::headers::current().iter() {
            builder = builder.header(name, value);
        }
        builder = builder
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/graphql-response+json, application/json")
            .header(REQUEST_ID, request.request_id);
        if let Some(key) = &self.key {
            builder =
                builder.header(IDENTITY_HEADER, key.sign(request.caller, chrono::Utc::now().timestamp()));
        }
        let mut http_request = builder
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        pyairtable_kit::traces::inject_trace_context(http_request.headers_mut());
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
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(json) => SubgraphResponse::from_json(json)
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
