//! The checked-in `benches/gateway/supergraph.graphql` is what the router's own composer makes of
//! the four subgraphs' SDL; `BENCH_SUPERGRAPH_WRITE=1 cargo test -p bench-subgraphs` rewrites it.

use std::path::PathBuf;

use pyairtable_router::Supergraph;
use pyairtable_router::compose::{SubgraphSdl, compose};

/// Where `benches/gateway/run.sh` starts the subgraphs (bench-subgraphs' default ports).
const URLS: [(&str, &str); 4] = [
    ("accounts", "http://127.0.0.1:4201/graphql"),
    ("inventory", "http://127.0.0.1:4202/graphql"),
    ("products", "http://127.0.0.1:4203/graphql"),
    ("reviews", "http://127.0.0.1:4204/graphql"),
];

fn composed() -> String {
    let sdls: Vec<(&str, &str, String)> = URLS
        .iter()
        .map(|&(name, url)| (name, url, bench_subgraphs::sdl(name).expect("a known subgraph")))
        .collect();
    let subgraphs: Vec<SubgraphSdl<'_>> =
        sdls.iter().map(|(name, url, sdl)| SubgraphSdl { name, url, sdl }).collect();
    apollo_compatible(compose(&subgraphs).expect("the benchmark subgraphs compose"))
}

/// What the composer's output lacks for graphql-js gateways (Apollo Gateway refuses it without
/// these; our router and Hive Router load it either way), added here until router/src/compose.rs
/// does it:
/// - `@join__type`, `@join__field`, `@join__implements` and `@join__unionMember` are declared
///   without `repeatable`, though a supergraph repeats them ("can only be used once at this
///   location");
/// - the schema `@link`s inaccessible/v0.2 but `@inaccessible` is not defined ("declares
///   https://specs.apollo.dev/inaccessible/v0.2 spec but does not define a @inaccessible
///   directive").
fn apollo_compatible(sdl: String) -> String {
    const REPEATED: [&str; 4] = ["join__type", "join__field", "join__implements", "join__unionMember"];
    const INACCESSIBLE: &str = "directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | \
        ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION\n";
    let mut out = String::with_capacity(sdl.len() + 256);
    for line in sdl.split_inclusive('\n') {
        let repeated = REPEATED.iter().any(|name| line.starts_with(&format!("directive @{name}(")));
        if repeated && !line.contains(" repeatable ") {
            out.push_str(&line.replacen(") on ", ") repeatable on ", 1));
        } else {
            out.push_str(line);
        }
    }
    if sdl.contains("specs.apollo.dev/inaccessible/") && !sdl.contains("directive @inaccessible") {
        out.push('\n');
        out.push_str(INACCESSIBLE);
    }
    out
}

#[test]
fn the_checked_in_supergraph_is_the_composition_of_the_subgraphs() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/gateway/supergraph.graphql");
    let composed = composed();
    Supergraph::parse(&composed).expect("the router loads the composed supergraph");
    if std::env::var_os("BENCH_SUPERGRAPH_WRITE").is_some() {
        std::fs::write(&path, &composed).expect("write the supergraph");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).expect("read benches/gateway/supergraph.graphql");
    assert!(
        checked_in == composed,
        "{} is out of date: run BENCH_SUPERGRAPH_WRITE=1 cargo test -p bench-subgraphs",
        path.display()
    );
}

#[tokio::test]
async fn shipping_estimate_comes_from_the_required_fields() {
    let schema = bench_subgraphs::inventory::schema();
    let query = r#"{ _entities(representations: [
        {__typename: "Product", upc: "1", price: 899, weight: 100},
        {__typename: "Product", upc: "2", price: 1299, weight: 1000},
        {__typename: "Product", upc: "3"}
    ]) { ... on Product { upc inStock shippingEstimate } } }"#;
    let response = schema.execute(query).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = serde_json::to_value(&response.data).expect("json");
    assert_eq!(
        data,
        serde_json::json!({"_entities": [
            {"upc": "1", "inStock": true, "shippingEstimate": 50},
            {"upc": "2", "inStock": false, "shippingEstimate": 0},
            {"upc": "3", "inStock": false, "shippingEstimate": null},
        ]})
    );
}

#[tokio::test]
async fn product_reviews_and_provided_author() {
    let schema = bench_subgraphs::reviews::schema();
    let query = r#"{ _entities(representations: [{__typename: "Product", upc: "4"}]) {
        ... on Product { reviews { id author { id username } } } } }"#;
    let response = schema.execute(query).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = serde_json::to_value(&response.data).expect("json");
    let author = serde_json::json!({"id": "1", "username": "urigo"});
    assert_eq!(
        data,
        serde_json::json!({"_entities": [{"reviews": [
            {"id": "10", "author": author},
            {"id": "11", "author": author},
        ]}]})
    );
}
