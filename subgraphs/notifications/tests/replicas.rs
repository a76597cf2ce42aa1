//! Two instances of the notifications subgraph on one database and one Redis: a notification
//! reaches the user's sockets on both, whichever instance delivered it.

mod common;

use std::time::Duration;

use common::*;
use pyairtable_kit::testing::{SubgraphHarness, redis_url, test_database};
use serde_json::json;

#[tokio::test]
async fn a_notification_reaches_the_users_sockets_on_every_instance_through_redis() {
    let db = test_database().await;
    let (redis, prefix) = (redis_url(), format!("test:{}:", uuid::Uuid::now_v7()));
    let vars = [("REDIS_URL", redis.as_str()), ("PYAIRTABLE_REDIS_PREFIX", prefix.as_str())];
    let one = SubgraphHarness::start_on(db.clone(), &vars, &[], pyairtable_notifications::subgraph).await;
    let two = SubgraphHarness::start_on(db, &vars, &[], pyairtable_notifications::subgraph).await;
    let ada = register(&one, "ada@example.com", None).await;
    let bob = register(&one, "bob@example.com", None).await;
    let org = organization(&one, bob, "Acme").await;
    let mut on_one = subscribe(&one, ada).await;
    let mut on_two = subscribe(&two, ada).await;
    let mut bobs = subscribe(&two, bob).await;
    tokio::time::sleep(Duration::from_millis(700)).await; // Redis subscriptions are in place

    publish(&one, "member.joined", json!({ "organization_id": org, "user_id": ada, "role": "member" })).await;
    for socket in [&mut on_one, &mut on_two] {
        let message = receive(socket, 10).await.expect("Ada's notification on this instance");
        assert_eq!(message["payload"]["data"]["notificationReceived"]["title"], "You joined Acme");
        assert_eq!(receive(socket, 1).await, None, "exactly once per socket");
    }
    assert_eq!(receive(&mut bobs, 1).await, None, "Bob gets nothing of Ada's");
}
