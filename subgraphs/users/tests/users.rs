//! The users subgraph as its own service: GraphQL over HTTP with the router's signed identity.

use pyairtable_kit::events;
use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness};
use pyairtable_kit::{Caller, IdentityKey, Secret};
use serde_json::{Value, json};
use uuid::Uuid;

/// The users subgraph over HTTP, with the permissions engine in the same process (as `serve`
/// builds them) deciding who may see which profile.
async fn harness() -> SubgraphHarness {
    SubgraphHarness::start_after(&[pyairtable_permissions::subgraph], pyairtable_users::subgraph).await
}

fn uuid(value: &Value) -> Uuid {
    value.as_str().and_then(|s| s.parse().ok()).expect("a uuid")
}

/// What tenants and invitations publish when `owner` creates an organization and `members` join.
async fn share_organization(harness: &SubgraphHarness, owner: &Value, members: &[&Value]) {
    let org = Uuid::now_v7();
    harness
        .publish("organization.created", json!({ "organization_id": org, "owner_id": owner, "name": "Acme" }))
        .await;
    for member in members {
        let joined = json!({ "organization_id": org, "user_id": member, "role": "member", "invitation_id": Uuid::now_v7() });
        harness.publish("invitation.accepted", joined).await;
    }
}

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
    let harness = harness().await;
    let id = register(&harness, "ada@example.com", "Ada Lovelace").await;
    let client = harness.client(&Caller::user(uuid(&id)));
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
    let harness = harness().await;
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

    // The avatar is a File id: set, left alone when not given, removed with an explicit null.
    let avatar = "mutation($input: UpdateProfileInput!) { updateMyProfile(input: $input) { avatarFileId displayName } }";
    let file = Uuid::now_v7().to_string();
    let set = cleo.data(avatar, json!({ "input": { "avatarFileId": file } })).await;
    assert_eq!(set["updateMyProfile"]["avatarFileId"], file.as_str());
    let kept = cleo.data(avatar, json!({ "input": { "displayName": "Cleo" } })).await;
    assert_eq!(kept["updateMyProfile"], json!({ "avatarFileId": file, "displayName": "Cleo" }));
    let removed = cleo.data(avatar, json!({ "input": { "avatarFileId": null } })).await;
    assert_eq!(removed["updateMyProfile"]["avatarFileId"], Value::Null);
    let bad = cleo.error_code(avatar, json!({ "input": { "avatarFileId": "x" } })).await;
    assert_eq!(bad, "BAD_USER_INPUT");
}

#[tokio::test]
async fn profiles_are_seen_only_within_shared_organizations() {
    let harness = harness().await;
    let ada = register(&harness, "ada@example.com", "Ada").await;
    let bob = register(&harness, "bob@example.com", "Bob").await;
    let eve = register(&harness, "eve@example.com", "Eve").await;
    let query = "query($id: ID!) { user(id: $id) { displayName email } }";
    let entities = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { displayName } } }";
    let reps = json!([{ "__typename": "User", "id": ada }, { "__typename": "User", "id": bob }]);

    // Before sharing anything, each sees only themself.
    let as_bob = harness.client(&Caller::user(uuid(&bob)));
    assert_eq!(as_bob.data(query, json!({ "id": ada })).await["user"], Value::Null);
    assert_eq!(as_bob.data(query, json!({ "id": bob })).await["user"]["displayName"], "Bob");

    share_organization(&harness, &ada, &[&bob]).await;
    assert_eq!(as_bob.data(query, json!({ "id": ada })).await["user"]["displayName"], "Ada");
    let both = as_bob.data(entities, json!({ "r": reps })).await;
    assert_eq!(both["_entities"], json!([{ "displayName": "Ada" }, { "displayName": "Bob" }]));

    // Eve shares nothing with them: null, by id and by entity reference, never an error that
    // would tell her the account exists.
    let as_eve = harness.client(&Caller::user(uuid(&eve)));
    assert_eq!(as_eve.data(query, json!({ "id": ada })).await["user"], Value::Null);
    assert_eq!(as_eve.data(entities, json!({ "r": reps })).await["_entities"], json!([null, null]));
    let anonymous = harness.client(&Caller::anonymous());
    assert_eq!(anonymous.error_code(query, json!({ "id": ada })).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn entities_resolve_by_key_and_unknown_keys_are_null() {
    let harness = harness().await;
    let user = register(&harness, "dan@example.com", "Dan").await;
    let client = harness.client(&Caller::user(uuid(&user)));
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
    let harness = harness().await;
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
