//! The permissions subgraph as its own service: decisions shared by replicas through Redis and
//! changed for all of them at once, the internal HTTP face other subgraphs call, and the rules
//! about roles that are not the policy's (an organization keeps an owner, bindings need members).

use std::time::Duration;

use pyairtable_kit::authz::{Authorizer, Check, Decision, HttpAuthorizer, Resource};
use pyairtable_kit::testing::{
    GraphQLClient, SubgraphHarness, TEST_INTERNAL_SECRET, redis_url, test_database,
};
use pyairtable_kit::{Caller, IdentityKey, Secret};
use serde_json::json;
use uuid::Uuid;

async fn organization(harness: &SubgraphHarness, owner: Uuid) -> Uuid {
    let org = Uuid::now_v7();
    harness.publish("organization.created", json!({ "organization_id": org, "owner_id": owner })).await;
    org
}

async fn join(harness: &SubgraphHarness, org: Uuid, user: Uuid, role: &str) {
    let payload =
        json!({ "organization_id": org, "user_id": user, "role": role, "invitation_id": Uuid::now_v7() });
    harness.publish("invitation.accepted", payload).await;
}

fn read(org: Uuid) -> Vec<Check> {
    vec![Check::new("read", Resource::Organization { id: org })]
}

#[tokio::test]
async fn replicas_sharing_redis_see_every_change_at_once() {
    let db = test_database().await;
    let redis = redis_url();
    let vars = [("REDIS_URL", redis.as_str())];
    let one = SubgraphHarness::start_on(db.clone(), &vars, &[], pyairtable_permissions::subgraph).await;
    let two = SubgraphHarness::start_on(db, &vars, &[], pyairtable_permissions::subgraph).await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let org = organization(&one, ada).await;
    let (first, second) = (one.kit.authorizer(), two.kit.authorizer());

    assert_eq!(first.decide(bob, &read(org)).await.expect("decides"), [Decision::Hide]);
    assert_eq!(second.decide(bob, &read(org)).await.expect("decides"), [Decision::Hide]);
    let mut redis_conn = redis::Client::open(redis.as_str())
        .expect("redis")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let cached: Vec<String> =
        redis::cmd("KEYS").arg(format!("authz:d:{org}:*")).query_async(&mut redis_conn).await.expect("keys");
    assert!(!cached.is_empty(), "decisions are kept in Redis");

    // Bob joins through the second replica; the first answers from the shared cache at once.
    join(&two, org, bob, "member").await;
    assert_eq!(first.decide(bob, &read(org)).await.expect("decides"), [Decision::Allow]);
    // Ada removes him through the second replica's GraphQL; the first refuses his next check.
    let remove = "mutation($o: ID!, $u: ID!) { removeMember(input: { organizationId: $o, userId: $u }) }";
    let ada_client = two.client(&Caller::user(ada));
    assert_eq!(ada_client.data(remove, json!({ "o": org, "u": bob })).await["removeMember"], true);
    assert_eq!(first.decide(bob, &read(org)).await.expect("decides"), [Decision::Hide]);
    let profile = vec![Check::new("read", Resource::User { id: ada })];
    assert_eq!(
        first.decide(bob, &profile).await.expect("decides"),
        [Decision::Hide],
        "no longer a colleague"
    );
}

#[tokio::test]
async fn other_services_ask_over_http_with_the_internal_secret_only() {
    let harness = SubgraphHarness::start(pyairtable_permissions::subgraph).await;
    let (ada, eve) = (Uuid::now_v7(), Uuid::now_v7());
    let org = organization(&harness, ada).await;
    let key = IdentityKey::new(&Secret::new(TEST_INTERNAL_SECRET));
    let remote = HttpAuthorizer::new(&harness.server.graphql_url(), key, Duration::from_secs(10));
    let checks = vec![
        Check::new("read", Resource::Organization { id: org }),
        Check::new("delete", Resource::Organization { id: org }),
        Check::new("read", Resource::Organization { id: Uuid::now_v7() }),
    ];
    let decided = remote.decide(ada, &checks).await.expect("decides");
    assert_eq!(decided, [Decision::Allow, Decision::Allow, Decision::Hide]);
    assert_eq!(remote.decide(eve, &checks).await.expect("decides"), [Decision::Hide; 3]);
    assert_eq!(remote.organizations_of(ada).await.expect("lists"), [org]);
    remote.sync().await.expect("syncs");

    // Without the secret, or with another one, or asking too much: refused.
    let base = harness.server.graphql_url().trim_end_matches("/graphql").to_owned();
    let url = format!("{base}/internal/authorize");
    let body = json!({ "subject": ada, "checks": [{ "action": "read", "resource": { "type": "organization", "id": org } }] });
    let http = reqwest::Client::new();
    assert_eq!(http.post(&url).json(&body).send().await.expect("answers").status(), 401);
    let foreign = IdentityKey::new(&Secret::new("another-secret-another-secret-another-secret"))
        .sign(&Caller::anonymous(), chrono::Utc::now().timestamp());
    let answer =
        http.post(&url).header("x-pyairtable-identity", foreign).json(&body).send().await.expect("answers");
    assert_eq!(answer.status(), 401);
    let eve_remote = HttpAuthorizer::new(
        &base,
        IdentityKey::new(&Secret::new(TEST_INTERNAL_SECRET)),
        Duration::from_secs(10),
    );
    let too_many: Vec<Check> =
        (0..1001).map(|_| Check::new("read", Resource::Organization { id: org })).collect();
    assert!(eve_remote.decide(eve, &too_many).await.is_err());
    let garbage = http
        .post(&url)
        .header(
            "x-pyairtable-identity",
            IdentityKey::new(&Secret::new(TEST_INTERNAL_SECRET))
                .sign(&Caller::anonymous(), chrono::Utc::now().timestamp()),
        )
        .header("content-type", "application/json")
        .body("{\"subject\": 42}")
        .send()
        .await
        .expect("answers");
    assert!(garbage.status().is_client_error(), "{}", garbage.status());
}

#[tokio::test]
async fn an_organization_keeps_an_owner_and_bindings_are_for_members() {
    let harness = SubgraphHarness::start(pyairtable_permissions::subgraph).await;
    let (ada, bob, eve) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let org = organization(&harness, ada).await;
    join(&harness, org, bob, "admin").await;
    let ada_client: GraphQLClient = harness.client(&Caller::user(ada));
    let bob_client = harness.client(&Caller::user(bob));
    let transfer = "mutation($o: ID!, $u: ID!) { transferOwnership(input: { organizationId: $o, userId: $u }) { role } }";
    let change = "mutation($o: ID!, $u: ID!, $r: OrganizationRole!) { changeMemberRole(input: { organizationId: $o, userId: $u, role: $r }) { role } }";
    let leave = "mutation($o: ID!) { leaveOrganization(organizationId: $o) }";

    assert_eq!(
        ada_client.error_code(transfer, json!({ "o": org, "u": ada })).await,
        "BAD_USER_INPUT",
        "to oneself"
    );
    assert_eq!(
        ada_client.error_code(transfer, json!({ "o": org, "u": eve })).await,
        "BAD_USER_INPUT",
        "to a stranger"
    );
    assert_eq!(ada_client.error_code(leave, json!({ "o": org })).await, "CONFLICT", "the last owner");
    assert_eq!(ada_client.error_code(change, json!({ "o": org, "u": ada, "r": "ADMIN" })).await, "CONFLICT");
    assert_eq!(ada_client.error_code(change, json!({ "o": org, "u": eve, "r": "ADMIN" })).await, "NOT_FOUND");
    assert_eq!(
        ada_client.data(change, json!({ "o": org, "u": bob, "r": "ADMIN" })).await["changeMemberRole"]["role"],
        "ADMIN",
        "unchanged"
    );

    // Two owners: either may go.
    assert_eq!(
        ada_client.data(transfer, json!({ "o": org, "u": bob })).await["transferOwnership"]["role"],
        "OWNER"
    );
    assert_eq!(
        bob_client.data(change, json!({ "o": org, "u": ada, "r": "OWNER" })).await["changeMemberRole"]["role"],
        "OWNER"
    );
    assert_eq!(bob_client.data(leave, json!({ "o": org })).await["leaveOrganization"], true);
    assert_eq!(bob_client.error_code(leave, json!({ "o": org })).await, "NOT_FOUND", "gone");

    // Workspace roles go to members of the organization, once.
    let ws = Uuid::now_v7();
    harness
        .publish(
            "workspace.created",
            json!({ "workspace_id": ws, "organization_id": org, "created_by": ada }),
        )
        .await;
    let grant = "mutation($w: ID!, $u: ID!) { grantWorkspaceRole(input: { workspaceId: $w, userId: $u, role: EDITOR }) { role } }";
    assert_eq!(
        ada_client.error_code(grant, json!({ "w": ws, "u": eve })).await,
        "BAD_USER_INPUT",
        "not a member"
    );
    join(&harness, org, eve, "guest").await;
    assert_eq!(
        ada_client.data(grant, json!({ "w": ws, "u": eve })).await["grantWorkspaceRole"]["role"],
        "EDITOR"
    );
    assert_eq!(ada_client.error_code(grant, json!({ "w": ws, "u": eve })).await, "CONFLICT", "granted once");
    let q = "query($w: ID!) { myPermissions(resource: { type: WORKSPACE, id: $w }) { workspaceRole } }";
    let eve_client = harness.client(&Caller::user(eve));
    assert_eq!(eve_client.data(q, json!({ "w": ws })).await["myPermissions"]["workspaceRole"], "EDITOR");
    assert_eq!(eve_client.error_code(q, json!({ "w": "nope" })).await, "BAD_USER_INPUT");
    assert_eq!(eve_client.error_code(q, json!({ "w": Uuid::now_v7() })).await, "NOT_FOUND");
}
