//! Routers over canned subgraphs whose HTTP behaviour a test chooses (fail, hang, wait), composed
//! by our composer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, Version};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use pyairtable_kit::http::ReadyCheck;
use pyairtable_kit::testing::{TestServer, spawn_app};
use pyairtable_router::compose::{SubgraphSdl, compose};
use pyairtable_router::transport::HttpSubgraphs;
use pyairtable_router::{Authenticator, Gateway, RouterOptions, Supergraph};
use serde_json::Value;

use super::canned::Canned;

/// What a subgraph does with its n-th request (from 0): answer (`None`) or fail with a status.
pub type Behaviour = Arc<dyn Fn(usize) -> BoxFuture<'static, Option<StatusCode>> + Send + Sync>;

/// Always answers.
pub fn healthy() -> Behaviour {
    Arc::new(|_| Box::pin(async { None }))
}

/// A canned subgraph behind a behaviour, counting requests and recording each one's HTTP version
/// and client address.
pub struct Served {
    pub canned: Arc<Canned>,
    pub url: String,
    hits: Arc<AtomicUsize>,
    pub seen: Arc<std::sync::Mutex<Vec<(Version, std::net::SocketAddr)>>>,
}

impl Served {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Handler {
    canned: Arc<Canned>,
    behaviour: Behaviour,
    hits: Arc<AtomicUsize>,
    seen: Arc<std::sync::Mutex<Vec<(Version, std::net::SocketAddr)>>>,
}

async fn handle(
    State(h): State<Handler>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    h.seen.lock().expect("seen").push((request.version(), peer));
    let n = h.hits.fetch_add(1, Ordering::SeqCst);
    let bytes = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap_or_default();
    if let Some(status) = (h.behaviour)(n).await {
        return (status, "subgraph failure").into_response();
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    axum::Json(h.canned.answer(&body)).into_response()
}

/// Serves a canned subgraph with `behaviour` on a random port.
pub async fn serve(name: &str, sdl: &str, data: Value, behaviour: Behaviour) -> Served {
    let canned = Canned::new(name, sdl, data);
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handler = Handler { canned: canned.clone(), behaviour, hits: hits.clone(), seen: seen.clone() };
    let app = axum::Router::new().route("/graphql", axum::routing::post(handle)).with_state(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/graphql", listener.local_addr().expect("addr"));
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.expect("serve") });
    Served { canned, url, hits, seen }
}

/// Composes `(name, sdl)` subgraphs with our composer.
pub fn supergraph(subgraphs: &[(&str, &str)]) -> String {
    let urls: Vec<String> =
        subgraphs.iter().map(|(n, _)| format!("http://{n}.test.invalid/graphql")).collect();
    let inputs: Vec<SubgraphSdl<'_>> =
        subgraphs.iter().zip(&urls).map(|((name, sdl), url)| SubgraphSdl { name, url, sdl }).collect();
    compose(&inputs).expect("the subgraphs compose")
}

/// A router over `served` subgraphs (by name), with its gateway.
pub async fn router(
    sdl: &str,
    served: &[(&str, &Served)],
    options: RouterOptions,
    http2: &[&str],
    authenticator: Option<Arc<Authenticator>>,
) -> (TestServer, Arc<Gateway>) {
    let urls = served.iter().map(|(n, s)| ((*n).to_owned(), s.url.clone())).collect();
    let http2 = http2.iter().map(|n| (*n).to_owned()).collect();
    let connector = HttpSubgraphs { key: None, urls, http2 };
    let supergraph = Supergraph::parse(sdl).expect("supergraph");
    let gateway = Arc::new(Gateway::new(supergraph, connector, options.subgraphs.clone()).expect("gateway"));
    let ready: ReadyCheck = Arc::new(|| Box::pin(async { Ok(()) }));
    let app = pyairtable_router::app_with(gateway.clone(), options, ready, authenticator);
    (spawn_app(app).await, gateway)
}

/// POSTs a query; returns the response body.
pub async fn post(server: &TestServer, query: &str, authorization: Option<&str>) -> Value {
    let mut request =
        reqwest::Client::new().post(server.graphql_url()).json(&serde_json::json!({ "query": query }));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("router answers").json().await.expect("JSON")
}

/// The value of a Prometheus sample whose line contains every one of `parts`.
pub async fn metric(server: &TestServer, name: &str, parts: &[&str]) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (up to 20 s) until `condition` holds; false when it never did.
pub async fn eventually(mut condition: impl FnMut() -> BoxFuture<'static, bool>) -> bool {
    for _ in 0..2000 {
        if condition().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}
