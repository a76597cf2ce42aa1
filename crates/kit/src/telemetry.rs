//! Structured logs (tracing, JSON by default) and Prometheus metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, ConfigError, LogFormat};

/// Seconds; spans sub-millisecond in-process calls to slow subgraph fetches.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the global log subscriber. Idempotent: a second call (several apps in one test
/// process) keeps the first subscriber.
pub fn init_logging(config: &Config) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&config.log)
        .map_err(|e| ConfigError::new("PYAIRTABLE_LOG", format!("{:?}: {e}", config.log)))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Ignoring the error is right: it only says a subscriber is already installed.
    let _ = match config.log_format {
        LogFormat::Json => {
            builder.json().with_current_span(true).with_span_list(false).flatten_event(true).try_init()
        }
        LogFormat::Pretty => builder.compact().try_init(),
    };
    Ok(())
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
