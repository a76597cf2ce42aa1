//! Structured logs (tracing, JSON by default, with the trace id on every line), traces (see
//! [`crate::traces`]) and Prometheus metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, ConfigError, LogFormat};

/// Seconds; spans sub-millisecond in-process calls to slow subgraph fetches.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the global log subscriber and the tracer of this process (`service`: its role, e.g.
/// `router` or `auth`, in the default OpenTelemetry service name). Idempotent: a second call
/// (several apps in one test process) keeps the first subscriber.
pub fn init(config: &Config, service: &str) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&config.log)
        .map_err(|e| ConfigError::new("PYAIRTABLE_LOG", format!("{:?}: {e}", config.log)))?;
    let tracer = crate::traces::tracer(config, service)?;
    // Spans at INFO and above become OpenTelemetry spans, whatever the log filter shows.
    let otel = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(LevelFilter::INFO);
    let logs = match config.log_format {
        LogFormat::Json => json_logs().boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).compact().boxed(),
    };
    metrics();
    metrics::gauge!("pyairtable_build_info", "version" => env!("CARGO_PKG_VERSION"), "service" => service.to_owned())
        .set(1.0);
    // Ignoring the error is right: it only says a subscriber is already installed.
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(logs.with_filter(filter))
        .with(sql_counter())
        .try_init();
    Ok(())
}

/// One JSON object per line on stderr: timestamp, level, target, the event's fields, the current
/// span's fields under `span`, and `trace_id` / `span_id` (W3C, hex) when in a trace.
fn json_logs<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let mut layer = json_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true);
    let inner = layer.inner_layer_mut();
    inner.add_dynamic_field("trace_id", |event, ctx| otel_ids(ctx.event_span(event)?.id()).map(|ids| ids.0));
    inner.add_dynamic_field("span_id", |event, ctx| otel_ids(ctx.event_span(event)?.id()).map(|ids| ids.1));
    layer
}

/// The OpenTelemetry (trace id, span id) of a tracing span, when it has valid ones.
fn otel_ids(span: tracing::span::Id) -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let context = tracing_opentelemetry::get_otel_context(&span, &dispatch)?;
    let otel_span = context.span();
    let ids = otel_span.span_context();
    ids.is_valid().then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// Counts sqlx's per-statement events (target `sqlx::query`, logged at DEBUG when a statement
/// finishes), whatever the log filter lets through, by context: inside a request's span (see
/// `http::instrument`; DataLoader batches inherit it) or in the background.
fn sql_counter<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    metrics();
    // The layer sees sqlx's statement events, and request spans (with per-layer filtering, a
    // layer's span lookups skip the spans its filter disables).
    SqlCounter.with_filter(filter_fn(|meta| {
        if meta.is_span() { meta.name() == "request" } else { meta.target() == "sqlx::query" }
    }))
}

struct SqlCounter;

impl<S> Layer<S> for SqlCounter
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let in_request =
            ctx.event_scope(event).is_some_and(|mut scope| scope.any(|span| span.name() == "request"));
        let context = if in_request { "request" } else { "background" };
        metrics::counter!("pyairtable_sql_statements_total", "context" => context).increment(1);
    }
}

/// The process-wide Prometheus recorder; installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("the bucket list is a non-empty constant");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then ours still renders what it has.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
