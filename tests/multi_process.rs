//! The production topology: every subgraph and the router as separate processes, over the
//! machine's PostgreSQL and Redis, wired only by environment variables and --subgraph URLs.

mod common;

use common::topology::{env, topology};
use common::{get, identity_scenario, organization_scenario};
use pyairtable_kit::testing::test_database;
use serde_json::json;

#[tokio::test]
async fn router_and_subgraphs_as_separate_services() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let t = topology(&env(db.url(), data_dir.path()), &["router"]).await;

    organization_scenario(&t.router.graphql(), data_dir.path()).await;
    identity_scenario(&t.router.graphql(), data_dir.path()).await;
    let (_, token, _) = common::sign_up(&t.router.graphql(), "wanda@example.com", "Wanda").await;
    let ws_url = format!("{}/graphql", t.router.base_url.replacen("http://", "ws://", 1));
    common::websocket::websocket_scenario(&ws_url, &token, "Wanda").await;

    // Subgraphs answer only the router: a direct call without its signed identity is refused.
    let (status, body) = t
        .subgraph("users")
        .graphql()
        .send("{ user(id: \"0190f3a4-7b1c-7d9e-8f00-123456789abc\") { email } }", json!({}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let forged =
        t.subgraph("users").graphql().with_header("x-pyairtable-identity", "v1.eyJzdWIiOiJ4In0.AAAA");
    assert_eq!(forged.send("{ me { id } }", json!({})).await.0, 401);

    // The permissions service's internal endpoints answer only callers holding the secret.
    let authorize = format!("{}/internal/authorize", t.subgraph("permissions").base_url);
    let body = json!({ "subject": "0190f3a4-7b1c-7d9e-8f00-123456789abc", "checks": [] });
    let status = reqwest::Client::new().post(&authorize).json(&body).send().await.expect("answers").status();
    assert_eq!(status, 401);

    let processes = t.subgraphs.iter().map(|(_, p)| p).chain([&t.router]);
    for process in processes {
        assert_eq!(get(&format!("{}/healthz", process.base_url)).await.0, 200);
        assert_eq!(get(&format!("{}/readyz", process.base_url)).await.0, 200);
    }
    t.stop().await;
}

#[tokio::test]
async fn the_router_runs_the_checked_in_supergraph_file() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    // The file names compose-style URLs; the --subgraph flags point each at where it runs here.
    let supergraph = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql");
    let t = topology(&env(db.url(), data_dir.path()), &["router", "--supergraph", supergraph]).await;
    organization_scenario(&t.router.graphql(), data_dir.path()).await;
    t.stop().await;
}
