//! The tenants subgraph as its own service (with the permissions engine in process, as `serve`
//! builds them): organizations, soft deletion with a grace period, invitations by email.

use pyairtable_kit::Caller;
use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness, outbox};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const CREATE: &str =
    "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id name slug } }";
const INVITE: &str = "mutation($o: ID!, $e: String!) {
    inviteMember(input: { organizationId: $o, email: $e, role: MEMBER }) { id email role status } }";
const ACCEPT: &str = "mutation($t: String!) { acceptInvitation(token: $t) { id name } }";
const STATUS: &str = "query($o: ID!) { organization(id: $o) { invitations(first: 50) { edges { node { email status acceptedBy { id } } } } } }";

async fn harness() -> SubgraphHarness {
    // The notifications subgraph sends the invitation emails (from `member.invited`).
    let before = [pyairtable_permissions::subgraph, pyairtable_notifications::subgraph];
    SubgraphHarness::start_after(&before, pyairtable_tenants::subgraph).await
}

/// A signed-in person and their client.
fn person(harness: &SubgraphHarness) -> (Uuid, GraphQLClient) {
    let id = Uuid::now_v7();
    (id, harness.client(&Caller::user(id)))
}

async fn create(client: &GraphQLClient, input: Value) -> Value {
    client.data(CREATE, json!({ "input": input })).await["createOrganization"].clone()
}

/// The token of the `nth` (from 1) invitation mailed to `to`, once it is in the outbox (the
/// notifications subgraph sends it in the background).
async fn token(harness: &SubgraphHarness, to: &str, nth: usize) -> String {
    for _ in 0..150 {
        let mails = outbox(&harness.kit.config.data_dir.join("outbox"));
        if let Some(mail) = mails.iter().filter(|m| m.to == to).nth(nth - 1) {
            let at = mail.text.find("token=").expect("a link") + "token=".len();
            return mail.text[at..].split_whitespace().next().expect("a token").to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no invitation number {nth} mailed to {to}");
}

/// The owner of the tables, to move time for a test (expiry, grace periods).
async fn owner(harness: &SubgraphHarness) -> PgPool {
    PgPool::connect(harness.db.url()).await.expect("owner connection")
}

fn statuses(data: &Value) -> Vec<(String, String)> {
    data["organization"]["invitations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["node"]["email"].as_str().unwrap_or_default().to_owned(),
                e["node"]["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn slugs_are_derived_unique_and_checked() {
    let harness = harness().await;
    let (_, ada) = person(&harness);
    let org = create(&ada, json!({ "name": "  Acme Corp. " })).await;
    assert_eq!((org["name"].as_str(), org["slug"].as_str()), (Some("Acme Corp."), Some("acme-corp")));
    let by_slug = ada.data("{ organizationBySlug(slug: \"acme-corp\") { id } }", json!({})).await;
    assert_eq!(by_slug["organizationBySlug"]["id"], org["id"]);
    let cases = [
        (json!({ "name": "Other", "slug": "acme-corp" }), "CONFLICT"),
        (json!({ "name": "Other", "slug": "Not A Slug" }), "BAD_USER_INPUT"),
        (json!({ "name": "" }), "BAD_USER_INPUT"),
        (json!({ "name": "x".repeat(101) }), "BAD_USER_INPUT"),
        (json!({ "name": "日本" }), "BAD_USER_INPUT"),
    ];
    for (input, code) in cases {
        assert_eq!(ada.error_code(CREATE, json!({ "input": input.clone() })).await, code, "{input}");
    }
    // Somebody else's organization is not found by slug, nor by id.
    let (_, eve) = person(&harness);
    assert_eq!(
        eve.data("{ organizationBySlug(slug: \"acme-corp\") { id } }", json!({})).await["organizationBySlug"],
        Value::Null
    );
    let q = "query($o: ID!) { organization(id: $o) { id } }";
    assert_eq!(eve.data(q, json!({ "o": org["id"] })).await["organization"], Value::Null);
    assert_eq!(eve.error_code(q, json!({ "o": "not-an-id" })).await, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_deleted_organization_is_restorable_for_the_grace_period_then_purged() {
    let harness = harness().await;
    let (_, ada) = person(&harness);
    let org = create(&ada, json!({ "name": "Initech" })).await;
    let o = json!({ "o": org["id"] });
    let delete = "mutation($o: ID!) { deleteOrganization(organizationId: $o) { deletedAt purgeAt } }";
    let restore = "mutation($o: ID!) { restoreOrganization(organizationId: $o) { name deletedAt } }";
    let read = "query($o: ID!) { organization(id: $o) { name } }";
    let rename = "mutation($o: ID!) { renameOrganization(organizationId: $o, name: \"Initrode\") { name } }";

    let deleted = ada.data(delete, o.clone()).await["deleteOrganization"].clone();
    assert!(deleted["deletedAt"].is_string() && deleted["purgeAt"].is_string(), "{deleted}");
    assert_eq!(ada.data(read, o.clone()).await["organization"], Value::Null, "gone at once");
    assert_eq!(ada.error_code(rename, o.clone()).await, "NOT_FOUND");
    assert_eq!(ada.error_code(delete, o.clone()).await, "NOT_FOUND", "deleted once");
    let restored = ada.data(restore, o.clone()).await["restoreOrganization"].clone();
    assert_eq!(restored, json!({ "name": "Initech", "deletedAt": null }));
    assert_eq!(ada.data(rename, o.clone()).await["renameOrganization"]["name"], "Initrode");
    assert_eq!(ada.error_code(restore, o.clone()).await, "FORBIDDEN", "only a deleted one is restored");

    // Past the grace period it cannot be restored, and the purge removes it for good.
    ada.data(delete, o.clone()).await;
    let tables = owner(&harness).await;
    let grace = format!("{} days 1 hour", pyairtable_tenants::GRACE_DAYS);
    sqlx::query("update tenants.organizations set deleted_at = now() - $2::interval where id = $1::uuid")
        .bind(org["id"].as_str())
        .bind(&grace)
        .execute(&tables)
        .await
        .expect("backdate");
    assert_eq!(ada.error_code(restore, o.clone()).await, "NOT_FOUND");
    assert_eq!(pyairtable_tenants::purge(&harness.kit.db).await.expect("purge"), 1);
    let left: i64 = sqlx::query_scalar("select count(*) from tenants.organizations")
        .fetch_one(&tables)
        .await
        .expect("count");
    assert_eq!(left, 0);
    let told: i64 = sqlx::query_scalar("select count(*) from kit.events where topic = 'organization.purged' and payload->>'organization_id' = $1")
        .bind(org["id"].as_str())
        .fetch_one(&tables)
        .await
        .expect("events");
    assert_eq!(told, 1, "other subgraphs are told");
    assert_eq!(pyairtable_tenants::purge(&harness.kit.db).await.expect("purge"), 0);
}

#[tokio::test]
async fn invitations_are_single_use_expiring_resendable_and_revocable() {
    let harness = harness().await;
    let (_, ada) = person(&harness);
    let org = create(&ada, json!({ "name": "Hooli" })).await;
    let invite = |email: &str| json!({ "o": org["id"], "e": email });

    let bob = ada.data(INVITE, invite("Bob@Example.com")).await["inviteMember"].clone();
    assert_eq!((bob["email"].as_str(), bob["status"].as_str()), (Some("bob@example.com"), Some("PENDING")));
    assert_eq!(
        ada.error_code(INVITE, invite("bob@example.com")).await,
        "CONFLICT",
        "one pending per address"
    );
    assert_eq!(ada.error_code(INVITE, invite("not an email")).await, "BAD_USER_INPUT");
    let first = token(&harness, "bob@example.com", 1).await;
    let resend = "mutation($i: ID!) { resendInvitation(invitationId: $i) { status } }";
    ada.data(resend, json!({ "i": bob["id"] })).await;
    let second = token(&harness, "bob@example.com", 2).await;
    assert_ne!(first, second);

    let (bob_id, bob_client) = person(&harness);
    assert_eq!(
        bob_client.error_code(ACCEPT, json!({ "t": first })).await,
        "BAD_USER_INPUT",
        "the old link died"
    );
    let mut tampered = second.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for bad in [tampered.as_str(), "inv_garbage", "", "pat_abc"] {
        assert_eq!(bob_client.error_code(ACCEPT, json!({ "t": bad })).await, "BAD_USER_INPUT", "{bad:?}");
    }
    assert_eq!(bob_client.data(ACCEPT, json!({ "t": second })).await["acceptInvitation"]["name"], "Hooli");
    assert_eq!(bob_client.error_code(ACCEPT, json!({ "t": second })).await, "BAD_USER_INPUT", "used once");

    let carol = ada.data(INVITE, invite("carol@example.com")).await["inviteMember"].clone();
    let revoke = "mutation($i: ID!) { revokeInvitation(invitationId: $i) { status } }";
    assert_eq!(ada.data(revoke, json!({ "i": carol["id"] })).await["revokeInvitation"]["status"], "REVOKED");
    assert_eq!(ada.error_code(revoke, json!({ "i": carol["id"] })).await, "CONFLICT");
    let (_, carol_client) = person(&harness);
    let carols = token(&harness, "carol@example.com", 1).await;
    assert_eq!(carol_client.error_code(ACCEPT, json!({ "t": carols })).await, "BAD_USER_INPUT");

    // Expired: shown as such and refused; resending renews it.
    let dave = ada.data(INVITE, invite("dave@example.com")).await["inviteMember"].clone();
    sqlx::query(
        "update tenants.invitations set expires_at = now() - interval '1 minute' where id = $1::uuid",
    )
    .bind(dave["id"].as_str())
    .execute(&owner(&harness).await)
    .await
    .expect("expire");
    let (_, dave_client) = person(&harness);
    let expired = token(&harness, "dave@example.com", 1).await;
    assert_eq!(dave_client.error_code(ACCEPT, json!({ "t": expired })).await, "BAD_USER_INPUT");
    let listed = statuses(&ada.data(STATUS, json!({ "o": org["id"] })).await);
    let expected =
        [("bob@example.com", "ACCEPTED"), ("carol@example.com", "REVOKED"), ("dave@example.com", "EXPIRED")];
    assert_eq!(listed, expected.map(|(e, s)| (e.to_owned(), s.to_owned())));
    let accepted_by = &ada.data(STATUS, json!({ "o": org["id"] })).await["organization"]["invitations"]["edges"]
        [0]["node"]["acceptedBy"]["id"];
    assert_eq!(accepted_by.as_str(), Some(bob_id.to_string().as_str()));
    assert_eq!(ada.data(resend, json!({ "i": dave["id"] })).await["resendInvitation"]["status"], "PENDING");
    let renewed = token(&harness, "dave@example.com", 2).await;
    assert_eq!(dave_client.data(ACCEPT, json!({ "t": renewed })).await["acceptInvitation"]["name"], "Hooli");

    // Somebody outside the organization can neither see nor touch its invitations.
    let (_, eve) = person(&harness);
    assert_eq!(eve.error_code(resend, json!({ "i": dave["id"] })).await, "NOT_FOUND");
    assert_eq!(eve.error_code(INVITE, invite("eve@example.com")).await, "NOT_FOUND");
}

#[tokio::test]
async fn invitation_lists_page_with_cursors_and_bounded_sizes() {
    let harness = harness().await;
    let (_, ada) = person(&harness);
    let org = create(&ada, json!({ "name": "Umbrella" })).await;
    for i in 0..5 {
        ada.data(INVITE, json!({ "o": org["id"], "e": format!("p{i}@example.com") })).await;
    }
    let page = "query($o: ID!, $f: Int, $a: String, $l: Int, $b: String) { organization(id: $o) {
        invitations(first: $f, after: $a, last: $l, before: $b) { totalCount
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { email } } } } }";
    let get = |vars: Value| {
        let ada = ada.clone();
        async move { ada.data(page, vars).await["organization"]["invitations"].clone() }
    };
    let emails = |c: &Value| {
        c["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["email"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let first = get(json!({ "o": org["id"], "f": 2 })).await;
    assert_eq!(emails(&first), ["p0@example.com", "p1@example.com"]);
    assert_eq!((first["totalCount"].as_i64(), &first["pageInfo"]["hasNextPage"]), (Some(5), &json!(true)));
    let next = get(json!({ "o": org["id"], "f": 2, "a": first["pageInfo"]["endCursor"] })).await;
    assert_eq!(emails(&next), ["p2@example.com", "p3@example.com"]);
    assert_eq!(next["pageInfo"]["hasPreviousPage"], true);
    let tail = get(json!({ "o": org["id"], "l": 2 })).await;
    assert_eq!(emails(&tail), ["p3@example.com", "p4@example.com"]);
    assert_eq!(
        (&tail["pageInfo"]["hasPreviousPage"], &tail["pageInfo"]["hasNextPage"]),
        (&json!(true), &json!(false))
    );
    let before = get(json!({ "o": org["id"], "l": 1, "b": tail["pageInfo"]["startCursor"] })).await;
    assert_eq!(emails(&before), ["p2@example.com"]);
    for vars in [
        json!({ "o": org["id"], "f": 101 }),
        json!({ "o": org["id"], "f": -1 }),
        json!({ "o": org["id"], "f": 1, "l": 1 }),
        json!({ "o": org["id"], "a": "not-a-cursor" }),
    ] {
        assert_eq!(ada.error_code(page, vars.clone()).await, "BAD_USER_INPUT", "{vars}");
    }
}
