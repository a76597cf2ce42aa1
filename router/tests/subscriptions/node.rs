//! The real `graphql-ws` npm client (Node 20, `tests/compliance/subscribe.mjs`) subscribing
//! through the router, with entity fields from two other subgraphs on every event.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::graph::{Graph, Mode};
use crate::{REVIEWS, expected_review};

fn compliance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/compliance")
}

async fn installed(dir: &std::path::Path) {
    if dir.join("node_modules/graphql-ws").exists() && dir.join("node_modules/ws").exists() {
        return;
    }
    let status = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir).status().await;
    assert!(
        status.is_ok_and(|s| s.success()),
        "npm ci in {} failed (Node 20 and npm are needed)",
        dir.display()
    );
}

#[tokio::test]
async fn the_graphql_ws_npm_client_receives_events_through_the_router() {
    let dir = compliance_dir();
    installed(&dir).await;
    let graph = Graph::start(Mode::Http).await;
    let mut node = Command::new("node")
        .arg(dir.join("subscribe.mjs"))
        .args([graph.ws_url().as_str(), "pat_alice", REVIEWS, "2"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Node 20 is needed)");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("node said something in time")
            .expect("read")
            .expect("a line")
    };
    assert_eq!(next().await, r#"{"connected":true}"#);
    graph.listening(1).await;
    graph.review("p1", "from node");
    graph.review("p2", "from node again");
    for (upc, body) in [("p1", "from node"), ("p2", "from node again")] {
        let event: Value = serde_json::from_str(&next().await).expect("JSON");
        assert_eq!(event["data"], expected_review(&graph, upc, body), "{event}");
    }
    assert_eq!(next().await, "done");
    let status =
        tokio::time::timeout(Duration::from_secs(10), node.wait()).await.expect("exits").expect("status");
    assert!(status.success(), "node exited with {status}");
    // The client completed the subscription: the router let go of the subgraph's stream.
    graph.listening(0).await;
}
