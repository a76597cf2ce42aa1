//! What the files subgraph learns from others: which organization a workspace is in, and that a
//! workspace or organization is gone (its files are deleted with it).

use std::future::Future;
use std::pin::Pin;

use pyairtable_kit::Result;
use pyairtable_kit::db::Scope;
use pyairtable_kit::events::{Consumer, Event};
use sqlx::PgConnection;
use uuid::Uuid;

pub fn consumer() -> Consumer {
    Consumer {
        name: "files.workspaces",
        topics: &["workspace.created", "workspace.deleted", "organization.purged"],
        handler: apply,
    }
}

#[derive(serde::Deserialize)]
struct WorkspaceEvent {
    workspace_id: Uuid,
    organization_id: Uuid,
}

#[derive(serde::Deserialize)]
struct Purged {
    organization_id: Uuid,
}

fn apply<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        match event.topic.as_str() {
            "workspace.created" => {
                let ws: WorkspaceEvent = event.parse()?;
                Scope::tenant(ws.organization_id).apply(db).await?;
                crate::store::add_workspace(db, ws.workspace_id, ws.organization_id).await
            }
            "workspace.deleted" => {
                let ws: WorkspaceEvent = event.parse()?;
                forget(db, ws.organization_id, Some(ws.workspace_id)).await
            }
            _ => {
                let purged: Purged = event.parse()?;
                forget(db, purged.organization_id, None).await
            }
        }
    })
}

/// Deletes the files of a workspace (or a whole organization): they leave the quota now and the
/// sweep removes their objects.
async fn forget(db: &mut PgConnection, tenant: Uuid, workspace: Option<Uuid>) -> Result<()> {
    Scope::tenant(tenant).apply(db).await?;
    let freed = crate::store::soft_delete_all(db, tenant, workspace).await?;
    crate::store::release(db, tenant, freed).await?;
    crate::store::remove_workspaces(db, tenant, workspace).await
}
