//! Canned subgraphs: a subgraph SDL and JSON data, answered by a small executor and served over
//! HTTP on a random port.

mod exec;
mod schema;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

pub use self::schema::Sdl;

/// One canned subgraph.
pub struct Canned {
    pub name: String,
    sdl: Sdl,
    data: Value,
    /// Every request, in order: query and variables.
    log: Mutex<Vec<(String, Value)>>,
}

impl Canned {
    pub fn new(name: &str, sdl: &str, data: Value) -> Arc<Self> {
        Arc::new(Self { name: name.to_owned(), sdl: Sdl::parse(sdl), data, log: Mutex::new(Vec::new()) })
    }

    /// Answers a GraphQL request body (`query`, `variables`) and records it.
    pub fn answer(&self, body: &Value) -> Value {
        let query = body.get("query").and_then(Value::as_str).unwrap_or_default();
        let variables = body.get("variables").and_then(Value::as_object).cloned().unwrap_or_default();
        self.log.lock().expect("log").push((query.to_owned(), Value::Object(variables.clone())));
        exec::execute(&self.sdl, &self.data, query, &variables)
    }

    /// The requests seen since the last call.
    pub fn take_log(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }

    /// Serves `POST /graphql` on a random local port; returns its URL.
    pub async fn serve(self: &Arc<Self>) -> String {
        let app = axum::Router::new().route("/graphql", post(handle)).with_state(self.clone());
        serve_app(app).await
    }
}

async fn handle(State(canned): State<Arc<Canned>>, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    axum::Json(canned.answer(&body))
}

/// Serves `app` on a random local port (HTTP/1.1 and h2c); returns the URL of its `/graphql`.
pub async fn serve_app(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}/graphql")
}
