//! Subgraph fetches under failure and load, over real HTTP: retries of flaky queries (never of
//! mutations), per-subgraph timeouts, circuit breaking, partial results with error paths,
//! concurrent fetches, deduplication of identical in-flight fetches (never across callers),
//! keep-alive and HTTP/2, and the fetch metrics. Each test names its subgraphs uniquely, so that
//! the process-wide metrics it reads are its own.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, Version};
use pyairtable_kit::Caller;
use pyairtable_kit::authority::{Authority, AuthorityError, TokenAudience};
use pyairtable_router::{Authenticator, RouterOptions, SubgraphPolicy};
use serde_json::{Value, json};
use support::fixture::{Behaviour, Served, eventually, healthy, metric, post, router, serve, supergraph};
use tokio::sync::{Barrier, Semaphore};

const PRODUCTS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Query { products: [Product!]! }
type Mutation { touch: Boolean }
type Product @key(fields: "upc") { upc: ID! name: String! }
"#;

const INVENTORY: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Product @key(fields: "upc") { upc: ID! stock: Int }
"#;

const REVIEWS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Product @key(fields: "upc") { upc: ID! rating: Int }
"#;

fn products_data() -> Value {
    json!({
        "Query": { "products": [{ "upc": "1", "name": "Table" }, { "upc": "2", "name": "Couch" }] },
        "Mutation": { "touch": true },
    })
}

fn inventory_data() -> Value {
    json!({ "entities": { "Product": [{ "upc": "1", "stock": 3 }, { "upc": "2", "stock": 0 }] } })
}

fn reviews_data() -> Value {
    json!({ "entities": { "Product": [{ "upc": "1", "rating": 5 }, { "upc": "2", "rating": 4 }] } })
}

/// Fails with `status` for the first `times` requests, then answers.
fn failing(times: usize, status: StatusCode) -> Behaviour {
    Arc::new(move |n| Box::pin(async move { (n < times).then_some(status) }))
}

fn policy(retries: u32, breaker_failures: u32, breaker_cooldown: Duration) -> RouterOptions {
    let subgraphs = SubgraphPolicy {
        retries,
        retry_backoff: Duration::from_millis(1),
        breaker_failures,
        breaker_cooldown,
        ..SubgraphPolicy::default()
    };
    RouterOptions { subgraphs, ..RouterOptions::default() }
}

/// Products (healthy) and an inventory with `behaviour`, under unique names.
async fn products_and_inventory(
    prefix: &str,
    behaviour: Behaviour,
    options: RouterOptions,
) -> (pyairtable_kit::testing::TestServer, Served, Served) {
    let (p, i) = (format!("{prefix}-products"), format!("{prefix}-inventory"));
    let sdl = supergraph(&[(&p, PRODUCTS), (&i, INVENTORY)]);
    let products = serve(&p, PRODUCTS, products_data(), healthy()).await;
    let inventory = serve(&i, INVENTORY, inventory_data(), behaviour).await;
    let (server, _) = router(&sdl, &[(&p, &products), (&i, &inventory)], options, &[], None).await;
    (server, products, inventory)
}

const STOCK: &str = "{ products { name stock } }";

fn full_stock() -> Value {
    json!({ "products": [{ "name": "Table", "stock": 3 }, { "name": "Couch", "stock": 0 }] })
}

fn partial_stock() -> Value {
    json!({ "products": [{ "name": "Table", "stock": null }, { "name": "Couch", "stock": null }] })
}

/// Fetch attempts of `subgraph` that ended with `outcome`, from the router's metrics.
async fn fetches(server: &pyairtable_kit::testing::TestServer, subgraph: &str, outcome: &str) -> f64 {
    let (subgraph, outcome) = (format!("subgraph=\"{subgraph}\""), format!("outcome=\"{outcome}\""));
    metric(server, "router_subgraph_fetches_total", &[&subgraph, &outcome]).await
}

/// The one error of a response, checked for the failed-fetch shape.
fn fetch_error(response: &Value, subgraph: &str) -> String {
    let errors = response["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{response}");
    assert_eq!(errors[0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED", "{response}");
    assert_eq!(errors[0]["extensions"]["serviceName"], subgraph, "{response}");
    assert_eq!(errors[0]["path"], json!(["products", 0]), "{response}");
    errors[0]["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_flaky_subgraph_is_retried_and_every_attempt_is_measured() {
    let options = policy(2, 0, Duration::from_secs(1));
    let (server, _, inventory) =
        products_and_inventory("flaky", failing(2, StatusCode::SERVICE_UNAVAILABLE), options).await;
    let response = post(&server, STOCK, None).await;
    assert_eq!(response, json!({ "data": full_stock() }), "two 503s, then an answer");
    assert_eq!(inventory.hits(), 3);
    let subgraph = "subgraph=\"flaky-inventory\"";
    assert_eq!(fetches(&server, "flaky-inventory", "http_error").await, 2.0);
    assert_eq!(fetches(&server, "flaky-inventory", "ok").await, 1.0);
    assert_eq!(metric(&server, "router_subgraph_fetch_retries_total", &[subgraph]).await, 2.0);
    let latency = "router_subgraph_fetch_duration_seconds_count";
    assert_eq!(metric(&server, latency, &[subgraph, "outcome=\"ok\""]).await, 1.0, "a latency histogram");
}

#[tokio::test]
async fn retries_are_bounded_and_the_failure_keeps_the_rest_of_the_data() {
    let options = policy(2, 0, Duration::from_secs(1));
    let (server, _, inventory) =
        products_and_inventory("bounded", failing(usize::MAX, StatusCode::BAD_GATEWAY), options).await;
    let response = post(&server, STOCK, None).await;
    assert_eq!(response["data"], partial_stock());
    let message = fetch_error(&response, "bounded-inventory");
    assert!(message.contains("HTTP 502"), "{message}");
    assert_eq!(inventory.hits(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn mutations_are_never_retried() {
    let name = "mutating-products";
    let sdl = supergraph(&[(name, PRODUCTS)]);
    let products = serve(name, PRODUCTS, products_data(), failing(1, StatusCode::SERVICE_UNAVAILABLE)).await;
    let (server, _) =
        router(&sdl, &[(name, &products)], policy(3, 0, Duration::from_secs(1)), &[], None).await;
    let response = post(&server, "mutation { touch }", None).await;
    assert_eq!(response["data"], json!({ "touch": null }), "{response}");
    assert_eq!(response["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED");
    assert_eq!(products.hits(), 1, "a mutation may have had effects: it is not sent twice");
    let response = post(&server, "{ products { name } }", None).await;
    assert!(response.get("errors").is_none(), "a query is fine: {response}");
}

#[tokio::test]
async fn a_slow_subgraph_times_out_on_its_own_deadline() {
    let never: Behaviour = Arc::new(|_| Box::pin(std::future::pending()));
    let mut options = policy(2, 0, Duration::from_secs(1));
    options.subgraphs.timeouts.insert("slow-inventory".into(), Duration::from_millis(300));
    let (server, _, inventory) = products_and_inventory("slow", never, options).await;
    let response = post(&server, STOCK, None).await;
    assert_eq!(response["data"], partial_stock(), "products (30 s timeout) still answer");
    let message = fetch_error(&response, "slow-inventory");
    assert!(message.contains("did not answer within 300 ms"), "{message}");
    assert_eq!(inventory.hits(), 1, "a timeout is not retried");
    assert_eq!(fetches(&server, "slow-inventory", "timeout").await, 1.0);
}

#[tokio::test]
async fn an_unreachable_subgraph_is_retried_then_reported() {
    let (p, i) = ("dead-products", "dead-inventory");
    let sdl = supergraph(&[(p, PRODUCTS), (i, INVENTORY)]);
    let products = serve(p, PRODUCTS, products_data(), healthy()).await;
    let closed = support::closed_port();
    let mut dead = serve(i, INVENTORY, inventory_data(), healthy()).await;
    dead.url = closed.url.clone();
    let (server, _) =
        router(&sdl, &[(p, &products), (i, &dead)], policy(1, 0, Duration::from_secs(1)), &[], None).await;
    let response = post(&server, STOCK, None).await;
    assert_eq!(response["data"], partial_stock());
    assert!(fetch_error(&response, i).contains("could not be reached"), "{response}");
    assert_eq!(fetches(&server, i, "unreachable").await, 2.0, "one attempt and one retry");
}

#[tokio::test]
async fn an_open_circuit_refuses_fetches_without_asking_the_subgraph() {
    let options = policy(0, 2, Duration::from_secs(3600));
    let (server, _, inventory) =
        products_and_inventory("broken", failing(usize::MAX, StatusCode::INTERNAL_SERVER_ERROR), options)
            .await;
    for _ in 0..2 {
        let response = post(&server, STOCK, None).await;
        assert!(fetch_error(&response, "broken-inventory").contains("HTTP 500"), "{response}");
    }
    assert_eq!(metric(&server, "router_subgraph_circuit_open", &["broken-inventory"]).await, 1.0);
    let response = post(&server, STOCK, None).await;
    assert_eq!(response["data"], partial_stock(), "partial results while the circuit is open");
    assert!(fetch_error(&response, "broken-inventory").contains("paused"), "{response}");
    assert_eq!(inventory.hits(), 2, "the third request never reached the subgraph");
    assert_eq!(fetches(&server, "broken-inventory", "circuit_open").await, 1.0);
}

#[tokio::test]
async fn after_the_cooldown_one_probe_decides() {
    // No cooldown: the request after a failure is the half-open probe.
    let options = policy(0, 1, Duration::ZERO);
    let (server, _, inventory) =
        products_and_inventory("probed", failing(2, StatusCode::INTERNAL_SERVER_ERROR), options).await;
    post(&server, STOCK, None).await;
    let response = post(&server, STOCK, None).await;
    assert!(fetch_error(&response, "probed-inventory").contains("HTTP 500"), "the probe failed: {response}");
    let response = post(&server, STOCK, None).await;
    assert_eq!(response, json!({ "data": full_stock() }), "the next probe succeeds and closes the circuit");
    assert_eq!(inventory.hits(), 3);
    assert_eq!(metric(&server, "router_subgraph_circuit_open", &["probed-inventory"]).await, 0.0);
}

/// Waits for the other subgraph's request (so both are in flight at once) or fails after 10 s.
fn meet(barrier: Arc<Barrier>) -> Behaviour {
    Arc::new(move |_| {
        let barrier = barrier.clone();
        Box::pin(async move {
            let met = tokio::time::timeout(Duration::from_secs(10), barrier.wait()).await;
            met.is_err().then_some(StatusCode::GATEWAY_TIMEOUT)
        })
    })
}

#[tokio::test]
async fn independent_fetches_run_at_the_same_time() {
    let (p, i, r) = ("parallel-products", "parallel-inventory", "parallel-reviews");
    let sdl = supergraph(&[(p, PRODUCTS), (i, INVENTORY), (r, REVIEWS)]);
    let barrier = Arc::new(Barrier::new(2));
    let products = serve(p, PRODUCTS, products_data(), healthy()).await;
    let inventory = serve(i, INVENTORY, inventory_data(), meet(barrier.clone())).await;
    let reviews = serve(r, REVIEWS, reviews_data(), meet(barrier)).await;
    let served = [(p, &products), (i, &inventory), (r, &reviews)];
    let (server, _) = router(&sdl, &served, RouterOptions::default(), &[], None).await;
    // Each entity fetch only answers once the other has arrived: run one after the other, they
    // would time out.
    let response = post(&server, "{ products { stock rating } }", None).await;
    let expected = json!({ "products": [{ "stock": 3, "rating": 5 }, { "stock": 0, "rating": 4 }] });
    assert_eq!(response, json!({ "data": expected }));
}

/// Holds every request until the test adds permits.
fn gate(permits: Arc<Semaphore>) -> Behaviour {
    Arc::new(move |_| {
        let permits = permits.clone();
        Box::pin(async move {
            let _ = permits.acquire().await.map(tokio::sync::SemaphorePermit::forget);
            None
        })
    })
}

/// A router over one products subgraph that holds every request until released.
async fn gated_products(
    name: &str,
    authenticator: Option<Arc<Authenticator>>,
) -> (Arc<pyairtable_kit::testing::TestServer>, Served, Arc<Semaphore>) {
    let sdl = supergraph(&[(name, PRODUCTS)]);
    let release = Arc::new(Semaphore::new(0));
    let products = serve(name, PRODUCTS, products_data(), gate(release.clone())).await;
    let (server, _) = router(&sdl, &[(name, &products)], RouterOptions::default(), &[], authenticator).await;
    (Arc::new(server), products, release)
}

#[tokio::test]
async fn identical_in_flight_queries_of_one_caller_share_one_fetch() {
    let name = "shared-products";
    let (server, products, release) = gated_products(name, None).await;
    let query = "{ products { name } }";
    let first = tokio::spawn({
        let server = server.clone();
        async move { post(&server, query, None).await }
    });
    assert!(eventually(|| Box::pin(std::future::ready(products.hits() == 1))).await);
    let second = tokio::spawn({
        let server = server.clone();
        async move { post(&server, query, None).await }
    });
    let joined = || {
        let server = server.clone();
        Box::pin(async move {
            metric(&server, "router_subgraph_fetches_deduplicated_total", &[name]).await == 1.0
        }) as futures::future::BoxFuture<'static, bool>
    };
    assert!(eventually(joined).await, "the second request waits for the first one's fetch");
    release.add_permits(2);
    let (first, second) = (first.await.expect("first"), second.await.expect("second"));
    assert_eq!(first, second);
    assert_eq!(first["data"]["products"][1]["name"], "Couch");
    assert_eq!(products.hits(), 1, "one fetch for both");
}

/// API keys `pat_a` and `pat_b`: two users.
struct TwoCallers;

#[async_trait::async_trait]
impl Authority for TwoCallers {
    async fn jwks(&self) -> Result<Value, AuthorityError> {
        Ok(json!({ "keys": [] }))
    }
    async fn api_key(&self, token: &str) -> Result<Option<Caller>, AuthorityError> {
        let id = match token {
            "pat_a" => uuid::Uuid::from_u128(1),
            "pat_b" => uuid::Uuid::from_u128(2),
            _ => return Ok(None),
        };
        Ok(Some(Caller::user(id)))
    }
    async fn session_live(&self, _: uuid::Uuid) -> Result<bool, AuthorityError> {
        Ok(false)
    }
}

#[tokio::test]
async fn two_callers_fetches_are_never_merged() {
    let name = "private-products";
    let authenticator = Arc::new(Authenticator::new(Arc::new(TwoCallers), TokenAudience::default()));
    let (server, products, release) = gated_products(name, Some(authenticator)).await;
    let ask = |key: &'static str| {
        let server = server.clone();
        tokio::spawn(
            async move { post(&server, "{ products { name } }", Some(&format!("Bearer {key}"))).await },
        )
    };
    let (a, b) = (ask("pat_a"), ask("pat_b"));
    let both = eventually(|| Box::pin(std::future::ready(products.hits() == 2))).await;
    release.add_permits(2);
    assert!(both, "each caller's fetch reaches the subgraph");
    let (a, b) = (a.await.expect("a"), b.await.expect("b"));
    assert!(a.get("errors").is_none() && b.get("errors").is_none(), "{a} {b}");
    assert_eq!(metric(&server, "router_subgraph_fetches_deduplicated_total", &[name]).await, 0.0);
}

#[tokio::test]
async fn subgraphs_get_keep_alive_connections_or_http2_when_configured() {
    let (h1, h2) = ("keepalive-products", "h2c-inventory");
    let sdl = supergraph(&[(h1, PRODUCTS), (h2, INVENTORY)]);
    let products = serve(h1, PRODUCTS, products_data(), healthy()).await;
    let inventory = serve(h2, INVENTORY, inventory_data(), healthy()).await;
    let served = [(h1, &products), (h2, &inventory)];
    let (server, _) = router(&sdl, &served, RouterOptions::default(), &[h2], None).await;
    for _ in 0..5 {
        assert_eq!(post(&server, STOCK, None).await, json!({ "data": full_stock() }));
    }
    let peers = |served: &Served| {
        let seen = served.seen.lock().expect("seen");
        let versions: Vec<Version> = seen.iter().map(|(v, _)| *v).collect();
        let mut peers: Vec<_> = seen.iter().map(|(_, p)| *p).collect();
        peers.sort();
        peers.dedup();
        (versions, peers.len())
    };
    let (versions, connections) = peers(&products);
    assert!(versions.iter().all(|v| *v == Version::HTTP_11), "{versions:?}");
    assert!(connections < 5, "five requests in a row reuse connections: {connections} connections");
    let (versions, connections) = peers(&inventory);
    assert!(versions.iter().all(|v| *v == Version::HTTP_2), "h2c with prior knowledge: {versions:?}");
    assert_eq!(connections, 1, "one HTTP/2 connection");
}
