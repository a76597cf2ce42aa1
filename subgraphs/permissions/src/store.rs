//! SQL of the permissions subgraph; it reads and writes the `permissions` schema only, always in
//! a transaction scoped by row-level security (kit::db::Scope).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pyairtable_kit::connection::{PageArgs, window_sql};
use pyairtable_kit::error::unique_violation;
use pyairtable_kit::{Error, Result};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A row of `permissions.role_bindings`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BindingRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub subject_id: Uuid,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, tenant_id, subject_id, resource_type, resource_id, role, created_at";

/// Bindings of `subject` in `tenants` (on the organizations and their workspaces).
pub async fn bindings_of(db: &mut PgConnection, subject: Uuid, tenants: &[Uuid]) -> Result<Vec<BindingRow>> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from permissions.role_bindings where subject_id = $1 and tenant_id = any($2)"
    )))
    .bind(subject)
    .bind(tenants)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Live organizations each of `subjects` is a member of.
pub async fn tenants_of(db: &mut PgConnection, subjects: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query_as(
        "select b.subject_id, b.tenant_id from permissions.role_bindings b \
         join permissions.organizations o on o.id = b.tenant_id and o.deleted_at is null \
         where b.subject_id = any($1) and b.resource_type = 'organization'",
    )
    .bind(subjects)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// The current version of each scope (a tenant, or the nil uuid for memberships anywhere);
/// scopes never changed are left out (version 0).
pub async fn versions(db: &PgPool, scopes: &[Uuid]) -> Result<HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("select scope, version from permissions.versions where scope = any($1)")
            .bind(scopes)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Whether each known organization is deleted (unknown ones are left out).
pub async fn deleted_organizations(db: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, bool>> {
    let rows: Vec<(Uuid, bool)> =
        sqlx::query_as("select id, deleted_at is not null from permissions.organizations where id = any($1)")
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The organization of each workspace.
pub async fn workspace_tenants(db: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, Uuid>> {
    let rows: Vec<(Uuid, Uuid)> =
        sqlx::query_as("select id, tenant_id from permissions.workspaces where id = any($1)")
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

/// A page of bindings per parent resource (organization members or workspace collaborators).
pub async fn bindings_page(
    db: &mut PgConnection,
    resource_ids: &[Uuid],
    args: &PageArgs,
) -> Result<Vec<BindingRow>> {
    let source = format!(
        "select {COLUMNS}, resource_id as parent from permissions.role_bindings where resource_id = any($1)"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(window_sql(&source, args, 2)))
        .bind(resource_ids)
        .bind(args.after)
        .bind(args.before)
        .bind(args.fetch())
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// Bindings on each of `resource_ids` (all of them: counts and collaborator lists).
pub async fn bindings_on(db: &mut PgConnection, resource_ids: &[Uuid]) -> Result<Vec<BindingRow>> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from permissions.role_bindings where resource_id = any($1) order by id"
    )))
    .bind(resource_ids)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// How many bindings each resource has.
pub async fn count_on(db: &mut PgConnection, resource_ids: &[Uuid]) -> Result<HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "select resource_id, count(*) from permissions.role_bindings where resource_id = any($1) \
         group by resource_id",
    )
    .bind(resource_ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A page of the organization memberships of `subject` (live organizations only).
pub async fn memberships_page(
    db: &mut PgConnection,
    subject: Uuid,
    args: &PageArgs,
) -> Result<Vec<BindingRow>> {
    let source = format!(
        "select b.{}, b.subject_id as parent from permissions.role_bindings b \
         join permissions.organizations o on o.id = b.tenant_id and o.deleted_at is null \
         where b.subject_id = $1 and b.resource_type = 'organization'",
        COLUMNS.replace(", ", ", b.")
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(window_sql(&source, args, 2)))
        .bind(subject)
        .bind(args.after)
        .bind(args.before)
        .bind(args.fetch())
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// The binding of `subject` on `resource_id`, locked for the transaction.
pub async fn binding_for_update(
    db: &mut PgConnection,
    resource_id: Uuid,
    subject: Uuid,
) -> Result<Option<BindingRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from permissions.role_bindings where resource_id = $1 and subject_id = $2 for update"
    )))
    .bind(resource_id)
    .bind(subject)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Owners of an organization, locked (last-owner rules hold under concurrent changes).
pub async fn owners_for_update(db: &mut PgConnection, tenant: Uuid) -> Result<Vec<Uuid>> {
    let rows = sqlx::query_scalar(
        "select subject_id from permissions.role_bindings \
         where resource_id = $1 and resource_type = 'organization' and role = 'owner' for update",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

pub struct NewBinding<'a> {
    pub tenant_id: Uuid,
    pub subject_id: Uuid,
    pub resource_type: &'a str,
    pub resource_id: Uuid,
    pub role: &'a str,
}

/// Inserts a binding; CONFLICT when the subject already has a role there.
pub async fn insert_binding(db: &mut PgConnection, new: &NewBinding<'_>) -> Result<BindingRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into permissions.role_bindings (id, tenant_id, subject_id, resource_type, resource_id, role) \
         values ($1, $2, $3, $4, $5, $6) returning {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(new.tenant_id)
    .bind(new.subject_id)
    .bind(new.resource_type)
    .bind(new.resource_id)
    .bind(new.role)
    .fetch_one(db)
    .await
    .map_err(|err| match unique_violation(&err) {
        Some("role_bindings_subject_resource_key") => {
            Error::Conflict("this person already has a role there; change it instead".into())
        }
        _ => err.into(),
    })
}

pub async fn set_role(db: &mut PgConnection, id: Uuid, role: &str) -> Result<BindingRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update permissions.role_bindings set role = $2 where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(role)
    .fetch_one(db)
    .await?;
    Ok(row)
}

pub async fn delete_binding(db: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("delete from permissions.role_bindings where id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// Removes every binding of `subject` in a tenant (leaving or being removed).
pub async fn delete_subject(db: &mut PgConnection, tenant: Uuid, subject: Uuid) -> Result<u64> {
    let done = sqlx::query("delete from permissions.role_bindings where tenant_id = $1 and subject_id = $2")
        .bind(tenant)
        .bind(subject)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

pub async fn upsert_organization(db: &mut PgConnection, id: Uuid, deleted: bool) -> Result<()> {
    sqlx::query(
        "insert into permissions.organizations (id, deleted_at) values ($1, case when $2 then now() end) \
         on conflict (id) do update set deleted_at = case when $2 then now() end",
    )
    .bind(id)
    .bind(deleted)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete_organization(db: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("delete from permissions.organizations where id = $1").bind(id).execute(db).await?;
    Ok(())
}

pub async fn insert_workspace(db: &mut PgConnection, id: Uuid, tenant: Uuid) -> Result<()> {
    sqlx::query("insert into permissions.workspaces (id, tenant_id) values ($1, $2) on conflict do nothing")
        .bind(id)
        .bind(tenant)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn delete_workspace(db: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("delete from permissions.role_bindings where resource_id = $1")
        .bind(id)
        .execute(&mut *db)
        .await?;
    sqlx::query("delete from permissions.workspaces where id = $1").bind(id).execute(db).await?;
    Ok(())
}
