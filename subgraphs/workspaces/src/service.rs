//! Domain rules of the workspaces subgraph. Who may do what is the permissions subgraph's policy,
//! asked through the kit's authorizer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pyairtable_kit::authz::{self, Authorizer, Check, Decision, Resource};
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::events::{Consumer, Event, publish};
use pyairtable_kit::input::parse_text;
use pyairtable_kit::{Error, Result};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::store::{self, WorkspaceRow};

#[derive(Clone)]
pub struct Workspaces {
    db: PgPool,
    authorizer: Arc<dyn Authorizer>,
}

impl Workspaces {
    pub fn new(db: PgPool, authorizer: Arc<dyn Authorizer>) -> Self {
        Self { db, authorizer }
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    pub fn authorizer(&self) -> &Arc<dyn Authorizer> {
        &self.authorizer
    }

    async fn require(&self, caller: Uuid, action: &str, resource: Resource) -> Result<()> {
        let check = Check::new(action, resource);
        let decision = self.authorizer.decide(caller, std::slice::from_ref(&check)).await?;
        decision.first().copied().unwrap_or(Decision::Hide).into_result(&check)
    }

    /// A workspace the caller's organizations hold, locked for the transaction, and the
    /// transaction; NOT_FOUND otherwise.
    async fn locate(
        &self,
        caller: Uuid,
        id: Uuid,
    ) -> Result<(WorkspaceRow, sqlx::Transaction<'static, sqlx::Postgres>)> {
        let mine = self.authorizer.organizations_of(caller).await?;
        let mut tx = scoped(&self.db, &Scope::tenants(mine)).await?;
        let row = store::by_ids(&mut tx, &[id])
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound("no such workspace".into()))?;
        Ok((row, tx))
    }

    #[tracing::instrument(skip_all, fields(organization_id = %organization))]
    pub async fn create(&self, caller: Uuid, organization: Uuid, name: &str) -> Result<WorkspaceRow> {
        let name = parse_text("name", name, 100)?;
        self.require(caller, "create_workspace", Resource::Organization { id: organization }).await?;
        let mut tx = scoped(&self.db, &Scope::tenant(organization)).await?;
        let row = store::insert(&mut tx, organization, &name, caller).await?;
        let payload = serde_json::json!({
            "workspace_id": row.id, "organization_id": organization, "created_by": caller, "name": name,
        });
        publish(&mut tx, "workspace.created", &payload).await?;
        tx.commit().await?;
        authz::sync_after_commit(self.authorizer.as_ref()).await;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %id))]
    pub async fn rename(&self, caller: Uuid, id: Uuid, name: &str) -> Result<WorkspaceRow> {
        let name = parse_text("name", name, 100)?;
        let (row, mut tx) = self.locate(caller, id).await?;
        self.require(caller, "update", resource(&row)).await?;
        let row = store::rename(&mut tx, id, &name)
            .await?
            .ok_or_else(|| Error::NotFound("no such workspace".into()))?;
        let payload =
            serde_json::json!({ "workspace_id": id, "organization_id": row.tenant_id, "name": name });
        publish(&mut tx, "workspace.renamed", &payload).await?;
        tx.commit().await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %id))]
    pub async fn set_archived(&self, caller: Uuid, id: Uuid, archived: bool) -> Result<WorkspaceRow> {
        let (row, mut tx) = self.locate(caller, id).await?;
        self.require(caller, "archive", resource(&row)).await?;
        let row = store::set_archived(&mut tx, id, archived)
            .await?
            .ok_or_else(|| Error::NotFound("no such workspace".into()))?;
        let topic = if archived { "workspace.archived" } else { "workspace.restored" };
        publish(&mut tx, topic, &serde_json::json!({ "workspace_id": id, "organization_id": row.tenant_id }))
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(workspace_id = %id))]
    pub async fn delete(&self, caller: Uuid, id: Uuid) -> Result<()> {
        let (row, mut tx) = self.locate(caller, id).await?;
        self.require(caller, "delete", resource(&row)).await?;
        store::delete(&mut tx, id).await?;
        publish(
            &mut tx,
            "workspace.deleted",
            &serde_json::json!({ "workspace_id": id, "organization_id": row.tenant_id }),
        )
        .await?;
        tx.commit().await?;
        authz::sync_after_commit(self.authorizer.as_ref()).await;
        Ok(())
    }
}

/// The authorization resource of a workspace row.
pub fn resource(row: &WorkspaceRow) -> Resource {
    Resource::Workspace { id: row.id, organization_id: row.tenant_id }
}

/// Purged organizations take their workspaces with them.
pub fn consumer() -> Consumer {
    Consumer { name: "workspaces.organizations", topics: &["organization.purged"], handler: apply }
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
        let purged: Purged = event.parse()?;
        Scope::tenant(purged.organization_id).apply(db).await?;
        store::delete_tenant(db, purged.organization_id).await?;
        Ok(())
    })
}
