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

    /// Whether `person` may do `action` on `resource`. `profile_tenants` are the organizations of
    /// the person a `User` resource stands for.
    pub fn allows(
        &self,
        person: &Person,
        action: &str,
        resource: &Resource,
        profile_tenants: &[Uuid],
    ) -> Result<bool> {
        let actor = person.clone();
        let action = action.to_owned();
        let allowed = match resource {
            Resource::Organization { id } => self.oso.is_allowed(actor, action, organization(*id)),
            Resource::Workspace { id, organization_id } => {
                self.oso.is_allowed(actor, action, workspace(*id, *organization_id))
            }
            Resource::User { id } => self.oso.is_allowed(
                actor,
                action,
                Profile {
                    id: id.to_string(),
                    tenants: profile_tenants.iter().map(Uuid::to_string).collect(),
                },
            ),
        };
        allowed.map_err(|e| Error::internal(anyhow::anyhow!("policy evaluation: {e}")))
    }

    /// The highest role `person` holds on an organization or workspace, directly or implied
    /// (for a workspace: the higher of its direct role and what its organization role implies).
    pub fn effective_role(&self, person: &Person, resource: &Resource) -> Result<Option<&'static str>> {
        let (order, query) = match resource {
            Resource::Organization { id } => {
                (ORGANIZATION_ROLES, self.roles_query(person, organization(*id).to_polar()))
            }
            Resource::Workspace { id, organization_id } => {
                (WORKSPACE_ROLES, self.roles_query(person, workspace(*id, *organization_id).to_polar()))
            }
            Resource::User { .. } => return Ok(None),
        };
        let held = query?;
        Ok(order.iter().rev().find(|role| held.iter().any(|h| h == *role)).copied())
    }

    /// Every action the policy allows `person` on an organization or workspace, sorted.
    pub fn allowed_actions(&self, person: &Person, resource: &Resource) -> Result<Vec<String>> {
        let fail = |e: oso::OsoError| Error::internal(anyhow::anyhow!("policy evaluation: {e}"));
        let actions: std::collections::HashSet<String> = match resource {
            Resource::Organization { id } => {
                self.oso.get_allowed_actions(person.clone(), organization(*id)).map_err(fail)?
            }
            Resource::Workspace { id, organization_id } => self
                .oso
                .get_allowed_actions(person.clone(), workspace(*id, *organization_id))
                .map_err(fail)?,
            Resource::User { .. } => Default::default(),
        };
        let mut actions: Vec<String> = actions.into_iter().collect();
        actions.sort();
        Ok(actions)
    }

    fn roles_query(&self, person: &Person, resource: PolarValue) -> Result<Vec<String>> {
        let fail = |e: oso::OsoError| Error::internal(anyhow::anyhow!("policy evaluation: {e}"));
        let query = self
            .oso
            .query_rule("has_role", (person.clone(), PolarValue::Variable("role".into()), resource))
            .map_err(fail)?;
        let mut roles = Vec::new();
        for result in query {
            let result = result.map_err(fail)?;
            if let Ok(role) = result.get_typed::<String>("role") {
                roles.push(role);
            }
        }
        Ok(roles)
    }
}

fn organization(id: Uuid) -> Organization {
    Organization { id: id.to_string() }
}

fn workspace(id: Uuid, organization_id: Uuid) -> Workspace {
    Workspace { id: id.to_string(), organization: organization(organization_id) }
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

    #[test]
    fn the_policy_loads_and_roles_imply_lower_roles() {
        let policy = Policy::load().expect("policy loads");
        let (me, org, ws) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let admin = person(me, &[binding(org, "admin")], &[org]);
        let on_org = Resource::Organization { id: org };
        let on_ws = Resource::Workspace { id: ws, organization_id: org };
        assert!(policy.allows(&admin, "update", &on_org, &[]).expect("evaluates"));
        assert!(!policy.allows(&admin, "delete", &on_org, &[]).expect("evaluates"));
        assert!(policy.allows(&admin, "delete", &on_ws, &[]).expect("evaluates"));
        assert_eq!(policy.effective_role(&admin, &on_org).expect("role"), Some("admin"));
        assert_eq!(policy.effective_role(&admin, &on_ws).expect("role"), Some("owner"));

        let member = person(me, &[binding(org, "member"), binding(ws, "editor")], &[org]);
        assert_eq!(policy.effective_role(&member, &on_ws).expect("role"), Some("editor"));
        assert!(policy.allows(&member, "edit", &on_ws, &[]).expect("evaluates"));
        assert!(!policy.allows(&member, "archive", &on_ws, &[]).expect("evaluates"));
        let other_ws = Resource::Workspace { id: Uuid::now_v7(), organization_id: org };
        assert_eq!(policy.effective_role(&member, &other_ws).expect("role"), None);

        let stranger = person(Uuid::now_v7(), &[], &[]);
        assert!(!policy.allows(&stranger, "read", &on_org, &[]).expect("evaluates"));
        let profile = Resource::User { id: me };
        assert!(policy.allows(&member, "read", &profile, &[]).expect("own profile"));
        assert!(!policy.allows(&stranger, "read", &profile, &[org]).expect("stranger"));
        let colleague = person(Uuid::now_v7(), &[], &[org]);
        assert!(policy.allows(&colleague, "read", &profile, &[org]).expect("colleague"));
    }
}
