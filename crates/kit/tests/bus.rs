//! The bus: in process, and shared by two "processes" (two buses) through a real Redis.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use pyairtable_kit::Lifecycle;
use pyairtable_kit::bus::{Bus, CAPACITY};
use serde_json::{Value, json};

async fn next(stream: &mut BoxStream<'static, Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a message in time")
        .expect("open")
}

async fn nothing(stream: &mut BoxStream<'static, Value>) {
    let got = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(got.is_err(), "nothing was expected, got {got:?}");
}

#[tokio::test]
async fn in_process_subscribers_get_their_channels_messages_only() {
    let bus = Bus::in_process();
    let mut a1 = bus.subscribe("user:a");
    let mut a2 = bus.subscribe("user:a");
    let mut b = bus.subscribe("user:b");
    assert_eq!(bus.subscribers("user:a"), 2);
    bus.publish("user:a", json!({ "n": 1 })).await;
    bus.publish("user:b", json!({ "n": 2 })).await;
    assert_eq!(next(&mut a1).await, json!({ "n": 1 }));
    assert_eq!(next(&mut a2).await, json!({ "n": 1 }));
    assert_eq!(next(&mut b).await, json!({ "n": 2 }));
    nothing(&mut a1).await;
    drop((a1, a2));
    assert_eq!(bus.subscribers("user:a"), 0);
    // Nobody listens: publishing is a no-op, not an error.
    bus.publish("user:a", json!({ "n": 3 })).await;
}

#[tokio::test]
async fn a_subscriber_far_behind_skips_the_oldest_and_goes_on() {
    let bus = Bus::in_process();
    let mut slow = bus.subscribe("feed");
    let total = CAPACITY + 10;
    for n in 0..total {
        bus.publish("feed", json!(n)).await;
    }
    // The first messages were dropped for it; it resumes with the oldest still held.
    assert_eq!(next(&mut slow).await, json!(total - CAPACITY));
}

async fn redis_bus(prefix: &str, lifecycle: &Lifecycle) -> Bus {
    let url = pyairtable_kit::testing::redis_url();
    let client = redis::Client::open(url.as_str()).expect("Redis URL");
    let connection = redis::aio::ConnectionManager::new(client.clone()).await.expect("Redis answers");
    Bus::redis(client, connection, prefix, lifecycle)
}

/// Waits until a message published on `from` reaches `to` (the pattern subscription is up).
async fn linked(from: &Bus, to: &Bus, channel: &str) -> BoxStream<'static, Value> {
    let mut stream = to.subscribe(channel);
    for _ in 0..100 {
        from.publish(channel, json!("ping")).await;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), stream.next()).await {
            return stream;
        }
    }
    panic!("the buses never linked through Redis");
}

#[tokio::test]
async fn two_processes_share_a_bus_through_redis_and_other_prefixes_stay_apart() {
    let prefix = format!("bus-test-{}:", uuid::Uuid::now_v7());
    let (one, two, other) = (
        Lifecycle::new(Duration::from_secs(1)),
        Lifecycle::new(Duration::from_secs(1)),
        Lifecycle::new(Duration::from_secs(1)),
    );
    let a = redis_bus(&prefix, &one).await;
    let b = redis_bus(&prefix, &two).await;
    let elsewhere = redis_bus(&format!("{prefix}other:"), &other).await;
    let mut on_b = linked(&a, &b, "notifications:u1").await;
    let mut on_elsewhere = elsewhere.subscribe("notifications:u1");
    let mut on_a = linked(&b, &a, "notifications:u1").await;
    while tokio::time::timeout(Duration::from_millis(200), on_b.next()).await.is_ok() {}
    a.publish("notifications:u1", json!({ "id": 7, "text": "hello" })).await;
    assert_eq!(next(&mut on_b).await, json!({ "id": 7, "text": "hello" }), "the other process got it");
    assert_eq!(
        next(&mut on_a).await,
        json!({ "id": 7, "text": "hello" }),
        "and the publisher's own subscribers"
    );
    nothing(&mut on_elsewhere).await;
    for lifecycle in [one, two, other] {
        lifecycle.stop(pyairtable_kit::StopReason::GoingAway);
        assert!(
            lifecycle.wait_for_tasks(tokio::time::Instant::now() + Duration::from_secs(2)).await,
            "the listener stops"
        );
    }
}
