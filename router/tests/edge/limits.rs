//! Every operation limit, just under and just over, with the measured value and the limit in the
//! error; and the cost model: defaults, `@cost`, `@listSize`, Relay connections, variables.

use serde_json::json;

use crate::{Edge, options, start};

async fn limited(configure: impl FnOnce(&mut pyairtable_kit::config::QueryLimits)) -> Edge {
    let mut options = options();
    configure(&mut options.edge.limits);
    start(options).await
}

async fn assert_passes(edge: &Edge, query: &str) {
    let reply = edge.query(query, &[]).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    assert!(reply.body.get("errors").is_none(), "{query}: {}", reply.body);
}

async fn assert_over(edge: &Edge, query: &str, code: &str, measured: u64, limit: u64) {
    let accept = ("accept", "application/graphql-response+json");
    let calls = edge.subgraph.headers.lock().expect("lock").len();
    let reply = edge.query(query, &[accept]).await;
    assert_eq!((reply.status, reply.code()), (400, code), "{query}: {}", reply.body);
    let extensions = &reply.body["errors"][0]["extensions"];
    assert_eq!(
        (extensions["measured"].as_u64(), extensions["limit"].as_u64()),
        (Some(measured), Some(limit))
    );
    assert_eq!(edge.subgraph.headers.lock().expect("lock").len(), calls, "refused before any subgraph call");
}

#[tokio::test]
async fn depth() {
    let edge = limited(|l| l.max_depth = 3).await;
    assert_over(&edge, "{ me { friends { friends { id } } } }", "MAX_DEPTH_EXCEEDED", 4, 3).await;
    let through_fragments = "{ me { ...F } } fragment F on User { friends { friends { id } } }";
    assert_over(&edge, through_fragments, "MAX_DEPTH_EXCEEDED", 4, 3).await;
    assert_passes(&edge, "{ me { friends { id } } }").await;
}

#[tokio::test]
async fn aliases_and_root_fields() {
    let edge = limited(|l| (l.max_aliases, l.max_root_fields) = (2, 3)).await;
    assert_over(&edge, "{ a: me { id } b: me { id } c: me { x: id } }", "MAX_ALIASES_EXCEEDED", 4, 2).await;
    assert_over(
        &edge,
        "{ me { id } tags expensive ... on Query { recent { id } } }",
        "MAX_ROOT_FIELDS_EXCEEDED",
        4,
        3,
    )
    .await;
    assert_passes(&edge, "{ a: me { id } b: me { id } tags }").await;
}

#[tokio::test]
async fn tokens_nesting_and_fragment_bombs() {
    let edge = limited(|l| l.max_tokens = 20).await;
    // { me { id name friends ( first : 1 ) { id } } }: 16 tokens; five more names: 21.
    assert_passes(&edge, "{ me { id name friends(first: 1) { id } } }").await;
    let reply = edge.query("{ me { id name friends(first: 1) { id name id name id name } } }", &[]).await;
    assert_eq!(reply.code(), "MAX_TOKENS_EXCEEDED", "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["extensions"]["limit"], 20);
    let edge = limited(|l| l.max_tokens = 100_000).await;
    let nested = format!("{{ me {} }}", "{ id ".repeat(65) + &"}".repeat(65));
    assert_eq!(
        edge.query(&nested, &[]).await.code(),
        "MAX_DEPTH_EXCEEDED",
        "brackets nest too deep to parse"
    );
    let mut bomb = String::from("{ me { ...F40 } } fragment F0 on User { id }");
    for i in 1..=40 {
        bomb.push_str(&format!(" fragment F{i} on User {{ ...F{p} ...F{p} }}", p = i - 1));
    }
    assert_over(&edge, &bomb, "QUERY_TOO_COMPLEX", (1 << 40) + 1, 100_000).await;
}

#[tokio::test]
async fn batches_are_bounded() {
    let edge = limited(|l| l.max_batch = 2).await;
    let one = json!({ "query": "{ tags }" });
    let reply = edge.post(json!([one, { "query": "query Me { me { name } }" }]), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!([{ "data": { "tags": ["a", "b"] } }, { "data": { "me": { "name": "Ada" } } }])
    );
    let reply = edge.post(json!([one, one, one]), &[]).await;
    assert_eq!((reply.status, reply.code()), (400, "MAX_BATCH_SIZE_EXCEEDED"));
    assert_eq!(reply.body["errors"][0]["extensions"]["measured"], 3);
    assert_eq!(edge.post(json!([]), &[]).await.code(), "BAD_REQUEST");
    let edge = limited(|l| l.max_batch = 1).await;
    let reply = edge.post(json!([one]), &[]).await;
    assert_eq!(reply.code(), "MAX_BATCH_SIZE_EXCEEDED");
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("batched requests are not accepted")
    );
}

#[tokio::test]
async fn cost_is_estimated_from_the_schema_and_the_variables() {
    let edge = limited(|l| (l.max_cost, l.list_size) = (100, 10)).await;
    // users(first: 100) { id }: 100 users at 1 each.
    assert_passes(&edge, "{ users(first: 100) { id } }").await;
    assert_over(&edge, "{ users(first: 101) { id } }", "COST_LIMIT_EXCEEDED", 101, 100).await;
    // Nested lists multiply: 5 * (1 + 19 * 1) = 100, then 105.
    assert_passes(&edge, "{ users(first: 5) { friends(first: 19) { id } } }").await;
    assert_over(&edge, "{ users(first: 5) { friends(first: 20) { id } } }", "COST_LIMIT_EXCEEDED", 105, 100)
        .await;
    // Without a size argument a list is assumed to hold 10: 10 * (1 + 10 * 1) = 110.
    assert_over(&edge, "{ users { friends { id } } }", "COST_LIMIT_EXCEEDED", 110, 100).await;
    // @cost(weight: 50) twice: 100, three times: 150.
    assert_passes(&edge, "{ a: expensive b: expensive }").await;
    assert_over(&edge, "{ a: expensive b: expensive c: expensive }", "COST_LIMIT_EXCEEDED", 150, 100).await;
    // @listSize(assumedSize: 3): 3 * (1 + 10 * 1) = 33.
    assert_passes(&edge, "{ recent { friends { id } } users(first: 67) { id } }").await;
    assert_over(
        &edge,
        "{ recent { friends { id } } users(first: 68) { id } }",
        "COST_LIMIT_EXCEEDED",
        101,
        100,
    )
    .await;
    // A Relay connection: first sizes edges and nodes: 1 + 60 * (1 + 1) = 121.
    assert_over(&edge, "{ page(first: 60) { edges { node { id } } } }", "COST_LIMIT_EXCEEDED", 121, 100)
        .await;
    assert_passes(&edge, "{ page(first: 49) { edges { node { id } } } }").await;
    // Variables count as their values.
    let reply = edge
        .post(
            json!({ "query": "query($n: Int) { users(first: $n) { id } }", "variables": { "n": 101 } }),
            &[],
        )
        .await;
    assert_eq!(reply.code(), "COST_LIMIT_EXCEEDED");
    // Mutations cost 10 per root field.
    let signed_in = ("authorization", "Bearer pat_alice");
    let reply = edge.query("mutation { rename(name: \"x\") { id } }", &[signed_in]).await;
    assert_eq!(reply.body, json!({ "data": { "rename": { "id": "u1" } } }));
    let edge = limited(|l| l.max_cost = 9).await;
    let reply = edge.query("mutation { rename(name: \"x\") { id } }", &[signed_in]).await;
    assert_eq!(
        (reply.code(), &reply.body["errors"][0]["extensions"]["measured"]),
        ("COST_LIMIT_EXCEEDED", &json!(10))
    );
}

#[tokio::test]
async fn list_size_can_require_exactly_one_slicing_argument() {
    let edge = limited(|l| l.max_cost = 1000).await;
    assert_passes(&edge, "{ search(limit: 5) { id } }").await;
    let reply = edge.query("{ search { id } }", &[]).await;
    assert_eq!(reply.code(), "GRAPHQL_VALIDATION_FAILED", "{}", reply.body);
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Query.search needs exactly one of: limit")
    );
}
