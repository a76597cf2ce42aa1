//! Structured logs (tracing, JSON by default) and Prometheus metrics.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::filter::Targets;
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

/// Installs a subscriber that only counts SQL statements, unless one is installed already
/// (in-process tests that assert statement counts).
pub fn init_sql_counter() {
    let _ = tracing_subscriber::registry().with(sql_counter()).try_init();
}

/// Statements this process has sent to PostgreSQL (`pyairtable_sql_statements_total` on /metrics).
pub fn sql_statements() -> u64 {
    SQL_STATEMENTS.load(Ordering::Relaxed)
}

static SQL_STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Counts sqlx's per-statement events (target `sqlx::query`, logged at DEBUG when a statement
/// finishes), whatever the log filter lets through.
fn sql_counter<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    metrics();
    SqlCounter.with_filter(Targets::new().with_target("sqlx::query", tracing::Level::DEBUG))
}

struct SqlCounter;

impl<S: tracing::Subscriber> Layer<S> for SqlCounter {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        SQL_STATEMENTS.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("pyairtable_sql_statements_total").increment(1);
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
