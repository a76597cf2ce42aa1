//! The production topology: every subgraph and the router as separate processes, over the
//! machine's PostgreSQL and Redis, wired only by environment variables and --subgraph URLs.

mod common;

use std::collections::HashMap;

use common::{Process, get, identity_scenario, organization_scenario};
use pyairtable_kit::testing::{TEST_INTERNAL_SECRET, redis_url, test_database};
use serde_json::json;

fn env(db_url: &str, data_dir: &std::path::Path) -> HashMap<String, String> {
    HashMap::from([
        ("PYAIRTABLE_DATA_DIR".into(), data_dir.display().to_string()),
        ("DATABASE_URL".into(), db_url.into()),
        ("REDIS_URL".into(), redis_url()),
        ("PYAIRTABLE_INTERNAL_SECRET".into(), TEST_INTERNAL_SECRET.into()),
        ("PYAIRTABLE_LISTEN".into(), "127.0.0.1:0".into()),
        ("PYAIRTABLE_LOG".into(), "warn".into()),
    ])
}

#[tokio::test]
async fn router_and_subgraphs_as_separate_services() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let env = env(db.url(), data_dir.path());
    let cwd = std::env::temp_dir();
    let auth = Process::start(&["subgraph", "auth"], &env, &cwd).await;
    let users = Process::start(&["subgraph", "users"], &env, &cwd).await;
    let tenants = Process::start(&["subgraph", "tenants"], &env, &cwd).await;
    let auth_url = format!("auth={}/graphql", auth.base_url);
    let users_url = format!("users={}/graphql", users.base_url);
    let tenants_url = format!("tenants={}/graphql", tenants.base_url);
    let args = ["router", "--subgraph", &auth_url, "--subgraph", &users_url, "--subgraph", &tenants_url];
    let router = Process::start(&args, &env, &cwd).await;

    organization_scenario(&router.graphql()).await;
    identity_scenario(&router.graphql(), data_dir.path()).await;

    // Subgraphs answer only the router: a direct call without its signed identity is refused.
    let (status, body) = users
        .graphql()
        .send("{ user(id: \"0190f3a4-7b1c-7d9e-8f00-123456789abc\") { email } }", json!({}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let forged = users.graphql().with_header("x-pyairtable-identity", "v1.eyJzdWIiOiJ4In0.AAAA");
    assert_eq!(forged.send("{ me { id } }", json!({})).await.0, 401);

    for process in [&auth, &users, &tenants, &router] {
        assert_eq!(get(&format!("{}/healthz", process.base_url)).await.0, 200);
        assert_eq!(get(&format!("{}/readyz", process.base_url)).await.0, 200);
    }
    for process in [router, tenants, users, auth] {
        assert!(process.terminate().await.success(), "clean exit on SIGTERM");
    }
}

#[tokio::test]
async fn the_router_runs_the_checked_in_supergraph_file() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let env = env(db.url(), data_dir.path());
    let cwd = std::env::temp_dir();
    let auth = Process::start(&["subgraph", "auth"], &env, &cwd).await;
    let users = Process::start(&["subgraph", "users"], &env, &cwd).await;
    let tenants = Process::start(&["subgraph", "tenants"], &env, &cwd).await;
    let supergraph = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql");
    // The file names compose-style URLs; --subgraph points each at where it runs here.
    let auth_url = format!("auth={}/graphql", auth.base_url);
    let users_url = format!("users={}/graphql", users.base_url);
    let tenants_url = format!("tenants={}/graphql", tenants.base_url);
    let args = [
        "router",
        "--supergraph",
        supergraph,
        "--subgraph",
        &auth_url,
        "--subgraph",
        &users_url,
        "--subgraph",
        &tenants_url,
    ];
    let router = Process::start(&args, &env, &cwd).await;
    organization_scenario(&router.graphql()).await;
    for process in [router, tenants, users, auth] {
        assert!(process.terminate().await.success());
    }
}
