//! Hot reload of the supergraph file: a valid new file is served to new requests (with fresh
//! plans), requests in flight finish on the supergraph they started with, and an invalid file is
//! reported while the previous supergraph keeps serving.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use pyairtable_kit::testing::TestServer;
use pyairtable_router::RouterOptions;
use serde_json::{Value, json};
use support::fixture::{Behaviour, eventually, healthy, post, router, serve, supergraph};
use tokio::sync::Semaphore;

const PRODUCTS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Query { products: [Product!]! }
type Product @key(fields: "upc") { upc: ID! name: String! }
"#;

const OLD_PRICES: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Product @key(fields: "upc") { upc: ID! price: Int! }
"#;

const NEW_PRICES: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Product @key(fields: "upc") { upc: ID! price: Int! currency: String! }
"#;

const PRICE: &str = "{ products { price } }";

fn is_ok(server: &Arc<TestServer>, query: &'static str) -> BoxFuture<'static, bool> {
    let server = server.clone();
    Box::pin(async move { post(&server, query, None).await.get("errors").is_none() })
}

/// Answers its first request at once, then holds the others until the test adds permits.
fn held_after_first(permits: Arc<Semaphore>) -> Behaviour {
    Arc::new(move |n| {
        let permits = permits.clone();
        Box::pin(async move {
            if n > 0 {
                let _ = permits.acquire().await.map(tokio::sync::SemaphorePermit::forget);
            }
            None
        })
    })
}

#[tokio::test]
async fn the_supergraph_file_is_reloaded_atomically_and_a_bad_one_is_refused() {
    let products = serve(
        "products",
        PRODUCTS,
        json!({ "Query": { "products": [{ "upc": "1", "name": "Table" }] } }),
        healthy(),
    )
    .await;
    let permits = Arc::new(Semaphore::new(0));
    let old_data = json!({ "entities": { "Product": [{ "upc": "1", "price": 100 }] } });
    let old = serve("old-prices", OLD_PRICES, old_data, held_after_first(permits.clone())).await;
    let new_data = json!({ "entities": { "Product": [{ "upc": "1", "price": 200, "currency": "EUR" }] } });
    let new = serve("new-prices", NEW_PRICES, new_data, healthy()).await;

    let v1 = supergraph(&[("products", PRODUCTS), ("old-prices", OLD_PRICES)]);
    let v2 = supergraph(&[("products", PRODUCTS), ("new-prices", NEW_PRICES)]);
    let file = std::env::temp_dir().join(format!("supergraph-{}.graphql", uuid::Uuid::new_v4()));
    std::fs::write(&file, &v1).expect("write v1");
    let served = [("products", &products), ("old-prices", &old), ("new-prices", &new)];
    let (server, gateway) = router(&v1, &served, RouterOptions::default(), &[], None).await;
    let _watch = gateway.watch(file.clone(), Duration::from_millis(20));
    let server = Arc::new(server);

    // v1: the price comes from the old subgraph; the plan is cached.
    assert_eq!(post(&server, PRICE, None).await, json!({ "data": { "products": [{ "price": 100 }] } }));
    assert!(!is_ok(&server, "{ products { currency } }").await, "no currency in v1");

    // A request in flight on v1, held inside the old subgraph.
    let in_flight = tokio::spawn({
        let server = server.clone();
        async move { post(&server, PRICE, None).await }
    });
    assert!(eventually(|| Box::pin(std::future::ready(old.hits() == 2))).await);

    // v2 replaces the old subgraph: new requests see it, with a new plan for the same query.
    std::fs::write(&file, &v2).expect("write v2");
    assert!(eventually(|| is_ok(&server, "{ products { currency } }")).await, "v2 is served");
    let fresh = tokio::time::timeout(Duration::from_secs(10), post(&server, PRICE, None)).await;
    assert_eq!(
        fresh.expect("not sent to the old subgraph"),
        json!({ "data": { "products": [{ "price": 200 }] } })
    );

    // The request that started on v1 finishes on v1.
    permits.add_permits(1);
    assert_eq!(in_flight.await.expect("in flight"), json!({ "data": { "products": [{ "price": 100 }] } }));
    assert_eq!(old.hits(), 2, "nothing new went to the old subgraph");

    // An invalid file is reported; v2 keeps serving.
    std::fs::write(&file, "type Query {").expect("write garbage");
    assert!(eventually(|| Box::pin(std::future::ready(gateway.reload_failures().0 == 1))).await);
    let (_, error) = gateway.reload_failures();
    assert!(error.unwrap_or_default().contains("does not parse"));
    let response: Value = post(&server, "{ products { price currency } }", None).await;
    assert_eq!(response, json!({ "data": { "products": [{ "price": 200, "currency": "EUR" }] } }));

    // A file whose subgraph has no usable URL is refused the same way.
    let unknown = supergraph(&[("products", PRODUCTS), ("elsewhere", NEW_PRICES)])
        .replace("http://elsewhere.test.invalid/graphql", "ftp://elsewhere/graphql");
    std::fs::write(&file, unknown).expect("write v3");
    assert!(eventually(|| Box::pin(std::future::ready(gateway.reload_failures().0 == 2))).await);
    let (_, error) = gateway.reload_failures();
    assert!(error.unwrap_or_default().contains("elsewhere"));
    assert!(is_ok(&server, "{ products { currency } }").await);
    let _ = std::fs::remove_file(&file);
}
