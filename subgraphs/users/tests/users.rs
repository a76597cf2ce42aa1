//! The users subgraph as its own service: GraphQL over HTTP with the router's signed identity.

use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness};
use pyairtable_kit::{Caller, IdentityKey, Secret};
use serde_json::{Value, json};
use uuid::Uuid;

const CREATE: &str = "mutation($email: String!, $name: String!) {
    createUser(input: { email: $email, displayName: $name }) { id email displayName locale timeZone }
}";

async fn create(client: &GraphQLClient, email: &str, name: &str) -> Value {
    client.data(CREATE, json!({ "email": email, "name": name })).await["createUser"].clone()
}

#[tokio::test]
async fn a_created_user_can_be_read_back() {
    let harness = SubgraphHarness::start(pyairtable_users::subgraph).await;
    let client = harness.client(&Caller::anonymous());
    let user = create(&client, "  Ada@Example.com ", "Ada Lovelace").await;
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!((user["locale"].as_str(), user["timeZone"].as_str()), (Some("en"), Some("UTC")));
    let read =
        client.data("query($id: ID!) { user(id: $id) { displayName } }", json!({ "id": user["id"] })).await;
    assert_eq!(read["user"]["displayName"], "Ada Lovelace");
    let missing =
        client.data("query($id: ID!) { user(id: $id) { id } }", json!({ "id": Uuid::now_v7() })).await;
    assert_eq!(missing["user"], Value::Null);
}

#[tokio::test]
async fn bad_or_duplicate_input_is_refused_with_its_code() {
    let harness = SubgraphHarness::start(pyairtable_users::subgraph).await;
    let client = harness.client(&Caller::anonymous());
    create(&client, "bob@example.com", "Bob").await;
    let duplicate = client.error_code(CREATE, json!({ "email": "BOB@example.com", "name": "Bob 2" })).await;
    assert_eq!(duplicate, "CONFLICT");
    let (_, body) = client.send(CREATE, json!({ "email": "not-an-email", "name": "X" })).await;
    assert_eq!(body["errors"][0]["extensions"], json!({ "code": "BAD_USER_INPUT", "field": "email" }));
    let blank = client.error_code(CREATE, json!({ "email": "c@example.com", "name": "   " })).await;
    assert_eq!(blank, "BAD_USER_INPUT");
    let bad_id = client.error_code("{ user(id: \"42\") { id } }", json!({})).await;
    assert_eq!(bad_id, "BAD_USER_INPUT");
}

#[tokio::test]
async fn me_and_profile_updates_need_a_signed_in_caller() {
    let harness = SubgraphHarness::start(pyairtable_users::subgraph).await;
    let anonymous = harness.client(&Caller::anonymous());
    let user = create(&anonymous, "cleo@example.com", "Cleo").await;
    assert_eq!(anonymous.error_code("{ me { id } }", json!({})).await, "UNAUTHENTICATED");

    let id: Uuid = user["id"].as_str().and_then(|s| s.parse().ok()).expect("uuid");
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
    let user = create(&client, "dan@example.com", "Dan").await;
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { displayName } } }";
    let reps = json!([
        { "__typename": "User", "id": user["id"] },
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
