//! SQL of the users subgraph; it reads and writes the `users` schema only.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};
use pyairtable_kit::{Error, Result};
use sqlx::{PgConnection, PgPool};
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

/// Creates the profile of a newly registered user (again: a no-op, events may repeat).
#[tracing::instrument(skip_all)]
pub async fn insert_profile(db: &mut PgConnection, id: Uuid, email: &str, display_name: &str) -> Result<()> {
    sqlx::query(
        "insert into users.users (id, email, display_name) values ($1, $2, $3) on conflict do nothing",
    )
    .bind(id)
    .bind(email)
    .bind(display_name)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes a deleted file off every profile that shows it as avatar.
pub async fn clear_avatar(db: &mut PgConnection, file: Uuid) -> Result<()> {
    sqlx::query("update users.users set avatar_file_id = null where avatar_file_id = $1")
        .bind(file)
        .execute(db)
        .await?;
    Ok(())
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
    pub avatar_file_id: Option<Option<Uuid>>,
}

#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn update_profile(db: &PgPool, id: Uuid, update: &ProfileUpdate) -> Result<Option<UserRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update users.users set display_name = coalesce($2, display_name), \
         locale = coalesce($3, locale), time_zone = coalesce($4, time_zone), \
         avatar_file_id = case when $5 then $6 else avatar_file_id end \
         where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(&update.display_name)
    .bind(&update.locale)
    .bind(&update.time_zone)
    .bind(update.avatar_file_id.is_some())
    .bind(update.avatar_file_id.flatten())
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Batches user lookups of one request into one query.
pub struct UserLoader(pub PgPool);

impl Loader<Uuid> for UserLoader {
    type Value = UserRow;
    type Error = Error;

    /// A user just registered may not have its profile yet (the event is being applied): on a
    /// miss, pending events are applied first and the missing ones read again.
    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, UserRow>> {
        let mut found: HashMap<Uuid, UserRow> =
            users_by_ids(&self.0, keys).await?.into_iter().map(|row| (row.id, row)).collect();
        // Reload even when this call applied nothing: another worker may just have applied it.
        if found.len() < keys.len() {
            crate::events::consumer().catch_up(&self.0).await?;
            let missing: Vec<Uuid> = keys.iter().filter(|k| !found.contains_key(k)).copied().collect();
            found.extend(users_by_ids(&self.0, &missing).await?.into_iter().map(|row| (row.id, row)));
        }
        Ok(found)
    }
}
