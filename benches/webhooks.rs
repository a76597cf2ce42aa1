//! Webhooks benchmark: sustained deliveries per second from `pyairtable serve` (release build) to
//! a real HTTP receiver on 127.0.0.1 with 1, 4 and 16 endpoints, and the time from an event's
//! commit to the first attempt of each of its messages (as the receiver sees it arrive), under
//! that load and paced well below it. Events are committed to the outbox directly (as a subgraph
//! commits them: one `kit::events::publish` per event); the commit time is taken when the
//! commit returns. Run with `make bench-webhooks`; PostgreSQL as for the tests. Figures are only
//! comparable within one run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use pyairtable_kit::testing::{GraphQLClient, TestServer, spawn_app, test_database};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use common::serve;

const ENDPOINTS: [usize; 3] = [1, 4, 16];
/// Deliveries of each sustained run (events × endpoints).
const DELIVERIES: usize = 3200;
/// Events committed per transaction in the sustained run.
const BATCH: usize = 50;
/// Events of each paced run, one per transaction.
const PACED: usize = 40;

/// When the first request for each (endpoint path, workspace id) arrived.
type Arrivals = Arc<Mutex<HashMap<(String, Uuid), Instant>>>;

/// The receiver: answers 200 to everything, records the first arrival of each delivery.
async fn receiver() -> (TestServer, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let log = arrivals.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let log = log.clone();
        async move {
            let at = Instant::now();
            let body: Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(ws) = body["data"]["workspace_id"].as_str().and_then(|s| s.parse().ok()) {
                log.lock().expect("arrivals").entry((uri.path().to_owned(), ws)).or_insert(at);
            }
            "ok"
        }
    });
    (spawn_app(app).await, arrivals)
}

/// An organization of the owner with `n` endpoints at the receiver (paths `/{name}/{i}`).
struct Tenant {
    org: Uuid,
    owner: Uuid,
    paths: Vec<String>,
}

async fn tenant(client: &GraphQLClient, owner: Uuid, receiver: &str, name: &str, n: usize) -> Tenant {
    let create = "mutation($n: String!) { createOrganization(input: { name: $n }) { id } }";
    let org = client.data(create, json!({ "n": name })).await["createOrganization"]["id"].clone();
    let endpoint = "mutation($o: ID!, $i: CreateWebhookEndpointInput!) {
        createWebhookEndpoint(organizationId: $o, input: $i) { id } }";
    let paths: Vec<String> = (0..n).map(|i| format!("/{name}/{i}")).collect();
    for path in &paths {
        let input = json!({ "url": format!("{receiver}{path}"), "eventTypes": ["workspace.created"] });
        client.data(endpoint, json!({ "o": org, "i": input })).await;
    }
    Tenant { org: org.as_str().expect("id").parse().expect("a UUID"), owner, paths }
}

/// Commits `n` `workspace.created` events of the tenant in one transaction; returns their
/// workspace ids and the instant the commit returned.
async fn commit_events(db: &PgPool, tenant: &Tenant, n: usize) -> (Vec<Uuid>, Instant) {
    let mut tx = db.begin().await.expect("begin");
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let ws = Uuid::now_v7();
        let payload = json!({ "workspace_id": ws, "organization_id": tenant.org,
            "created_by": tenant.owner, "name": "bench" });
        pyairtable_kit::events::publish(&mut tx, "workspace.created", &payload).await.expect("publish");
        ids.push(ws);
    }
    tx.commit().await.expect("commit");
    (ids, Instant::now())
}

/// Waits until every (path, workspace) of `committed` has arrived; returns the last arrival and
/// each delivery's commit-to-first-attempt time.
async fn arrivals(
    arrivals: &Arrivals,
    tenant: &Tenant,
    committed: &[(Uuid, Instant)],
) -> (Instant, Vec<Duration>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        {
            let got = arrivals.lock().expect("arrivals");
            let all: Option<Vec<(Instant, Duration)>> = committed
                .iter()
                .flat_map(|(ws, at)| tenant.paths.iter().map(move |p| (p, ws, at)))
                .map(|(p, ws, at)| got.get(&(p.clone(), *ws)).map(|arrived| (*arrived, *arrived - *at)))
                .collect();
            if let Some(all) = all {
                let last = all.iter().map(|(arrived, _)| *arrived).max().expect("deliveries");
                return (last, all.into_iter().map(|(_, latency)| latency).collect());
            }
        }
        assert!(Instant::now() < deadline, "not every delivery arrived within 180 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

struct Row {
    endpoints: usize,
    rate: f64,
    loaded: Vec<Duration>,
    pace: Duration,
    paced: Vec<Duration>,
}

/// As many events as make [`DELIVERIES`], committed in batches as fast as they go; then
/// [`PACED`] events one at a time, at a quarter of the measured delivery rate at most.
async fn scenario(db: &PgPool, got: &Arrivals, tenant: &Tenant) -> Row {
    let n = tenant.paths.len();
    let started = Instant::now();
    let mut committed = Vec::new();
    for _ in 0..(DELIVERIES / n).div_ceil(BATCH) {
        let (ids, at) = commit_events(db, tenant, BATCH.min(DELIVERIES / n - committed.len())).await;
        committed.extend(ids.into_iter().map(|id| (id, at)));
    }
    let (last, mut loaded) = arrivals(got, tenant, &committed).await;
    let rate = loaded.len() as f64 / (last - started).as_secs_f64();
    let pace = Duration::from_secs_f64((4.0 * n as f64 / rate).max(0.1));
    let mut paced_events = Vec::new();
    let mut tick = tokio::time::interval(pace);
    for _ in 0..PACED {
        tick.tick().await;
        let (ids, at) = commit_events(db, tenant, 1).await;
        paced_events.push((ids[0], at));
    }
    let (_, mut paced) = arrivals(got, tenant, &paced_events).await;
    loaded.sort();
    paced.sort();
    Row { endpoints: n, rate, loaded, pace, paced }
}

fn print(rows: &[Row]) {
    println!(
        "{:>9}  {:>10}  {:>12}  {:>22}  {:>9}  {:>22}",
        "endpoints", "deliveries", "deliveries/s", "under load p50 / p99", "paced at", "paced p50 / p99"
    );
    for row in rows {
        println!(
            "{:>9}  {:>10}  {:>12.0}  {:>9.0} / {:>6.0} ms  {:>6.1}/s  {:>9.0} / {:>6.0} ms",
            row.endpoints,
            row.loaded.len(),
            row.rate,
            percentile(&row.loaded, 0.5),
            percentile(&row.loaded, 0.99),
            1.0 / row.pace.as_secs_f64(),
            percentile(&row.paced, 0.5),
            percentile(&row.paced, 0.99),
        );
    }
}

#[tokio::main]
async fn main() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut server =
        serve(db.url(), data_dir.path(), &[("PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK", "true")]).await;
    let graphql = GraphQLClient::new(format!("{}/graphql", server.base));
    let sign_up = "mutation { signUp(input: { email: \"bench@example.com\", password: \"correct horse battery staple\", displayName: \"Bench\" }) { user { id } tokens { accessToken } } }";
    let signed = graphql.data(sign_up, json!({})).await["signUp"].clone();
    let token = signed["tokens"]["accessToken"].as_str().expect("token");
    let owner: Uuid = signed["user"]["id"].as_str().expect("id").parse().expect("a UUID");
    let client = graphql.clone().with_header("authorization", &format!("Bearer {token}"));
    let (receiver, got) = receiver().await;
    let base = format!("http://{}", receiver.addr);
    println!("webhooks benchmark: pyairtable serve (release) to a receiver on 127.0.0.1 answering 200");
    println!(
        "sustained: {DELIVERIES} deliveries (events in transactions of {BATCH}); paced: {PACED} events, \
         one per transaction;\nlatency = event commit to the first attempt's arrival at the receiver\n"
    );
    let mut rows = Vec::new();
    for n in ENDPOINTS {
        let tenant = tenant(&client, owner, &base, &format!("bench{n}"), n).await;
        rows.push(scenario(&db.pool, &got, &tenant).await);
    }
    print(&rows);
    let _ = server.child.start_kill();
}
