//! The GraphQL-over-HTTP audit of the `graphql-http` npm package, and Apollo Client's
//! persisted-queries link, run with Node against a router (`tests/compliance/`). The packages
//! are installed with `npm ci` from the committed lock file when missing.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use crate::{options, start};

fn compliance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/compliance")
}

fn npm_ci(dir: &std::path::Path) {
    let packages = ["graphql-http", "@apollo/client", "graphql-ws", "ws"];
    if packages.iter().all(|p| dir.join("node_modules").join(p).exists()) {
        return;
    }
    let status = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir).status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "npm ci in {} failed (Node 20 and npm are needed)",
        dir.display()
    );
}

async fn node(script: &str, url: &str) -> String {
    let dir = compliance_dir();
    npm_ci(&dir);
    let script = dir.join(script);
    let url = url.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(script).arg(url).current_dir(dir).output()
    })
    .await
    .expect("join")
    .expect("node runs (Node 20 is needed)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "node failed:\n{stdout}\n{stderr}");
    stdout
}

#[tokio::test]
async fn the_graphql_over_http_audit_passes_every_must() {
    let edge = start(options()).await;
    let out = node("audit.mjs", &edge.url()).await;
    let summary =
        out.lines().find(|l| l.starts_with("graphql-http audit: ")).unwrap_or_else(|| panic!("{out}"));
    // Straight to the process's stdout, past the test harness's capture: CI's log shows the count.
    let _ = writeln!(std::io::stdout(), "{summary}");
}

#[tokio::test]
async fn apollo_clients_persisted_queries_link_works_against_the_router() {
    let edge = start(options()).await;
    let out = node("apq.mjs", &edge.url()).await;
    assert!(out.contains("apollo persisted queries: ok"), "{out}");
    // The first GET (hash alone) was not found; the POST with the query and the second GET ran.
    assert_eq!(edge.subgraph.headers.lock().expect("lock").len(), 2, "two operations ran");
}
