//! The whole supergraph in one process (router + every subgraph in process), on a random port.

mod common;

use common::{bearer, get, identity_scenario, organization_scenario, sign_up};
use pyairtable::RunningServer;
use pyairtable_kit::Config;
use pyairtable_kit::testing::{GraphQLClient, TestDatabase, test_database};
use serde_json::json;

struct Started {
    server: RunningServer,
    _db: TestDatabase,
    client: GraphQLClient,
    data_dir: tempfile::TempDir,
}

async fn start() -> Started {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let dir = data_dir.path().to_str().expect("utf-8 path");
    let vars =
        [("DATABASE_URL", db.url()), ("PYAIRTABLE_LISTEN", "127.0.0.1:0"), ("PYAIRTABLE_DATA_DIR", dir)];
    let config = Config::from_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned()))).expect("config");
    let server = pyairtable::build_serve(config).await.expect("the supergraph starts").spawn();
    let client = GraphQLClient::new(format!("http://{}/graphql", server.addr));
    Started { server, _db: db, client, data_dir }
}

#[tokio::test]
async fn cross_subgraph_queries_join_through_the_router() {
    let s = start().await;
    organization_scenario(&s.client, s.data_dir.path()).await;
    s.server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn graphql_over_websocket_reaches_every_subgraph() {
    let s = start().await;
    let (_, token, _) = sign_up(&s.client, "wanda@example.com", "Wanda").await;
    let url = format!("ws://{}/graphql", s.server.addr);
    common::websocket::websocket_scenario(&url, &token, "Wanda").await;
    s.server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn sign_up_verify_log_in_refresh_log_out() {
    let s = start().await;
    identity_scenario(&s.client, s.data_dir.path()).await;
    s.server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_server_stays_up() {
    let s = start().await;
    let (server, anonymous) = (s.server, s.client);
    let (_, token, _) = sign_up(&anonymous, "eve@example.com", "Eve").await;
    let client = bearer(&anonymous, &token);
    let cases = [
        ("{ user(id: ", json!({}), "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        ("{ user(id: \"1\") { nope } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        ("query($id: ID!) { user(id: $id) { id } }", json!({}), "BAD_USER_INPUT"),
        ("query($id: ID!) { user(id: $id) { id } }", json!({ "id": { "a": 1 } }), "BAD_USER_INPUT"),
        ("query($n: OrganizationRole!) { __typename }", json!({ "n": "KING" }), "GRAPHQL_VALIDATION_FAILED"),
        ("{ user(id: \"not-a-uuid\") { id } }", json!({}), "BAD_USER_INPUT"),
    ];
    for (query, variables, code) in cases {
        let (_, body) = client.send(query, variables.clone()).await;
        let error = common::first_error(&body);
        assert_eq!(error["extensions"]["code"], code, "{query} {variables}: {body}");
        assert!(error["message"].as_str().is_some_and(|m| m.len() > 5), "{query}: {body}");
    }
    let (status, body) = client.send("query A { __typename } query B { __typename }", json!({})).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (400, &json!("OPERATION_NOT_FOUND")));
    assert_eq!(anonymous.error_code("{ me { id } }", json!({})).await, "UNAUTHENTICATED");
    // Still serving.
    assert_eq!(client.data("{ __typename }", json!({})).await, json!({ "__typename": "Query" }));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn http_semantics_follow_graphql_over_http() {
    let s = start().await;
    let server = s.server;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();

    // GET needs a header a browser cannot send cross-origin without a preflight (CSRF).
    let unguarded = http.get(format!("{base}/graphql?query=%7B__typename%7D")).send().await.expect("GET");
    assert_eq!(unguarded.status(), 400);
    let get_query = http
        .get(format!("{base}/graphql?query=%7B__typename%7D"))
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .expect("GET");
    assert_eq!(get_query.status(), 200);
    assert_eq!(get_query.headers()["content-type"], "application/json");

    let mutation = http
        .get(format!("{base}/graphql?query=mutation%7B__typename%7D"))
        .header("accept", "application/graphql-response+json")
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .expect("GET mutation");
    assert_eq!((mutation.status().as_u16(), mutation.headers()["allow"].to_str().ok()), (405, Some("POST")));

    let not_json = http
        .post(format!("{base}/graphql"))
        .header("content-type", "text/plain")
        .header("x-apollo-operation-name", "Probe")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(not_json.status(), 415);
    let broken = http
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("POST");
    assert_eq!(broken.status(), 400);

    // A request error is 200 for legacy application/json clients, 400 for graphql-response+json ones.
    let legacy = http
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ nope }" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(legacy.status(), 200);

    assert_eq!(get(&format!("{base}/healthz")).await, (200, "ok".into()));
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);
    let (status, metrics) = get(&format!("{base}/metrics")).await;
    assert!(status == 200 && metrics.contains("http_requests_total"), "{metrics}");
    let (status, page) = get(&format!("{base}/")).await;
    assert!(status == 200 && page.contains("graphiql"));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn introspection_describes_the_supergraph() {
    let s = start().await;
    let (server, client) = (s.server, s.client);
    let query = "{
        __schema { queryType { name } mutationType { name } subscriptionType { name } directives { name } }
        user: __type(name: \"User\") { kind fields { name type { kind ofType { name } } } }
        role: __type(name: \"OrganizationRole\") { enumValues { name } }
        missing: __type(name: \"Nope\") { name }
    }";
    let data = client.data(query, json!({})).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    assert_eq!(data["__schema"]["mutationType"]["name"], "Mutation");
    assert_eq!(data["__schema"]["subscriptionType"]["name"], "Subscription", "notificationReceived");
    let fields: Vec<&str> = data["user"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(fields.contains(&"displayName") && fields.contains(&"organizations"), "{fields:?}");
    assert!(!fields.iter().any(|f| f.starts_with("join__")));
    assert_eq!(
        data["role"]["enumValues"],
        json!([{ "name": "OWNER" }, { "name": "ADMIN" }, { "name": "MEMBER" }, { "name": "GUEST" }])
    );
    assert_eq!(data["missing"], serde_json::Value::Null);
    let types = client.data("{ __schema { types { name } } }", json!({})).await;
    let names: Vec<&str> = types["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"Organization") && names.contains(&"__Schema") && names.contains(&"String"));
    assert!(
        !names.iter().any(|n| n.starts_with("join__") || n.starts_with("link__") || *n == "_Any"),
        "{names:?}"
    );
    server.stop().await.expect("clean stop");
}
