//! SQL of the workspaces subgraph; it reads and writes the `workspaces` schema only, always in a
//! transaction scoped by row-level security (kit::db::Scope).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use pyairtable_kit::Result;

/// A row of `workspaces.workspaces`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkspaceRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub created_by: Uuid,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, tenant_id, name, created_by, archived_at, created_at, updated_at";

pub async fn insert(
    db: &mut PgConnection,
    tenant: Uuid,
    name: &str,
    created_by: Uuid,
) -> Result<WorkspaceRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into workspaces.workspaces (id, tenant_id, name, created_by) values ($1, $2, $3, $4) \
         returning {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(name)
    .bind(created_by)
    .fetch_one(db)
    .await?;
    Ok(row)
}

pub async fn by_ids(db: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<WorkspaceRow>> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from workspaces.workspaces where id = any($1)"
    )))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Ids of every workspace of `tenants` (archived ones when `archived`), in creation order.
pub async fn ids_in(db: &mut PgConnection, tenants: &[Uuid], archived: bool) -> Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query_as(
        "select tenant_id, id from workspaces.workspaces where tenant_id = any($1) \
         and ($2 or archived_at is null) order by id",
    )
    .bind(tenants)
    .bind(archived)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

pub async fn rename(db: &mut PgConnection, id: Uuid, name: &str) -> Result<Option<WorkspaceRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update workspaces.workspaces set name = $2 where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

pub async fn set_archived(db: &mut PgConnection, id: Uuid, archived: bool) -> Result<Option<WorkspaceRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update workspaces.workspaces set archived_at = case when $2 then coalesce(archived_at, now()) end \
         where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(archived)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

pub async fn delete(db: &mut PgConnection, id: Uuid) -> Result<bool> {
    let done = sqlx::query("delete from workspaces.workspaces where id = $1").bind(id).execute(db).await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes every workspace of a purged organization.
pub async fn delete_tenant(db: &mut PgConnection, tenant: Uuid) -> Result<Vec<Uuid>> {
    let ids = sqlx::query_scalar("delete from workspaces.workspaces where tenant_id = $1 returning id")
        .bind(tenant)
        .fetch_all(db)
        .await?;
    Ok(ids)
}
