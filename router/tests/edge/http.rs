//! CSRF prevention, GET for queries only, production defaults (introspection, suggestions,
//! GraphiQL, CORS), CORS preflights, request ids, header propagation and operation metrics.

use pyairtable_kit::config::{EdgeConfig, Environment, Origins};
use serde_json::json;

use crate::{Edge, options, read, start};

fn production() -> pyairtable_router::RouterOptions {
    let mut options = options();
    let limits = options.edge.rate_limits.clone();
    options.edge = EdgeConfig { rate_limits: limits, ..EdgeConfig::defaults(Environment::Production) };
    options
}

#[tokio::test]
async fn requests_a_browser_sends_without_preflight_are_refused() {
    let edge = start(options()).await;
    let reply = edge.get(&[("query", "{ tags }")], &[]).await;
    assert_eq!((reply.status, reply.code()), (400, "CSRF_PREVENTED"), "{}", reply.body);
    assert!(reply.body["errors"][0]["message"].as_str().unwrap_or("").contains("apollo-require-preflight"));
    for header in [
        ("apollo-require-preflight", "true"),
        ("x-apollo-operation-name", "Tags"),
        ("content-type", "application/json"),
    ] {
        let reply = edge.get(&[("query", "{ tags }")], &[header]).await;
        assert_eq!(reply.body, json!({ "data": { "tags": ["a", "b"] } }), "{header:?}");
    }
    let simple = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"];
    for content_type in simple {
        let response = reqwest::Client::new()
            .post(edge.url())
            .header("content-type", content_type)
            .body(r#"{"query":"mutation { rename(name: \"pwned\") { id } }"}"#)
            .send()
            .await
            .expect("answers");
        let reply = read(response).await;
        assert_eq!((reply.status, reply.code()), (400, "CSRF_PREVENTED"), "{content_type}");
    }
    let no_type =
        read(reqwest::Client::new().post(edge.url()).body("{}").send().await.expect("answers")).await;
    assert_eq!(no_type.code(), "CSRF_PREVENTED");
    let preflighted = reqwest::Client::new()
        .post(edge.url())
        .header("content-type", "text/plain")
        .header("apollo-require-preflight", "1")
        .body("{}");
    assert_eq!(
        read(preflighted.send().await.expect("answers")).await.status,
        415,
        "then only JSON is accepted"
    );
    assert!(edge.subgraph.headers.lock().expect("lock").len() == 3, "only the three preflighted GETs ran");
    let mut off = options();
    off.edge.csrf_prevention = false;
    assert_eq!(start(off).await.get(&[("query", "{ tags }")], &[]).await.status, 200);
}

#[tokio::test]
async fn get_serves_queries_only_and_persisted_parameters() {
    let edge = start(options()).await;
    let preflight = [("apollo-require-preflight", "true")];
    let reply = edge.get(&[("query", "mutation { rename(name: \"x\") { id } }")], &preflight).await;
    assert_eq!((reply.status, reply.header("allow")), (405, "POST"));
    let reply = edge
        .get(
            &[("query", "query Q($id: ID!) { user(id: $id) { name } }"), ("variables", r#"{"id":"u1"}"#)],
            &preflight,
        )
        .await;
    assert_eq!(reply.body, json!({ "data": { "user": { "name": "Ada" } } }));
}

#[tokio::test]
async fn production_hides_the_schema() {
    let edge = start(production()).await;
    let reply = edge.query("{ __schema { types { name } } }", &[]).await;
    assert_eq!(reply.code(), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(reply.body["errors"][0]["message"], "introspection is disabled");
    let reply = edge.query("{ me { nmae } }", &[]).await;
    assert_eq!(reply.body["errors"][0]["message"], "Cannot query field \"nmae\" on type \"User\".");
    let page = reqwest::Client::new()
        .get(format!("{}/", edge.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), 404, "no GraphiQL in production");
    let preflight = cors_preflight(&edge, "http://localhost:3000").await;
    assert!(
        preflight.headers().get("access-control-allow-origin").is_none(),
        "no cross-origin caller in production"
    );

    let dev = start(options()).await;
    let reply = dev.query("{ me { nmae } }", &[]).await;
    assert_eq!(
        reply.body["errors"][0]["message"],
        "Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?"
    );
    let reply = dev.query("{ users(frist: 2) { id } }", &[]).await;
    assert!(
        reply.body["errors"][0]["message"].as_str().unwrap_or("").ends_with("Did you mean \"first\"?"),
        "{}",
        reply.body
    );
    assert!(dev.query("{ __schema { queryType { name } } }", &[]).await.body["data"].is_object());
}

async fn cors_preflight(edge: &Edge, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, edge.url())
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, authorization")
        .send()
        .await
        .expect("answers")
}

#[tokio::test]
async fn cors_allows_localhost_in_development_and_the_configured_origins_otherwise() {
    let dev = start(options()).await;
    let preflight = cors_preflight(&dev, "http://localhost:5173").await;
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://localhost:5173");
    assert!(headers["access-control-allow-headers"].to_str().unwrap_or("").contains("authorization"));
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(headers.get("x-request-id").is_some(), "preflights carry a request id too");
    assert!(
        cors_preflight(&dev, "https://evil.example")
            .await
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let mut options = production();
    options.edge.cors.origins = Origins::List(vec!["https://app.example.com".into()]);
    options.edge.cors.credentials = true;
    let prod = start(options).await;
    let preflight = cors_preflight(&prod, "https://app.example.com").await;
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(preflight.headers()["access-control-allow-credentials"], "true");
    assert!(
        cors_preflight(&prod, "http://localhost:3000")
            .await
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let reply = prod.query("{ tags }", &[("origin", "https://app.example.com")]).await;
    assert_eq!(reply.header("access-control-allow-origin"), "https://app.example.com");
    assert!(reply.header("access-control-expose-headers").contains("x-request-id"));
}

#[tokio::test]
async fn every_response_carries_the_request_id_and_errors_name_it() {
    let edge = start(options()).await;
    let reply = edge.query("{ nope }", &[("x-request-id", "trace-me-123")]).await;
    assert_eq!(reply.header("x-request-id"), "trace-me-123");
    assert_eq!(reply.body["errors"][0]["extensions"]["requestId"], "trace-me-123");
    let reply = edge.get(&[("query", "{ tags }")], &[]).await;
    let id = reply.header("x-request-id");
    assert!(!id.is_empty() && reply.body["errors"][0]["extensions"]["requestId"] == id, "{}", reply.body);
    let batch = edge.post(json!([{ "query": "{ nope }" }]), &[("x-request-id", "batch-1")]).await;
    assert_eq!(batch.body[0]["errors"][0]["extensions"]["requestId"], "batch-1");
    let ok = edge.query("{ tags }", &[]).await;
    assert!(!ok.header("x-request-id").is_empty());
}

#[tokio::test]
async fn only_the_listed_client_headers_reach_subgraphs() {
    let edge = start(options()).await;
    let headers = [
        ("accept-language", "fr-CH"),
        ("authorization", "Bearer pat_alice"),
        ("cookie", "session=secret"),
        ("x-secret", "no"),
        ("x-request-id", "propagated-id"),
    ];
    assert_eq!(edge.query("{ me { id } }", &headers).await.status, 200);
    let seen = edge.subgraph.headers.lock().expect("lock")[0].clone();
    assert_eq!(seen["accept-language"], "fr-CH");
    assert_eq!(seen["x-request-id"], "propagated-id");
    for never in ["authorization", "cookie", "x-secret"] {
        assert!(seen.get(never).is_none(), "{never} must not be forwarded");
    }
    let mut options = options();
    options.edge.propagate_headers = vec!["x-tenant-hint".into()];
    let edge = start(options).await;
    edge.query("{ me { id } }", &[("x-tenant-hint", "acme"), ("accept-language", "de")]).await;
    let seen = edge.subgraph.headers.lock().expect("lock")[0].clone();
    assert_eq!(seen["x-tenant-hint"], "acme");
    assert!(seen.get("accept-language").is_none());
}

#[tokio::test]
async fn operations_are_counted_by_name_outcome_and_refusal_reason() {
    let mut options = options();
    options.edge.limits.max_depth = 2;
    let edge = start(options).await;
    edge.query("query EdgeMetricsProbe { tags }", &[]).await;
    edge.query("query EdgeMetricsDeep { me { friends { id } } }", &[]).await;
    edge.get(&[("query", "{ tags }")], &[]).await;
    let metrics =
        reqwest::get(format!("{}/metrics", edge.base)).await.expect("metrics").text().await.expect("text");
    let line = |needle: &str| {
        metrics.lines().any(|l| l.starts_with("router_operations_total") && l.contains(needle))
    };
    assert!(line("operation=\"EdgeMetricsProbe\"") && line("outcome=\"ok\""), "{metrics}");
    assert!(metrics.contains("router_operation_duration_seconds_bucket{operation=\"EdgeMetricsProbe\""));
    assert!(metrics.contains("router_refusals_total{reason=\"depth\"}"), "{metrics}");
    assert!(metrics.contains("router_refusals_total{reason=\"csrf\"}"), "{metrics}");
}
