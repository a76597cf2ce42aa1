//! Router benchmark: constant concurrent load on the one-process supergraph, side by side with the
//! same subgraph served directly. Prints requests per second, p50/p99 latency and the ratios.
//!
//! Run with `make bench` (release build). PostgreSQL as for the tests: `PYAIRTABLE_TEST_DATABASE_URL`
//! or a private cluster. Figures are only comparable within one run.

use std::time::{Duration, Instant};

use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness, test_database};
use pyairtable_kit::{Caller, Config};
use serde_json::{Value, json};

const CONCURRENCY: usize = 32;
const DURATION: Duration = Duration::from_secs(8);
const MEMBERS: usize = 20;

const ONE_SUBGRAPH: &str = "query($id: ID!) { organization(id: $id) { name members { role joinedAt } } }";
const TWO_SUBGRAPHS: &str =
    "query($id: ID!) { organization(id: $id) { name members { role joinedAt user { displayName email } } } }";

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(client: &GraphQLClient, query: &'static str, variables: Value) -> Figures {
    let deadline = Instant::now() + DURATION;
    // Collected, so that every worker is spawned before the first is awaited.
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, variables) = (client.clone(), variables.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let (status, body) = client.send(query, variables.clone()).await;
                    assert!(status == 200 && body.get("errors").is_none(), "{body}");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("load worker"));
    }
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Figures { rps: all.len() as f64 / DURATION.as_secs_f64(), p50: at(0.50), p99: at(0.99) }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn print(name: &str, f: &Figures) {
    println!("{name:<44} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms", f.rps, ms(f.p50), ms(f.p99));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let db = test_database().await;
    let vars =
        [("DATABASE_URL", db.url()), ("PYAIRTABLE_LISTEN", "127.0.0.1:0"), ("PYAIRTABLE_LOG", "error")];
    let config = Config::from_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned()))).expect("config");
    let server = pyairtable::build_serve(config).await.expect("supergraph").spawn();
    let router = GraphQLClient::new(format!("http://{}/graphql", server.addr));
    let org_id = seed(&router).await;
    let variables = json!({ "id": org_id });

    // The tenants subgraph alone, over HTTP, on the same PostgreSQL server with the same data: the
    // baseline without a router.
    let direct = SubgraphHarness::start(pyairtable_tenants::subgraph).await;
    let direct_client = direct.client(&Caller::anonymous());
    let member_ids = (0..MEMBERS).map(|_| json!(uuid::Uuid::now_v7())).collect();
    let direct_org = organization(&direct_client, member_ids).await;

    let rss_before = rss_mib();
    println!(
        "concurrency {CONCURRENCY}, {} s per scenario, organization with {MEMBERS} members\n",
        DURATION.as_secs()
    );
    let baseline = load(&direct_client, ONE_SUBGRAPH, json!({ "id": direct_org })).await;
    print("tenants subgraph directly (no router)", &baseline);
    let one = load(&router, ONE_SUBGRAPH, variables.clone()).await;
    print("router, one subgraph", &one);
    let two = load(&router, TWO_SUBGRAPHS, variables).await;
    print("router, two subgraphs (entity fetch)", &two);
    println!();
    println!("router overhead, one subgraph:      {:.2}x the direct throughput", one.rps / baseline.rps);
    println!("entity fetch cost, two vs one:      {:.2}x the throughput", two.rps / one.rps);
    println!("process RSS: {rss_before:.0} MiB before load, {:.0} MiB after", rss_mib());
    server.stop().await.expect("stop");
}

/// Users and an organization with all of them as members, through the router; returns its id.
async fn seed(router: &GraphQLClient) -> Value {
    let mut ids = Vec::new();
    for i in 0..MEMBERS {
        let email = format!("member{i}-{}@example.com", uuid::Uuid::now_v7().simple());
        let created = router
            .data(
                "mutation($e: String!, $n: String!) { createUser(input: { email: $e, displayName: $n }) { id } }",
                json!({ "e": email, "n": format!("Member {i}") }),
            )
            .await;
        ids.push(created["createUser"]["id"].clone());
    }
    organization(router, ids).await
}

/// An organization owned by the first user with the others as members; returns its id.
async fn organization(client: &GraphQLClient, ids: Vec<Value>) -> Value {
    let org = client
        .data(
            "mutation($o: ID!, $s: String!) { createOrganization(input: { name: \"Bench\", slug: $s, ownerId: $o }) { id } }",
            json!({ "o": ids[0], "s": format!("bench-{}", uuid::Uuid::now_v7().simple()) }),
        )
        .await["createOrganization"]["id"]
        .clone();
    for id in &ids[1..] {
        client
            .data(
                "mutation($o: ID!, $u: ID!) { addOrganizationMember(input: { organizationId: $o, userId: $u, role: MEMBER }) { role } }",
                json!({ "o": org, "u": id }),
            )
            .await;
    }
    org
}
