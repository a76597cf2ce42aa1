//! The operations of the matrix that are about the caller themself: `me`, `updateMyProfile`,
//! another person's lists (`User.organizations`, `User.workspaces`: the signed-in user's only),
//! `createOrganization` (open to everyone; the new organization is a tenant of its own) and
//! `acceptInvitation` (the token is the permission: it lets one into its organization only, once,
//! and never lowers a role).

use serde_json::{Value, json};

use super::{Actor, ORG_ACTIONS, Seen, Tenant, actions, attempt, invitation_token, invite, judge, set};

fn ids(connection: &Value) -> Vec<Value> {
    connection["edges"].as_array().expect("edges").iter().map(|e| e["node"]["id"].clone()).collect()
}

/// `me`: oneself, the one organization one is in, and the workspaces one may read there; nothing
/// of the other tenant.
pub(super) async fn me(actor: &Actor, tenants: &[Tenant]) {
    let own = &tenants[actor.tenant];
    let q = "{ me { id organizations(first: 50) { totalCount edges { node { id } } }
        workspaces(first: 100) { edges { node { id organization { id } } } } } }";
    let Seen::Data(me) = attempt(&actor.client, q, json!({}), "me").await else {
        panic!("{}: me", actor.label)
    };
    assert_eq!(me["id"], actor.id, "{}", actor.label);
    assert_eq!(
        ids(&me["organizations"]),
        std::slice::from_ref(&own.org),
        "{}: me.organizations",
        actor.label
    );
    assert_eq!(me["organizations"]["totalCount"], 1, "{}", actor.label);
    let edges = me["workspaces"]["edges"].as_array().expect("edges");
    for w in edges {
        assert_eq!(w["node"]["organization"]["id"], own.org, "{}: me.workspaces", actor.label);
    }
    let lists = |id: &Value| edges.iter().any(|w| w["node"]["id"] == *id);
    assert_eq!(lists(&own.ws), actor.ws_rank() >= 1, "{}: the shared workspace", actor.label);
    assert_eq!(lists(&own.private_ws), actor.org_rank() >= 3, "{}: the private workspace", actor.label);
}

/// Another person's organizations and workspaces, reached by id and as a workspace's creator:
/// FORBIDDEN in one's tenant (the person is visible, their lists are not), null across it.
/// One's own, by id, are data.
pub(super) async fn lists_of_others(actor: &Actor, t: &Tenant, index: usize) {
    let (c, mine) = (&actor.client, actor.tenant == index);
    let other = t.actors.iter().find(|a| a.id != actor.id).expect("someone else");
    for list in ["organizations", "workspaces"] {
        let q = format!("query($id: ID!) {{ user(id: $id) {{ {list}(first: 10) {{ totalCount }} }} }}");
        let seen = attempt(c, &q, json!({ "id": other.id }), "user").await;
        let expected = if mine { Seen::Code("FORBIDDEN".into()) } else { Seen::Null };
        assert_eq!(seen, expected, "{}: another's {list} on tenant {index}", actor.label);
        if mine {
            let seen = attempt(c, &q, json!({ "id": actor.id }), "user").await;
            judge(&format!("one's own {list}, by id"), actor, index, true, &seen);
        }
    }
    // The tenant's owner made the shared workspace.
    let q = "query($w: ID!) { workspace(id: $w) { createdBy { id organizations(first: 10) { totalCount }
        workspaces(first: 10) { totalCount } } } }";
    let seen = attempt(c, q, json!({ "w": t.ws }), "workspace").await;
    let creator = mine && actor.org == "OWNER";
    judge("workspace.createdBy's lists", actor, index, creator, &seen);
    if mine && actor.ws_rank() >= 1 && !creator {
        assert_eq!(seen, Seen::Code("FORBIDDEN".into()), "{}: the creator's lists", actor.label);
    }
}

/// `updateMyProfile` changes one's own profile only: everyone in the tenant sees the change,
/// nobody outside sees the person at all; a bad value changes nothing.
pub(super) async fn profile(actor: &Actor, tenants: &[Tenant]) {
    let update = "mutation($n: String!) { updateMyProfile(input: { displayName: $n, locale: \"pt-BR\",
        timeZone: \"Europe/Lisbon\" }) { id displayName locale timeZone } }";
    let name = format!("{} (updated)", actor.label);
    let seen = attempt(&actor.client, update, json!({ "n": name }), "updateMyProfile").await;
    let expected =
        json!({ "id": actor.id, "displayName": name, "locale": "pt-BR", "timeZone": "Europe/Lisbon" });
    assert_eq!(seen, Seen::Data(expected), "{}: updateMyProfile", actor.label);
    let bad = "mutation { updateMyProfile(input: { displayName: \"Nope\", locale: \"EN\" }) { id } }";
    let seen = attempt(&actor.client, bad, json!({}), "updateMyProfile").await;
    assert_eq!(seen, Seen::Code("BAD_USER_INPUT".into()), "{}: a bad locale", actor.label);

    let read = "query($id: ID!) { user(id: $id) { displayName locale } }";
    for other in tenants.iter().flat_map(|t| &t.actors) {
        let seen = attempt(&other.client, read, json!({ "id": actor.id }), "user").await;
        if other.tenant == actor.tenant {
            let expected = Seen::Data(json!({ "displayName": name, "locale": "pt-BR" }));
            assert_eq!(seen, expected, "{} reads {}", other.label, actor.label);
        } else {
            judge("user after updateMyProfile", other, actor.tenant, false, &seen);
        }
    }
}

/// `createOrganization`, by everyone: the creator owns the new organization (every owner action)
/// and is in two organizations now; nobody else, in either tenant, sees it or can act on it. A
/// slug is a unique public handle: taking one in use is CONFLICT, with no data, whoever asks.
pub(super) async fn create_organization(tenants: &[Tenant]) {
    let everyone: Vec<&Actor> = tenants.iter().flat_map(|t| &t.actors).collect();
    let create = "mutation($n: String!, $s: String!) { createOrganization(input: { name: $n, slug: $s }) {
        id slug viewerRole } }";
    for actor in &everyone {
        for t in tenants {
            let taken = json!({ "n": "Squat", "s": t.slug });
            let seen = attempt(&actor.client, create, taken, "createOrganization").await;
            assert_eq!(seen, Seen::Code("CONFLICT".into()), "{}: a taken slug", actor.label);
        }
        let (name, slug) = (format!("{}'s own", actor.label), format!("{}-own", actor.label));
        let seen =
            attempt(&actor.client, create, json!({ "n": name, "s": slug }), "createOrganization").await;
        let Seen::Data(org) = seen else { panic!("{}: createOrganization: {seen:?}", actor.label) };
        assert_eq!(org["viewerRole"], "OWNER", "{}", actor.label);
        owns(actor, &org["id"], &tenants[actor.tenant].org).await;
        for other in everyone.iter().filter(|o| o.id != actor.id) {
            outside(other, &org["id"], &slug, tenants.len()).await;
        }
    }
}

/// The creator of `org` may do everything an owner may, and is in `home` and `org`, in that order.
async fn owns(actor: &Actor, org: &Value, home: &Value) {
    let q = "query($id: ID!) { myPermissions(resource: { type: ORGANIZATION, id: $id }) { actions } }";
    let perms = actor.client.data(q, json!({ "id": org })).await;
    assert_eq!(set(&perms["myPermissions"]["actions"]), actions(&ORG_ACTIONS, "OWNER"), "{}", actor.label);
    let q = "{ me { organizations(first: 50) { edges { node { id } } } } }";
    let me = actor.client.data(q, json!({})).await;
    assert_eq!(ids(&me["me"]["organizations"]), [home.clone(), org.clone()], "{}", actor.label);
}

/// `actor` sees nothing of an organization of someone else's (`tenant`: its index in the judge's
/// terms, a tenant the actor is not in).
async fn outside(actor: &Actor, org: &Value, slug: &str, tenant: usize) {
    let c = &actor.client;
    let q = "query($id: ID!) { organization(id: $id) { id } }";
    let seen = attempt(c, q, json!({ "id": org }), "organization").await;
    judge("another's new organization", actor, tenant, false, &seen);
    let q = "query($s: String!) { organizationBySlug(slug: $s) { id } }";
    let seen = attempt(c, q, json!({ "s": slug }), "organizationBySlug").await;
    judge("another's new organization, by slug", actor, tenant, false, &seen);
    let q = "mutation($o: ID!, $e: String!) { inviteMember(input: { organizationId: $o, email: $e, role: GUEST }) { id } }";
    let email = format!("{}-sneaks-into-{slug}@example.com", actor.label);
    let seen = attempt(c, q, json!({ "o": org, "e": email }), "inviteMember").await;
    judge("inviteMember into another's new organization", actor, tenant, false, &seen);
}

const ACCEPT: &str = "mutation($t: String!) { acceptInvitation(token: $t) { id viewerRole } }";
const INVALID: &str = "BAD_USER_INPUT";

/// `acceptInvitation`, by everyone, with an invitation from each tenant's owner: a revoked token
/// lets nobody in; a genuine one lets its holder into its organization only, once (the same
/// BAD_USER_INPUT for every unusable token: nothing tells which organization it was for). In
/// one's own tenant, accepting a lower role keeps one's role; across the tenant boundary, the
/// holder joins as invited and, removed, is refused again at once.
pub(super) async fn accept_invitation(tenants: &[Tenant]) {
    let everyone: Vec<&Actor> = tenants.iter().flat_map(|t| &t.actors).collect();
    for (index, t) in tenants.iter().enumerate() {
        let email = format!("revoked-{index}@example.com");
        let invitation = invite(&t.owner, &t.org, &email, "ADMIN").await;
        let token = invitation_token(&t.outbox, &email).await;
        let revoke = "mutation($i: ID!) { revokeInvitation(invitationId: $i) { status } }";
        t.owner.data(revoke, json!({ "i": invitation })).await;
        for actor in &everyone {
            let seen = attempt(&actor.client, ACCEPT, json!({ "t": token }), "acceptInvitation").await;
            assert_eq!(seen, Seen::Code(INVALID.into()), "{}: a revoked invitation", actor.label);
        }
    }
    for actor in everyone {
        let me = actor.client.data("{ me { email } }", json!({})).await;
        let email = me["me"]["email"].as_str().expect("email").to_owned();
        for (index, t) in tenants.iter().enumerate() {
            accept_one(actor, t, index, &email).await;
        }
    }
}

async fn accept_one(actor: &Actor, t: &Tenant, index: usize, email: &str) {
    let (c, mine) = (&actor.client, actor.tenant == index);
    invite(&t.owner, &t.org, email, "GUEST").await;
    let token = invitation_token(&t.outbox, email).await;
    let seen = attempt(c, ACCEPT, json!({ "t": token }), "acceptInvitation").await;
    let role = if mine { actor.org } else { "GUEST" };
    let expected = Seen::Data(json!({ "id": t.org, "viewerRole": role }));
    assert_eq!(seen, expected, "{}: acceptInvitation on tenant {index}", actor.label);
    let again = attempt(c, ACCEPT, json!({ "t": token }), "acceptInvitation").await;
    assert_eq!(again, Seen::Code(INVALID.into()), "{}: an invitation works once", actor.label);
    if mine {
        return;
    }
    let remove = "mutation($o: ID!, $u: ID!) { removeMember(input: { organizationId: $o, userId: $u }) }";
    t.owner.data(remove, json!({ "o": t.org, "u": actor.id })).await;
    let q = "query($id: ID!) { organization(id: $id) { id } }";
    let seen = attempt(c, q, json!({ "id": t.org }), "organization").await;
    assert_eq!(seen, Seen::Null, "{}: removed from tenant {index}", actor.label);
}
