//! The tenants subgraph as its own service: organizations, members, and the `User` fields it
//! contributes.

use pyairtable_kit::Caller;
use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness};
use serde_json::{Value, json};
use uuid::Uuid;

const CREATE: &str = "mutation($input: CreateOrganizationInput!) {
    createOrganization(input: $input) { id name slug members { role user { id } } }
}";
const ADD: &str = "mutation($input: AddOrganizationMemberInput!) {
    addOrganizationMember(input: $input) { role user { id } }
}";

/// The harness, a signed-in owner's client, and the owner's id.
async fn client() -> (SubgraphHarness, GraphQLClient, String) {
    let harness = SubgraphHarness::start(pyairtable_tenants::subgraph).await;
    let owner = Uuid::now_v7();
    let client = harness.client(&Caller::user(owner));
    (harness, client, owner.to_string())
}

async fn create(client: &GraphQLClient, input: Value) -> Value {
    client.data(CREATE, json!({ "input": input })).await["createOrganization"].clone()
}

#[tokio::test]
async fn the_creator_becomes_owner_and_slugs_are_derived() {
    let (_harness, client, owner) = client().await;
    let org = create(&client, json!({ "name": "  Acme Corp. " })).await;
    assert_eq!((org["name"].as_str(), org["slug"].as_str()), (Some("Acme Corp."), Some("acme-corp")));
    assert_eq!(org["members"], json!([{ "role": "OWNER", "user": { "id": owner } }]));
    let by_slug = client.data("{ organizationBySlug(slug: \"acme-corp\") { id } }", json!({})).await;
    assert_eq!(by_slug["organizationBySlug"]["id"], org["id"]);
    let nothing = client.data("{ organizationBySlug(slug: \"../x\") { id } }", json!({})).await;
    assert_eq!(nothing["organizationBySlug"], Value::Null);
}

#[tokio::test]
async fn bad_input_and_taken_slugs_are_refused() {
    let (_harness, client, _owner) = client().await;
    create(&client, json!({ "name": "Acme", "slug": "acme" })).await;
    let cases = [
        (json!({ "name": "Other", "slug": "acme" }), "CONFLICT"),
        (json!({ "name": "Other", "slug": "Not A Slug" }), "BAD_USER_INPUT"),
        (json!({ "name": "" }), "BAD_USER_INPUT"),
        (json!({ "name": "x".repeat(101) }), "BAD_USER_INPUT"),
        (json!({ "name": "日本" }), "BAD_USER_INPUT"),
    ];
    for (input, code) in cases {
        assert_eq!(client.error_code(CREATE, json!({ "input": input.clone() })).await, code, "{input}");
    }
}

#[tokio::test]
async fn members_are_added_once_in_order() {
    let (harness, client, owner) = client().await;
    let guest = Uuid::now_v7().to_string();
    let org = create(&client, json!({ "name": "Globex" })).await;
    let input = json!({ "organizationId": org["id"], "userId": guest, "role": "GUEST" });
    let added = client.data(ADD, json!({ "input": input.clone() })).await;
    assert_eq!(added["addOrganizationMember"], json!({ "role": "GUEST", "user": { "id": guest } }));
    assert_eq!(client.error_code(ADD, json!({ "input": input })).await, "CONFLICT");

    let unknown = json!({ "organizationId": Uuid::now_v7(), "userId": guest, "role": "ADMIN" });
    assert_eq!(client.error_code(ADD, json!({ "input": unknown })).await, "NOT_FOUND");

    // A guest cannot add members; an admin cannot make owners; nobody signed out can do anything.
    let guest_id: Uuid = guest.parse().expect("uuid");
    let as_guest = harness.client(&Caller::user(guest_id));
    let another = json!({ "organizationId": org["id"], "userId": Uuid::now_v7(), "role": "MEMBER" });
    assert_eq!(as_guest.error_code(ADD, json!({ "input": another.clone() })).await, "FORBIDDEN");
    let admin = Uuid::now_v7();
    let make_admin = json!({ "organizationId": org["id"], "userId": admin, "role": "ADMIN" });
    client.data(ADD, json!({ "input": make_admin })).await;
    let as_admin = harness.client(&Caller::user(admin));
    let owner_by_admin = json!({ "organizationId": org["id"], "userId": Uuid::now_v7(), "role": "OWNER" });
    assert_eq!(as_admin.error_code(ADD, json!({ "input": owner_by_admin })).await, "FORBIDDEN");
    let anonymous = harness.client(&Caller::anonymous());
    assert_eq!(anonymous.error_code(ADD, json!({ "input": another })).await, "UNAUTHENTICATED");
    let org_input = json!({ "input": { "name": "Nobody's" } });
    assert_eq!(anonymous.error_code(CREATE, org_input).await, "UNAUTHENTICATED");

    let query = "query($id: ID!) { organization(id: $id) { members { role user { id } } } }";
    let members = client.data(query, json!({ "id": org["id"] })).await["organization"]["members"].clone();
    assert_eq!(
        members,
        json!([
            { "role": "OWNER", "user": { "id": owner } },
            { "role": "GUEST", "user": { "id": guest } },
            { "role": "ADMIN", "user": { "id": admin } },
        ])
    );
}

#[tokio::test]
async fn users_and_organizations_resolve_as_entities() {
    let (_harness, client, owner) = client().await;
    let a = create(&client, json!({ "name": "Alpha" })).await;
    let b = create(&client, json!({ "name": "Beta" })).await;
    let query = "query($r: [_Any!]!) { _entities(representations: $r) {
        ... on User { organizations { slug } }
        ... on Organization { name }
    } }";
    let reps = json!([
        { "__typename": "User", "id": owner },
        { "__typename": "User", "id": Uuid::now_v7() },
        { "__typename": "Organization", "id": b["id"] },
        { "__typename": "Organization", "id": Uuid::now_v7() },
    ]);
    let entities = client.data(query, json!({ "r": reps })).await["_entities"].clone();
    assert_eq!(
        entities,
        json!([{ "organizations": [{ "slug": "alpha" }, { "slug": "beta" }] }, { "organizations": [] }, { "name": "Beta" }, null])
    );
    assert_ne!(a["id"], b["id"]);
}
