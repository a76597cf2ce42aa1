//! Traces across processes: the router continues the client's W3C trace, sends it to the subgraph,
//! both log the trace id on their lines, and both export their spans over OTLP/HTTP to a real
//! receiver (an HTTP server in this test that decodes the protobuf export requests).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::Process;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use pyairtable_kit::testing::{TEST_INTERNAL_SECRET, test_database};
use serde_json::Value;

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

type Spans = Arc<Mutex<Vec<Received>>>;

async fn export(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let mut spans = spans.lock().expect("spans");
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            spans.push(Received {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
            });
        }
    }
    ""
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON log lines of `stderr` that answered a request on `route`.
fn answered(stderr: &str, route: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "answered" && l["span"]["route"] == route)
        .collect()
}

#[tokio::test]
async fn the_routers_trace_reaches_the_subgraph_its_logs_and_the_collector() {
    let spans: Spans = Arc::default();
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", collector.local_addr().expect("addr"));
    let app = axum::Router::new().route("/v1/traces", post(export)).with_state(spans.clone());
    tokio::spawn(async move { axum::serve(collector, app).await });

    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut env = HashMap::from([
        ("DATABASE_URL".to_owned(), db.url().to_owned()),
        ("PYAIRTABLE_DATA_DIR".to_owned(), data_dir.path().display().to_string()),
        ("PYAIRTABLE_INTERNAL_SECRET".to_owned(), TEST_INTERNAL_SECRET.to_owned()),
        ("PYAIRTABLE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("PYAIRTABLE_LOG".to_owned(), "info,pyairtable::access=debug".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
    ]);
    let users = Process::start(&["subgraph", "users"], &env, data_dir.path()).await;
    env.insert("PYAIRTABLE_SUBGRAPHS".into(), format!("users={}/graphql", users.base_url));
    let router = Process::start(&["router"], &env, data_dir.path()).await;

    let (trace_id, client_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", router.base_url))
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&serde_json::json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("the router answers");
    assert_eq!(response.status(), 200);

    let (router_log, users_log) = (router.stop_and_read().await, users.stop_and_read().await);
    let router_lines = answered(&router_log, "/graphql");
    assert_eq!(router_lines.len(), 1, "{router_log}");
    // The subgraph also answered the router's start-up SDL fetch: keep the lines of this request.
    let request_id = &router_lines[0]["span"]["request_id"];
    let users_lines: Vec<Value> = answered(&users_log, "/graphql")
        .into_iter()
        .filter(|l| &l["span"]["request_id"] == request_id)
        .collect();
    assert!(!users_lines.is_empty(), "{users_log}");
    for line in router_lines.iter().chain(&users_lines) {
        assert_eq!(line["trace_id"], trace_id, "every line of the request carries the trace id: {line}");
    }

    let spans = spans.lock().expect("spans").clone();
    let in_trace: Vec<&Received> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let router_span = in_trace
        .iter()
        .find(|s| s.service == "pyairtable-router" && s.name == "POST /graphql")
        .unwrap_or_else(|| panic!("the router's span reached the collector: {spans:#?}"));
    assert_eq!(router_span.parent_span_id, client_span, "the router continues the client's span");
    let users_span = in_trace
        .iter()
        .find(|s| s.service == "pyairtable-users" && s.name == "POST /graphql")
        .unwrap_or_else(|| panic!("the subgraph's span reached the collector: {spans:#?}"));
    assert_eq!(users_span.parent_span_id, router_span.span_id, "the subgraph's span is the router's child");
    assert_eq!(users_lines[0]["span_id"], users_span.span_id, "the log line names the exported span");
}
