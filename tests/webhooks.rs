//! Webhooks end to end through the router, in both deployment modes: an endpoint at a real
//! receiver, its messages and attempts live over a WebSocket to the owner, refused to a user of
//! another organization.

mod common;

use common::topology::{env, topology};
use common::webhooks::webhook_scenario;
use pyairtable_kit::Config;
use pyairtable_kit::testing::{GraphQLClient, test_database};

#[tokio::test]
async fn an_owners_socket_gets_messages_and_attempts_live_and_another_tenant_is_refused_in_one_process() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let dir = data_dir.path().to_str().expect("utf-8 path");
    let vars = [
        ("DATABASE_URL", db.url()),
        ("PYAIRTABLE_LISTEN", "127.0.0.1:0"),
        ("PYAIRTABLE_DATA_DIR", dir),
        ("PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK", "true"),
    ];
    let config = Config::from_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned()))).expect("config");
    let server = pyairtable::build_serve(config).await.expect("the supergraph starts").spawn();
    let router = GraphQLClient::new(format!("http://{}/graphql", server.addr));
    webhook_scenario(&router, &format!("ws://{}/graphql", server.addr)).await;
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_owners_socket_gets_messages_and_attempts_live_and_another_tenant_is_refused_across_services() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut env = env(db.url(), data_dir.path());
    env.insert("PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK".into(), "true".into());
    let t = topology(&env, &["router"]).await;
    let ws_url = format!("{}/graphql", t.router.base_url.replacen("http://", "ws://", 1));
    webhook_scenario(&t.router.graphql(), &ws_url).await;
    t.stop().await;
}
