//! Rate limits: per caller, per tenant, per IP (through trusted proxies only), the anonymous
//! operations' budget, cost points, headers, and two routers sharing one budget in Redis.

use std::time::Duration;

use pyairtable_kit::config::Quota;
use serde_json::json;

use crate::{Reply, options, redis, start, unique_prefix};

const ALICE: (&str, &str) = ("authorization", "Bearer pat_alice");
const BOB: (&str, &str) = ("authorization", "Bearer pat_bob");
const CAROL: (&str, &str) = ("authorization", "Bearer pat_carol");

fn per_minute(limit: u64) -> Option<Quota> {
    Some(Quota::per_minute(limit))
}

fn assert_refused(reply: &Reply, policy: &str, retry_after: u64) {
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert_eq!(reply.code(), "RATE_LIMITED");
    let extensions = &reply.body["errors"][0]["extensions"];
    assert_eq!(extensions["policy"], policy, "{}", reply.body);
    let seconds = extensions["retryAfter"].as_u64().expect("retryAfter");
    // GCRA: one unit comes back every window/limit; a little of it has passed since the refusal.
    assert!(
        seconds <= retry_after && seconds + 2 >= retry_after,
        "retryAfter {seconds}, expected ~{retry_after}"
    );
    assert_eq!(reply.header("retry-after"), seconds.to_string());
    assert!(reply.body.get("data").is_none());
}

#[tokio::test]
async fn a_caller_over_its_budget_gets_429_with_retry_after_and_ratelimit_headers() {
    let mut options = options();
    options.edge.rate_limits.caller = per_minute(3);
    let edge = start(options).await;
    for remaining in [2, 1, 0] {
        let reply = edge.query("{ me { id } }", &[ALICE]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("ratelimit-policy"), "\"caller\";q=3;w=60");
        assert!(
            reply.header("ratelimit").starts_with(&format!("\"caller\";r={remaining};t=")),
            "{}",
            reply.header("ratelimit")
        );
    }
    // application/json or graphql-response+json alike: a rate limit is an HTTP refusal.
    assert_refused(&edge.query("{ me { id } }", &[ALICE]).await, "caller", 20);
    let accept = ("accept", "application/graphql-response+json");
    assert_refused(&edge.query("{ me { id } }", &[ALICE, accept]).await, "caller", 20);
    assert_eq!(edge.query("{ me { id } }", &[BOB]).await.status, 200, "Bob has his own budget");
}

#[tokio::test]
async fn a_tenants_users_share_its_budget() {
    let mut options = options();
    options.edge.rate_limits.tenant = per_minute(4);
    let edge = start(options).await;
    for who in [ALICE, BOB, ALICE, BOB] {
        assert_eq!(edge.query("{ me { id } }", &[who]).await.status, 200);
    }
    assert_refused(&edge.query("{ me { id } }", &[BOB]).await, "tenant", 15);
    assert_refused(&edge.query("{ me { id } }", &[ALICE]).await, "tenant", 15);
    assert_eq!(edge.query("{ me { id } }", &[CAROL]).await.status, 200, "another tenant");
}

#[tokio::test]
async fn the_ip_budget_follows_the_trusted_proxy_rules() {
    let mut options = options();
    options.edge.rate_limits.ip = per_minute(2);
    let edge = start(options.clone()).await;
    let client_a = ("x-forwarded-for", "198.51.100.7, 203.0.113.1");
    for _ in 0..2 {
        assert_eq!(edge.query("{ tags }", &[client_a]).await.status, 200);
    }
    assert_refused(&edge.query("{ tags }", &[client_a]).await, "ip", 30);
    assert_eq!(edge.query("{ tags }", &[("x-forwarded-for", "203.0.113.2")]).await.status, 200);
    // From an untrusted peer, X-Forwarded-For is ignored: every "client" is the peer.
    options.trusted_proxies = Vec::new();
    let edge = start(options).await;
    for ip in ["203.0.113.3", "203.0.113.4"] {
        assert_eq!(edge.query("{ tags }", &[("x-forwarded-for", ip)]).await.status, 200);
    }
    assert_refused(&edge.query("{ tags }", &[("x-forwarded-for", "203.0.113.5")]).await, "ip", 30);
}

#[tokio::test]
async fn anonymous_operations_have_a_strict_budget_per_ip_and_per_target_account() {
    let mut options = options();
    options.edge.rate_limits.anonymous_ip = per_minute(4);
    options.edge.rate_limits.anonymous_account = Some(Quota { limit: 2, window: Duration::from_secs(600) });
    let edge = start(options).await;
    let log_in = "mutation($e: String!) { logIn(input: { email: $e, password: \"x\" }) }";
    let as_variable = |email: &str| json!({ "query": log_in, "variables": { "e": email } });
    assert_eq!(edge.post(as_variable("ada@example.com"), &[]).await.status, 200);
    let inline = "mutation { logIn(input: { email: \" ADA@example.com\", password: \"y\" }) }";
    assert_eq!(edge.query(inline, &[]).await.status, 200, "the same account, however it is written");
    assert_refused(&edge.post(as_variable("Ada@Example.com"), &[]).await, "anonymous_account", 300);
    let reset = "mutation { requestPasswordReset(email: \"bob@example.com\") }";
    assert_eq!(edge.query(reset, &[]).await.status, 200, "another account");
    assert_eq!(edge.post(as_variable("eve@example.com"), &[]).await.status, 200);
    // Four public operations from this IP passed (the refused one charged nothing).
    assert_refused(&edge.post(as_variable("zed@example.com"), &[]).await, "anonymous_ip", 15);
    // A signed-in caller draws on the same budget for these operations.
    assert_refused(&edge.post(as_variable("zed@example.com"), &[ALICE]).await, "anonymous_ip", 15);
    assert_eq!(edge.query("{ me { id } }", &[ALICE]).await.status, 200, "other operations are not concerned");
}

#[tokio::test]
async fn cost_points_come_out_of_the_tenants_budget() {
    let mut options = options();
    options.edge.rate_limits.cost = Some(Quota::per_minute(100));
    let edge = start(options).await;
    let forty = "{ users(first: 40) { id } }";
    for (who, left) in [(ALICE, 60), (BOB, 20)] {
        let reply = edge.query(forty, &[who]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            reply.header("ratelimit").contains(&format!("\"cost\";r={left};")),
            "{}",
            reply.header("ratelimit")
        );
    }
    assert_refused(&edge.query(forty, &[ALICE]).await, "cost", 12);
    assert_eq!(edge.query("{ users(first: 20) { id } }", &[ALICE]).await.status, 200, "20 points are left");
    assert_eq!(edge.query(forty, &[CAROL]).await.status, 200, "another tenant");
}

#[tokio::test]
async fn two_routers_sharing_redis_share_every_budget() {
    let mut options = options();
    options.edge.redis_prefix = unique_prefix();
    options.edge.rate_limits.caller = per_minute(5);
    options.edge.rate_limits.anonymous_account = Some(Quota { limit: 2, window: Duration::from_secs(600) });
    let (mut first, mut second) = (options.clone(), options);
    first.redis = Some(redis().await);
    second.redis = Some(redis().await);
    let routers = [start(first).await, start(second).await];
    for i in 0..5 {
        let reply = routers[i % 2].query("{ me { id } }", &[ALICE]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            reply.header("ratelimit").starts_with(&format!("\"caller\";r={};", 4 - i)),
            "{}",
            reply.header("ratelimit")
        );
    }
    assert_refused(&routers[1].query("{ me { id } }", &[ALICE]).await, "caller", 12);
    assert_refused(&routers[0].query("{ me { id } }", &[ALICE]).await, "caller", 12);
    let reset = "mutation { requestPasswordReset(email: \"ada@example.com\") }";
    assert_eq!(routers[0].query(reset, &[]).await.status, 200);
    assert_eq!(routers[1].query(reset, &[]).await.status, 200);
    assert_refused(&routers[0].query(reset, &[]).await, "anonymous_account", 300);
}

#[tokio::test]
async fn without_redis_a_router_keeps_its_own_budget() {
    let mut options = options();
    options.edge.rate_limits.caller = per_minute(2);
    let routers = [start(options.clone()).await, start(options).await];
    for router in &routers {
        for _ in 0..2 {
            assert_eq!(router.query("{ me { id } }", &[ALICE]).await.status, 200);
        }
        assert_refused(&router.query("{ me { id } }", &[ALICE]).await, "caller", 30);
    }
}

/// A Redis server of this test's own, to stop halfway.
struct PrivateRedis(std::process::Child, u16);

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs");
        Self(child, port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn when_redis_fails_each_router_still_limits_on_its_own() {
    let server = PrivateRedis::start();
    let url = pyairtable_kit::Secret::new(format!("redis://127.0.0.1:{}", server.1));
    let mut connection = None;
    for _ in 0..50 {
        if let Ok(c) = pyairtable_kit::kit::connect_redis(&url).await {
            connection = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut options = options();
    options.edge.rate_limits.caller = per_minute(2);
    options.redis = Some(pyairtable_router::SharedRedis(connection.expect("the private Redis answers")));
    let edge = start(options).await;
    assert_eq!(edge.query("{ me { id } }", &[ALICE]).await.status, 200, "through Redis");
    drop(server);
    assert_eq!(edge.query("{ me { id } }", &[ALICE]).await.status, 200, "Redis is gone: the process decides");
    assert_eq!(edge.query("{ me { id } }", &[ALICE]).await.status, 200);
    assert_refused(&edge.query("{ me { id } }", &[ALICE]).await, "caller", 30);
    let metrics =
        reqwest::get(format!("{}/metrics", edge.base)).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("router_rate_limit_backend_errors_total"), "the failure is counted");
}
