//! Delivery to a real receiving server on 127.0.0.1: domain events become signed messages that
//! the Standard Webhooks reference library (Python) verifies, during a rotation too; retries on
//! 500 stop at the first 2xx; 410 and sustained failure disable the endpoint with an operational
//! event; replays of one message and of everything since a time; a receiver that never answers
//! is cut off after 15 s and retried.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Receiver, endpoint, eventually, harness, organization, python_verifies};
use pyairtable_kit::Caller;
use pyairtable_kit::testing::SubgraphHarness;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const MESSAGES: &str = "query($id: ID!) { webhookEndpoint(id: $id) { enabled disabledReason
    messages(first: 20) { totalCount edges { node { id webhookId eventType status attemptCount payload
    attempts(first: 10) { totalCount edges { node { succeeded responseStatus latencyMs responseBody error } } } } } } } }";

async fn workspace_created(harness: &SubgraphHarness, org: Uuid, name: &str) -> Uuid {
    let ws = Uuid::now_v7();
    harness
        .publish("workspace.created", json!({ "organization_id": org, "workspace_id": ws, "name": name }))
        .await;
    ws
}

fn messages(data: &Value) -> Vec<Value> {
    data["webhookEndpoint"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

#[tokio::test]
async fn events_become_signed_messages_that_the_reference_library_verifies() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let receiver = Receiver::start(&[]).await;
    let (id, secret) = endpoint(&client, org, &receiver.url, &["workspace.created"]).await;
    let other = organization(&harness, Uuid::now_v7()).await;
    workspace_created(&harness, other, "Not ours").await;
    harness.publish("member.invited", json!({ "organization_id": org, "email": "x@example.com" })).await;
    let ws = workspace_created(&harness, org, "Roadmap").await;

    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    let first = &got[0];
    let body: Value = serde_json::from_str(&first.body).expect("a JSON body");
    assert_eq!((&body["type"], &body["data"]["workspace_id"]), (&json!("workspace.created"), &json!(ws)));
    assert!(first.headers["webhook-id"].starts_with("msg_"), "{:?}", first.headers);
    assert_eq!(first.headers["content-type"], "application/json");
    python_verifies(&secret, first).await.expect("the reference library verifies it");
    let mut headers = http::HeaderMap::new();
    for (name, value) in &first.headers {
        headers
            .insert(http::HeaderName::try_from(name.as_str()).expect("name"), value.parse().expect("value"));
    }
    let now = chrono::Utc::now().timestamp();
    assert_eq!(pyairtable_webhooks::verify(&secret, &headers, first.body.as_bytes(), now), Ok(()));

    let rotate = "mutation($id: ID!) { rotateWebhookEndpointSecret(id: $id) { secret } }";
    let rotated =
        client.data(rotate, json!({ "id": id })).await["rotateWebhookEndpointSecret"]["secret"].clone();
    let new_secret = rotated.as_str().expect("secret");
    workspace_created(&harness, org, "Hiring").await;
    let second = receiver.wait_for(2, Duration::from_secs(20)).await[1].clone();
    assert_eq!(second.headers["webhook-signature"].split(' ').count(), 2, "both secrets sign");
    python_verifies(&secret, &second).await.expect("the old secret still verifies");
    python_verifies(new_secret, &second).await.expect("the new secret verifies");
    let foreign = pyairtable_webhooks::signature::generate();
    assert!(python_verifies(&foreign, &second).await.is_err(), "another secret does not");

    let log = client.data(MESSAGES, json!({ "id": id })).await;
    assert_eq!(log["webhookEndpoint"]["messages"]["totalCount"], 2, "filtered and tenant-scoped");
    let delivered = &messages(&log)[0];
    assert_eq!((&delivered["status"], &delivered["attemptCount"]), (&json!("DELIVERED"), &json!(1)));
    assert_eq!(delivered["webhookId"].as_str(), Some(first.headers["webhook-id"].as_str()));
    let attempt = &delivered["attempts"]["edges"][0]["node"];
    assert_eq!((&attempt["responseStatus"], &attempt["responseBody"]), (&json!(200), &json!("answered 200")));
    assert_eq!(receiver.count(), 2, "nothing else was sent");
}

#[tokio::test]
async fn a_500_is_retried_on_the_schedule_and_the_first_2xx_ends_it() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let receiver = Receiver::start(&[500]).await;
    let (id, _) = endpoint(&client, org, &receiver.url, &[]).await;
    workspace_created(&harness, org, "Roadmap").await;
    let got = receiver.wait_for(2, Duration::from_secs(30)).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_secs(4) && gap <= Duration::from_secs(8),
        "the second attempt after 5 s ± 20 %: {gap:?}"
    );
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"], "one message, two attempts");
    let log = eventually(&client, MESSAGES, json!({ "id": id }), Duration::from_secs(10), |d| {
        messages(d).first().is_some_and(|m| m["status"] == "DELIVERED")
    })
    .await;
    let message = &messages(&log)[0];
    assert_eq!(message["attemptCount"], 2);
    let statuses: Vec<&Value> = message["attempts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["responseStatus"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(200)]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count(), 2, "no attempt after the 2xx");
}

/// Operational events the subgraph published (read as the owner of the database).
async fn disabled_events(owner: &PgPool, endpoint: &str) -> Vec<Value> {
    sqlx::query_scalar("select payload from kit.events where topic = 'webhook.endpoint_disabled' and payload->>'endpoint_id' = $1")
        .bind(endpoint)
        .fetch_all(owner)
        .await
        .expect("events")
}

#[tokio::test]
async fn gone_and_sustained_failure_disable_the_endpoint_and_say_so() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let owner = PgPool::connect(harness.db.url()).await.expect("owner pool");
    let gone = Receiver::start(&[410]).await;
    let (gone_id, _) = endpoint(&client, org, &gone.url, &["workspace.created"]).await;
    workspace_created(&harness, org, "Roadmap").await;
    gone.wait_for(1, Duration::from_secs(20)).await;
    let log = eventually(&client, MESSAGES, json!({ "id": gone_id }), Duration::from_secs(10), |d| {
        d["webhookEndpoint"]["enabled"] == false
    })
    .await;
    assert!(log["webhookEndpoint"]["disabledReason"].as_str().is_some_and(|r| r.contains("410")), "{log}");
    assert_eq!(messages(&log)[0]["status"], "FAILED");
    assert_eq!(disabled_events(&owner, &gone_id).await.len(), 1);

    let failing = Receiver::start(&[500, 500, 500]).await;
    let (failing_id, _) = endpoint(&client, org, &failing.url, &["workspace.created"]).await;
    let test = "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { succeeded responseStatus } }";
    let attempt = client.data(test, json!({ "id": failing_id })).await["sendTestWebhook"].clone();
    assert_eq!((&attempt["succeeded"], &attempt["responseStatus"]), (&json!(false), &json!(500)));
    let failing_uuid: Uuid = failing_id.parse().expect("uuid");
    sqlx::query("update webhooks.endpoints set failing_since = now() - interval '6 days' where id = $1")
        .bind(failing_uuid)
        .execute(&owner)
        .await
        .expect("age the failure streak");
    client.data(test, json!({ "id": failing_id })).await;
    let log = client.data(MESSAGES, json!({ "id": failing_id })).await;
    assert_eq!(log["webhookEndpoint"]["enabled"], false, "{log}");
    assert!(
        log["webhookEndpoint"]["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("every attempt failed since"))
    );
    let events = disabled_events(&owner, &failing_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["organization_id"], json!(org));
    let replay = "mutation($id: ID!) { replayWebhookMessage(messageId: $id) { id } }";
    let message = messages(&log)[0]["id"].clone();
    assert_eq!(client.error_code(replay, json!({ "id": message })).await, "ENDPOINT_DISABLED");
}

#[tokio::test]
async fn one_message_or_everything_since_a_time_is_replayed() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let receiver = Receiver::start(&[]).await;
    let (id, _) = endpoint(&client, org, &receiver.url, &[]).await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    for name in ["A", "B", "C"] {
        workspace_created(&harness, org, name).await;
    }
    let first = receiver.wait_for(3, Duration::from_secs(20)).await[0].clone();
    let log = client.data(MESSAGES, json!({ "id": id })).await;
    let message = messages(&log)
        .into_iter()
        .find(|m| m["webhookId"] == first.headers["webhook-id"].as_str())
        .expect("message");
    let replay = "mutation($id: ID!) { replayWebhookMessage(messageId: $id) { id } }";
    client.data(replay, json!({ "id": message["id"] })).await;
    let again = receiver.wait_for(4, Duration::from_secs(20)).await[3].clone();
    assert_eq!(again.headers["webhook-id"], first.headers["webhook-id"], "the same message, attempted again");
    assert_eq!(again.body, first.body);
    let since = "mutation($id: ID!, $t: DateTime!) { replayWebhookEndpoint(endpointId: $id, since: $t) }";
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(
        client.data(since, json!({ "id": id, "t": later.to_rfc3339() })).await["replayWebhookEndpoint"],
        0
    );
    assert_eq!(
        client.data(since, json!({ "id": id, "t": start.to_rfc3339() })).await["replayWebhookEndpoint"],
        3
    );
    receiver.wait_for(7, Duration::from_secs(20)).await;
    let log = client.data(MESSAGES, json!({ "id": id })).await;
    let attempts: i64 =
        messages(&log).iter().map(|m| m["attempts"]["totalCount"].as_i64().unwrap_or(0)).sum();
    assert_eq!(attempts, 7, "every attempt is in the log");
}

#[tokio::test]
async fn retry_after_is_honoured_and_redirects_are_not_followed() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let receiver = Receiver::start(&[429, 302]).await;
    let (id, _) = endpoint(&client, org, &receiver.url, &[]).await;
    let test = "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { succeeded responseStatus } }";
    let attempt = client.data(test, json!({ "id": id })).await["sendTestWebhook"].clone();
    assert_eq!((&attempt["succeeded"], &attempt["responseStatus"]), (&json!(false), &json!(429)));
    // The schedule says 5 s ± 20 %; the 429's Retry-After says 7 s.
    let got = receiver.wait_for(2, Duration::from_secs(30)).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_secs(7) && gap < Duration::from_secs(10), "Retry-After honoured: {gap:?}");
    let log = eventually(&client, MESSAGES, json!({ "id": id }), Duration::from_secs(10), |d| {
        messages(d).first().is_some_and(|m| m["attemptCount"] == 2)
    })
    .await;
    let message = &messages(&log)[0];
    assert_eq!((&message["eventType"], &message["status"]), (&json!("webhook.test"), &json!("PENDING")));
    let redirect = &message["attempts"]["edges"][1]["node"];
    assert_eq!((&redirect["succeeded"], &redirect["responseStatus"]), (&json!(false), &json!(302)));
    let error = redirect["error"].as_str().unwrap_or_default();
    assert!(error.contains("redirect (302 Found) not followed"), "{error}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.count(), 2, "the redirect was not followed");
}

#[tokio::test]
async fn an_event_makes_its_messages_once_and_rows_need_their_tenant_scope() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let receiver = Receiver::start(&[]).await;
    let (id, _) = endpoint(&client, org, &receiver.url, &[]).await;
    workspace_created(&harness, org, "Once").await;
    receiver.wait_for(1, Duration::from_secs(20)).await;
    let owner = PgPool::connect(harness.db.url()).await.expect("owner pool");
    // Replaying the outbox from the start (a cursor lost) makes no second message, and nothing
    // of what happened before the endpoint existed.
    sqlx::query("update kit.event_cursors set position = 0 where consumer = 'webhooks.fanout'")
        .execute(&owner)
        .await
        .expect("rewind the cursor");
    harness.publish("member.invited", json!({ "organization_id": org, "email": "x@example.com" })).await;
    receiver.wait_for(2, Duration::from_secs(20)).await;
    let log = client.data(MESSAGES, json!({ "id": id })).await;
    assert_eq!(log["webhookEndpoint"]["messages"]["totalCount"], 2, "{log}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 2);
    // Row-level security: the services' role sees nothing without a tenant scope.
    let mut tx = owner.begin().await.expect("begin");
    sqlx::query("set local role pyairtable_app").execute(&mut *tx).await.expect("become the app role");
    for table in ["endpoints", "messages", "queue", "attempts"] {
        let sql = format!("select count(*) from webhooks.{table}");
        let seen: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *tx).await.expect("count");
        assert_eq!(seen, 0, "webhooks.{table} without a scope");
    }
}

/// A receiver that never answers its first request (it reads it, then waits forever) and
/// answers 200 after that; returns its URL and when each request arrived.
async fn silent_first() -> (pyairtable_kit::testing::TestServer, Arc<Mutex<Vec<Instant>>>) {
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = arrivals.clone();
    let app = axum::Router::new().fallback(move |_body: String| {
        let log = log.clone();
        async move {
            let first = {
                let mut log = log.lock().expect("arrivals");
                log.push(Instant::now());
                log.len() == 1
            };
            if first {
                std::future::pending::<()>().await;
            }
            "answered 200"
        }
    });
    (pyairtable_kit::testing::spawn_app(app).await, arrivals)
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_cut_off_at_15_s_logged_as_a_timeout_and_retried() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let (server, arrivals) = silent_first().await;
    let (id, _) = endpoint(&client, org, &format!("http://{}/hook", server.addr), &[]).await;
    workspace_created(&harness, org, "Silent").await;
    let count = || arrivals.lock().expect("arrivals").len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count() < 2 {
        assert!(Instant::now() < deadline, "{} attempts arrived", count());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = arrivals.lock().expect("arrivals").clone();
    let gap = got[1] - got[0];
    assert!(
        gap >= Duration::from_secs(15 + 4) && gap <= Duration::from_secs(15 + 7),
        "cut off at 15 s, then retried 5 s ± 20 % later: {gap:?}"
    );
    let log = eventually(&client, MESSAGES, json!({ "id": id }), Duration::from_secs(10), |d| {
        messages(d).first().is_some_and(|m| m["status"] == "DELIVERED")
    })
    .await;
    let message = &messages(&log)[0];
    assert_eq!(message["attemptCount"], 2, "{message}");
    let attempts = message["attempts"]["edges"].as_array().expect("edges");
    let timed_out = &attempts[0]["node"];
    assert_eq!((&timed_out["succeeded"], &timed_out["responseStatus"]), (&json!(false), &Value::Null));
    assert_eq!(timed_out["error"], "timed out after 15 s", "{timed_out}");
    let latency = timed_out["latencyMs"].as_i64().expect("latencyMs");
    assert!((15_000..16_000).contains(&latency), "the attempt took the timeout, no more: {latency} ms");
    let retried = &attempts[1]["node"];
    assert_eq!((&retried["succeeded"], &retried["responseStatus"]), (&json!(true), &json!(200)));
}
