//! The router against canned subgraphs: composition, entity joins, aliases and fragments, null
//! propagation, error paths, `@skip`/`@include`, failing subgraphs, and bad supergraphs. The
//! subgraphs are fakes that answer fixed JSON, so each GraphQL rule is tested on its own; the real
//! subgraphs are tested end to end under `tests/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyairtable_kit::http::ReadyCheck;
use pyairtable_kit::testing::{GraphQLClient, TestServer, spawn_app};
use pyairtable_router::compose::{SubgraphSdl, compose};
use pyairtable_router::transport::{SubgraphRequest, SubgraphResponse, TransportError};
use pyairtable_router::{RouterOptions, Supergraph, Transport};
use serde_json::{Map, Value, json};

const PRODUCTS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Query {
  topProduct: Product
  products: [Product!]!
}
type Product @key(fields: "upc") {
  upc: String!
  name: String
  price: Int!
}
"#;

const REVIEWS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Product @key(fields: "upc") {
  upc: String!
  reviews: [Review!]
}
type Review {
  body: String!
  stars: Int
}
"#;

/// What a fake subgraph answers: a response, or a transport failure.
type Answer = Result<Value, TransportError>;

/// How a fake subgraph answers a query and its variables.
type Responder = Box<dyn Fn(&str, &Map<String, Value>) -> Answer + Send + Sync>;

/// A subgraph that records every query it gets and answers with a function of it.
struct Fake {
    answer: Responder,
    seen: Mutex<Vec<(String, Map<String, Value>)>>,
}

impl Fake {
    fn new(answer: impl Fn(&str, &Map<String, Value>) -> Answer + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self { answer: Box::new(answer), seen: Mutex::new(Vec::new()) })
    }

    fn requests(&self) -> Vec<(String, Map<String, Value>)> {
        self.seen.lock().expect("lock").clone()
    }
}

#[async_trait::async_trait]
impl Transport for Fake {
    async fn fetch(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError> {
        // Entity representations come as JSON text the executor wrote: read every variable.
        let variables = request.all_variables();
        self.seen.lock().expect("lock").push((request.query.to_owned(), variables.clone()));
        let body = (self.answer)(request.query, &variables)?;
        let data = body.get("data").cloned().filter(|d| !d.is_null()).map(Into::into);
        let errors = body.get("errors").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(SubgraphResponse { data, errors })
    }
}

fn supergraph() -> String {
    compose(&[
        SubgraphSdl { name: "products", url: "http://products/graphql", sdl: PRODUCTS },
        SubgraphSdl { name: "reviews", url: "http://reviews/graphql", sdl: REVIEWS },
    ])
    .expect("the subgraphs compose")
}

async fn router(products: Arc<Fake>, reviews: Arc<Fake>) -> (TestServer, GraphQLClient) {
    let supergraph = Supergraph::parse(&supergraph()).expect("the supergraph loads");
    let transports: HashMap<String, Arc<dyn Transport>> =
        HashMap::from([("products".to_owned(), products as _), ("reviews".to_owned(), reviews as _)]);
    let ready: ReadyCheck = Arc::new(|| Box::pin(async { Ok(()) }));
    let app =
        pyairtable_router::app(supergraph, transports, RouterOptions::default(), ready, None).expect("app");
    let server = spawn_app(app).await;
    let client = GraphQLClient::new(server.graphql_url());
    (server, client)
}

/// Reviews for each representation, in order: "<upc> is great".
fn reviews_of(variables: &Map<String, Value>) -> Value {
    let entities: Vec<Value> = variables["representations"]
        .as_array()
        .expect("representations")
        .iter()
        .map(|rep| {
            json!({ "__typename": "Product", "reviews": [{ "body": format!("{} is great", rep["upc"].as_str().unwrap_or("?")), "stars": 5 }] })
        })
        .collect();
    json!({ "data": { "_entities": entities } })
}

fn products_answer(products: Value) -> Arc<Fake> {
    Fake::new(move |query, _| {
        Ok(if query.contains("topProduct") {
            json!({ "data": { "topProduct": products[0] } })
        } else {
            json!({ "data": { "products": products } })
        })
    })
}

fn product(upc: &str, name: &str) -> Value {
    json!({ "__typename": "Product", "upc": upc, "name": name, "price": 10 })
}

#[test]
fn the_composed_supergraph_has_the_apollo_shape() {
    let sdl = supergraph();
    for needle in [
        "@link(url: \"https://specs.apollo.dev/join/v0.",
        "enum join__Graph",
        "PRODUCTS @join__graph(name: \"products\", url: \"http://products/graphql\")",
        "@join__type(graph: PRODUCTS, key: \"upc\")",
        "@join__type(graph: REVIEWS, key: \"upc\")",
        "directive @link(",
    ] {
        assert!(sdl.contains(needle), "{needle:?} missing from:\n{sdl}");
    }
}

#[test]
fn composition_errors_name_the_conflict() {
    let a = r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
        type Query { version: String }"#;
    let b = r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
        type Query { version: Int }"#;
    let err = compose(&[
        SubgraphSdl { name: "a", url: "http://a", sdl: a },
        SubgraphSdl { name: "b", url: "http://b", sdl: b },
    ])
    .expect_err("conflicting fields do not compose")
    .to_string();
    assert!(err.contains("version"), "{err}");
    let err = compose(&[SubgraphSdl { name: "broken", url: "http://x", sdl: "type Query {" }])
        .expect_err("unparsable SDL")
        .to_string();
    assert!(err.contains("broken"), "{err}");
}

#[test]
fn bad_supergraphs_are_refused_without_panicking() {
    let cases = [
        ("", "empty"),
        ("type Query {", "unparsable"),
        ("type Query { a: String }", "not a federation supergraph"),
        (
            "schema @link(url: \"https://specs.apollo.dev/link/v1.0\") @link(url: \"https://specs.apollo.dev/join/v0.3\", for: EXECUTION) { query: Query }
             enum join__Graph { A @join__graph(name: \"a\", url: \"http://a\") }",
            "no Query type",
        ),
    ];
    for (sdl, what) in cases {
        assert!(Supergraph::parse(sdl).is_err(), "{what} was accepted");
    }
    let missing_transport = pyairtable_router::app(
        Supergraph::parse(&supergraph()).expect("loads"),
        HashMap::new(),
        RouterOptions::default(),
        Arc::new(|| Box::pin(async { Ok(()) })),
        None,
    );
    let Err(err) = missing_transport else { panic!("subgraphs without a transport are refused") };
    let err = err.to_string();
    assert!(err.contains("products") && err.contains("reviews"), "{err}");
}

#[tokio::test]
async fn entities_join_with_aliases_fragments_and_deduplicated_representations() {
    // Subgraph queries keep the client's aliases, so the fakes answer under them.
    let products = Fake::new(|query, _| {
        assert!(query.contains("items: products"), "{query}");
        let item = |upc: &str, title: &str| json!({ "__typename": "Product", "upc": upc, "title": title });
        Ok(json!({ "data": { "items": [item("1", "Table"), item("2", "Chair"), item("1", "Table")] } }))
    });
    let reviews = Fake::new(|query, variables| {
        assert!(query.contains("opinions: reviews") && query.contains("text: body"), "{query}");
        let entities: Vec<Value> = variables["representations"]
            .as_array()
            .expect("representations")
            .iter()
            .map(|rep| json!({ "opinions": [{ "text": format!("{} is great", rep["upc"].as_str().unwrap_or("?")) }] }))
            .collect();
        Ok(json!({ "data": { "_entities": entities } }))
    });
    let (_server, client) = router(products.clone(), reviews.clone()).await;

    let query = "query { items: products { ...P opinions: reviews { text: body } } }
                 fragment P on Product { __typename title: name }";
    let data = client.data(query, json!({})).await;
    assert_eq!(
        data,
        json!({ "items": [
            { "__typename": "Product", "title": "Table", "opinions": [{ "text": "1 is great" }] },
            { "__typename": "Product", "title": "Chair", "opinions": [{ "text": "2 is great" }] },
            { "__typename": "Product", "title": "Table", "opinions": [{ "text": "1 is great" }] },
        ] })
    );
    let calls = reviews.requests();
    assert_eq!(calls.len(), 1, "one batched _entities fetch: {calls:?}");
    assert_eq!(
        calls[0].1["representations"],
        json!([{ "__typename": "Product", "upc": "1" }, { "__typename": "Product", "upc": "2" }]),
        "each entity asked for once"
    );
}

#[tokio::test]
async fn a_null_non_null_field_nulls_its_nearest_nullable_parent() {
    let products = Fake::new(|_, _| {
        Ok(
            json!({ "data": { "topProduct": { "__typename": "Product", "upc": "1", "name": "Table", "price": null } } }),
        )
    });
    let reviews = Fake::new(|_, variables| Ok(reviews_of(variables)));
    let (_server, client) = router(products, reviews).await;

    let (status, body) = client.send("{ topProduct { name price } }", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!({ "topProduct": null }), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["topProduct", "price"]), "{body}");
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("Product.price")), "{body}");

    // Through a non-null root list the whole `data` becomes null.
    let products = Fake::new(|_, _| Ok(json!({ "data": { "products": [product("1", "Table"), null] } })));
    let reviews = Fake::new(|_, variables| Ok(reviews_of(variables)));
    let (_server, client) = router(products, reviews).await;
    let (_, body) = client.send("{ products { name } }", json!({})).await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["products", 1]), "{body}");
}

#[tokio::test]
async fn entity_errors_are_repathed_to_the_client_query() {
    let products = products_answer(json!([product("1", "Table"), product("2", "Chair")]));
    let reviews = Fake::new(|_, _| {
        Ok(json!({
            "data": { "_entities": [
                { "__typename": "Product", "reviews": [{ "body": "fine", "stars": 4 }] },
                { "__typename": "Product", "reviews": null },
            ] },
            "errors": [{ "message": "reviews are down for 2", "path": ["_entities", 1, "reviews"],
                         "extensions": { "code": "NOT_FOUND" } }],
        }))
    });
    let (_server, client) = router(products, reviews).await;
    let (_, body) = client.send("{ products { name reviews { body } } }", json!({})).await;
    assert_eq!(
        body["data"],
        json!({ "products": [
            { "name": "Table", "reviews": [{ "body": "fine" }] },
            { "name": "Chair", "reviews": null },
        ] })
    );
    assert_eq!(body["errors"][0]["path"], json!(["products", 1, "reviews"]), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn a_failing_subgraph_nulls_only_what_depends_on_it() {
    let products = products_answer(json!([product("1", "Table")]));
    let reviews = Fake::new(|_, _| Err(TransportError::Unreachable("connection refused".into())));
    let (_server, client) = router(products, reviews).await;
    let (status, body) = client.send("{ topProduct { name reviews { body } } }", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!({ "topProduct": { "name": "Table", "reviews": null } }), "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED", "{body}");
    assert_eq!(error["path"], json!(["topProduct"]), "{body}");
    assert_eq!(error["message"], "subgraph \"reviews\" could not be reached", "{body}");
    assert!(!body.to_string().contains("connection refused"), "transport details stay in the log: {body}");
}

#[tokio::test]
async fn skip_and_include_decide_which_subgraphs_are_called() {
    let products = products_answer(json!([product("1", "Table")]));
    let reviews = Fake::new(|_, variables| Ok(reviews_of(variables)));
    let (_server, client) = router(products, reviews.clone()).await;
    let query = "query($skip: Boolean!, $price: Boolean = false) {
        topProduct { name price @include(if: $price) reviews @skip(if: $skip) { body } } }";

    let data = client.data(query, json!({ "skip": true })).await;
    assert_eq!(data, json!({ "topProduct": { "name": "Table" } }));
    assert!(reviews.requests().is_empty(), "a skipped field fetches nothing");

    let data = client.data(query, json!({ "skip": false, "price": true })).await;
    assert_eq!(
        data,
        json!({ "topProduct": { "name": "Table", "price": 10, "reviews": [{ "body": "1 is great" }] } })
    );
    assert_eq!(reviews.requests().len(), 1);
}

#[tokio::test]
async fn variables_are_checked_before_any_subgraph_is_called() {
    let products = products_answer(json!([product("1", "Table")]));
    let reviews = Fake::new(|_, variables| Ok(reviews_of(variables)));
    let (_server, client) = router(products.clone(), reviews).await;
    let query = "query($skip: Boolean!) { topProduct { name reviews @skip(if: $skip) { body } } }";
    for variables in [json!({}), json!({ "skip": "yes" }), json!({ "skip": null })] {
        let (status, body) = client.send(query, variables.clone()).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{variables}: {body}");
        assert!(body.get("data").is_none(), "{variables}: {body}");
        assert_eq!(status, 400, "refused before execution: 400 under application/graphql-response+json");
    }
    assert!(products.requests().is_empty());
}
