//! The oso policy (`policy.polar`, compiled into the binary) and the objects it reasons about.
//! Rust supplies facts (who has which role where); the policy alone says what they allow.

use oso::{Oso, PolarClass, PolarValue, ToPolar};
use pyairtable_kit::authz::Resource;
use pyairtable_kit::{Error, Result};
use uuid::Uuid;

/// The policy source.
pub const POLICY: &str = include_str!("../policy.polar");

/// Roles in an organization, lowest first (the policy's order).
pub const ORGANIZATION_ROLES: &[&str] = &["guest", "member", "admin", "owner"];
/// Roles in a workspace, lowest first (the policy's order).
pub const WORKSPACE_ROLES: &[&str] = &["viewer", "commenter", "editor", "creator", "owner"];

/// The subject of a check, with its bindings in the tenants the check is about.
#[derive(Clone, PolarClass)]
pub struct Person {
    #[polar(attribute)]
    pub id: String,
    /// `[resource id, role]` pairs.
    #[polar(attribute)]
    pub roles: Vec<Vec<String>>,
    /// Organizations the person is a member of (for profile visibility).
    #[polar(attribute)]
    pub tenants: Vec<String>,
}

#[derive(Clone, PartialEq, PolarClass)]
pub struct Organization {
    #[polar(attribute)]
    pub id: String,
    /// Deleted, within its grace period: only its owners may restore it.
    #[polar(attribute)]
    pub deleted: bool,
}

#[derive(Clone, PolarClass)]
pub struct Workspace {
    #[polar(attribute)]
    pub id: String,
    #[polar(attribute)]
    pub organization: Organization,
}

#[derive(Clone, PolarClass)]
pub struct Profile {
    #[polar(attribute)]
    pub id: String,
    #[polar(attribute)]
    pub tenants: Vec<String>,
}

/// What a check is about, with the facts the policy needs: built by the engine from a
/// [`Resource`] and what the database says about it.
#[derive(Clone)]
pub enum Target {
    Organization(Organization),
    Workspace(Workspace),
    Profile(Profile),
}

impl Target {
    /// `resource` with its facts: whether its organization is deleted, and for a profile the
    /// organizations of the person it belongs to.
    pub fn new(resource: &Resource, deleted: bool, profile_tenants: &[Uuid]) -> Self {
        match resource {
            Resource::Organization { id } => Self::Organization(organization(*id, deleted)),
            Resource::Workspace { id, organization_id } => Self::Workspace(Workspace {
                id: id.to_string(),
                organization: organization(*organization_id, deleted),
            }),
            Resource::User { id } => Self::Profile(Profile {
                id: id.to_string(),
                tenants: profile_tenants.iter().map(Uuid::to_string).collect(),
            }),
        }
    }

    /// The roles of this kind of resource, lowest first (none for profiles).
    fn roles(&self) -> &'static [&'static str] {
        match self {
            Self::Organization(_) => ORGANIZATION_ROLES,
            Self::Workspace(_) => WORKSPACE_ROLES,
            Self::Profile(_) => &[],
        }
    }

    fn to_polar(&self) -> PolarValue {
        match self {
            Self::Organization(o) => o.clone().to_polar(),
            Self::Workspace(w) => w.clone().to_polar(),
            Self::Profile(p) => p.clone().to_polar(),
        }
    }
}

/// A binding as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub resource_id: Uuid,
    pub role: String,
}

/// The loaded policy.
#[derive(Clone)]
pub struct Policy {
    oso: Oso,
}

fn failed(err: oso::OsoError) -> Error {
    Error::internal(anyhow::anyhow!("policy evaluation: {err}"))
}

impl Policy {
    /// Loads [`POLICY`]; an error here is a broken build, reported at start.
    pub fn load() -> anyhow::Result<Self> {
        let mut oso = Oso::new();
        oso.register_class(Person::get_polar_class())?;
        oso.register_class(Organization::get_polar_class_builder().with_equality_check().build())?;
        oso.register_class(Workspace::get_polar_class())?;
        oso.register_class(Profile::get_polar_class())?;
        oso.load_str(POLICY).map_err(|e| anyhow::anyhow!("policy.polar: {e}"))?;
        Ok(Self { oso })
    }

    /// Whether `person` may do `action` on `target`.
    pub fn allows(&self, person: &Person, action: &str, target: &Target) -> Result<bool> {
        self.oso.is_allowed(person.clone(), action.to_owned(), target.to_polar()).map_err(failed)
    }

    /// The highest role `person` holds on an organization or workspace, directly or implied
    /// (for a workspace: the higher of its direct role and what its organization role implies).
    pub fn effective_role(&self, person: &Person, target: &Target) -> Result<Option<&'static str>> {
        let order = target.roles();
        if order.is_empty() {
            return Ok(None);
        }
        let args = (person.clone(), PolarValue::Variable("role".into()), target.to_polar());
        let mut held = Vec::new();
        for result in self.oso.query_rule("has_role", args).map_err(failed)? {
            if let Ok(role) = result.map_err(failed)?.get_typed::<String>("role") {
                held.push(role);
            }
        }
        Ok(order.iter().rev().find(|role| held.iter().any(|h| h == *role)).copied())
    }

    /// Every action the policy allows `person` on `target`, sorted.
    pub fn allowed_actions(&self, person: &Person, target: &Target) -> Result<Vec<String>> {
        let actions: std::collections::HashSet<String> =
            self.oso.get_allowed_actions(person.clone(), target.to_polar()).map_err(failed)?;
        let mut actions: Vec<String> = actions.into_iter().collect();
        actions.sort();
        Ok(actions)
    }
}

fn organization(id: Uuid, deleted: bool) -> Organization {
    Organization { id: id.to_string(), deleted }
}

/// The person `subject` with `bindings` and membership in `tenants`.
pub fn person(subject: Uuid, bindings: &[Binding], tenants: &[Uuid]) -> Person {
    Person {
        id: subject.to_string(),
        roles: bindings.iter().map(|b| vec![b.resource_id.to_string(), b.role.clone()]).collect(),
        tenants: tenants.iter().map(Uuid::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(resource_id: Uuid, role: &str) -> Binding {
        Binding { resource_id, role: role.into() }
    }

    fn live(resource: Resource) -> Target {
        Target::new(&resource, false, &[])
    }

    #[test]
    fn the_policy_loads_and_roles_imply_lower_roles() {
        let policy = Policy::load().expect("policy loads");
        let (me, org, ws) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let allows = |who: &Person, action: &str, target: &Target| {
            policy.allows(who, action, target).expect("evaluates")
        };
        let admin = person(me, &[binding(org, "admin")], &[org]);
        let on_org = live(Resource::Organization { id: org });
        let on_ws = live(Resource::Workspace { id: ws, organization_id: org });
        assert!(allows(&admin, "update", &on_org));
        assert!(!allows(&admin, "delete", &on_org));
        assert!(allows(&admin, "delete", &on_ws));
        assert_eq!(policy.effective_role(&admin, &on_org).expect("role"), Some("admin"));
        assert_eq!(policy.effective_role(&admin, &on_ws).expect("role"), Some("owner"));

        let member = person(me, &[binding(org, "member"), binding(ws, "editor")], &[org]);
        assert_eq!(policy.effective_role(&member, &on_ws).expect("role"), Some("editor"));
        assert!(allows(&member, "edit", &on_ws));
        assert!(!allows(&member, "archive", &on_ws));
        // Files: editors upload and delete their own; creators delete anyone's; owners decide
        // which types a workspace takes.
        assert!(allows(&member, "upload_files", &on_ws) && allows(&member, "delete_own_files", &on_ws));
        assert!(!allows(&member, "delete_files", &on_ws) && !allows(&member, "manage_files", &on_ws));
        assert!(allows(&admin, "manage_files", &on_ws));
        // Webhooks: members read endpoints and delivery logs; admins manage endpoints.
        assert!(allows(&member, "read_webhooks", &on_org) && !allows(&member, "manage_webhooks", &on_org));
        assert!(allows(&admin, "manage_webhooks", &on_org));
        let viewer = person(me, &[binding(org, "guest"), binding(ws, "viewer")], &[org]);
        assert!(allows(&viewer, "read_files", &on_ws) && !allows(&viewer, "upload_files", &on_ws));
        let other_ws = live(Resource::Workspace { id: Uuid::now_v7(), organization_id: org });
        assert_eq!(policy.effective_role(&member, &other_ws).expect("role"), None);

        let stranger = person(Uuid::now_v7(), &[], &[]);
        assert!(!allows(&stranger, "read", &on_org));
        assert!(allows(&member, "read", &Target::new(&Resource::User { id: me }, false, &[])));
        let profile = Target::new(&Resource::User { id: me }, false, &[org]);
        assert!(!allows(&stranger, "read", &profile));
        let colleague = person(Uuid::now_v7(), &[], &[org]);
        assert!(allows(&colleague, "read", &profile));
    }

    #[test]
    fn a_deleted_organization_only_lets_its_owners_restore_it() {
        let policy = Policy::load().expect("policy loads");
        let (org, ws) = (Uuid::now_v7(), Uuid::now_v7());
        let owner = person(Uuid::now_v7(), &[binding(org, "owner"), binding(ws, "owner")], &[org]);
        let admin = person(Uuid::now_v7(), &[binding(org, "admin")], &[org]);
        let deleted = Target::new(&Resource::Organization { id: org }, true, &[]);
        let its_workspace = Target::new(&Resource::Workspace { id: ws, organization_id: org }, true, &[]);
        assert_eq!(policy.allowed_actions(&owner, &deleted).expect("actions"), vec!["restore".to_owned()]);
        assert!(policy.allowed_actions(&admin, &deleted).expect("actions").is_empty());
        assert!(policy.allowed_actions(&owner, &its_workspace).expect("actions").is_empty());
        let live = Target::new(&Resource::Organization { id: org }, false, &[]);
        assert!(!policy.allows(&owner, "restore", &live).expect("evaluates"));
        assert!(policy.allows(&owner, "delete", &live).expect("evaluates"));
    }
}
