//! SQL of the tenants subgraph; it reads and writes the `tenants` schema only, always in a
//! transaction scoped by row-level security (kit::db::Scope).

use chrono::{DateTime, Utc};
use pyairtable_kit::connection::{PageArgs, window_sql};
use pyairtable_kit::error::unique_violation;
use pyairtable_kit::{Error, Result};
use sqlx::PgConnection;
use uuid::Uuid;

/// A row of `tenants.organizations`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ORGANIZATION: &str = "id, name, slug, deleted_at, created_at, updated_at";

/// A row of `tenants.invitations`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
    pub invited_by: Uuid,
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub accepted_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const INVITATION: &str =
    "id, tenant_id, email, role, invited_by, status, expires_at, accepted_by, created_at";

pub async fn insert_organization(
    db: &mut PgConnection,
    id: Uuid,
    name: &str,
    slug: &str,
    created_by: Uuid,
) -> Result<OrganizationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into tenants.organizations (id, name, slug, created_by) values ($1, $2, $3, $4) \
         returning {ORGANIZATION}"
    )))
    .bind(id)
    .bind(name)
    .bind(slug)
    .bind(created_by)
    .fetch_one(db)
    .await
    .map_err(|err| match unique_violation(&err) {
        Some("organizations_slug_key") => Error::Conflict(format!("the slug {slug:?} is taken")),
        _ => err.into(),
    })
}

/// Organizations by id (deleted ones included: callers decide).
pub async fn organizations(db: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<OrganizationRow>> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ORGANIZATION} from tenants.organizations where id = any($1)"
    )))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

pub async fn organization_by_slug(db: &mut PgConnection, slug: &str) -> Result<Option<OrganizationRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ORGANIZATION} from tenants.organizations where slug = $1 and deleted_at is null"
    )))
    .bind(slug)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

pub async fn rename(db: &mut PgConnection, id: Uuid, name: &str) -> Result<Option<OrganizationRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update tenants.organizations set name = $2 where id = $1 and deleted_at is null returning {ORGANIZATION}"
    )))
    .bind(id)
    .bind(name)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Marks deleted (`true`) or restores within `grace_days` (`false`).
pub async fn set_deleted(
    db: &mut PgConnection,
    id: Uuid,
    deleted: bool,
    grace_days: i32,
) -> Result<Option<OrganizationRow>> {
    let sql = if deleted {
        format!(
            "update tenants.organizations set deleted_at = now() where id = $1 and deleted_at is null \
             and $2::int is not null returning {ORGANIZATION}"
        )
    } else {
        format!(
            "update tenants.organizations set deleted_at = null where id = $1 \
             and deleted_at > now() - make_interval(days => $2) returning {ORGANIZATION}"
        )
    };
    let row = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(grace_days).fetch_optional(db).await?;
    Ok(row)
}

/// Deletes organizations whose grace period is over (across tenants, through the one
/// security-definer function that may), returning their ids.
pub async fn purge(db: &mut PgConnection, grace_days: i32) -> Result<Vec<Uuid>> {
    let ids = sqlx::query_scalar("select tenants.purge_deleted_organizations(make_interval(days => $1))")
        .bind(grace_days)
        .fetch_all(db)
        .await?;
    Ok(ids)
}

pub struct NewInvitation<'a> {
    pub tenant_id: Uuid,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a [u8],
    pub invited_by: Uuid,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_invitation(db: &mut PgConnection, new: &NewInvitation<'_>) -> Result<InvitationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into tenants.invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7) returning {INVITATION}"
    )))
    .bind(Uuid::now_v7())
    .bind(new.tenant_id)
    .bind(new.email)
    .bind(new.role)
    .bind(new.token_hash)
    .bind(new.invited_by)
    .bind(new.expires_at)
    .fetch_one(db)
    .await
    .map_err(|err| match unique_violation(&err) {
        Some("invitations_pending_email_key") => {
            Error::Conflict("this address already has a pending invitation; resend it instead".into())
        }
        _ => err.into(),
    })
}

pub async fn invitation_for_update(db: &mut PgConnection, id: Uuid) -> Result<Option<InvitationRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {INVITATION} from tenants.invitations where id = $1 for update"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

pub async fn invitation_by_token(db: &mut PgConnection, hash: &[u8]) -> Result<Option<InvitationRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {INVITATION} from tenants.invitations where token_hash = $1 for update"
    )))
    .bind(hash)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

pub async fn renew_invitation(
    db: &mut PgConnection,
    id: Uuid,
    hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<InvitationRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update tenants.invitations set token_hash = $2, expires_at = $3 where id = $1 returning {INVITATION}"
    )))
    .bind(id)
    .bind(hash)
    .bind(expires_at)
    .fetch_one(db)
    .await?;
    Ok(row)
}

pub async fn close_invitation(
    db: &mut PgConnection,
    id: Uuid,
    status: &str,
    accepted_by: Option<Uuid>,
) -> Result<InvitationRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update tenants.invitations set status = $2, accepted_by = $3 where id = $1 returning {INVITATION}"
    )))
    .bind(id)
    .bind(status)
    .bind(accepted_by)
    .fetch_one(db)
    .await?;
    Ok(row)
}

/// A page of invitations per organization, batched.
pub async fn invitations_page(
    db: &mut PgConnection,
    tenants: &[Uuid],
    args: &PageArgs,
) -> Result<Vec<InvitationRow>> {
    let source = format!(
        "select {INVITATION}, tenant_id as parent from tenants.invitations where tenant_id = any($1)"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(window_sql(&source, args, 2)))
        .bind(tenants)
        .bind(args.after)
        .bind(args.before)
        .bind(args.fetch())
        .fetch_all(db)
        .await?;
    Ok(rows)
}

pub async fn count_invitations(db: &mut PgConnection, tenants: &[Uuid]) -> Result<Vec<(Uuid, i64)>> {
    let rows = sqlx::query_as(
        "select tenant_id, count(*) from tenants.invitations where tenant_id = any($1) group by tenant_id",
    )
    .bind(tenants)
    .fetch_all(db)
    .await?;
    Ok(rows)
}
