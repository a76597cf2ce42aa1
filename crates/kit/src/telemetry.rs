//! Structured logs (tracing, JSON by default) and Prometheus metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, ConfigError, LogFormat};

/// Seconds; spans sub-millisecond in-process calls to slow subgraph fetches.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the global log subscriber. Idempotent: a second call (several apps in one test
/// process) keeps the first subscriber.
pub fn init_logging(config: &Config) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&config.log)
        .map_err(|e| ConfigError::new("PYAIRTABLE_LOG", format!("{:?}: {e}", config.log)))?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match config.log_format {
        LogFormat::Json => {
            fmt.json().with_current_span(true).with_span_list(false).flatten_event(true).boxed()
        }
        LogFormat::Pretty => fmt.compact().boxed(),
    };
    // Ignoring the error is right: it only says a subscriber is already installed.
    let _ = tracing_subscriber::registry().with(fmt.with_filter(filter)).with(sql_counter()).try_init();
    Ok(())
}

/// Counts sqlx's per-statement events (target `sqlx::query`, logged at DEBUG when a statement
/// finishes), whatever the log filter lets through, by context: inside a request's span (see
/// `http::instrument`; DataLoader batches inherit it) or in the background.
fn sql_counter<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
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
