//! Notifications benchmark: 10,000 `graphql-transport-ws` sockets on one router (`pyairtable
//! serve`, release build, Redis bus), each subscribed to `notificationReceived` (100 sockets for
//! each of 100 users). Each round commits one `member.joined` per user in one transaction on the
//! event log; the fan-out latency of a socket is from that commit to the socket's receipt of its
//! notification (consumer, feed item, delivery worker, bus, subscription, router, WebSocket).
//! Also the server's resident memory before and with the sockets. Run with `make
//! bench-notifications`; PostgreSQL and Redis as for the tests. Figures are only comparable
//! within one run.

use std::time::{Duration, Instant};

mod common;

use futures::{SinkExt, StreamExt};
use pyairtable_kit::testing::{GraphQLClient, redis_url, test_database};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;

const USERS: usize = 100;
const SOCKETS_PER_USER: usize = 100;
const SOCKETS: usize = USERS * SOCKETS_PER_USER;
/// Measured rounds, after one warm-up round.
const ROUNDS: usize = 10;
/// Sockets being opened at once.
const OPENING: usize = 200;
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a socket's reader reports.
enum Report {
    Received(Instant),
    Closed(String),
}

/// `pyairtable serve` on the Redis bus (a prefix of its own).
async fn serve(db_url: &str, data_dir: &std::path::Path) -> common::Server {
    let prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
    let redis = redis_url();
    let env = [
        ("REDIS_URL", redis.as_str()),
        ("PYAIRTABLE_REDIS_PREFIX", prefix.as_str()),
        // Every client of the benchmark is 127.0.0.1: the per-IP budgets would refuse it.
        ("PYAIRTABLE_RATE_LIMIT_IP", "off"),
        ("PYAIRTABLE_RATE_LIMIT_ANONYMOUS_IP", "off"),
    ];
    common::serve(db_url, data_dir, &env).await
}

/// Resident memory of a process now, in MiB.
fn rss_mib(pid: u32) -> f64 {
    common::memory_mib(pid, "VmRSS")
}

/// The users' ids and access tokens (sign-ups, a few at a time: argon2 is slow on purpose).
async fn sign_up_users(graphql: &GraphQLClient) -> Vec<(Value, String)> {
    let sign_up = "mutation($e: String!) { signUp(input: { email: $e, password: \"correct horse battery staple\", displayName: \"Bench\" }) { user { id } tokens { accessToken } } }";
    futures::stream::iter(0..USERS)
        .map(|i| async move {
            let data = graphql.data(sign_up, json!({ "e": format!("bench{i}@example.com") })).await;
            let token = data["signUp"]["tokens"]["accessToken"].as_str().expect("a token").to_owned();
            (data["signUp"]["user"]["id"].clone(), token)
        })
        .buffered(4)
        .collect()
        .await
}

/// A socket signed in with `token`, subscribed to `notificationReceived`.
async fn subscribe(ws_url: &str, token: &str) -> Socket {
    let mut request = ws_url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    let mut socket = tokio_tungstenite::connect_async(request).await.expect("the router upgrades").0;
    let init =
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await.expect("send");
    let ack = loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                break serde_json::from_str::<Value>(text.as_str()).expect("JSON");
            }
            Some(Ok(_)) => {}
            other => panic!("no connection_ack: {other:?}"),
        }
    };
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let query = "subscription { notificationReceived { id workflow title } }";
    let subscribe = json!({ "type": "subscribe", "id": "n", "payload": { "query": query } });
    socket.send(Message::text(subscribe.to_string())).await.expect("send");
    socket
}

/// Reads one socket until it closes: the receipt time of each event, pongs for pings.
async fn read(mut socket: Socket, reports: mpsc::UnboundedSender<Report>) {
    let why = loop {
        let text = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => break format!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(err)) => break err.to_string(),
            None => break "ended".to_owned(),
        };
        let at = Instant::now();
        let message: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        match message["type"].as_str() {
            Some("next") if message["payload"]["errors"].is_null() => {
                let _ = reports.send(Report::Received(at));
            }
            Some("ping") => {
                if socket.send(Message::text(json!({ "type": "pong" }).to_string())).await.is_err() {
                    break "pong refused".to_owned();
                }
            }
            _ => break format!("unexpected: {text}"),
        }
    };
    let _ = reports.send(Report::Closed(why));
}

/// Opens and subscribes a socket per token, a few hundred at a time; a reader task for each.
async fn open(ws_url: &str, tokens: &[&str], reports: &mpsc::UnboundedSender<Report>) {
    let mut opening =
        futures::stream::iter(tokens).map(|token| subscribe(ws_url, token)).buffer_unordered(OPENING);
    while let Some(socket) = opening.next().await {
        tokio::spawn(read(socket, reports.clone()));
    }
}

/// Waits (up to a minute) until the router streams `count` subscriptions.
async fn wait_for_subscriptions(http: &reqwest::Client, base: &str, count: usize) {
    let mut active = 0;
    for _ in 0..600 {
        active = active_subscriptions(http, base).await;
        if active >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{active} of {count} subscriptions active");
}

/// The router's `router_subscriptions_active` gauge.
async fn active_subscriptions(http: &reqwest::Client, base: &str) -> usize {
    let Ok(answer) = http.get(format!("{base}/metrics")).send().await else { return 0 };
    let text = answer.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("router_subscriptions_active "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as usize)
}

/// Commits one `member.joined` per user in one transaction; returns when the commit returned.
async fn notify_everyone(db: &sqlx::PgPool, org: &Value, users: &[(Value, String)]) -> Instant {
    let mut tx = db.begin().await.expect("begin");
    for (user, _) in users {
        let payload = json!({ "organization_id": org, "user_id": user, "role": "member" });
        pyairtable_kit::events::publish(&mut tx, "member.joined", &payload).await.expect("publish");
    }
    tx.commit().await.expect("commit");
    Instant::now()
}

/// Latencies of one round's receipts (ms), and the sockets that closed meanwhile.
async fn round(
    reports: &mut mpsc::UnboundedReceiver<Report>,
    committed: Instant,
    closed: &mut Vec<String>,
) -> Vec<f64> {
    let deadline = tokio::time::Instant::now() + ROUND_TIMEOUT;
    let mut latencies = Vec::with_capacity(SOCKETS);
    while latencies.len() < SOCKETS {
        match tokio::time::timeout_at(deadline, reports.recv()).await {
            Ok(Some(Report::Received(at))) => {
                latencies.push(at.saturating_duration_since(committed).as_secs_f64() * 1000.0)
            }
            Ok(Some(Report::Closed(why))) => closed.push(why),
            Ok(None) | Err(_) => break,
        }
    }
    latencies
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn line(label: &str, latencies: &[f64]) -> String {
    let mut sorted = latencies.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "{label:<10} received {:>6}/{:<6}  min {:>6.1} ms  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        sorted.len(),
        if label == "all rounds" { SOCKETS * ROUNDS } else { SOCKETS },
        sorted.first().copied().unwrap_or(f64::NAN),
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN)
    )
}

#[tokio::main]
async fn main() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut server = serve(db.url(), data_dir.path()).await;
    let pid = server.child.id().expect("running");
    let graphql = GraphQLClient::new(format!("{}/graphql", server.base));
    let ws_url = format!("{}/graphql", server.base.replace("http://", "ws://"));
    let http = reqwest::Client::new();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_mib(pid);
    let started = Instant::now();
    let users = sign_up_users(&graphql).await;
    let owner = graphql.clone().with_header("authorization", &format!("Bearer {}", users[0].1));
    let org = owner
        .data("mutation { createOrganization(input: { name: \"Bench\" }) { id } }", json!({}))
        .await["createOrganization"]["id"]
        .clone();
    let signed_up = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mib(pid);

    let started = Instant::now();
    let (tx, mut reports) = mpsc::unbounded_channel();
    let tokens: Vec<&str> =
        (0..SOCKETS_PER_USER).flat_map(|_| users.iter().map(|(_, t)| t.as_str())).collect();
    let (first_half, second_half) = tokens.split_at(SOCKETS / 2);
    open(&ws_url, first_half, &tx).await;
    wait_for_subscriptions(&http, &server.base, SOCKETS / 2).await;
    let mut opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_half = rss_mib(pid);
    let started = Instant::now();
    open(&ws_url, second_half, &tx).await;
    wait_for_subscriptions(&http, &server.base, SOCKETS).await;
    opened += started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_sockets = rss_mib(pid);

    let mut closed = Vec::new();
    let committed = notify_everyone(&db.pool, &org, &users).await;
    let warm_up = round(&mut reports, committed, &mut closed).await;
    let mut all = Vec::new();
    let mut lines = vec![line("warm-up", &warm_up)];
    for n in 1..=ROUNDS {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let committed = notify_everyone(&db.pool, &org, &users).await;
        let latencies = round(&mut reports, committed, &mut closed).await;
        lines.push(line(&format!("round {n}"), &latencies));
        all.extend(latencies);
    }
    let after = rss_mib(pid);

    println!(
        "notifications benchmark: {SOCKETS} graphql-transport-ws sockets on one router ({USERS} users x {SOCKETS_PER_USER}), Redis bus"
    );
    println!(
        "fan-out latency: the commit of {USERS} member.joined events (one transaction) -> each socket's `next`\n"
    );
    for line in &lines {
        println!("{line}");
    }
    println!("{}", line("all rounds", &all));
    println!("\nsockets closed during the rounds: {}", closed.len());
    for why in closed.iter().take(5) {
        println!("  {why}");
    }
    println!(
        "setup: {USERS} sign-ups in {:.1} s, {SOCKETS} sockets opened and subscribed in {:.1} s",
        signed_up.as_secs_f64(),
        opened.as_secs_f64()
    );
    println!(
        "pyairtable serve RSS: {idle:.0} MiB idle, {before:.0} MiB after the sign-ups (before the sockets), \
         {with_half:.0} MiB with {} open, {with_sockets:.0} MiB with {SOCKETS}, {after:.0} MiB after the rounds",
        SOCKETS / 2
    );
    println!(
        "memory per connection: {:.1} KiB (0 -> {SOCKETS} sockets), {:.1} KiB ({} -> {SOCKETS})",
        (with_sockets - before) * 1024.0 / SOCKETS as f64,
        (with_sockets - with_half) * 1024.0 / (SOCKETS / 2) as f64,
        SOCKETS / 2
    );
    let _ = server.child.start_kill();
}
