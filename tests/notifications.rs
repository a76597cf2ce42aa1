//! Notifications end to end through the router, in both deployment modes: an invitation by
//! email and live over a WebSocket to the invitee only.

mod common;

use common::notifications::notification_scenario;
use common::topology::{env, topology};
use pyairtable_kit::Config;
use pyairtable_kit::testing::{GraphQLClient, test_database};

#[tokio::test]
async fn an_invitation_is_mailed_and_reaches_the_invitees_socket_live_in_one_process() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let dir = data_dir.path().to_str().expect("utf-8 path");
    let vars =
        [("DATABASE_URL", db.url()), ("PYAIRTABLE_LISTEN", "127.0.0.1:0"), ("PYAIRTABLE_DATA_DIR", dir)];
    let config = Config::from_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned()))).expect("config");
    let server = pyairtable::build_serve(config).await.expect("the supergraph starts").spawn();
    let router = GraphQLClient::new(format!("http://{}/graphql", server.addr));
    notification_scenario(&router, &format!("ws://{}/graphql", server.addr), data_dir.path()).await;
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_invitation_is_mailed_and_reaches_the_invitees_socket_live_across_services() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let t = topology(&env(db.url(), data_dir.path()), &["router"]).await;
    let ws_url = format!("{}/graphql", t.router.base_url.replacen("http://", "ws://", 1));
    notification_scenario(&t.router.graphql(), &ws_url, data_dir.path()).await;
    t.stop().await;
}
