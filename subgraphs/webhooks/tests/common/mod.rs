//! Helpers of the webhooks tests: the subgraph on its own over a fresh database (permissions in
//! process, as `serve` builds them), organizations announced by event, and a real receiving
//! HTTP server on 127.0.0.1.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness, TestServer, spawn_app, test_database};
use serde_json::{Value, json};
use uuid::Uuid;

/// The subgraph with loopback deliveries allowed (the receiver is on 127.0.0.1).
pub async fn harness() -> SubgraphHarness {
    harness_with(&[("PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK", "true")]).await
}

pub async fn harness_with(extra: &[(&str, &str)]) -> SubgraphHarness {
    SubgraphHarness::start_on(
        test_database().await,
        extra,
        &[pyairtable_permissions::subgraph],
        pyairtable_webhooks::subgraph,
    )
    .await
}

/// An organization owned by `owner`, as the tenants subgraph announces it.
pub async fn organization(harness: &SubgraphHarness, owner: Uuid) -> Uuid {
    let org = Uuid::now_v7();
    harness.publish("organization.created", json!({ "organization_id": org, "owner_id": owner })).await;
    org
}

/// `user` joins `org` with `role` (member, admin...), as the tenants subgraph announces it.
pub async fn join(harness: &SubgraphHarness, org: Uuid, user: Uuid, role: &str) {
    let payload =
        json!({ "organization_id": org, "invitation_id": Uuid::now_v7(), "user_id": user, "role": role });
    harness.publish("invitation.accepted", payload).await;
}

pub const CREATE: &str = "mutation($o: ID!, $i: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(organizationId: $o, input: $i) { id url enabled eventTypes secret } }";

/// Creates an endpoint for `url` receiving `types` (all when empty); returns (id, secret).
pub async fn endpoint(client: &GraphQLClient, org: Uuid, url: &str, types: &[&str]) -> (String, String) {
    let created = client.data(CREATE, json!({ "o": org, "i": { "url": url, "eventTypes": types } })).await;
    let endpoint = &created["createWebhookEndpoint"];
    (endpoint["id"].as_str().expect("id").to_owned(), endpoint["secret"].as_str().expect("secret").to_owned())
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub at: Instant,
}

/// A receiving server: records every request and answers with the scripted statuses, then 200
/// (a 3xx with `location: /elsewhere`, a 429 with `retry-after: 7`).
#[derive(Clone)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub url: String,
    _server: Arc<TestServer>,
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<u16>>()));
        let log = received.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let (log, answers) = (log.clone(), script.clone());
            async move {
                let headers = headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                log.lock().expect("log").push(Received { headers, body, at: Instant::now() });
                let status = answers.lock().expect("script").pop_front().unwrap_or(200);
                let mut headers = HeaderMap::new();
                if (300..400).contains(&status) {
                    headers.insert("location", "/elsewhere".parse().expect("value"));
                }
                if status == 429 {
                    headers.insert("retry-after", "7".parse().expect("value"));
                }
                (StatusCode::from_u16(status).expect("a status"), headers, format!("answered {status}"))
            }
        });
        let server = spawn_app(app).await;
        let url = format!("http://{}/hook", server.addr);
        Self { received, url, _server: Arc::new(server) }
    }

    pub fn count(&self) -> usize {
        self.received.lock().expect("log").len()
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }

    /// Waits until at least `n` requests arrived (at most `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        while self.count() < n {
            assert!(Instant::now() < deadline, "{} of {n} requests arrived", self.count());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.all()
    }
}

/// Verifies a received request with Python's `standardwebhooks` (the reference library).
pub async fn python_verifies(secret: &str, request: &Received) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/verify.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = json!({ "secret": secret, "headers": request.headers, "body": request.body });
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.to_string().as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("python3 finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("No module named"), "pip install standardwebhooks (.ci/run does): {stderr}");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() { Ok(()) } else { Err(format!("{text} {stderr}")) }
}

/// Polls `query` until `done` holds for its data (at most `within`).
pub async fn eventually(
    client: &GraphQLClient,
    query: &str,
    variables: Value,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let data = client.data(query, variables.clone()).await;
        if done(&data) {
            return data;
        }
        assert!(Instant::now() < deadline, "never came to pass: {data:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
