//! SQL of the users subgraph; it reads and writes the `users` schema only.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};
use pyairtable_kit::error::unique_violation;
use pyairtable_kit::{Error, Result};
use sqlx::PgPool;
use uuid::Uuid;

/// A row of `users.users`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub avatar_file_id: Option<Uuid>,
    pub locale: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, email, display_name, avatar_file_id, locale, time_zone, created_at, updated_at";

#[tracing::instrument(skip_all)]
pub async fn insert_user(db: &PgPool, id: Uuid, email: &str, display_name: &str) -> Result<UserRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into users.users (id, email, display_name) values ($1, $2, $3) returning {COLUMNS}"
    )))
    .bind(id)
    .bind(email)
    .bind(display_name)
    .fetch_one(db)
    .await
    .map_err(|err| match unique_violation(&err) {
        Some("users_email_key") => Error::Conflict("a user with this email already exists".into()),
        _ => err.into(),
    })
}

#[tracing::instrument(skip_all, fields(count = ids.len()))]
pub async fn users_by_ids(db: &PgPool, ids: &[Uuid]) -> Result<Vec<UserRow>> {
    let rows =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from users.users where id = any($1)")))
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows)
}

/// Profile fields to change; `None` keeps the stored value.
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn update_profile(db: &PgPool, id: Uuid, update: &ProfileUpdate) -> Result<Option<UserRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update users.users set display_name = coalesce($2, display_name), \
         locale = coalesce($3, locale), time_zone = coalesce($4, time_zone) \
         where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(&update.display_name)
    .bind(&update.locale)
    .bind(&update.time_zone)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Batches user lookups of one request into one query.
pub struct UserLoader(pub PgPool);

impl Loader<Uuid> for UserLoader {
    type Value = UserRow;
    type Error = Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, UserRow>> {
        let rows = users_by_ids(&self.0, keys).await?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}
