//! OpenTelemetry traces: W3C trace context in and out of every process, and export over OTLP
//! (HTTP/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
//! set. Without an endpoint spans still get ids (they reach the logs and the next process) but
//! are not exported.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::{Config, ConfigError};

/// The provider of this process, kept to flush it at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Builds the tracer of this process: exporting to `config.otlp_traces_endpoint` when set.
/// Must run inside the Tokio runtime (the exporter sends from it).
pub(crate) fn tracer(config: &Config, service: &str) -> Result<SdkTracer, ConfigError> {
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(format!("pyairtable-{service}"));
    }
    let mut provider = SdkTracerProvider::builder().with_resource(resource.build());
    if let Some(endpoint) = &config.otlp_traces_endpoint {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::new("OTEL_EXPORTER_OTLP_ENDPOINT", "traces are exported from the async runtime")
        })?;
        let client = OnRuntime {
            runtime,
            client: opentelemetry_http::hyper::HyperClient::with_default_connector(EXPORT_TIMEOUT, None),
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| ConfigError::new("OTEL_EXPORTER_OTLP_ENDPOINT", e.to_string()))?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    let tracer = provider.tracer("pyairtable");
    if PROVIDER.set(provider).is_ok() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    Ok(tracer)
}

const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the spans still buffered (at exit). Blocking: the exporter thread needs the runtime,
/// so this runs on a blocking thread.
pub async fn flush() {
    let Some(provider) = PROVIDER.get() else { return };
    let provider = provider.clone();
    let flushed = tokio::task::spawn_blocking(move || provider.force_flush()).await;
    if let Ok(Err(err)) = flushed {
        tracing::warn!(%err, "exporting the last spans");
    }
}

/// Makes `span` continue the trace the caller sent in `traceparent` (W3C), if any.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(parent);
    }
}

/// Adds `traceparent` (and `tracestate`) for the current span to an outgoing request.
pub fn inject_trace_context(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// The trace id of the current span (32 hex digits), when it has one.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = tracing::Span::current().context();
    let span = context.span();
    let id = span.span_context().trace_id();
    (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_string())
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// The exporter runs on the SDK's own thread, outside Tokio, but hyper needs Tokio: each export
/// is handed to the runtime and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    runtime: tokio::runtime::Handle,
    client: opentelemetry_http::hyper::HyperClient,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime.spawn(async move { client.send_bytes(request).await }).await?
    }
}
