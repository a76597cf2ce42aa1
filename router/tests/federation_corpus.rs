//! Runs the federation corpus (`tests/corpus/`, see `support/corpus.rs`): each supergraph is
//! loaded as `pyairtable router --supergraph FILE` would load it, its canned subgraphs are served
//! over HTTP on random ports, and every operation's response (and, where given, the subgraph
//! requests it caused) is compared with the expected one. Each case runs on the checked-in
//! supergraph (composed by Apollo's composition) and on the one our own composer makes from the
//! same subgraphs.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use pyairtable_kit::http::ReadyCheck;
use pyairtable_kit::testing::{TestServer, spawn_app};
use pyairtable_router::compose::{SubgraphSdl, compose};
use pyairtable_router::transport::HttpSubgraphs;
use pyairtable_router::{Gateway, RouterOptions, Supergraph};
use serde_json::{Value, json};
use support::canned::{Canned, serve_app};
use support::corpus::{self, Case, Operation};
use support::{ClosedPort, closed_port};

type Journal = Arc<Mutex<Vec<String>>>;

/// The case's subgraphs, served; a dead one gets the address of a closed port (reserved while
/// the returned ports live).
async fn serve_subgraphs(case: &Case, journal: &Journal) -> (Vec<(String, String)>, Vec<ClosedPort>) {
    let (mut urls, mut closed) = (Vec::new(), Vec::new());
    for subgraph in &case.subgraphs {
        let url = match &subgraph.data {
            Some(data) => {
                let canned = Canned::new(&subgraph.name, &subgraph.sdl, data.clone());
                let state = (canned, journal.clone());
                let app =
                    axum::Router::new().route("/graphql", axum::routing::post(answer)).with_state(state);
                serve_app(app).await
            }
            None => {
                let port = closed_port();
                let url = port.url.clone();
                closed.push(port);
                url
            }
        };
        urls.push((subgraph.name.clone(), url));
    }
    (urls, closed)
}

async fn answer(
    State((canned, journal)): State<(Arc<Canned>, Journal)>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    journal.lock().expect("journal").push(canned.name.clone());
    axum::Json(canned.answer(&body))
}

async fn router(
    supergraph: &str,
    urls: &[(String, String)],
    labels: &[String],
) -> Result<TestServer, String> {
    let supergraph = Supergraph::parse(supergraph).map_err(|e| e.to_string())?;
    let connector = HttpSubgraphs { key: None, urls: urls.to_vec(), http2: Vec::new() };
    let mut options =
        RouterOptions { override_labels: labels.iter().cloned().collect(), ..RouterOptions::default() };
    // A dead subgraph fails at once: no retries, so that the corpus stays fast.
    options.subgraphs.retries = 0;
    let gateway =
        Gateway::new(supergraph, connector, options.subgraphs.clone()).map_err(|e| e.to_string())?;
    let ready: ReadyCheck = Arc::new(|| Box::pin(async { Ok(()) }));
    Ok(spawn_app(pyairtable_router::app_with(Arc::new(gateway), options, ready, None)).await)
}

async fn run(server: &TestServer, operation: &Operation, journal: &Journal) -> Result<(), String> {
    journal.lock().expect("journal").clear();
    let body = json!({
        "query": operation.query,
        "variables": operation.variables,
        "operationName": operation.operation_name,
    });
    let response: Value = reqwest::Client::new()
        .post(server.graphql_url())
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    corpus::check(&operation.expect, &response)?;
    if let Some(expected) = &operation.requests {
        corpus::check_requests(expected, &journal.lock().expect("journal"))?;
    }
    Ok(())
}

/// Our composer's supergraph for the case.
fn composed_by_us(case: &Case) -> Result<String, String> {
    let urls: Vec<String> =
        case.subgraphs.iter().map(|s| format!("http://{}.corpus.invalid/graphql", s.name)).collect();
    let inputs: Vec<SubgraphSdl<'_>> = case
        .subgraphs
        .iter()
        .zip(&urls)
        .map(|(s, url)| SubgraphSdl { name: &s.name, url, sdl: &s.sdl })
        .collect();
    compose(&inputs).map_err(|e| e.to_string())
}

#[tokio::test]
async fn federation_corpus() {
    let cases = corpus::load_all(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"));
    let (mut passed, mut total, mut failures) = (0, 0, Vec::new());
    for case in &cases {
        let journal: Journal = Arc::default();
        let (urls, _closed) = serve_subgraphs(case, &journal).await;
        let supergraphs = [("apollo", Ok(case.supergraph.clone())), ("ours", composed_by_us(case))];
        for (composer, supergraph) in supergraphs {
            let mut routers: HashMap<Vec<String>, Result<TestServer, String>> = HashMap::new();
            for operation in &case.operations {
                total += 1;
                let server = match (&supergraph, routers.get(&operation.labels)) {
                    (Err(e), _) => Err(format!("composition failed: {e}")),
                    (Ok(_), Some(server)) => server.as_ref().map_err(Clone::clone).map(|_| ()),
                    (Ok(sdl), None) => {
                        let server = router(sdl, &urls, &operation.labels).await;
                        let result = server.as_ref().map(|_| ()).map_err(Clone::clone);
                        routers.insert(operation.labels.clone(), server);
                        result
                    }
                };
                let result = match server {
                    Ok(()) => match routers.get(&operation.labels) {
                        Some(Ok(server)) => run(server, operation, &journal).await,
                        _ => Err("no router".into()),
                    },
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => passed += 1,
                    Err(e) => failures.push(format!("{}/{composer}: {}: {e}", case.name, operation.title)),
                }
            }
        }
    }
    // Straight to stderr, past the test harness's capture: the count shows in every run.
    let _ = writeln!(std::io::stderr(), "federation corpus: {passed}/{total} passed");
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n\n"));
}
