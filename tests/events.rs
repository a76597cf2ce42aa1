//! The domain events of organizations and access control, read from the outbox (`kit.events`)
//! after each mutation made through the router, in both deployment modes: the topic, the payload
//! (tenant, user, role), and that the event was written by the very transaction that made the
//! change (the event row and the changed row carry the same `xmin`).

mod common;

use common::topology::{env, topology};
use common::{Process, bearer, code, invitation_token, sign_up};
use pyairtable_kit::testing::{GraphQLClient, test_database};
use serde_json::{Value, json};
use sqlx::PgPool;

#[tokio::test]
async fn mutations_write_their_events_in_their_transaction_in_one_process() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut vars = env(db.url(), data_dir.path());
    vars.remove("REDIS_URL");
    let server = Process::start(&["serve"], &vars, &std::env::temp_dir()).await;
    event_scenario(&server.graphql(), data_dir.path(), &db.pool).await;
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn mutations_write_their_events_in_their_transaction_across_services() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let t = topology(&env(db.url(), data_dir.path()), &["router"]).await;
    event_scenario(&t.router.graphql(), data_dir.path(), &db.pool).await;
    t.stop().await;
}

/// An event as stored, and the id of the transaction that wrote it.
#[derive(Debug)]
struct Written {
    topic: String,
    payload: Value,
    tx: String,
}

impl Written {
    /// Every field of `expected` is in the payload with that value.
    fn carries(&self, expected: Value) {
        for (key, value) in expected.as_object().expect("an object") {
            assert_eq!(&self.payload[key], value, "{}: {key} in {}", self.topic, self.payload);
        }
    }
}

/// The outbox, read as it grows (the test connects as the database's owner: no row-level security).
struct Outbox {
    db: PgPool,
    seen: i64,
}

impl Outbox {
    async fn new(db: &PgPool) -> Self {
        let mut outbox = Self { db: db.clone(), seen: 0 };
        outbox.read().await;
        outbox
    }

    /// The events committed since the last call, oldest first.
    async fn read(&mut self) -> Vec<Written> {
        let rows: Vec<(i64, String, Value, String)> =
            sqlx::query_as("select id, topic, payload, xmin::text from kit.events where id > $1 order by id")
                .bind(self.seen)
                .fetch_all(&self.db)
                .await
                .expect("read kit.events");
        self.seen = rows.last().map_or(self.seen, |r| r.0);
        rows.into_iter().map(|(_, topic, payload, tx)| Written { topic, payload, tx }).collect()
    }

    /// The new events, which must be exactly `topics`, in order. The subgraph that commits a
    /// change others apply waits for them (`Authorizer::sync`), so what follows from a mutation is
    /// in the outbox when its answer arrives.
    async fn take(&mut self, topics: &[&str]) -> Vec<Written> {
        let written = self.read().await;
        let got: Vec<&str> = written.iter().map(|w| w.topic.as_str()).collect();
        assert_eq!(got, topics, "{written:#?}");
        written
    }

    /// The one new event, which must be `topic`.
    async fn take_one(&mut self, topic: &str) -> Written {
        self.take(&[topic]).await.pop().expect("one event")
    }

    /// The transaction that last wrote the row `sql` selects (`select xmin::text ...`).
    async fn tx_of(&self, sql: &str, ids: &[&Value]) -> String {
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.as_str().expect("an id").to_owned());
        }
        query.fetch_one(&self.db).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The transaction that last wrote `user`'s binding on `resource`.
    async fn binding_tx(&self, resource: &Value, user: &Value) -> String {
        let sql = "select xmin::text from permissions.role_bindings \
                   where resource_id = $1::uuid and subject_id = $2::uuid";
        self.tx_of(sql, &[resource, user]).await
    }
}

/// Two people, one organization: create, invite, accept, change a role (directly and by a second
/// invitation), create a workspace, share it, remove the member; a refused mutation writes nothing.
async fn event_scenario(router: &GraphQLClient, data_dir: &std::path::Path, db: &PgPool) {
    let (ada_id, ada_token, _) = sign_up(router, "ada@example.com", "Ada").await;
    let (bob_id, bob_token, _) = sign_up(router, "bob@example.com", "Bob").await;
    let (ada, bob) = (bearer(router, &ada_token), bearer(router, &bob_token));
    let mut outbox = Outbox::new(db).await;

    let org = create_organization(&ada, &ada_id, &mut outbox).await;
    invite_and_accept(&ada, &ada_id, (&bob, &bob_id), &org, data_dir, &mut outbox).await;

    // Refused: no change, no event.
    let invite = "mutation($o: ID!) { inviteMember(input: { organizationId: $o, email: \"eve@example.com\", role: ADMIN }) { id } }";
    assert_eq!(code(&bob, invite, json!({ "o": org })).await, "FORBIDDEN");
    outbox.take(&[]).await;

    change_roles(&ada, (&bob, &bob_id), &org, data_dir, &mut outbox).await;
    let ws = create_workspace(&ada, &ada_id, &bob_id, &org, &mut outbox).await;
    remove_member(&ada, &bob, &bob_id, &org, &ws, &mut outbox).await;
}

async fn create_organization(ada: &GraphQLClient, ada_id: &Value, outbox: &mut Outbox) -> Value {
    let create = "mutation { createOrganization(input: { name: \"Acme\" }) { id } }";
    let org = ada.data(create, json!({})).await["createOrganization"]["id"].clone();
    let events = outbox.take(&["organization.created", "member.joined"]).await;
    events[0].carries(json!({ "organization_id": org, "owner_id": ada_id, "name": "Acme" }));
    let sql = "select xmin::text from tenants.organizations where id = $1::uuid";
    assert_eq!(events[0].tx, outbox.tx_of(sql, &[&org]).await, "organization.created: same transaction");
    // The creator's binding, made by the permissions subgraph from organization.created.
    events[1].carries(json!({ "organization_id": org, "user_id": ada_id, "role": "owner" }));
    assert_eq!(events[1].tx, outbox.binding_tx(&org, ada_id).await, "member.joined: same transaction");
    assert_ne!(
        events[0].tx, events[1].tx,
        "the permissions subgraph applies organization.created in its own"
    );
    org
}

async fn invite_and_accept(
    ada: &GraphQLClient,
    ada_id: &Value,
    (bob, bob_id): (&GraphQLClient, &Value),
    org: &Value,
    data_dir: &std::path::Path,
    outbox: &mut Outbox,
) {
    let invite = "mutation($o: ID!) { inviteMember(input: { organizationId: $o, email: \"Bob@Example.com\", role: MEMBER }) { id } }";
    let invitation = ada.data(invite, json!({ "o": org })).await["inviteMember"]["id"].clone();
    let invited = outbox.take_one("member.invited").await;
    invited.carries(json!({ "organization_id": org, "invitation_id": invitation, "email": "bob@example.com",
        "role": "member", "invited_by": ada_id }));
    let sql = "select xmin::text from tenants.invitations where id = $1::uuid";
    assert_eq!(invited.tx, outbox.tx_of(sql, &[&invitation]).await, "member.invited: same transaction");

    let accept = "mutation($t: String!) { acceptInvitation(token: $t) { id } }";
    let token = invitation_token(data_dir, "bob@example.com").await;
    assert_eq!(bob.data(accept, json!({ "t": token })).await["acceptInvitation"]["id"], *org);
    let events = outbox.take(&["invitation.accepted", "member.joined"]).await;
    events[0].carries(json!({ "organization_id": org, "invitation_id": invitation, "user_id": bob_id,
        "role": "member" }));
    assert_eq!(
        events[0].tx,
        outbox.tx_of(sql, &[&invitation]).await,
        "invitation.accepted: same transaction"
    );
    events[1].carries(json!({ "organization_id": org, "user_id": bob_id, "role": "member" }));
    assert_eq!(events[1].tx, outbox.binding_tx(org, bob_id).await, "member.joined: same transaction");
    // The token works once: the second try changes nothing and writes nothing.
    assert_eq!(code(bob, accept, json!({ "t": token })).await, "BAD_USER_INPUT");
    outbox.take(&[]).await;
}

/// Bob's role goes up twice: changed by the owner, then by accepting an invitation to a higher one.
async fn change_roles(
    ada: &GraphQLClient,
    (bob, bob_id): (&GraphQLClient, &Value),
    org: &Value,
    data_dir: &std::path::Path,
    outbox: &mut Outbox,
) {
    let change = "mutation($o: ID!, $u: ID!) { changeMemberRole(input: { organizationId: $o, userId: $u, role: ADMIN }) { role } }";
    ada.data(change, json!({ "o": org, "u": bob_id })).await;
    let changed = outbox.take_one("role.changed").await;
    changed.carries(json!({ "organization_id": org, "resource_type": "organization", "resource_id": org,
        "user_id": bob_id, "role": "admin", "previous_role": "member" }));
    assert_eq!(changed.tx, outbox.binding_tx(org, bob_id).await, "role.changed: same transaction");

    let invite = "mutation($o: ID!) { inviteMember(input: { organizationId: $o, email: \"bob@example.com\", role: OWNER }) { id } }";
    ada.data(invite, json!({ "o": org })).await;
    outbox.take_one("member.invited").await.carries(json!({ "role": "owner" }));
    let accept = "mutation($t: String!) { acceptInvitation(token: $t) { viewerRole } }";
    let token = invitation_token(data_dir, "bob@example.com").await;
    assert_eq!(bob.data(accept, json!({ "t": token })).await["acceptInvitation"]["viewerRole"], "OWNER");
    let events = outbox.take(&["invitation.accepted", "role.changed"]).await;
    events[0].carries(json!({ "organization_id": org, "user_id": bob_id, "role": "owner" }));
    events[1].carries(json!({ "organization_id": org, "resource_type": "organization", "resource_id": org,
        "user_id": bob_id, "role": "owner", "previous_role": "admin" }));
    assert_eq!(events[1].tx, outbox.binding_tx(org, bob_id).await, "role.changed: same transaction");
}

async fn create_workspace(
    ada: &GraphQLClient,
    ada_id: &Value,
    bob_id: &Value,
    org: &Value,
    outbox: &mut Outbox,
) -> Value {
    let create = "mutation($o: ID!) { createWorkspace(organizationId: $o, name: \"Roadmap\") { id } }";
    let ws = ada.data(create, json!({ "o": org })).await["createWorkspace"]["id"].clone();
    let created = outbox.take_one("workspace.created").await;
    created.carries(
        json!({ "workspace_id": ws, "organization_id": org, "created_by": ada_id, "name": "Roadmap" }),
    );
    let sql = "select xmin::text from workspaces.workspaces where id = $1::uuid";
    assert_eq!(created.tx, outbox.tx_of(sql, &[&ws]).await, "workspace.created: same transaction");

    let grant = "mutation($w: ID!, $u: ID!) { grantWorkspaceRole(input: { workspaceId: $w, userId: $u, role: EDITOR }) { role } }";
    ada.data(grant, json!({ "w": ws, "u": bob_id })).await;
    let granted = outbox.take_one("role.changed").await;
    granted.carries(json!({ "organization_id": org, "resource_type": "workspace", "resource_id": ws,
        "user_id": bob_id, "role": "editor", "previous_role": null }));
    assert_eq!(granted.tx, outbox.binding_tx(&ws, bob_id).await, "role.changed: same transaction");
    ws
}

async fn remove_member(
    ada: &GraphQLClient,
    bob: &GraphQLClient,
    bob_id: &Value,
    org: &Value,
    ws: &Value,
    outbox: &mut Outbox,
) {
    let remove = "mutation($o: ID!, $u: ID!) { removeMember(input: { organizationId: $o, userId: $u }) }";
    assert_eq!(ada.data(remove, json!({ "o": org, "u": bob_id })).await["removeMember"], true);
    let removed = outbox.take_one("member.removed").await;
    removed.carries(json!({ "organization_id": org, "user_id": bob_id, "role": "owner" }));
    // The bindings are gone (organization and workspace); the tenant's version, bumped by a trigger
    // on each deleted binding, was last written by the transaction that wrote the event.
    let left: i64 = sqlx::query_scalar(
        "select count(*) from permissions.role_bindings where tenant_id = $1::uuid and subject_id = $2::uuid",
    )
    .bind(org.as_str().expect("id"))
    .bind(bob_id.as_str().expect("id"))
    .fetch_one(&outbox.db)
    .await
    .expect("count bindings");
    assert_eq!(left, 0, "no binding of a removed member stays");
    let sql = "select xmin::text from permissions.versions where scope = $1::uuid";
    assert_eq!(removed.tx, outbox.tx_of(sql, &[org]).await, "member.removed: same transaction");
    let read = "query($w: ID!) { workspace(id: $w) { id } }";
    assert_eq!(bob.data(read, json!({ "w": ws })).await["workspace"], Value::Null);
}
