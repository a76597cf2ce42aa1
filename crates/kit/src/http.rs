//! HTTP pieces shared by the router and every subgraph service: health, readiness, metrics,
//! request ids, request metrics and trace context, and serving with a bounded graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use anyhow::Context;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::lifecycle::Lifecycle;

/// The request id header: accepted from the client when well-formed, generated otherwise, echoed on
/// the response and forwarded to subgraphs.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, as an axum extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A readiness check: `Ok` when the dependency answers, else a short reason.
pub type ReadyCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// `/healthz` (the process answers), `/readyz` (its dependencies answer) and `/metrics`.
pub fn ops_routes(ready: ReadyCheck) -> Router {
    // Install the recorder now: what is recorded before it exists is lost.
    crate::telemetry::metrics();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ready)
}

async fn readyz(State(ready): State<ReadyCheck>) -> Response {
    match ready().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}")).into_response(),
    }
}

async fn metrics() -> Response {
    let body = crate::telemetry::metrics().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Adds request ids, a tracing span per request (continuing the caller's W3C `traceparent`),
/// and request metrics to `app`.
pub fn instrument(app: Router, service: &'static str) -> Router {
    app.layer(middleware::from_fn_with_state(service, track))
}

async fn track(State(service): State<&'static str>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        request_id = %id,
        service,
        %method,
        %route,
        status = tracing::field::Empty,
    );
    crate::traces::continue_trace(&span, req.headers());
    let in_flight = InFlight::enter(service);
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    drop(in_flight);
    let status = response.status();
    span.record("status", status.as_u16());
    access_log(&span, status, started);
    let labels = [
        ("service", service.to_owned()),
        ("method", method),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    if status.is_server_error() {
        metrics::counter!("http_request_errors_total", &labels).increment(1);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The access log, inside the request's span (so it carries the request id and the trace id):
/// server errors at WARN, everything else at DEBUG (target `pyairtable::access`; turn it on with
/// `PYAIRTABLE_LOG=info,pyairtable::access=debug`): a line per request is too much by default.
fn access_log(span: &tracing::Span, status: StatusCode, started: Instant) {
    let _entered = span.enter();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(target: "pyairtable::access", status = status.as_u16(), duration_ms = ms, "answered");
    } else {
        tracing::debug!(target: "pyairtable::access", status = status.as_u16(), duration_ms = ms, "answered");
    }
}

/// Requests being served by this process (all services), for the shutdown's report.
static IN_FLIGHT: AtomicI64 = AtomicI64::new(0);

/// Counts a request in `http_requests_in_flight` until dropped (also when the client goes away
/// and the handler is cancelled).
struct InFlight(&'static str);

impl InFlight {
    fn enter(service: &'static str) -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("http_requests_in_flight", "service" => service).increment(1.0);
        Self(service)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("http_requests_in_flight", "service" => self.0).decrement(1.0);
    }
}

/// Accepts ids a proxy or client may reasonably send, and nothing that could break a log line.
fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'=' | b';'))
}

/// Serves `app` on `listener` until `lifecycle` stops; then stops accepting, drains in-flight
/// requests and waits for the lifecycle's background tasks, all within its grace period. An
/// error says what the grace period cut short.
pub async fn serve(listener: TcpListener, app: Router, lifecycle: &Lifecycle) -> anyhow::Result<()> {
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let stopping = lifecycle.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move { stopping.stopping().await });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        served = &mut server => return served.context("serving HTTP"),
        () = lifecycle.stopping() => {}
    }
    let deadline = tokio::time::Instant::now() + lifecycle.grace();
    let drained = match tokio::time::timeout_at(deadline, server).await {
        Ok(served) => {
            served.context("serving HTTP")?;
            true
        }
        Err(_) => false,
    };
    let finished = lifecycle.wait_for_tasks(deadline).await;
    match (drained, finished) {
        (true, true) => {
            tracing::info!("drained: every request answered, every background task finished");
            Ok(())
        }
        _ => {
            let requests = IN_FLIGHT.load(Ordering::Relaxed);
            let tasks = lifecycle.running_tasks();
            anyhow::bail!(
                "the grace period ({} s) ended with {requests} request(s) and {tasks} background task(s) \
                 still running (PYAIRTABLE_SHUTDOWN_GRACE_SECONDS)",
                lifecycle.grace().as_secs()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_request_id;

    #[test]
    fn request_ids_are_accepted_only_when_harmless() {
        assert!(is_valid_request_id("0190f3a4-7b1c-7d9e-8f00-123456789abc"));
        assert!(is_valid_request_id("Root=1-5759e988-bd862e3fe1be46a994272793"));
        for bad in ["", "a b", "x\ny", &"a".repeat(129), "{\"json\":1}"] {
            assert!(!is_valid_request_id(bad), "{bad:?}");
        }
    }
}
