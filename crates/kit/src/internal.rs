//! A small JSON-over-HTTP client on hyper-util for calls between services (the router to auth,
//! subgraphs to permissions); the kit does not depend on reqwest outside tests.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::identity::IDENTITY_HEADER;

/// Why an internal call failed (transport, status, or body).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InternalError(pub String);

const MAX_BODY: usize = 1024 * 1024;

/// A JSON client with a timeout per exchange and a 1 MiB answer limit.
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Client {
    pub fn new(timeout: Duration) -> Self {
        let inner = HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
        Self { inner, timeout }
    }

    pub async fn get(&self, url: &str, identity: Option<&str>) -> Result<serde_json::Value, InternalError> {
        let mut request = http::Request::get(url);
        if let Some(identity) = identity {
            request = request.header(IDENTITY_HEADER, identity);
        }
        self.send(request.body(Full::new(Bytes::new()))).await
    }

    pub async fn post(
        &self,
        url: &str,
        identity: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, InternalError> {
        let request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(IDENTITY_HEADER, identity)
            .body(Full::new(Bytes::from(body.to_string())));
        self.send(request).await
    }

    /// The HTTP status `GET url` answers (health probes); the body is read and dropped.
    pub async fn status(&self, url: &str) -> Result<u16, InternalError> {
        let request = http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| InternalError(format!("{url}: {e}")))?;
        let exchange = async {
            let response =
                self.inner.request(request).await.map_err(|e| InternalError(format!("{url}: {e}")))?;
            let status = response.status().as_u16();
            let _ = Limited::new(response.into_body(), MAX_BODY).collect().await;
            Ok(status)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| InternalError(format!("{url} did not answer within {:?}", self.timeout)))?
    }

    async fn send(
        &self,
        request: Result<http::Request<Full<Bytes>>, http::Error>,
    ) -> Result<serde_json::Value, InternalError> {
        let mut request = request.map_err(|e| InternalError(e.to_string()))?;
        crate::traces::inject_trace_context(request.headers_mut());
        let uri = request.uri().clone();
        let exchange = async {
            let response =
                self.inner.request(request).await.map_err(|e| InternalError(format!("{uri}: {e}")))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| InternalError(format!("{uri}: {e}")))?
                .to_bytes();
            if !status.is_success() {
                return Err(InternalError(format!("{uri} answered HTTP {status}")));
            }
            serde_json::from_slice(&body).map_err(|e| InternalError(format!("{uri}: not JSON: {e}")))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| InternalError(format!("{uri} did not answer within {:?}", self.timeout)))?
    }
}
