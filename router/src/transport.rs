//! How the router reaches a subgraph: in process (one-process mode) or over HTTP (one service per
//! subgraph). Same planner, same executor; only this differs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
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
    pub variables: Map<String, Value>,
    pub caller: &'a Caller,
    pub request_id: &'a str,
}

/// A subgraph's answer, as JSON.
#[derive(Debug, Default)]
pub struct SubgraphResponse {
    pub data: Option<Value>,
    pub errors: Vec<Value>,
}

impl SubgraphResponse {
    fn from_json(body: Value) -> Result<Self, TransportError> {
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
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("malformed response: {0}")]
    Malformed(String),
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
        let variables = async_graphql::Variables::from_json(Value::Object(request.variables));
        let gql = async_graphql::Request::new(request.query)
            .variables(variables)
            .data(request.caller.clone())
            .data(RequestId(request.request_id.to_owned()));
        let response = self.0.execute(gql).await;
        let json = serde_json::to_value(&response).map_err(|e| TransportError::Malformed(e.to_string()))?;
        SubgraphResponse::from_json(json)
    }
}

/// Calls a subgraph over HTTP/1.1 with pooled keep-alive connections, signing the
/// caller's identity for it.
pub struct Http {
    url: http::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    key: IdentityKey,
    timeout: Duration,
}

impl Http {
    pub fn new(url: &str, key: IdentityKey, timeout: Duration) -> Result<Self, String> {
        let url: http::Uri = url.parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if url.scheme_str() != Some("http") {
            return Err(format!("{url} must be an http:// URL (TLS to subgraphs is done by the mesh)"));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(connector);
        Ok(Self { url, client, key, timeout })
    }

    async fn send(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError> {
        let body = serde_json::json!({ "query": request.query, "variables": request.variables });
        let identity = self.key.sign(request.caller, chrono::Utc::now().timestamp());
        let http_request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/graphql-response+json, application/json")
            .header(IDENTITY_HEADER, identity)
            .header(REQUEST_ID, request.request_id)
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let response = self
            .client
            .request(http_request)
            .await
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| TransportError::Unreachable(e.to_string()))?
            .to_bytes();
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
        tokio::time::timeout(self.timeout, self.send(request))
            .await
            .map_err(|_| TransportError::Timeout(self.timeout))?
    }
}
