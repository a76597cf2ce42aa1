//! The production topology exactly as docker-compose.yml wires it (see `common::compose`), on the
//! machine's PostgreSQL and Redis and a real SMTP server; SIGTERM to a subgraph and then to the
//! router while clients keep calling: every request accepted before a signal is answered.
//!
//! Requests are held in flight deterministically: the test locks the table they read, waits until
//! PostgreSQL shows them waiting for the lock, sends the signal, waits until the process stops
//! accepting connections, and only then releases the lock.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::compose::{Infrastructure, Stack};
use common::{bearer, sign_up};
use pyairtable_kit::testing::{GraphQLClient, redis_url, smtp_server, test_database};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

/// What a load client saw.
#[derive(Debug, Default)]
struct Outcomes {
    answered: usize,
    /// Connection refused or closed before an answer: allowed once the router was told to stop.
    refused_after_signal: usize,
    /// Anything else is a failure of the test.
    wrong: Vec<String>,
}

/// Calls `query` in a loop until `stop`, classifying each result.
async fn load(
    client: reqwest::Client,
    url: String,
    token: String,
    query: &'static str,
    signalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    while !stop.load(Ordering::Relaxed) {
        let sent = client.post(&url).bearer_auth(&token).json(&json!({ "query": query })).send().await;
        let after_signal = signalled.load(Ordering::Relaxed);
        let body = match sent {
            Ok(response) => response.json::<Value>().await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match body {
            Ok(body) if body.get("errors").is_none() && body["data"].is_object() => outcomes.answered += 1,
            Ok(body) => outcomes.wrong.push(format!("an error answer: {body}")),
            Err(_) if after_signal => {
                outcomes.refused_after_signal += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(err) => outcomes.wrong.push(format!("failed before any signal: {err}")),
        }
    }
    outcomes
}

/// Locks `table` in a transaction of its own; released when the connection commits or drops.
async fn lock(db_url: &str, table: &str) -> PgConnection {
    let mut conn = PgConnection::connect(db_url).await.expect("connect");
    sqlx::query("begin").execute(&mut conn).await.expect("begin");
    sqlx::query(sqlx::AssertSqlSafe(format!("lock table {table} in access exclusive mode")))
        .execute(&mut conn)
        .await
        .expect("lock");
    conn
}

/// Waits until `n` requests are in the hands of `process` (its `http_requests_in_flight`
/// gauge, which also counts the scrape itself).
async fn wait_in_flight(process: &common::Process, service: &str, n: u64) {
    let series = format!("http_requests_in_flight{{service=\"{service}\"}} ");
    let mut seen = 0;
    for _ in 0..600 {
        let (_, metrics) = common::get(&format!("{}/metrics", process.base_url)).await;
        seen = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64);
        if seen > n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{service}: {n} requests never arrived ({seen} in flight, the scrape included)");
}

/// Sends each query and returns them still running. They differ, so that the router's
/// deduplication of identical in-flight fetches does not merge them into one subgraph request.
fn held(
    client: &GraphQLClient,
    queries: &[&'static str],
    variables: Value,
) -> Vec<tokio::task::JoinHandle<(u16, Value)>> {
    queries
        .iter()
        .map(|query| {
            let (client, variables, query) = (client.clone(), variables.clone(), *query);
            tokio::spawn(async move { client.send(query, variables).await })
        })
        .collect()
}

async fn assert_answered(requests: Vec<tokio::task::JoinHandle<(u16, Value)>>, what: &str) {
    for request in requests {
        let (status, body) = request.await.expect("request task");
        assert!(
            status == 200 && body.get("errors").is_none(),
            "{what}: an accepted request failed: {status} {body}"
        );
    }
}

#[tokio::test]
async fn sigterm_during_load_loses_no_accepted_request() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mail = tempfile::tempdir().expect("mail dir");
    let (_smtp, smtp_port) = smtp_server("accept", mail.path()).await;
    let infra = Infrastructure {
        database_url: db.url().to_owned(),
        redis_url: redis_url(),
        smtp_url: format!("smtp://127.0.0.1:{smtp_port}"),
        data_dir: data_dir.path().to_owned(),
    };
    let mut stack = Stack::up(&infra).await;
    let names: Vec<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"migrate"), "migrations run first: {names:?}");
    assert_eq!(names.get(1), Some(&"permissions"), "then permissions: {names:?}");
    assert_eq!(names.last(), Some(&"router"), "the router last: {names:?}");

    let router = stack.process("router").graphql();
    let (_, token, _) = sign_up(&router, "ada@example.com", "Ada").await;
    let ada = bearer(&router, &token);
    assert_eq!(ada.data("{ me { displayName } }", json!({})).await["me"]["displayName"], "Ada");
    let org = ada.data("mutation { createOrganization(input: { name: \"Acme\" }) { id } }", json!({})).await;
    let org_id = org["createOrganization"]["id"].clone();

    // Load on the auth subgraph, through the router, for the whole test.
    let (signalled, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let url = format!("{}/graphql", stack.process("router").base_url);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (signalled, stop) = (signalled.clone(), stop.clone());
            tokio::spawn(load(
                reqwest::Client::new(),
                url.clone(),
                token.clone(),
                "{ mySessions { id } }",
                signalled,
                stop,
            ))
        })
        .collect();

    // A subgraph told to stop answers what it accepted.
    let users_lock = lock(db.url(), "users.users").await;
    let me = ["{ me { displayName } }", "{ me { id displayName } }", "{ me { displayName email } }"];
    let requests = held(&ada, &me, json!({}));
    wait_in_flight(stack.process("users"), "users", 3).await;
    let mut users = stack.take("users");
    users.send_sigterm();
    users.wait_until_refusing().await;
    users_lock.close().await.expect("release users.users");
    assert_answered(requests, "users subgraph").await;
    assert!(users.wait().await.success(), "users: clean exit:\n{}", users.stderr().await);

    // The router told to stop answers what it accepted.
    let tenants_lock = lock(db.url(), "tenants.organizations").await;
    let read_org = [
        "query($id: ID!) { organization(id: $id) { name } }",
        "query($id: ID!) { organization(id: $id) { id name } }",
        "query($id: ID!) { organization(id: $id) { name slug } }",
    ];
    let requests = held(&ada, &read_org, json!({ "id": org_id }));
    wait_in_flight(stack.process("tenants"), "tenants", 3).await;
    let mut router_process = stack.take("router");
    signalled.store(true, Ordering::Relaxed);
    router_process.send_sigterm();
    router_process.wait_until_refusing().await;
    tenants_lock.close().await.expect("release tenants.organizations");
    assert_answered(requests, "router").await;
    let status = router_process.wait().await;
    assert!(status.success(), "router: clean exit:\n{}", router_process.stderr().await);

    stop.store(true, Ordering::Relaxed);
    let mut answered = 0;
    for client in clients {
        let outcomes = client.await.expect("load client");
        assert!(outcomes.wrong.is_empty(), "{outcomes:?}");
        answered += outcomes.answered;
    }
    assert!(answered > 0, "the load ran");
    stack.down().await;
}
