//! Changes to role bindings: grant, change, revoke, remove a member, leave, transfer ownership.
//! What a caller may do is asked of the policy (actions `grant_<role>`, `manage_members`, ...);
//! the invariants that are not about permission (the last owner stays) are kept here.

use std::sync::Arc;

use pyairtable_kit::authz::{Authorizer, Check, Resource};
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::events::publish;
use pyairtable_kit::{Error, Result};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::engine::Engine;
use crate::policy::{ORGANIZATION_ROLES, WORKSPACE_ROLES};
use crate::store::{self, BindingRow, NewBinding};

#[derive(Clone)]
pub struct Permissions {
    db: PgPool,
    engine: Arc<Engine>,
}

impl Permissions {
    pub fn new(db: PgPool, engine: Arc<Engine>) -> Self {
        Self { db, engine }
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// `Ok` when `caller` may do every action on `resource`.
    async fn require(&self, caller: Uuid, resource: Resource, actions: &[String]) -> Result<()> {
        let checks: Vec<Check> = actions.iter().map(|a| Check::new(a, resource)).collect();
        let decisions = self.engine.decide(caller, &checks).await?;
        for (check, decision) in checks.iter().zip(decisions) {
            decision.into_result(check)?;
        }
        Ok(())
    }

    /// The resource behind an id the client gave: an organization, or a workspace of one of the
    /// caller's organizations (NOT_FOUND otherwise).
    pub async fn resolve(&self, caller: Uuid, kind: Kind, id: Uuid) -> Result<Resource> {
        match kind {
            Kind::Organization => Ok(Resource::Organization { id }),
            Kind::Workspace => {
                let tenants = self.engine.organizations_of(caller).await?;
                let mut tx = scoped(&self.db, &Scope::tenants(tenants)).await?;
                let found = store::workspace_tenants(&mut tx, &[id]).await?;
                tx.commit().await?;
                let organization_id =
                    found.get(&id).copied().ok_or_else(|| Error::NotFound("no such workspace".into()))?;
                Ok(Resource::Workspace { id, organization_id })
            }
        }
    }

    /// Gives a person a role on a workspace (they must be in its organization).
    #[tracing::instrument(skip_all)]
    pub async fn grant(
        &self,
        caller: Uuid,
        subject: Uuid,
        resource: Resource,
        role: &str,
    ) -> Result<BindingRow> {
        let Resource::Workspace { id, organization_id } = resource else {
            return Err(Error::bad_input(
                "resource",
                "people join an organization by invitation: use inviteMember",
            ));
        };
        check_role(WORKSPACE_ROLES, role)?;
        self.require(caller, resource, &[format!("grant_{role}")]).await?;
        let mut tx = scoped(&self.db, &Scope::tenant(organization_id)).await?;
        if store::binding_for_update(&mut tx, organization_id, subject).await?.is_none() {
            return Err(Error::bad_input(
                "subjectId",
                "this person is not a member of the organization; invite them first",
            ));
        }
        let new = NewBinding {
            tenant_id: organization_id,
            subject_id: subject,
            resource_type: "workspace",
            resource_id: id,
            role,
        };
        let row = store::insert_binding(&mut tx, &new).await?;
        changed(&mut tx, &row, None).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Changes a person's role on an organization or workspace.
    #[tracing::instrument(skip_all)]
    pub async fn change(
        &self,
        caller: Uuid,
        subject: Uuid,
        resource: Resource,
        role: &str,
    ) -> Result<BindingRow> {
        let (roles, manage) = roles_of(&resource)?;
        check_role(roles, role)?;
        let tenant = resource.tenant().unwrap_or_default();
        self.require(caller, resource, &[manage.into()]).await?;
        let mut tx = scoped(&self.db, &Scope::tenant(tenant)).await?;
        let Some(current) = store::binding_for_update(&mut tx, resource_id(&resource), subject).await? else {
            return Err(Error::NotFound("this person has no role there".into()));
        };
        self.require(
            caller,
            resource,
            &[manage.into(), format!("grant_{}", current.role), format!("grant_{role}")],
        )
        .await?;
        if current.role == role {
            return Ok(current);
        }
        if matches!(resource, Resource::Organization { .. }) && current.role == "owner" {
            keep_an_owner(&mut tx, tenant, &[subject]).await?;
        }
        let row = store::set_role(&mut tx, current.id, role).await?;
        changed(&mut tx, &row, Some(&current.role)).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Takes a person's direct role on a workspace away.
    #[tracing::instrument(skip_all)]
    pub async fn revoke(&self, caller: Uuid, subject: Uuid, resource: Resource) -> Result<()> {
        let Resource::Workspace { id, organization_id } = resource else {
            return Err(Error::bad_input(
                "resource",
                "to take someone out of an organization, use removeMember",
            ));
        };
        self.require(caller, resource, &["manage_collaborators".into()]).await?;
        let mut tx = scoped(&self.db, &Scope::tenant(organization_id)).await?;
        let Some(current) = store::binding_for_update(&mut tx, id, subject).await? else {
            return Err(Error::NotFound("this person has no role there".into()));
        };
        self.require(caller, resource, &["manage_collaborators".into(), format!("grant_{}", current.role)])
            .await?;
        store::delete_binding(&mut tx, current.id).await?;
        let payload = serde_json::json!({
            "organization_id": organization_id, "resource_type": "workspace", "resource_id": id,
            "user_id": subject, "role": current.role,
        });
        publish(&mut tx, "role.revoked", &payload).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a member (and their workspace roles) from an organization; `caller == subject` is
    /// leaving.
    #[tracing::instrument(skip_all)]
    pub async fn remove(&self, caller: Uuid, organization: Uuid, subject: Uuid) -> Result<()> {
        let resource = Resource::Organization { id: organization };
        let first = if caller == subject { "leave" } else { "manage_members" };
        self.require(caller, resource, &[first.to_owned()]).await?;
        let mut tx = scoped(&self.db, &Scope::tenant(organization)).await?;
        let current = store::binding_for_update(&mut tx, organization, subject).await?;
        let actions = match &current {
            _ if caller == subject => vec!["leave".to_owned()],
            Some(current) => vec!["manage_members".to_owned(), format!("grant_{}", current.role)],
            None => vec!["manage_members".to_owned()],
        };
        self.require(caller, resource, &actions).await?;
        let Some(current) = current else {
            return Err(Error::NotFound("this person is not a member".into()));
        };
        if current.role == "owner" {
            keep_an_owner(&mut tx, organization, &[subject]).await?;
        }
        store::delete_subject(&mut tx, organization, subject).await?;
        let payload =
            serde_json::json!({ "organization_id": organization, "user_id": subject, "role": current.role });
        publish(&mut tx, "member.removed", &payload).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes `to` an owner and the caller an admin.
    #[tracing::instrument(skip_all)]
    pub async fn transfer(&self, caller: Uuid, organization: Uuid, to: Uuid) -> Result<BindingRow> {
        self.require(caller, Resource::Organization { id: organization }, &["transfer_ownership".into()])
            .await?;
        if caller == to {
            return Err(Error::bad_input("userId", "you already own this organization"));
        }
        let mut tx = scoped(&self.db, &Scope::tenant(organization)).await?;
        let Some(target) = store::binding_for_update(&mut tx, organization, to).await? else {
            return Err(Error::bad_input("userId", "ownership goes to a member of the organization"));
        };
        let Some(mine) = store::binding_for_update(&mut tx, organization, caller).await? else {
            return Err(Error::NotFound("no such organization".into()));
        };
        let row = if target.role == "owner" {
            target
        } else {
            let row = store::set_role(&mut tx, target.id, "owner").await?;
            changed(&mut tx, &row, Some(&target.role)).await?;
            row
        };
        let demoted = store::set_role(&mut tx, mine.id, "admin").await?;
        changed(&mut tx, &demoted, Some(&mine.role)).await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// What a client may name as the resource of a binding.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ResourceType")]
pub enum Kind {
    Organization,
    Workspace,
}

fn resource_id(resource: &Resource) -> Uuid {
    match resource {
        Resource::Organization { id } | Resource::Workspace { id, .. } | Resource::User { id } => *id,
    }
}

fn roles_of(resource: &Resource) -> Result<(&'static [&'static str], &'static str)> {
    match resource {
        Resource::Organization { .. } => Ok((ORGANIZATION_ROLES, "manage_members")),
        Resource::Workspace { .. } => Ok((WORKSPACE_ROLES, "manage_collaborators")),
        Resource::User { .. } => Err(Error::bad_input("resource", "people have no roles on people")),
    }
}

fn check_role(roles: &[&str], role: &str) -> Result<()> {
    if roles.contains(&role) {
        Ok(())
    } else {
        Err(Error::bad_input("role", format!("role must be one of: {}", roles.join(", "))))
    }
}

/// Refuses a change that would leave the organization without an owner.
async fn keep_an_owner(tx: &mut PgConnection, organization: Uuid, losing: &[Uuid]) -> Result<()> {
    let owners = store::owners_for_update(tx, organization).await?;
    if owners.iter().all(|owner| losing.contains(owner)) {
        return Err(Error::Conflict(
            "an organization keeps at least one owner: transfer ownership or make another owner first".into(),
        ));
    }
    Ok(())
}

async fn changed(tx: &mut PgConnection, row: &BindingRow, previous: Option<&str>) -> Result<()> {
    let payload = serde_json::json!({
        "organization_id": row.tenant_id, "resource_type": row.resource_type, "resource_id": row.resource_id,
        "user_id": row.subject_id, "role": row.role, "previous_role": previous,
    });
    publish(tx, "role.changed", &payload).await
}
