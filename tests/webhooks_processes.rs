//! Webhook delivery across processes: `pyairtable subgraph webhooks` as child processes over one
//! database, delivering to a real receiver on 127.0.0.1. A process killed with SIGKILL in the
//! middle of a batch loses nothing (a restarted one delivers the rest, and every message has its
//! successful attempt in the log), and two processes share the queue without losing a message.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Process;
use common::topology::env;
use pyairtable_kit::testing::{TestDatabase, TestServer, spawn_app, test_database};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// A receiver that takes `delay` per request and records each request's `webhook-id` (in
/// `arrived` as soon as it arrives, in the returned log once answered).
async fn receiver_with(delay: Duration, arrived: Arc<Mutex<usize>>) -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let (log, arrived) = (log.clone(), arrived.clone());
        async move {
            *arrived.lock().expect("arrived") += 1;
            tokio::time::sleep(delay).await;
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
            log.lock().expect("log").push(id.to_owned());
            "ok"
        }
    });
    (spawn_app(app).await, seen)
}

async fn receiver(delay: Duration) -> (TestServer, Arc<Mutex<Vec<String>>>) {
    receiver_with(delay, Arc::default()).await
}

/// An organization with one endpoint at `url`, and `n` events for it in the outbox.
async fn seed(owner: &PgPool, url: &str, n: usize) {
    let org = Uuid::now_v7();
    sqlx::query(
        "insert into webhooks.endpoints (id, tenant_id, url, secret, created_by) values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(org)
    .bind(url)
    .bind(pyairtable_webhooks::signature::generate())
    .bind(Uuid::now_v7())
    .execute(owner)
    .await
    .expect("an endpoint");
    let mut tx = owner.begin().await.expect("begin");
    for i in 0..n {
        let payload =
            json!({ "organization_id": org, "workspace_id": Uuid::now_v7(), "name": format!("w{i}") });
        pyairtable_kit::events::publish(&mut tx, "workspace.created", &payload).await.expect("publish");
    }
    tx.commit().await.expect("commit");
}

fn webhooks_env(db: &TestDatabase, data_dir: &std::path::Path) -> HashMap<String, String> {
    let mut env = env(db.url(), data_dir);
    env.insert("PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK".into(), "true".into());
    env
}

async fn start(env: &HashMap<String, String>) -> Process {
    Process::start(&["subgraph", "webhooks"], env, &std::env::temp_dir()).await
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (messages, delivered ones, messages without a logged successful attempt, attempts logged).
async fn log(owner: &PgPool) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from webhooks.messages), \
         (select count(*) from webhooks.messages where status = 'delivered'), \
         (select count(*) from webhooks.messages m where not exists (select 1 from webhooks.attempts a \
            where a.message_id = m.id and a.status = 'succeeded')), \
         (select count(*) from webhooks.attempts)",
    )
    .fetch_one(owner)
    .await
    .expect("the log")
}

#[tokio::test]
async fn a_worker_killed_mid_batch_loses_nothing_and_a_restarted_one_resumes() {
    const N: usize = 40;
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let (server, seen) = receiver(Duration::from_millis(250)).await;
    seed(&db.pool, &format!("http://{}/hook", server.addr), N).await;
    let env = webhooks_env(&db, data_dir.path());

    let mut first = start(&env).await;
    wait_until("the first deliveries", Duration::from_secs(60), || seen.lock().expect("log").len() >= 8)
        .await;
    first.child.start_kill().expect("SIGKILL");
    first.wait().await;
    let before = seen.lock().expect("log").len();
    assert!(before < N, "killed mid-batch, not after it ({before} of {N})");
    let (messages, delivered, _, _) = log(&db.pool).await;
    assert_eq!(messages, N as i64, "every event became a message before any attempt");
    assert!(delivered < N as i64);

    let second = start(&env).await;
    let distinct = || seen.lock().expect("log").iter().cloned().collect::<BTreeSet<String>>().len();
    wait_until("every message delivered", Duration::from_secs(90), || distinct() >= N).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while log(&db.pool).await.1 < N as i64 {
        assert!(Instant::now() < deadline, "delivered but not logged: {:?}", log(&db.pool).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (messages, delivered, unlogged, attempts) = log(&db.pool).await;
    assert_eq!((messages, delivered, unlogged), (N as i64, N as i64, 0), "the log is complete");
    let received = seen.lock().expect("log").len() as i64;
    assert!(attempts <= received, "no attempt logged that the receiver did not get");
    assert_eq!(distinct(), N);
    assert!(second.terminate().await.success(), "clean exit on SIGTERM");
}

#[tokio::test]
async fn two_worker_processes_share_the_queue_without_losing_a_message() {
    const N: usize = 60;
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let (server, seen) = receiver(Duration::from_millis(20)).await;
    let env = webhooks_env(&db, data_dir.path());
    let (one, two) = (start(&env).await, start(&env).await);
    seed(&db.pool, &format!("http://{}/hook", server.addr), N).await;
    wait_until("every message delivered", Duration::from_secs(60), || seen.lock().expect("log").len() >= N)
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while log(&db.pool).await.1 < N as i64 {
        assert!(Instant::now() < deadline, "not all logged: {:?}", log(&db.pool).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = seen.lock().expect("log").clone();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (N, N), "each message sent once: the claims never overlap");
    assert_eq!(log(&db.pool).await, (N as i64, N as i64, 0, N as i64));
    assert!(one.terminate().await.success() && two.terminate().await.success());
}

#[tokio::test]
async fn on_sigterm_the_attempt_in_hand_finishes_and_is_logged() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let arrived: Arc<Mutex<usize>> = Arc::default();
    let (server, seen) = receiver_with(Duration::from_secs(2), arrived.clone()).await;
    let process = start(&webhooks_env(&db, data_dir.path())).await;
    seed(&db.pool, &format!("http://{}/hook", server.addr), 1).await;
    wait_until("the attempt", Duration::from_secs(30), || *arrived.lock().expect("arrived") == 1).await;
    process.send_sigterm();
    let mut process = process;
    assert!(process.wait().await.success(), "clean exit on SIGTERM");
    assert_eq!(seen.lock().expect("log").len(), 1, "the receiver answered before the process exited");
    assert_eq!(log(&db.pool).await, (1, 1, 0, 1), "the attempt in hand was finished and logged");
}
