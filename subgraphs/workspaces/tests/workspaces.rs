//! The workspaces subgraph as its own service (with the permissions engine in process, as
//! `serve` builds them): workspaces in organizations, archived and restored, listed per
//! organization and per person, gone with their organization.

use std::time::{Duration, Instant};

use pyairtable_kit::Caller;
use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const CREATE: &str = "mutation($o: ID!, $n: String!) { createWorkspace(organizationId: $o, name: $n) { id name archived organization { id } createdBy { id } } }";
const LIST: &str = "query($o: ID!, $a: Boolean!) { _entities(representations: [{ __typename: \"Organization\", id: $o }]) {
    ... on Organization { workspaces(first: 50, includeArchived: $a) { totalCount edges { node { name archived } } } } } }";

async fn harness() -> SubgraphHarness {
    SubgraphHarness::start_after(&[pyairtable_permissions::subgraph], pyairtable_workspaces::subgraph).await
}

/// An organization owned by `owner`, as the tenants subgraph announces it.
async fn organization(harness: &SubgraphHarness, owner: Uuid) -> Uuid {
    let org = Uuid::now_v7();
    harness.publish("organization.created", json!({ "organization_id": org, "owner_id": owner })).await;
    org
}

fn names(list: &Value) -> Vec<String> {
    list["_entities"][0]["workspaces"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn workspaces_are_created_renamed_archived_restored_and_deleted() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client: GraphQLClient = harness.client(&Caller::user(ada));
    let ws = client.data(CREATE, json!({ "o": org, "n": "  Roadmap " })).await["createWorkspace"].clone();
    assert_eq!(ws["name"], "Roadmap");
    assert_eq!((&ws["organization"]["id"], &ws["createdBy"]["id"]), (&json!(org), &json!(ada)));
    client.data(CREATE, json!({ "o": org, "n": "Hiring" })).await;
    for bad in ["", "   ", &"x".repeat(101)] {
        assert_eq!(
            client.error_code(CREATE, json!({ "o": org, "n": bad })).await,
            "BAD_USER_INPUT",
            "{bad:?}"
        );
    }
    assert_eq!(client.error_code(CREATE, json!({ "o": Uuid::now_v7(), "n": "X" })).await, "NOT_FOUND");

    let rename = "mutation($w: ID!) { renameWorkspace(workspaceId: $w, name: \"Plans\") { name } }";
    assert_eq!(client.data(rename, json!({ "w": ws["id"] })).await["renameWorkspace"]["name"], "Plans");
    let archive = "mutation($w: ID!) { archiveWorkspace(workspaceId: $w) { archived archivedAt } }";
    let archived = client.data(archive, json!({ "w": ws["id"] })).await["archiveWorkspace"].clone();
    assert!(archived["archived"] == true && archived["archivedAt"].is_string(), "{archived}");
    assert_eq!(names(&client.data(LIST, json!({ "o": org, "a": false })).await), ["Hiring"]);
    assert_eq!(names(&client.data(LIST, json!({ "o": org, "a": true })).await), ["Plans", "Hiring"]);
    let restore = "mutation($w: ID!) { restoreWorkspace(workspaceId: $w) { archived archivedAt } }";
    assert_eq!(
        client.data(restore, json!({ "w": ws["id"] })).await["restoreWorkspace"],
        json!({ "archived": false, "archivedAt": null })
    );
    assert_eq!(names(&client.data(LIST, json!({ "o": org, "a": false })).await), ["Plans", "Hiring"]);

    let delete = "mutation($w: ID!) { deleteWorkspace(workspaceId: $w) }";
    assert_eq!(client.data(delete, json!({ "w": ws["id"] })).await["deleteWorkspace"], true);
    let read = "query($w: ID!) { workspace(id: $w) { id } }";
    assert_eq!(client.data(read, json!({ "w": ws["id"] })).await["workspace"], Value::Null);
    assert_eq!(client.error_code(delete, json!({ "w": ws["id"] })).await, "NOT_FOUND");
    assert_eq!(client.error_code(read, json!({ "w": "x" })).await, "BAD_USER_INPUT");
}

#[tokio::test]
async fn people_list_their_own_workspaces_across_organizations_only() {
    let harness = harness().await;
    let (ada, eve) = (Uuid::now_v7(), Uuid::now_v7());
    let (acme, globex) = (organization(&harness, ada).await, organization(&harness, ada).await);
    let mine = organization(&harness, eve).await;
    let ada_client = harness.client(&Caller::user(ada));
    let eve_client = harness.client(&Caller::user(eve));
    ada_client.data(CREATE, json!({ "o": acme, "n": "A" })).await;
    ada_client.data(CREATE, json!({ "o": globex, "n": "G" })).await;
    let secret =
        eve_client.data(CREATE, json!({ "o": mine, "n": "E" })).await["createWorkspace"]["id"].clone();
    let q = "query($u: ID!) { _entities(representations: [{ __typename: \"User\", id: $u }]) {
        ... on User { workspaces(first: 10) { totalCount edges { node { name } } } } } }";
    let listed = ada_client.data(q, json!({ "u": ada })).await;
    assert_eq!(listed["_entities"][0]["workspaces"]["totalCount"], 2);
    assert_eq!(ada_client.error_code(q, json!({ "u": eve })).await, "FORBIDDEN", "only one's own");
    let read = "query($w: ID!) { workspace(id: $w) { id } }";
    assert_eq!(ada_client.data(read, json!({ "w": secret })).await["workspace"], Value::Null);
    assert_eq!(ada_client.error_code(CREATE, json!({ "o": mine, "n": "Intruder" })).await, "NOT_FOUND");
    assert_eq!(eve_client.error_code(LIST, json!({ "o": acme, "a": false })).await, "NOT_FOUND");
}

#[tokio::test]
async fn a_purged_organization_takes_its_workspaces() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    client.data(CREATE, json!({ "o": org, "n": "Doomed" })).await;
    harness.publish("organization.purged", json!({ "organization_id": org })).await;
    let owner = PgPool::connect(harness.db.url()).await.expect("owner");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: i64 = sqlx::query_scalar("select count(*) from workspaces.workspaces where tenant_id = $1")
            .bind(org)
            .fetch_one(&owner)
            .await
            .expect("count");
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the workspaces outlived their organization");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
