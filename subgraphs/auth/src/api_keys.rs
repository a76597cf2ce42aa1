//! Personal access tokens (`pat_...`): shown once, stored hashed, scoped, expiring, with the time
//! of last use; the router resolves them through [`crate::authority`].

use chrono::{DateTime, Duration, Utc};
use pyairtable_kit::input::{parse_id, parse_text};
use pyairtable_kit::{Caller, Error, Result};
use sqlx::PgPool;
use uuid::Uuid;

use crate::secrets::{self, new_secret};

pub const PREFIX: &str = "pat_";
const MAX_SCOPES: usize = 20;
const MAX_DAYS: i64 = 366;
/// Last use is written at most this often per key (it is read on every request).
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// A row of `auth.api_keys` (never the secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, prefix, scopes, created_at, expires_at, last_used_at";

/// Scopes look like `read`, `workspaces:write`: lower-case words, one optional colon.
fn parse_scopes(scopes: &[String]) -> Result<Vec<String>> {
    if scopes.is_empty() || scopes.len() > MAX_SCOPES {
        return Err(Error::bad_input("scopes", format!("give 1 to {MAX_SCOPES} scopes")));
    }
    let valid = |s: &str| {
        let mut parts = s.split(':');
        let word =
            |w: &str| !w.is_empty() && w.len() <= 32 && w.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        parts.next().is_some_and(word) && parts.next().is_none_or(word) && parts.next().is_none()
    };
    if let Some(bad) = scopes.iter().find(|s| !valid(s) || s.as_str() == "*") {
        return Err(Error::bad_input("scopes", format!("{bad:?} is not a scope")));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// Creates a key; returns it with its secret, which is never shown again.
pub async fn create(
    db: &PgPool,
    caller: &Caller,
    name: &str,
    scopes: &[String],
    expires_in_days: Option<i32>,
) -> Result<(ApiKey, String)> {
    let user = caller.require_user()?;
    if caller.session_id.is_none() {
        return Err(Error::Forbidden(
            "API keys are created from a signed-in session, not with another key".into(),
        ));
    }
    let name = parse_text("name", name, 100)?;
    let scopes = parse_scopes(scopes)?;
    let days = i64::from(expires_in_days.unwrap_or(90));
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::bad_input("expiresInDays", format!("expiresInDays must be 1 to {MAX_DAYS}")));
    }
    let (secret, hash) = new_secret(PREFIX);
    let prefix: String = secret.chars().take(PREFIX.len() + 6).collect();
    let sql = format!(
        "insert into auth.api_keys (id, user_id, name, prefix, hash, scopes, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7) returning {COLUMNS}"
    );
    let key = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(user)
        .bind(name)
        .bind(prefix)
        .bind(hash)
        .bind(scopes)
        .bind(Utc::now() + Duration::days(days))
        .fetch_one(db)
        .await?;
    Ok((key, secret))
}

pub async fn list(db: &PgPool, caller: &Caller) -> Result<Vec<ApiKey>> {
    let sql = format!(
        "select {COLUMNS} from auth.api_keys where user_id = $1 and revoked_at is null order by created_at desc"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(caller.require_user()?).fetch_all(db).await?)
}

pub async fn revoke(db: &PgPool, caller: &Caller, id: &str) -> Result<bool> {
    let id = parse_id("id", id)?;
    let done = sqlx::query(
        "update auth.api_keys set revoked_at = now() where id = $1 and user_id = $2 and revoked_at is null",
    )
    .bind(id)
    .bind(caller.require_user()?)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct Usable {
    id: Uuid,
    user_id: Uuid,
    scopes: Vec<String>,
    last_used_at: Option<DateTime<Utc>>,
}

/// The caller a key stands for: unrevoked, unexpired; records its use.
pub async fn resolve(db: &PgPool, secret: &str) -> Result<Option<Caller>> {
    if !secret.starts_with(PREFIX) || secret.len() > 100 {
        return Ok(None);
    }
    let row: Option<Usable> = sqlx::query_as(
        "select id, user_id, scopes, last_used_at from auth.api_keys
         where hash = $1 and revoked_at is null and (expires_at is null or expires_at > now())",
    )
    .bind(secrets::hash(secret))
    .fetch_optional(db)
    .await?;
    let Some(key) = row else { return Ok(None) };
    if key.last_used_at.is_none_or(|at| Utc::now() - at > TOUCH_EVERY) {
        sqlx::query("update auth.api_keys set last_used_at = now() where id = $1")
            .bind(key.id)
            .execute(db)
            .await?;
    }
    Ok(Some(Caller { user_id: Some(key.user_id), scopes: key.scopes, ..Caller::default() }))
}

#[cfg(test)]
mod tests {
    use super::parse_scopes;

    #[test]
    fn scopes_are_words_with_one_optional_colon() {
        let ok = parse_scopes(&["workspaces:read".into(), "read".into(), "read".into()]).expect("valid");
        assert_eq!(ok, ["read", "workspaces:read"]);
        for bad in ["", "*", "a:b:c", "Read", "a b", "x:"] {
            assert!(parse_scopes(&[bad.into()]).is_err(), "{bad:?}");
        }
        assert!(parse_scopes(&[]).is_err());
    }
}
