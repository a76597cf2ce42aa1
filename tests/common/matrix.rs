//! The isolation matrix of organizations and access control, through the router: two tenants,
//! a user with every organization role and every workspace role in each, and every query and
//! mutation of the tenants, workspaces, permissions and users subgraphs tried by every one of
//! them against both tenants. Across the tenant boundary everything is refused with NOT_FOUND or
//! null (never FORBIDDEN, which would tell that the thing exists, and never data); inside a
//! tenant every role gets exactly what the table below says, no more, no less. The operations
//! about the caller themself (`me`, `updateMyProfile`, another person's `organizations` and
//! `workspaces`, `createOrganization`, `acceptInvitation`) are in [`own`]; their two refusals
//! that are not NOT_FOUND say nothing of another tenant either (a taken slug is CONFLICT for
//! everyone; every unusable invitation token is the same BAD_USER_INPUT).
//!
//! The table is written here from the product's rules, not read from `policy.polar`: the test
//! checks the policy as much as the services that ask it.

use std::collections::BTreeSet;
use std::path::Path;

use pyairtable_kit::testing::GraphQLClient;
use serde_json::{Value, json};

use super::{bearer, invitation_token, sign_up};

mod own;

/// Organization roles, highest first, and what each may do (cumulative upwards).
const ORG_ACTIONS: [(&str, &[&str]); 4] = [
    ("OWNER", &["delete", "transfer_ownership", "invite_owner", "grant_owner"]),
    (
        "ADMIN",
        &[
            "update",
            "manage_members",
            "invite_admin",
            "grant_guest",
            "grant_member",
            "grant_admin",
            "manage_webhooks",
        ],
    ),
    (
        "MEMBER",
        &[
            "read_members",
            "read_invitations",
            "create_workspace",
            "invite_guest",
            "invite_member",
            "read_webhooks",
        ],
    ),
    ("GUEST", &["read", "leave"]),
];

/// Workspace roles, highest first, and what each may do (cumulative upwards).
const WS_ACTIONS: [(&str, &[&str]); 5] = [
    ("OWNER", &["archive", "delete", "manage_collaborators", "manage_files", "grant_owner"]),
    (
        "CREATOR",
        &[
            "create_bases",
            "update",
            "delete_files",
            "grant_viewer",
            "grant_commenter",
            "grant_editor",
            "grant_creator",
        ],
    ),
    ("EDITOR", &["edit", "upload_files", "delete_own_files"]),
    ("COMMENTER", &["comment"]),
    ("VIEWER", &["read", "read_collaborators", "read_files"]),
];

fn rank<const N: usize>(table: &[(&str, &[&str]); N], role: &str) -> usize {
    table.iter().position(|(r, _)| *r == role).map_or(0, |i| N - i)
}

fn actions<const N: usize>(table: &[(&str, &[&str]); N], role: &str) -> BTreeSet<String> {
    let from = N - rank(table, role);
    table[from..].iter().flat_map(|(_, a)| a.iter().map(|s| (*s).to_owned())).collect()
}

/// Someone in one tenant: an organization role and, maybe, a direct role on its workspace.
pub struct Actor {
    pub label: String,
    pub id: Value,
    pub client: GraphQLClient,
    pub tenant: usize,
    pub org: &'static str,
    pub ws: Option<&'static str>,
}

impl Actor {
    fn org_rank(&self) -> usize {
        rank(&ORG_ACTIONS, self.org)
    }

    /// The effective workspace role: owners and admins of the organization own every workspace.
    fn ws_role(&self) -> Option<&'static str> {
        if self.org_rank() >= rank(&ORG_ACTIONS, "ADMIN") { Some("OWNER") } else { self.ws }
    }

    fn ws_rank(&self) -> usize {
        self.ws_role().map_or(0, |r| rank(&WS_ACTIONS, r))
    }
}

/// One organization of the matrix, with its workspace and the people in it.
pub struct Tenant {
    pub org: Value,
    pub slug: String,
    /// Everyone with a workspace role has it here.
    pub ws: Value,
    /// A workspace only the organization's owners and admins reach.
    pub private_ws: Value,
    pub owner: GraphQLClient,
    /// A pending invitation (role MEMBER) for resending.
    pub invitation: Value,
    pub actors: Vec<Actor>,
    /// Where invitation emails land.
    pub outbox: std::path::PathBuf,
}

impl Tenant {
    fn person(&self, org: &str, ws: Option<&str>) -> &Actor {
        self.actors.iter().find(|a| a.org == org && a.ws == ws).expect("an actor with these roles")
    }
}

/// What a client got: data, a null root field, or an error code.
#[derive(Debug, PartialEq)]
enum Seen {
    Data(Value),
    Null,
    Code(String),
}

async fn attempt(client: &GraphQLClient, query: &str, variables: Value, field: &str) -> Seen {
    let (_, body) = client.send(query, variables).await;
    if let Some(code) = body["errors"][0]["extensions"]["code"].as_str() {
        return Seen::Code(code.to_owned());
    }
    assert!(body.get("errors").is_none(), "an error without a code: {body}");
    match &body["data"][field] {
        Value::Null => Seen::Null,
        data => Seen::Data(data.clone()),
    }
}

/// Checks one attempt of `actor` on `tenant`: allowed → data; refused → FORBIDDEN or NOT_FOUND
/// (or null) in the actor's own tenant, NOT_FOUND or null across tenants.
fn judge(case: &str, actor: &Actor, tenant: usize, allowed: bool, seen: &Seen) {
    let who = format!("{case}: {} on tenant {tenant}", actor.label);
    match (allowed, seen) {
        (true, Seen::Data(_)) => {}
        (true, other) => panic!("{who} should be allowed, got {other:?}"),
        (false, Seen::Null) => {}
        (false, Seen::Code(code)) if code == "NOT_FOUND" => {}
        (false, Seen::Code(code)) if code == "FORBIDDEN" && actor.tenant == tenant => {}
        (false, other) => panic!("{who} should be refused without disclosure, got {other:?}"),
    }
}

/// Invites `email` to `org` with `role` as `inviter`; the invitee signs up and accepts.
async fn join(
    router: &GraphQLClient,
    data_dir: &Path,
    inviter: &GraphQLClient,
    org: &Value,
    email: &str,
    role: &str,
) -> (Value, GraphQLClient) {
    invite(inviter, org, email, role).await;
    let token = invitation_token(data_dir, email).await;
    let (id, access, _) = sign_up(router, email, email).await;
    let client = bearer(router, &access);
    let accept = "mutation($t: String!) { acceptInvitation(token: $t) { id } }";
    assert_eq!(client.data(accept, json!({ "t": token })).await["acceptInvitation"]["id"], *org);
    (id, client)
}

async fn invite(inviter: &GraphQLClient, org: &Value, email: &str, role: &str) -> Value {
    let invite = "mutation($o: ID!, $e: String!, $r: OrganizationRole!) {
        inviteMember(input: { organizationId: $o, email: $e, role: $r }) { id } }";
    inviter.data(invite, json!({ "o": org, "e": email, "r": role })).await["inviteMember"]["id"].clone()
}

const GRANT: &str = "mutation($w: ID!, $u: ID!, $r: WorkspaceRole!) {
    grantWorkspaceRole(input: { workspaceId: $w, userId: $u, role: $r }) { role } }";
const CREATE_WS: &str =
    "mutation($o: ID!, $n: String!) { createWorkspace(organizationId: $o, name: $n) { id } }";

/// Builds one tenant: an owner, a member of every organization role, and guests holding each
/// workspace role on its workspace.
async fn tenant(router: &GraphQLClient, data_dir: &Path, index: usize) -> Tenant {
    let email = |who: &str| format!("{who}-{index}@example.com");
    let (owner_id, token, _) = sign_up(router, &email("owner"), "Owner").await;
    let owner = bearer(router, &token);
    let slug = format!("tenant-{index}");
    let create =
        "mutation($n: String!, $s: String!) { createOrganization(input: { name: $n, slug: $s }) { id } }";
    let org =
        owner.data(create, json!({ "n": format!("Tenant {index}"), "s": slug })).await["createOrganization"]
            ["id"]
            .clone();
    let ws = owner.data(CREATE_WS, json!({ "o": org, "n": "Shared" })).await["createWorkspace"]["id"].clone();
    let private_ws =
        owner.data(CREATE_WS, json!({ "o": org, "n": "Private" })).await["createWorkspace"]["id"].clone();
    let mut actors = vec![Actor {
        label: format!("owner-{index}"),
        id: owner_id,
        client: owner.clone(),
        tenant: index,
        org: "OWNER",
        ws: None,
    }];
    for org_role in ["ADMIN", "MEMBER", "GUEST"] {
        let label = format!("{}-{index}", org_role.to_lowercase());
        let (id, client) =
            join(router, data_dir, &owner, &org, &email(&org_role.to_lowercase()), org_role).await;
        actors.push(Actor { label, id, client, tenant: index, org: org_role, ws: None });
    }
    for (ws_role, _) in WS_ACTIONS {
        let label = format!("ws-{}-{index}", ws_role.to_lowercase());
        let (id, client) = join(router, data_dir, &owner, &org, &email(&label), "GUEST").await;
        owner.data(GRANT, json!({ "w": ws, "u": id, "r": ws_role })).await;
        actors.push(Actor { label, id, client, tenant: index, org: "GUEST", ws: Some(ws_role) });
    }
    let invitation = invite(&owner, &org, &email("pending"), "MEMBER").await;
    Tenant { org, slug, ws, private_ws, owner, invitation, actors, outbox: data_dir.to_owned() }
}

/// The whole matrix; `data_dir` holds the outbox the invitation links are read from.
pub async fn isolation_matrix(router: &GraphQLClient, data_dir: &Path) {
    let tenants = [tenant(router, data_dir, 0).await, tenant(router, data_dir, 1).await];
    for actor in tenants.iter().flat_map(|t| &t.actors) {
        own::me(actor, &tenants).await;
        for (index, tenant) in tenants.iter().enumerate() {
            reads(actor, tenant, index).await;
            own::lists_of_others(actor, tenant, index).await;
            writes(actor, tenant, index).await;
        }
        own::profile(actor, &tenants).await;
    }
    for (index, tenant) in tenants.iter().enumerate() {
        people(&tenants, tenant, index).await;
    }
    own::create_organization(&tenants).await;
    own::accept_invitation(&tenants).await;
    for (index, tenant) in tenants.iter().enumerate() {
        endings(&tenants, tenant, index).await;
    }
}

/// Every query, by one actor against one tenant.
async fn reads(actor: &Actor, t: &Tenant, index: usize) {
    let mine = actor.tenant == index;
    let org_rank = if mine { actor.org_rank() } else { 0 };
    let ws_rank = if mine { actor.ws_rank() } else { 0 };
    let c = &actor.client;

    let q = "query($id: ID!) { organization(id: $id) { id slug viewerRole } }";
    let seen = attempt(c, q, json!({ "id": t.org }), "organization").await;
    judge("organization", actor, index, org_rank >= 1, &seen);
    if let Seen::Data(org) = &seen {
        assert_eq!(org["viewerRole"], actor.org, "{}", actor.label);
    }
    let q = "query($s: String!) { organizationBySlug(slug: $s) { id } }";
    judge(
        "organizationBySlug",
        actor,
        index,
        org_rank >= 1,
        &attempt(c, q, json!({ "s": t.slug }), "organizationBySlug").await,
    );
    let q = "query($id: ID!) { organization(id: $id) { members(first: 50) { totalCount } } }";
    judge(
        "members",
        actor,
        index,
        org_rank >= 2,
        &attempt(c, q, json!({ "id": t.org }), "organization").await,
    );
    let q = "query($id: ID!) { organization(id: $id) { invitations(first: 50) { totalCount } } }";
    judge(
        "invitations",
        actor,
        index,
        org_rank >= 2,
        &attempt(c, q, json!({ "id": t.org }), "organization").await,
    );

    // The workspaces of an organization: exactly those the actor may read (owners and admins:
    // all; others: the shared one with a role there, and what they made or were given).
    let q =
        "query($id: ID!) { organization(id: $id) { workspaces(first: 100) { edges { node { id name } } } } }";
    if let Seen::Data(org) = attempt(c, q, json!({ "id": t.org }), "organization").await {
        let listed: Vec<&Value> =
            org["workspaces"]["edges"].as_array().expect("edges").iter().map(|e| &e["node"]).collect();
        let lists = |id: &Value| listed.iter().any(|w| w["id"] == *id);
        assert_eq!(lists(&t.ws), ws_rank >= 1, "{}: the shared workspace", actor.label);
        assert_eq!(lists(&t.private_ws), org_rank >= 3, "{}: the private workspace", actor.label);
        if org_rank < 3 {
            let own = format!("{}'s", actor.label);
            for w in &listed {
                let fine = w["id"] == t.ws
                    || w["name"] == own.as_str()
                    || (actor.ws.is_some() && w["name"] == "Doomed");
                assert!(fine, "{} sees {w}", actor.label);
            }
        }
    } else {
        assert_eq!(org_rank, 0, "{} cannot list workspaces", actor.label);
    }

    let q = "query($id: ID!) { workspace(id: $id) { id viewerRole organization { id } } }";
    let seen = attempt(c, q, json!({ "id": t.ws }), "workspace").await;
    judge("workspace", actor, index, ws_rank >= 1, &seen);
    if let Seen::Data(ws) = &seen {
        assert_eq!(ws["viewerRole"], actor.ws_role().unwrap_or_default(), "{}", actor.label);
        assert_eq!(ws["organization"]["id"], t.org);
    }
    let seen = attempt(c, q, json!({ "id": t.private_ws }), "workspace").await;
    judge("private workspace", actor, index, org_rank >= 3, &seen);
    let q = "query($id: ID!) { workspace(id: $id) { collaborators(first: 50) { totalCount } } }";
    judge(
        "collaborators",
        actor,
        index,
        ws_rank >= 1,
        &attempt(c, q, json!({ "id": t.ws }), "workspace").await,
    );

    // What the policy says each may do, exactly.
    let q = "query($t: ResourceType!, $id: ID!) { myPermissions(resource: { type: $t, id: $id }) { actions organizationRole workspaceRole } }";
    let seen = attempt(c, q, json!({ "t": "ORGANIZATION", "id": t.org }), "myPermissions").await;
    judge("myPermissions(organization)", actor, index, org_rank >= 1, &seen);
    if let Seen::Data(p) = &seen {
        assert_eq!(
            set(&p["actions"]),
            actions(&ORG_ACTIONS, actor.org),
            "{}: organization actions",
            actor.label
        );
    }
    let seen = attempt(c, q, json!({ "t": "WORKSPACE", "id": t.ws }), "myPermissions").await;
    judge("myPermissions(workspace)", actor, index, ws_rank >= 1, &seen);
    if let Seen::Data(p) = &seen {
        let role = actor.ws_role().unwrap_or_default();
        assert_eq!(set(&p["actions"]), actions(&WS_ACTIONS, role), "{}: workspace actions", actor.label);
        assert_eq!(p["workspaceRole"], role);
    }

    // Profiles: everyone in the tenant, nobody outside it.
    let q = "query($id: ID!) { user(id: $id) { displayName } }";
    let other = &t.actors[0].id;
    judge("user", actor, index, mine, &attempt(c, q, json!({ "id": other }), "user").await);
}

fn set(value: &Value) -> BTreeSet<String> {
    value.as_array().expect("a list").iter().map(|v| v.as_str().expect("a string").to_owned()).collect()
}

/// The mutations that leave everything as it was (or are undone at once by the tenant's owner).
async fn writes(actor: &Actor, t: &Tenant, index: usize) {
    let mine = actor.tenant == index;
    let org_rank = if mine { actor.org_rank() } else { 0 };
    let ws_rank = if mine { actor.ws_rank() } else { 0 };
    let c = &actor.client;
    let label = &actor.label;

    let q = "mutation($o: ID!, $n: String!) { renameOrganization(organizationId: $o, name: $n) { id } }";
    let seen =
        attempt(c, q, json!({ "o": t.org, "n": format!("Tenant {index}") }), "renameOrganization").await;
    judge("renameOrganization", actor, index, org_rank >= 3, &seen);
    for role in ["GUEST", "MEMBER", "ADMIN", "OWNER"] {
        let email = format!("{label}-invites-{}-{index}@example.com", role.to_lowercase());
        let q = "mutation($o: ID!, $e: String!, $r: OrganizationRole!) { inviteMember(input: { organizationId: $o, email: $e, role: $r }) { id } }";
        let seen = attempt(c, q, json!({ "o": t.org, "e": email, "r": role }), "inviteMember").await;
        judge(
            &format!("inviteMember({role})"),
            actor,
            index,
            org_rank >= 2 && rank(&ORG_ACTIONS, role) <= org_rank,
            &seen,
        );
    }
    let q = "mutation($i: ID!) { resendInvitation(invitationId: $i) { id } }";
    judge(
        "resendInvitation",
        actor,
        index,
        org_rank >= 2,
        &attempt(c, q, json!({ "i": t.invitation }), "resendInvitation").await,
    );
    let disposable = invite(&t.owner, &t.org, &format!("{label}-revoked-{index}@example.com"), "GUEST").await;
    let q = "mutation($i: ID!) { revokeInvitation(invitationId: $i) { status } }";
    judge(
        "revokeInvitation",
        actor,
        index,
        org_rank >= 3,
        &attempt(c, q, json!({ "i": disposable }), "revokeInvitation").await,
    );

    let name = format!("{label}'s");
    judge(
        "createWorkspace",
        actor,
        index,
        org_rank >= 2,
        &attempt(c, CREATE_WS, json!({ "o": t.org, "n": name }), "createWorkspace").await,
    );
    let q = "mutation($w: ID!) { renameWorkspace(workspaceId: $w, name: \"Shared\") { id } }";
    judge(
        "renameWorkspace",
        actor,
        index,
        ws_rank >= 4,
        &attempt(c, q, json!({ "w": t.ws }), "renameWorkspace").await,
    );
    let q = "mutation($w: ID!) { archiveWorkspace(workspaceId: $w) { archived } }";
    let seen = attempt(c, q, json!({ "w": t.ws }), "archiveWorkspace").await;
    judge("archiveWorkspace", actor, index, ws_rank >= 5, &seen);
    let q = "mutation($w: ID!) { restoreWorkspace(workspaceId: $w) { archived } }";
    let restore = if matches!(seen, Seen::Data(_)) { &t.owner } else { c };
    let seen = attempt(restore, q, json!({ "w": t.ws }), "restoreWorkspace").await;
    assert!(matches!(seen, Seen::Data(_)) || ws_rank < 5, "{label}: restore");
    if !matches!(seen, Seen::Data(_)) {
        judge("restoreWorkspace", actor, index, false, &seen);
    }

    // Deleting: a workspace of its own where the actor holds the same role as on the shared one.
    let doomed =
        t.owner.data(CREATE_WS, json!({ "o": t.org, "n": "Doomed" })).await["createWorkspace"]["id"].clone();
    if let (true, Some(role)) = (mine, actor.ws) {
        t.owner.data(GRANT, json!({ "w": doomed, "u": actor.id, "r": role })).await;
    }
    let q = "mutation($w: ID!) { deleteWorkspace(workspaceId: $w) }";
    judge(
        "deleteWorkspace",
        actor,
        index,
        ws_rank >= 5,
        &attempt(c, q, json!({ "w": doomed }), "deleteWorkspace").await,
    );

    workspace_roles(actor, t, index).await;
    member_roles(actor, t, index).await;
}

/// Granting, changing and revoking workspace roles; every change the actor makes is undone by the
/// tenant's owner.
async fn workspace_roles(actor: &Actor, t: &Tenant, index: usize) {
    let ws_rank = if actor.tenant == index { actor.ws_rank() } else { 0 };
    let c = &actor.client;
    let member = &t.person("MEMBER", None).id;
    let revoke = "mutation($w: ID!, $u: ID!) { revokeWorkspaceRole(workspaceId: $w, userId: $u) }";
    for (role, _) in WS_ACTIONS {
        let seen =
            attempt(c, GRANT, json!({ "w": t.ws, "u": member, "r": role }), "grantWorkspaceRole").await;
        let allowed = ws_rank >= 4 && rank(&WS_ACTIONS, role) <= ws_rank;
        judge(&format!("grantWorkspaceRole({role})"), actor, index, allowed, &seen);
        if matches!(seen, Seen::Data(_)) {
            t.owner.data(revoke, json!({ "w": t.ws, "u": member })).await;
        }
    }
    let viewer = &t.person("GUEST", Some("VIEWER")).id;
    let change = "mutation($w: ID!, $u: ID!, $r: WorkspaceRole!) { changeWorkspaceRole(input: { workspaceId: $w, userId: $u, role: $r }) { role } }";
    let seen =
        attempt(c, change, json!({ "w": t.ws, "u": viewer, "r": "COMMENTER" }), "changeWorkspaceRole").await;
    judge("changeWorkspaceRole", actor, index, ws_rank >= 5, &seen);
    if matches!(seen, Seen::Data(_)) {
        t.owner.data(change, json!({ "w": t.ws, "u": viewer, "r": "VIEWER" })).await;
    }
    let seen = attempt(c, revoke, json!({ "w": t.ws, "u": viewer }), "revokeWorkspaceRole").await;
    judge("revokeWorkspaceRole", actor, index, ws_rank >= 5, &seen);
    if matches!(seen, Seen::Data(_)) {
        t.owner.data(GRANT, json!({ "w": t.ws, "u": viewer, "r": "VIEWER" })).await;
    }
}

/// Changing organization roles (undone by the owner) and removing a member (who joins again).
async fn member_roles(actor: &Actor, t: &Tenant, index: usize) {
    let org_rank = if actor.tenant == index { actor.org_rank() } else { 0 };
    let c = &actor.client;
    let guest = &t.person("GUEST", None).id;
    let change = "mutation($o: ID!, $u: ID!, $r: OrganizationRole!) { changeMemberRole(input: { organizationId: $o, userId: $u, role: $r }) { role } }";
    for role in ["MEMBER", "ADMIN", "OWNER"] {
        let seen = attempt(c, change, json!({ "o": t.org, "u": guest, "r": role }), "changeMemberRole").await;
        let allowed = org_rank >= 3 && rank(&ORG_ACTIONS, role) <= org_rank;
        judge(&format!("changeMemberRole(GUEST → {role})"), actor, index, allowed, &seen);
        if matches!(seen, Seen::Data(_)) {
            t.owner.data(change, json!({ "o": t.org, "u": guest, "r": "GUEST" })).await;
        }
    }
    // Above one's own role, nothing: an admin may not demote an owner; the only owner may not
    // demote themself either (an organization keeps an owner).
    let owner = &t.actors[0].id;
    let seen = attempt(c, change, json!({ "o": t.org, "u": owner, "r": "ADMIN" }), "changeMemberRole").await;
    if actor.id == *owner {
        assert_eq!(seen, Seen::Code("CONFLICT".into()), "the last owner stays");
    } else {
        judge("changeMemberRole(OWNER → ADMIN)", actor, index, false, &seen);
    }
}

/// Removing members and transferring ownership, once per tenant, by each role.
async fn people(tenants: &[Tenant], t: &Tenant, index: usize) {
    let remove = "mutation($o: ID!, $u: ID!) { removeMember(input: { organizationId: $o, userId: $u }) }";
    let transfer = "mutation($o: ID!, $u: ID!) { transferOwnership(input: { organizationId: $o, userId: $u }) { role } }";
    let guest = &t.person("GUEST", None).id;
    for actor in tenants.iter().flat_map(|t| &t.actors) {
        let org_rank = if actor.tenant == index { actor.org_rank() } else { 0 };
        if actor.id == *guest {
            continue;
        }
        let seen =
            attempt(&actor.client, transfer, json!({ "o": t.org, "u": guest }), "transferOwnership").await;
        judge("transferOwnership", actor, index, org_rank >= 4, &seen);
        if matches!(seen, Seen::Data(_)) {
            // The guest owns it now and the old owner is an admin: hand it back.
            let back = &t.person("GUEST", None).client;
            back.data(transfer, json!({ "o": t.org, "u": actor.id })).await;
            let change = "mutation($o: ID!, $u: ID!) { changeMemberRole(input: { organizationId: $o, userId: $u, role: GUEST }) { role } }";
            actor.client.data(change, json!({ "o": t.org, "u": guest })).await;
        }
        let seen = attempt(&actor.client, remove, json!({ "o": t.org, "u": guest }), "removeMember").await;
        judge("removeMember", actor, index, org_rank >= 3, &seen);
        if matches!(seen, Seen::Data(_)) {
            // Removed: the next request is refused; invited again, the guest is back.
            let q = "query($id: ID!) { organization(id: $id) { id } }";
            let removed = &t.person("GUEST", None).client;
            assert_eq!(attempt(removed, q, json!({ "id": t.org }), "organization").await, Seen::Null);
            rejoin(t, removed).await;
        }
    }
}

async fn rejoin(t: &Tenant, client: &GraphQLClient) {
    let email =
        client.data("{ me { email } }", json!({})).await["me"]["email"].as_str().expect("email").to_owned();
    let q = "mutation($o: ID!, $e: String!) { inviteMember(input: { organizationId: $o, email: $e, role: GUEST }) { id } }";
    t.owner.data(q, json!({ "o": t.org, "e": email })).await;
    let token = invitation_token(&t.outbox, &email).await;
    let accept = "mutation($t: String!) { acceptInvitation(token: $t) { id } }";
    client.data(accept, json!({ "t": token })).await;
}

/// Leaving and deleting, last: every member but the owner leaves; the last owner cannot; the
/// organization is deleted, seen by nobody, restored by its owner only.
async fn endings(tenants: &[Tenant], t: &Tenant, index: usize) {
    let leave = "mutation($o: ID!) { leaveOrganization(organizationId: $o) }";
    let delete = "mutation($o: ID!) { deleteOrganization(organizationId: $o) { deletedAt } }";
    let restore = "mutation($o: ID!) { restoreOrganization(organizationId: $o) { deletedAt } }";
    let read = "query($id: ID!) { organization(id: $id) { id } }";
    for actor in tenants.iter().flat_map(|t| &t.actors) {
        let org_rank = if actor.tenant == index { actor.org_rank() } else { 0 };
        let seen = attempt(&actor.client, delete, json!({ "o": t.org }), "deleteOrganization").await;
        judge("deleteOrganization", actor, index, org_rank >= 4, &seen);
        if matches!(seen, Seen::Data(_)) {
            // Everyone else first (nobody sees it, nobody but its owner restores it), then the owner.
            let others = tenants.iter().flat_map(|t| &t.actors).filter(|o| o.id != actor.id);
            for other in others.chain([actor]) {
                assert_eq!(
                    attempt(&other.client, read, json!({ "id": t.org }), "organization").await,
                    Seen::Null,
                    "{} sees a deleted organization",
                    other.label
                );
                let seen =
                    attempt(&other.client, restore, json!({ "o": t.org }), "restoreOrganization").await;
                judge("restoreOrganization", other, index, other.id == actor.id, &seen);
            }
            assert!(matches!(
                attempt(&actor.client, read, json!({ "id": t.org }), "organization").await,
                Seen::Data(_)
            ));
        }
    }
    for actor in t.actors.iter().rev() {
        let seen = attempt(&actor.client, leave, json!({ "o": t.org }), "leaveOrganization").await;
        if actor.org_rank() >= 4 {
            assert_eq!(seen, Seen::Code("CONFLICT".into()), "the last owner stays");
        } else {
            judge("leaveOrganization", actor, index, true, &seen);
        }
    }
    let outsider = &tenants[1 - index].actors[0];
    judge(
        "leaveOrganization",
        outsider,
        index,
        false,
        &attempt(&outsider.client, leave, json!({ "o": t.org }), "leaveOrganization").await,
    );
}
