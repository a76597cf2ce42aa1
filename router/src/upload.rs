//! File uploads in the GraphQL multipart request spec pass through the router to the subgraph
//! that takes files, their bodies streaming (never buffered here): the router requires the CSRF
//! preflight header, authenticates the caller and charges the admission budgets (per IP, caller
//! and tenant) like any request, and forwards in process or over HTTP with the signed identity. The operation runs on that subgraph alone, so it may select that subgraph's
//! fields only (the file's own fields; query anything else afterwards).
//!
//! Kept apart from the JSON pipeline on purpose: [`with_uploads`] intercepts
//! `POST /graphql` with a `multipart/form-data` body and lets everything else through.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pyairtable_kit::http::{REQUEST_ID, RequestId, instrument};
use pyairtable_kit::identity::IDENTITY_HEADER;
use pyairtable_kit::subgraph::{MultipartRequest, is_multipart};
use pyairtable_kit::{Caller, IdentityKey, SubgraphService};
use tower::ServiceExt;

use crate::http::Peer;
use crate::pipeline::Pipeline;

/// Headers a browser cannot send cross-origin without a CORS preflight.
const PREFLIGHT_HEADERS: [&str; 2] = ["apollo-require-preflight", "x-apollo-operation-name"];
/// Headers of the client's request the subgraph gets.
const FORWARDED: [header::HeaderName; 2] = [header::CONTENT_TYPE, header::CONTENT_LENGTH];

/// Where multipart requests go.
pub enum UploadTarget {
    /// The subgraph in this process (one-process mode).
    InProcess(Arc<dyn SubgraphService>),
    /// The subgraph's service (`http://files:4000/graphql`).
    Http(Box<HttpTarget>),
}

/// A subgraph service reached over HTTP, the body streamed through.
pub struct HttpTarget {
    url: http::Uri,
    key: IdentityKey,
    timeout: Duration,
    client: Client<HttpConnector, Body>,
}

impl HttpTarget {
    pub fn new(url: &str, key: IdentityKey, timeout: Duration) -> Result<Self, String> {
        let url: http::Uri = url.parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Ok(Self { url, key, timeout, client })
    }

    async fn forward(&self, caller: &Caller, request_id: &str, headers: &HeaderMap, body: Body) -> Response {
        let mut request = http::Request::post(self.url.clone())
            .header(IDENTITY_HEADER, self.key.sign(caller, chrono::Utc::now().timestamp()))
            .header(REQUEST_ID, request_id);
        for (name, value) in headers.iter().filter(|(n, _)| FORWARDED.contains(n) || is_preflight(n.as_str()))
        {
            request = request.header(name, value);
        }
        let Ok(request) = request.body(body) else {
            return refuse(StatusCode::BAD_REQUEST, "BAD_REQUEST", "the request cannot be forwarded");
        };
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Ok(Ok(response)) => response.map(Body::new).into_response(),
            Ok(Err(err)) => {
                tracing::warn!(%err, "forwarding an upload");
                refuse(
                    StatusCode::BAD_GATEWAY,
                    "SUBGRAPH_REQUEST_FAILED",
                    "the files service could not be reached",
                )
            }
            Err(_) => refuse(
                StatusCode::GATEWAY_TIMEOUT,
                "SUBGRAPH_REQUEST_FAILED",
                "the files service did not answer in time",
            ),
        }
    }
}

struct Uploads {
    target: UploadTarget,
    pipeline: Arc<Pipeline>,
}

/// `app` with multipart `POST /graphql` requests sent to `target` (answered with the same CORS
/// headers as the rest of `/graphql`).
pub(crate) fn with_uploads(app: axum::Router, target: UploadTarget, pipeline: Arc<Pipeline>) -> axum::Router {
    let cors = crate::cors::layer(&pipeline.options().edge.cors);
    let uploads = Arc::new(Uploads { target, pipeline });
    let routes = axum::Router::new().route("/graphql", post(forward)).with_state(uploads);
    let handler = instrument(routes.layer(cors), "router");
    app.layer(middleware::from_fn_with_state(handler, intercept))
}

async fn intercept(State(handler): State<axum::Router>, request: Request, next: Next) -> Response {
    let upload = request.method() == http::Method::POST
        && request.uri().path() == "/graphql"
        && is_multipart(request.headers());
    if !upload {
        return next.run(request).await;
    }
    match handler.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn forward(
    State(uploads): State<Arc<Uploads>>,
    Extension(request_id): Extension<RequestId>,
    peer: Peer,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if !PREFLIGHT_HEADERS.iter().any(|name| parts.headers.get(*name).is_some_and(|v| !v.is_empty())) {
        let message = "multipart requests need an `apollo-require-preflight: true` header (CSRF prevention)";
        return refuse(StatusCode::BAD_REQUEST, "CSRF_PREVENTED", message);
    }
    let caller = match crate::http::admit(&uploads.pipeline, &request_id.0, (&peer, &parts.headers)).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    match &uploads.target {
        UploadTarget::InProcess(service) => {
            let request = MultipartRequest { caller, request_id, headers: parts.headers, body };
            service.execute_multipart(request).await
        }
        UploadTarget::Http(target) => target.forward(&caller, &request_id.0, &parts.headers, body).await,
    }
}

fn is_preflight(name: &str) -> bool {
    PREFLIGHT_HEADERS.contains(&name)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })))
        .into_response()
}
