//! Events the permissions subgraph applies: organizations and workspaces appearing and going
//! (their creators become owners), and accepted invitations (the invitee gets the invited role).
//! It publishes `member.joined` for each new member.

use std::future::Future;
use std::pin::Pin;

use pyairtable_kit::Result;
use pyairtable_kit::db::Scope;
use pyairtable_kit::events::{Consumer, Event, publish};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::policy::ORGANIZATION_ROLES;
use crate::store::{self, NewBinding};

pub fn consumer() -> Consumer {
    Consumer {
        name: "permissions.bindings",
        topics: &[
            "organization.created",
            "organization.deleted",
            "organization.restored",
            "organization.purged",
            "invitation.accepted",
            "workspace.created",
            "workspace.deleted",
        ],
        handler: apply,
    }
}

#[derive(Deserialize)]
struct OrganizationEvent {
    organization_id: Uuid,
    #[serde(default)]
    owner_id: Option<Uuid>,
}

#[derive(Deserialize)]
struct InvitationAccepted {
    organization_id: Uuid,
    user_id: Uuid,
    role: String,
}

#[derive(Deserialize)]
struct WorkspaceEvent {
    workspace_id: Uuid,
    organization_id: Uuid,
    #[serde(default)]
    created_by: Option<Uuid>,
}

fn apply<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        match event.topic.as_str() {
            "organization.created" => {
                let e: OrganizationEvent = event.parse()?;
                Scope::tenant(e.organization_id).apply(db).await?;
                store::upsert_organization(db, e.organization_id, false).await?;
                if let Some(owner) = e.owner_id {
                    join(db, e.organization_id, owner, "owner").await?;
                }
            }
            "organization.deleted" | "organization.restored" => {
                let e: OrganizationEvent = event.parse()?;
                Scope::tenant(e.organization_id).apply(db).await?;
                store::upsert_organization(db, e.organization_id, event.topic == "organization.deleted")
                    .await?;
            }
            "organization.purged" => {
                let e: OrganizationEvent = event.parse()?;
                Scope::tenant(e.organization_id).apply(db).await?;
                store::delete_organization(db, e.organization_id).await?;
            }
            "invitation.accepted" => {
                let e: InvitationAccepted = event.parse()?;
                Scope::tenant(e.organization_id).apply(db).await?;
                join(db, e.organization_id, e.user_id, &e.role).await?;
            }
            "workspace.created" => {
                let e: WorkspaceEvent = event.parse()?;
                Scope::tenant(e.organization_id).apply(db).await?;
                store::insert_workspace(db, e.workspace_id, e.organization_id).await?;
                if let Some(creator) = e.created_by
                    && store::binding_for_update(db, e.workspace_id, creator).await?.is_none()
                {
                    let owner = NewBinding {
                        tenant_id: e.organization_id,
                        subject_id: creator,
                        resource_type: "workspace",
                        resource_id: e.workspace_id,
                        role: "owner",
                    };
                    store::insert_binding(db, &owner).await?;
                }
            }
            "workspace.deleted" => {
                let e: WorkspaceEvent = event.parse()?;
                Scope::tenant(e.organization_id).apply(db).await?;
                store::delete_workspace(db, e.workspace_id).await?;
            }
            _ => {}
        }
        Ok(())
    })
}

/// Makes `user` a member with `role`, or raises a lower role to it (never lowers one).
async fn join(db: &mut PgConnection, tenant: Uuid, user: Uuid, role: &str) -> Result<()> {
    let rank = |r: &str| ORGANIZATION_ROLES.iter().position(|known| *known == r);
    match store::binding_for_update(db, tenant, user).await? {
        Some(existing) => {
            if rank(role) > rank(&existing.role) {
                store::set_role(db, existing.id, role).await?;
                let payload = serde_json::json!({
                    "organization_id": tenant, "resource_type": "organization", "resource_id": tenant,
                    "user_id": user, "role": role, "previous_role": existing.role,
                });
                publish(db, "role.changed", &payload).await?;
            }
        }
        None => {
            let binding = NewBinding {
                tenant_id: tenant,
                subject_id: user,
                resource_type: "organization",
                resource_id: tenant,
                role,
            };
            store::insert_binding(db, &binding).await?;
            let payload = serde_json::json!({ "organization_id": tenant, "user_id": user, "role": role });
            publish(db, "member.joined", &payload).await?;
        }
    }
    Ok(())
}
