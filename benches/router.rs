//! Router benchmark: constant concurrent load on the one-process supergraph, side by side with the
//! same subgraph served directly. Prints requests per second, p50/p99 latency and the ratios.
//!
//! Run with `make bench` (release build). PostgreSQL as for the tests: `PYAIRTABLE_TEST_DATABASE_URL`
//! or a private cluster. Figures are only comparable within one run.

use std::time::{Duration, Instant};

mod common;

use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness, test_database};
use pyairtable_kit::{Caller, Config};
use serde_json::{Value, json};

const CONCURRENCY: usize = 32;
const DURATION: Duration = Duration::from_secs(8);
const MEMBERS: usize = 20;

const ONE_SUBGRAPH: &str = "query($id: ID!) { organization(id: $id) { id name slug createdAt } }";
/// tenants → permissions (members) → users (`_entities` for every member).
const THREE_SUBGRAPHS: &str = "query($id: ID!) { organization(id: $id) { name
    members(first: 50) { edges { node { role joinedAt user { displayName email } } } } } }";

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
    common::memory_mib("self", "VmRSS")
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
    let data_dir = tempfile::tempdir().expect("data dir");
    let data = data_dir.path().display().to_string();
    // The rate limits run (their cost is part of the figures) with budgets the load cannot spend.
    let unlimited = "1000000000/1h";
    let vars = [
        ("DATABASE_URL", db.url()),
        ("PYAIRTABLE_LISTEN", "127.0.0.1:0"),
        ("PYAIRTABLE_LOG", "error"),
        ("PYAIRTABLE_DATA_DIR", data.as_str()),
        ("PYAIRTABLE_RATE_LIMIT_CALLER", unlimited),
        ("PYAIRTABLE_RATE_LIMIT_TENANT", unlimited),
        ("PYAIRTABLE_RATE_LIMIT_IP", unlimited),
        ("PYAIRTABLE_COST_BUDGET", unlimited),
    ];
    let config = Config::from_vars(vars.map(|(k, v)| (k.to_owned(), v.to_owned()))).expect("config");
    let server = pyairtable::build_serve(config).await.expect("supergraph").spawn();
    let anonymous = GraphQLClient::new(format!("http://{}/graphql", server.addr));
    let (router, org_id) = seed(&anonymous, &data_dir.path().join("outbox")).await;
    let variables = json!({ "id": org_id });

    // The tenants subgraph alone, over HTTP (its authorization decided in process, as in `serve`),
    // on the same PostgreSQL server: the baseline without a router.
    let direct =
        SubgraphHarness::start_after(&[pyairtable_permissions::subgraph], pyairtable_tenants::subgraph).await;
    let direct_client = direct.client(&Caller::user(uuid::Uuid::now_v7()));
    let direct_org = organization(&direct_client).await;

    let rss_before = rss_mib();
    println!(
        "concurrency {CONCURRENCY}, {} s per scenario, organization with {MEMBERS} members\n",
        DURATION.as_secs()
    );
    let baseline = load(&direct_client, ONE_SUBGRAPH, json!({ "id": direct_org })).await;
    print("tenants subgraph directly (no router)", &baseline);
    let one = load(&router, ONE_SUBGRAPH, variables.clone()).await;
    print("router, one subgraph", &one);
    let three = load(&router, THREE_SUBGRAPHS, variables).await;
    print("router, three subgraphs (members, users)", &three);
    println!();
    println!("router overhead, one subgraph:      {:.2}x the direct throughput", one.rps / baseline.rps);
    println!("entity fetches, three vs one:       {:.2}x the throughput", three.rps / one.rps);
    println!("process RSS: {rss_before:.0} MiB before load, {:.0} MiB after", rss_mib());
    server.stop().await.expect("stop");
}

/// Users signed up through the router, an organization of the first, the others invited by
/// email (links read from `outbox`) and accepted; the first user's client and the organization.
async fn seed(anonymous: &GraphQLClient, outbox: &std::path::Path) -> (GraphQLClient, Value) {
    let sign_up = "mutation($e: String!, $n: String!) {
        signUp(input: { email: $e, password: \"bench password 123\", displayName: $n }) { tokens { accessToken } } }";
    let bearer = |token: &str| anonymous.clone().with_header("authorization", &format!("Bearer {token}"));
    let mut people = Vec::new();
    for i in 0..MEMBERS {
        let email = format!("member{i}-{}@example.com", uuid::Uuid::now_v7().simple());
        let data = anonymous.data(sign_up, json!({ "e": email, "n": format!("Member {i}") })).await;
        people.push((email, bearer(data["signUp"]["tokens"]["accessToken"].as_str().unwrap_or_default())));
    }
    let owner = people[0].1.clone();
    let org = organization(&owner).await;
    let invite = "mutation($o: ID!, $e: String!) { inviteMember(input: { organizationId: $o, email: $e, role: MEMBER }) { id } }";
    for (email, client) in &people[1..] {
        owner.data(invite, json!({ "o": org, "e": email })).await;
        let mails = pyairtable_kit::testing::outbox(outbox);
        let mail = mails.iter().rev().find(|m| &m.to == email).expect("an invitation");
        let token =
            mail.text.split("token=").nth(1).and_then(|t| t.split_whitespace().next()).expect("a link");
        client
            .data("mutation($t: String!) { acceptInvitation(token: $t) { id } }", json!({ "t": token }))
            .await;
    }
    (owner, org)
}

/// An organization of the client's caller; returns its id.
async fn organization(client: &GraphQLClient) -> Value {
    client
        .data(
            "mutation($s: String!) { createOrganization(input: { name: \"Bench\", slug: $s }) { id } }",
            json!({ "s": format!("bench-{}", uuid::Uuid::now_v7().simple()) }),
        )
        .await["createOrganization"]["id"]
        .clone()
}
