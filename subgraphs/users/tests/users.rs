//! The users subgraph as its own service: GraphQL over HTTP with the router's signed identity.

use pyairtable_kit::events;
use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness};
use pyairtable_kit::{Caller, IdentityKey, Secret};
use serde_json::{Value, json};
use uuid::Uuid;

/// What the auth subgraph does at sign-up: a `user.registered` event in the event log.
async fn register(harness: &SubgraphHarness, email: &str, name: &str) -> Value {
    let id = Uuid::now_v7();
    let mut tx = harness.kit.db.begin().await.expect("begin");
    let payload = json!({ "user_id": id, "email": email, "display_name": name });
    events::publish(&mut tx, "user.registered", &payload).await.expect("publish");
    tx.commit().await.expect("commit");
    json!(id)
}

#[tokio::test]
async fn a_registered_user_gets_a_profile_once() {
    let harness = SubgraphHarness::start(pyairtable_users::subgraph).await;
    let client = harness.client(&Caller::anonymous());
    let id = register(&harness, "ada@example.com", "Ada Lovelace").await;
    // Read at once: a miss applies pending events before answering.
    let query = "query($id: ID!) { user(id: $id) { email displayName locale timeZone } }";
    let read = client.data(query, json!({ "id": id })).await;
    assert_eq!(
        read["user"],
        json!({ "email": "ada@example.com", "displayName": "Ada Lovelace", "locale": "en", "timeZone": "UTC" })
    );
    // The same event again (at-least-once delivery) changes nothing.
    let mut tx = harness.kit.db.begin().await.expect("begin");
    let again = json!({ "user_id": id, "email": "ada@example.com", "display_name": "Someone Else" });
    events::publish(&mut tx, "user.registered", &again).await.expect("publish");
    tx.commit().await.expect("commit");
    pyairtable_users::consumer().catch_up(&harness.kit.db).await.expect("catch up");
    let read = client.data(query, json!({ "id": id })).await;
    assert_eq!(read["user"]["displayName"], "Ada Lovelace");
    let missing =
        client.data("query($id: ID!) { user(id: $id) { id } }", json!({ "id": Uuid::now_v7() })).await;
    assert_eq!(missing["user"], Value::Null);
    let bad_id = client.error_code("{ user(id: \"42\") { id } }", json!({})).await;
    assert_eq!(bad_id, "BAD_USER_INPUT");
    let (_, body) = client.send("mutation { createUser(input: {}) { id } }", json!({})).await;
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("createUser")), "{body}");
}

#[tokio::test]
async fn me_and_profile_updates_need_a_signed_in_caller() {
    let harness = SubgraphHarness::start(pyairtable_users::subgraph).await;
    let anonymous = harness.client(&Caller::anonymous());
    let user = register(&harness, "cleo@example.com", "Cleo").await;
    assert_eq!(anonymous.error_code("{ me { id } }", json!({})).await, "UNAUTHENTICATED");

    let id: Uuid = user.as_str().and_then(|s| s.parse().ok()).expect("uuid");
    let cleo = harness.client(&Caller::user(id));
    assert_eq!(cleo.data("{ me { email } }", json!({})).await["me"]["email"], "cleo@example.com");

    let update = "mutation($input: UpdateProfileInput!) { updateMyProfile(input: $input) { displayName locale timeZone } }";
    let input =
        json!({ "input": { "displayName": "Cléo", "locale": "pt-BR", "timeZone": "America/Sao_Paulo" } });
    let updated = cleo.data(update, input.clone()).await["updateMyProfile"].clone();
    assert_eq!(updated, json!({ "displayName": "Cléo", "locale": "pt-BR", "timeZone": "America/Sao_Paulo" }));
    assert_eq!(anonymous.error_code(update, input).await, "UNAUTHENTICATED");
    let bad = cleo.error_code(update, json!({ "input": { "timeZone": "../../etc/passwd" } })).await;
    assert_eq!(bad, "BAD_USER_INPUT");
}

#[tokio::test]
async fn entities_resolve_by_key_and_unknown_keys_are_null() {
    let harness = SubgraphHarness::start(pyairtable_users::subgraph).await;
    let client = harness.client(&Caller::anonymous());
    let user = register(&harness, "dan@example.com", "Dan").await;
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { displayName } } }";
    let reps = json!([
        { "__typename": "User", "id": user },
        { "__typename": "User", "id": Uuid::now_v7() },
        { "__typename": "User", "id": "not-a-uuid" },
    ]);
    let data = client.data(query, json!({ "r": reps })).await;
    assert_eq!(data["_entities"], json!([{ "displayName": "Dan" }, null, null]));
}

#[tokio::test]
async fn requests_without_a_valid_router_identity_are_refused() {
    let harness = SubgraphHarness::start(pyairtable_users::subgraph).await;
    let url = harness.server.graphql_url();
    let now = chrono::Utc::now().timestamp();
    let forged_key = IdentityKey::new(&Secret::new("another-secret-another-secret-another-secret"));
    let admin = Caller::user(Uuid::now_v7());
    let cases = [
        ("no header", GraphQLClient::new(&url)),
        (
            "foreign key",
            GraphQLClient::new(&url).with_header("x-pyairtable-identity", &forged_key.sign(&admin, now)),
        ),
        (
            "expired",
            GraphQLClient::new(&url)
                .with_header("x-pyairtable-identity", &harness.key.sign(&admin, now - 3600)),
        ),
        ("garbage", GraphQLClient::new(&url).with_header("x-pyairtable-identity", "v1.e30.AAAA")),
    ];
    for (case, client) in cases {
        let (status, body) = client.send("{ me { id } }", json!({})).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{case}");
        assert!(body.get("data").is_none(), "{case}: no data may leak");
    }
}
