//! SQL of the files subgraph; it reads and writes the `files` schema only, in transactions scoped
//! by row-level security (kit::db::Scope), except the background functions named as such.

use chrono::{DateTime, Utc};
use pyairtable_kit::Result;
use pyairtable_kit::connection::{PageArgs, window_sql};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A row of `files.files`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub declared_type: String,
    pub declared_sha256: Option<Vec<u8>>,
    pub size: i64,
    pub content_type: Option<String>,
    pub sha256: Option<Vec<u8>>,
    pub state: String,
    pub upload_expires_at: Option<DateTime<Utc>>,
    pub staged: bool,
    pub thumbnail_width: Option<i32>,
    pub thumbnail_height: Option<i32>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl FileRow {
    pub fn is_ready(&self) -> bool {
        self.state == "ready" && self.deleted_at.is_none()
    }
}

const COLUMNS: &str = "id, tenant_id, workspace_id, owner_id, name, declared_type, declared_sha256, size, \
    content_type, sha256, state, upload_expires_at, staged, thumbnail_width, thumbnail_height, deleted_at, created_at";

/// A file about to be uploaded.
pub struct NewFile<'a> {
    pub id: Uuid,
    pub tenant: Uuid,
    pub workspace: Uuid,
    pub owner: Uuid,
    pub name: &'a str,
    pub declared_type: &'a str,
    pub declared_sha256: Option<&'a [u8]>,
    pub size: i64,
    pub state: &'a str,
    pub expires_at: DateTime<Utc>,
    pub staged: bool,
}

/// The key that signs our URLs: made by the first replica to start, read by the others.
pub async fn signing_key(db: &PgPool) -> Result<[u8; 32]> {
    let fresh: [u8; 32] = rand::random();
    sqlx::query("insert into files.signing_key (id, key) values (1, $1) on conflict do nothing")
        .bind(&fresh[..])
        .execute(db)
        .await?;
    let key: Vec<u8> =
        sqlx::query_scalar("select key from files.signing_key where id = 1").fetch_one(db).await?;
    key.try_into()
        .map_err(|_| pyairtable_kit::Error::internal(anyhow::anyhow!("files.signing_key is not 32 bytes")))
}

/// Adds `bytes` to the tenant's usage if that stays within its quota (`default_quota` unless it
/// has its own); false when it would not.
pub async fn reserve(db: &mut PgConnection, tenant: Uuid, bytes: i64, default_quota: i64) -> Result<bool> {
    sqlx::query("insert into files.usage (tenant_id) values ($1) on conflict do nothing")
        .bind(tenant)
        .execute(&mut *db)
        .await?;
    let done = sqlx::query(
        "update files.usage set used_bytes = used_bytes + $2 \
         where tenant_id = $1 and used_bytes + $2 <= coalesce(quota_bytes, $3)",
    )
    .bind(tenant)
    .bind(bytes)
    .bind(default_quota)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn release(db: &mut PgConnection, tenant: Uuid, bytes: i64) -> Result<()> {
    sqlx::query("update files.usage set used_bytes = greatest(used_bytes - $2, 0) where tenant_id = $1")
        .bind(tenant)
        .bind(bytes)
        .execute(db)
        .await?;
    Ok(())
}

/// (used bytes, own quota) of a tenant.
pub async fn usage(db: &mut PgConnection, tenant: Uuid) -> Result<(i64, Option<i64>)> {
    let row = sqlx::query_as("select used_bytes, quota_bytes from files.usage where tenant_id = $1")
        .bind(tenant)
        .fetch_optional(db)
        .await?;
    Ok(row.unwrap_or((0, None)))
}

pub async fn insert(db: &mut PgConnection, file: &NewFile<'_>) -> Result<FileRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into files.files (id, tenant_id, workspace_id, owner_id, name, declared_type, declared_sha256, \
         size, state, upload_expires_at, staged) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         returning {COLUMNS}"
    )))
    .bind(file.id)
    .bind(file.tenant)
    .bind(file.workspace)
    .bind(file.owner)
    .bind(file.name)
    .bind(file.declared_type)
    .bind(file.declared_sha256)
    .bind(file.size)
    .bind(file.state)
    .bind(file.expires_at)
    .bind(file.staged)
    .fetch_one(db)
    .await?;
    Ok(row)
}

/// Rows by id, deleted ones included (callers decide).
pub async fn by_ids(db: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<FileRow>> {
    let rows =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from files.files where id = any($1)")))
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows)
}

/// Moves a live file from one of `from` to `to`; `None` when it is in another state (someone
/// else got there first).
pub async fn transition(db: &mut PgConnection, id: Uuid, from: &[&str], to: &str) -> Result<Option<FileRow>> {
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update files.files set state = $3 where id = $1 and state = any($2) and deleted_at is null \
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(from)
    .bind(to)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// What the bytes turned out to be, in state `to`.
pub async fn record(
    db: &mut PgConnection,
    id: Uuid,
    to: &str,
    facts: (i64, &[u8], &str),
) -> Result<Option<FileRow>> {
    let (size, sha256, content_type) = facts;
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update files.files set state = $2, size = $3, sha256 = $4, content_type = $5 \
         where id = $1 and deleted_at is null returning {COLUMNS}"
    )))
    .bind(id)
    .bind(to)
    .bind(size)
    .bind(sha256)
    .bind(content_type)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Soft-deletes a live file; returns it (to release its bytes) when it was live.
pub async fn soft_delete(db: &mut PgConnection, id: Uuid) -> Result<Option<FileRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update files.files set deleted_at = now() where id = $1 and deleted_at is null returning {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Soft-deletes every live file of a workspace (or of the whole tenant); returns the bytes freed.
pub async fn soft_delete_all(db: &mut PgConnection, tenant: Uuid, workspace: Option<Uuid>) -> Result<i64> {
    let freed: Option<i64> = sqlx::query_scalar(
        "with gone as (update files.files set deleted_at = now() where tenant_id = $1 \
         and ($2::uuid is null or workspace_id = $2) and deleted_at is null returning size) \
         select sum(size)::bigint from gone",
    )
    .bind(tenant)
    .bind(workspace)
    .fetch_one(db)
    .await?;
    Ok(freed.unwrap_or(0))
}

/// Forgets a file whose objects are gone.
pub async fn purge(db: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("delete from files.files where id = $1").bind(id).execute(db).await?;
    Ok(())
}

pub async fn clear_staged(db: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("update files.files set staged = false where id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// One page of ready files per workspace (one statement for all of them).
pub async fn pages(db: &mut PgConnection, workspaces: &[Uuid], args: &PageArgs) -> Result<Vec<FileRow>> {
    let source = format!(
        "select {COLUMNS}, workspace_id as parent from files.files \
         where workspace_id = any($1) and state = 'ready' and deleted_at is null"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(window_sql(&source, args, 2)))
        .bind(workspaces)
        .bind(args.after)
        .bind(args.before)
        .bind(args.fetch())
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// Ready files per workspace.
pub async fn counts(db: &mut PgConnection, workspaces: &[Uuid]) -> Result<Vec<(Uuid, i64)>> {
    let rows = sqlx::query_as(
        "select workspace_id, count(*) from files.files where workspace_id = any($1) \
         and state = 'ready' and deleted_at is null group by workspace_id",
    )
    .bind(workspaces)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

pub async fn allow_list(db: &mut PgConnection, workspace: Uuid) -> Result<Option<Vec<String>>> {
    let list =
        sqlx::query_scalar("select allowed_types from files.workspace_settings where workspace_id = $1")
            .bind(workspace)
            .fetch_optional(db)
            .await?;
    Ok(list)
}

/// Sets (or, with `None`, removes) a workspace's allow-list.
pub async fn set_allow_list(
    db: &mut PgConnection,
    tenant: Uuid,
    workspace: Uuid,
    list: Option<&[String]>,
) -> Result<()> {
    match list {
        Some(list) => {
            sqlx::query(
                "insert into files.workspace_settings (workspace_id, tenant_id, allowed_types) values ($1, $2, $3) \
                 on conflict (workspace_id) do update set allowed_types = excluded.allowed_types, updated_at = now()",
            )
            .bind(workspace)
            .bind(tenant)
            .bind(list)
            .execute(db)
            .await?;
        }
        None => {
            sqlx::query("delete from files.workspace_settings where workspace_id = $1")
                .bind(workspace)
                .execute(db)
                .await?;
        }
    }
    Ok(())
}

/// Queues a thumbnail and wakes the workers when the transaction commits.
pub async fn enqueue_thumbnail(db: &mut PgConnection, file: Uuid, tenant: Uuid) -> Result<()> {
    sqlx::query(
        "insert into files.thumbnail_jobs (file_id, tenant_id) values ($1, $2) on conflict do nothing",
    )
    .bind(file)
    .bind(tenant)
    .execute(&mut *db)
    .await?;
    sqlx::query("select pg_notify('pyairtable_files_jobs', '')").execute(db).await?;
    Ok(())
}

/// The next due job, locked by this transaction until it ends.
pub async fn claim_job(db: &mut PgConnection) -> Result<Option<(Uuid, Uuid, i32)>> {
    let job = sqlx::query_as("select file_id, tenant_id, attempts from files.claim_thumbnail_job()")
        .fetch_optional(db)
        .await?;
    Ok(job)
}

pub async fn finish_job(db: &mut PgConnection, file: Uuid) -> Result<()> {
    sqlx::query("delete from files.thumbnail_jobs where file_id = $1").bind(file).execute(db).await?;
    Ok(())
}

/// Tries the job again after `delay_secs`.
pub async fn retry_job(db: &mut PgConnection, file: Uuid, delay_secs: i64) -> Result<()> {
    sqlx::query(
        "update files.thumbnail_jobs set attempts = attempts + 1, \
         run_after = now() + make_interval(secs => $2) where file_id = $1",
    )
    .bind(file)
    .bind(delay_secs as f64)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_thumbnail(db: &mut PgConnection, file: Uuid, width: i32, height: i32) -> Result<()> {
    sqlx::query("update files.files set thumbnail_width = $2, thumbnail_height = $3 where id = $1")
        .bind(file)
        .bind(width)
        .bind(height)
        .execute(db)
        .await?;
    Ok(())
}

/// Files the sweep should look at, across tenants (see the migration's `files.sweep_candidates`).
pub async fn sweep_candidates(
    db: &PgPool,
    at: DateTime<Utc>,
    grace_secs: i64,
    max: i32,
) -> Result<Vec<(Uuid, Uuid)>> {
    let rows =
        sqlx::query_as("select id, tenant_id from files.sweep_candidates($1, make_interval(secs => $2), $3)")
            .bind(at)
            .bind(grace_secs as f64)
            .bind(max)
            .fetch_all(db)
            .await?;
    Ok(rows)
}

/// The organization of a workspace the scope can see.
pub async fn workspace_tenant(db: &mut PgConnection, workspace: Uuid) -> Result<Option<Uuid>> {
    let tenant = sqlx::query_scalar("select tenant_id from files.workspaces where id = $1")
        .bind(workspace)
        .fetch_optional(db)
        .await?;
    Ok(tenant)
}

pub async fn add_workspace(db: &mut PgConnection, workspace: Uuid, tenant: Uuid) -> Result<()> {
    sqlx::query("insert into files.workspaces (id, tenant_id) values ($1, $2) on conflict do nothing")
        .bind(workspace)
        .bind(tenant)
        .execute(db)
        .await?;
    Ok(())
}

/// Forgets a deleted workspace, or every workspace of a purged tenant (their files are
/// soft-deleted by the caller).
pub async fn remove_workspaces(db: &mut PgConnection, tenant: Uuid, workspace: Option<Uuid>) -> Result<()> {
    for table in ["workspace_settings", "workspaces"] {
        let column = if table == "workspaces" { "id" } else { "workspace_id" };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "delete from files.{table} where tenant_id = $1 and ($2::uuid is null or {column} = $2)"
        )))
        .bind(tenant)
        .bind(workspace)
        .execute(&mut *db)
        .await?;
    }
    Ok(())
}

/// A user's avatar file (see the migration's `files.avatar`).
pub async fn avatar(db: &PgPool, owner: Uuid, file: Uuid) -> Result<Option<FileRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from files.avatar($1, $2)")))
        .bind(owner)
        .bind(file)
        .fetch_optional(db)
        .await?;
    Ok(row)
}

/// (workspace, organization) of the workspaces the scope can see.
pub async fn workspace_tenants(db: &mut PgConnection, workspaces: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query_as("select id, tenant_id from files.workspaces where id = any($1)")
        .bind(workspaces)
        .fetch_all(db)
        .await?;
    Ok(rows)
}
