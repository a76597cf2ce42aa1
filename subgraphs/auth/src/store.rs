//! SQL of the auth subgraph; it reads and writes the `auth` schema only.

use chrono::{DateTime, Utc};
use pyairtable_kit::error::unique_violation;
use pyairtable_kit::{Error, Result};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A row of `auth.credentials`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub user_id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_enabled_at: Option<DateTime<Utc>>,
}

const CREDENTIALS: &str = "user_id, email, password_hash, email_verified_at, totp_secret, totp_enabled_at";

pub async fn insert_credentials(db: &mut PgConnection, user_id: Uuid, email: &str, hash: &str) -> Result<()> {
    sqlx::query("insert into auth.credentials (user_id, email, password_hash) values ($1, $2, $3)")
        .bind(user_id)
        .bind(email)
        .bind(hash)
        .execute(db)
        .await
        .map_err(|err| match unique_violation(&err) {
            Some("credentials_email_key") => {
                Error::Conflict("an account with this email already exists".into())
            }
            _ => err.into(),
        })?;
    Ok(())
}

pub async fn credentials_by_email(db: &PgPool, email: &str) -> Result<Option<Credentials>> {
    let sql = format!("select {CREDENTIALS} from auth.credentials where email = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(email).fetch_optional(db).await?)
}

/// The credentials of a signed-in user, who must have an account.
pub async fn account(db: &PgPool, user_id: Uuid) -> Result<Credentials> {
    credentials_by_id(db, user_id).await?.ok_or_else(|| Error::NotFound("no account for this user".into()))
}

pub async fn credentials_by_id(db: &PgPool, user_id: Uuid) -> Result<Option<Credentials>> {
    let sql = format!("select {CREDENTIALS} from auth.credentials where user_id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id).fetch_optional(db).await?)
}

pub async fn set_password_hash(db: impl sqlx::PgExecutor<'_>, user_id: Uuid, hash: &str) -> Result<()> {
    sqlx::query("update auth.credentials set password_hash = $2 where user_id = $1")
        .bind(user_id)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn mark_email_verified(db: &mut PgConnection, user_id: Uuid) -> Result<()> {
    sqlx::query("update auth.credentials set email_verified_at = coalesce(email_verified_at, now()) where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

// --- sessions and refresh tokens -------------------------------------------------------------

/// A row of `auth.sessions`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_session(
    db: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    caller: &pyairtable_kit::Caller,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into auth.sessions (id, user_id, ip, user_agent, expires_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(user_id)
    .bind(caller.ip.as_deref())
    .bind(caller.user_agent.as_deref())
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn insert_refresh(db: &mut PgConnection, hash: &[u8], session_id: Uuid) -> Result<()> {
    sqlx::query("insert into auth.refresh_tokens (hash, session_id) values ($1, $2)")
        .bind(hash)
        .bind(session_id)
        .execute(db)
        .await?;
    Ok(())
}

/// A refresh token with its session, locked for the rest of the transaction.
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshState {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub used_at: Option<DateTime<Utc>>,
    pub session_live: bool,
    pub tenant_id: Option<Uuid>,
}

pub async fn lock_refresh(db: &mut PgConnection, hash: &[u8]) -> Result<Option<RefreshState>> {
    Ok(sqlx::query_as(
        "select t.session_id, s.user_id, t.used_at, s.tenant_id,
                (s.revoked_at is null and s.expires_at > now()) as session_live
         from auth.refresh_tokens t join auth.sessions s on s.id = t.session_id
         where t.hash = $1 for update of t, s",
    )
    .bind(hash)
    .fetch_optional(db)
    .await?)
}

pub async fn mark_refresh_used(db: &mut PgConnection, hash: &[u8], replaced_by: &[u8]) -> Result<()> {
    sqlx::query(
        "update auth.refresh_tokens set used_at = coalesce(used_at, now()), replaced_by = $2 where hash = $1",
    )
    .bind(hash)
    .bind(replaced_by)
    .execute(&mut *db)
    .await?;
    sqlx::query(
        "update auth.sessions set last_used_at = now()
         where id = (select session_id from auth.refresh_tokens where hash = $1)",
    )
    .bind(hash)
    .execute(db)
    .await?;
    Ok(())
}

/// Makes a live session act in `tenant_id`; false when the session is not the user's or not live.
pub async fn set_session_tenant(db: &PgPool, session: Uuid, user_id: Uuid, tenant_id: Uuid) -> Result<bool> {
    let done = sqlx::query(
        "update auth.sessions set tenant_id = $3
         where id = $1 and user_id = $2 and revoked_at is null and expires_at > now()",
    )
    .bind(session)
    .bind(user_id)
    .bind(tenant_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes sessions of `user_id`: one (`only`), or all but one (`except`), or all. The
/// revocation is announced to every auth process when the transaction commits.
pub async fn revoke_sessions(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    only: Option<Uuid>,
    except: Option<Uuid>,
    reason: &str,
) -> Result<u64> {
    let revoked: i64 = sqlx::query_scalar(
        "with revoked as (
            update auth.sessions set revoked_at = now(), revoked_reason = $4
            where user_id = $1 and revoked_at is null
              and ($2::uuid is null or id = $2) and ($3::uuid is null or id <> $3)
            returning id
         )
         select count(*) from revoked, lateral (select pg_notify($5, $1::text)) as announced",
    )
    .bind(user_id)
    .bind(only)
    .bind(except)
    .bind(reason)
    .bind(crate::sessions::CHANNEL)
    .fetch_one(db)
    .await?;
    Ok(u64::try_from(revoked).unwrap_or(0))
}

pub async fn live_sessions(db: &PgPool, user_id: Uuid) -> Result<Vec<Session>> {
    Ok(sqlx::query_as(
        "select id, user_id, user_agent, ip, created_at, last_used_at, expires_at from auth.sessions
         where user_id = $1 and revoked_at is null and expires_at > now() order by created_at desc",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

// --- single-use tokens -----------------------------------------------------------------------

pub async fn insert_one_time(
    db: &mut PgConnection,
    hash: &[u8],
    user_id: Uuid,
    purpose: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into auth.one_time_tokens (hash, user_id, purpose, expires_at) values ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(purpose)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Uses a single-use token: its user when it exists, has this purpose, is unexpired and unused.
pub async fn take_one_time(db: &mut PgConnection, hash: &[u8], purpose: &str) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "update auth.one_time_tokens set used_at = now()
         where hash = $1 and purpose = $2 and used_at is null and expires_at > now() returning user_id",
    )
    .bind(hash)
    .bind(purpose)
    .fetch_optional(db)
    .await?)
}

// --- failed sign-ins -------------------------------------------------------------------------

/// The counter of one subject (`account:<email>` or `ip:<address>`), locked.
#[derive(Debug, sqlx::FromRow)]
pub struct Failures {
    pub failures: i32,
    pub window_started_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

pub async fn lock_failures(db: &mut PgConnection, subject: &str) -> Result<Failures> {
    sqlx::query(
        "insert into auth.login_failures (subject, failures, window_started_at) values ($1, 0, now())
         on conflict do nothing",
    )
    .bind(subject)
    .execute(&mut *db)
    .await?;
    Ok(sqlx::query_as(
        "select failures, window_started_at, locked_until from auth.login_failures where subject = $1 for update",
    )
    .bind(subject)
    .fetch_one(db)
    .await?)
}

pub async fn save_failures(db: &mut PgConnection, subject: &str, state: &Failures) -> Result<()> {
    sqlx::query(
        "update auth.login_failures set failures = $2, window_started_at = $3, locked_until = $4 where subject = $1",
    )
    .bind(subject)
    .bind(state.failures)
    .bind(state.window_started_at)
    .bind(state.locked_until)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn clear_failures(db: &PgPool, subject: &str) -> Result<()> {
    sqlx::query("delete from auth.login_failures where subject = $1").bind(subject).execute(db).await?;
    Ok(())
}
