//! SQL of the notifications subgraph: its projections (recipients, organizations, members), the
//! feed and preferences. The delivery log is in `deliveries.rs`.

use chrono::{DateTime, Utc};
use pyairtable_kit::Result;
use pyairtable_kit::connection::{Page, PageArgs};
use pyairtable_kit::db::Scope;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::preferences::Choices;

/// Someone with an account, as `user.registered` announced them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub user_id: Uuid,
    pub email: String,
    pub locale: String,
}

/// An in-app notification (also the payload of the live subscription).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize)]
pub struct ItemRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub workflow: String,
    pub locale: String,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub seen_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
}

const ITEM: &str = "id, user_id, workflow, locale, data, created_at, seen_at, read_at, archived_at";

pub async fn upsert_recipient(
    db: &mut PgConnection,
    user: Uuid,
    email: &str,
    name: &str,
    locale: &str,
) -> Result<()> {
    sqlx::query(
        "insert into notifications.recipients (user_id, email, display_name, locale) values ($1, $2, $3, $4) \
         on conflict (user_id) do update set email = excluded.email, display_name = excluded.display_name",
    )
    .bind(user)
    .bind(email)
    .bind(name)
    .bind(locale)
    .execute(db)
    .await?;
    Ok(())
}

/// Sets the language of an account's notifications; false when the account is not known here.
pub async fn set_locale(db: &mut PgConnection, user: Uuid, locale: &str) -> Result<bool> {
    let done = sqlx::query("update notifications.recipients set locale = $2 where user_id = $1")
        .bind(user)
        .bind(locale)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn recipient_by_email(db: &mut PgConnection, email: &str) -> Result<Option<Recipient>> {
    let sql = "select user_id, email, locale from notifications.recipients where lower(email) = lower($1)";
    Ok(sqlx::query_as(sql).bind(email).fetch_optional(db).await?)
}

pub async fn recipient(db: &mut PgConnection, user: Uuid) -> Result<Option<Recipient>> {
    let sql = "select user_id, email, locale from notifications.recipients where user_id = $1";
    Ok(sqlx::query_as(sql).bind(user).fetch_optional(db).await?)
}

pub async fn set_organization(db: &mut PgConnection, id: Uuid, name: &str) -> Result<()> {
    sqlx::query(
        "insert into notifications.organizations (id, name) values ($1, $2) \
         on conflict (id) do update set name = excluded.name",
    )
    .bind(id)
    .bind(name)
    .execute(db)
    .await?;
    Ok(())
}

/// The organization's name as last announced (empty when it was never announced).
pub async fn organization_name(db: &mut PgConnection, id: Uuid) -> Result<String> {
    let name = sqlx::query_scalar("select name from notifications.organizations where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(name.unwrap_or_default())
}

pub async fn set_member(db: &mut PgConnection, tenant: Uuid, user: Uuid, role: &str) -> Result<()> {
    Scope::tenant(tenant).apply(db).await?;
    sqlx::query(
        "insert into notifications.members (tenant_id, user_id, role) values ($1, $2, $3) \
         on conflict (tenant_id, user_id) do update set role = excluded.role",
    )
    .bind(tenant)
    .bind(user)
    .bind(role)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn remove_member(db: &mut PgConnection, tenant: Uuid, user: Uuid) -> Result<()> {
    Scope::tenant(tenant).apply(db).await?;
    sqlx::query("delete from notifications.members where tenant_id = $1 and user_id = $2")
        .bind(tenant)
        .bind(user)
        .execute(db)
        .await?;
    Ok(())
}

/// The owners and admins of an organization who have an account here.
pub async fn admins(db: &mut PgConnection, tenant: Uuid) -> Result<Vec<Recipient>> {
    Scope::tenant(tenant).apply(db).await?;
    let sql = "select r.user_id, r.email, r.locale from notifications.members m \
               join notifications.recipients r on r.user_id = m.user_id \
               where m.tenant_id = $1 and m.role in ('owner', 'admin') order by r.user_id";
    Ok(sqlx::query_as(sql).bind(tenant).fetch_all(db).await?)
}

/// The user's choices bearing on `workflow` on `channel`: for the workflow, and for every
/// workflow (`*`). `preferences::resolve` decides from them.
pub async fn choices(db: &mut PgConnection, user: Uuid, workflow: &str, channel: &str) -> Result<Choices> {
    Scope::user(user).apply(db).await?;
    let (workflow, global) = sqlx::query_as(
        "select bool_or(enabled) filter (where workflow = $2), bool_or(enabled) filter (where workflow = '*') \
         from notifications.preferences where user_id = $1 and channel = $3 and workflow in ($2, '*')",
    )
    .bind(user)
    .bind(workflow)
    .bind(channel)
    .fetch_one(db)
    .await?;
    Ok(Choices { workflow, global })
}

/// Every choice of the user (the transaction is scoped to them): (workflow, channel, enabled).
pub async fn preferences(db: &mut PgConnection, user: Uuid) -> Result<Vec<(String, String, bool)>> {
    let sql = "select workflow, channel, enabled from notifications.preferences where user_id = $1 \
               order by workflow, channel";
    Ok(sqlx::query_as(sql).bind(user).fetch_all(db).await?)
}

pub async fn set_preference(
    db: &mut PgConnection,
    user: Uuid,
    workflow: &str,
    channel: &str,
    enabled: bool,
) -> Result<()> {
    sqlx::query(
        "insert into notifications.preferences (user_id, workflow, channel, enabled) values ($1, $2, $3, $4) \
         on conflict (user_id, workflow, channel) do update set enabled = excluded.enabled, updated_at = now()",
    )
    .bind(user)
    .bind(workflow)
    .bind(channel)
    .bind(enabled)
    .execute(db)
    .await?;
    Ok(())
}

/// A new feed item, or `None` when this event already made it (applied twice).
pub async fn insert_item(
    db: &mut PgConnection,
    event: i64,
    user: Uuid,
    workflow: &str,
    locale: &str,
    data: &serde_json::Value,
) -> Result<Option<Uuid>> {
    Scope::user(user).apply(db).await?;
    let id = sqlx::query_scalar(
        "insert into notifications.items (id, user_id, event_id, workflow, locale, data) \
         values ($1, $2, $3, $4, $5, $6) on conflict on constraint items_once do nothing returning id",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(event)
    .bind(workflow)
    .bind(locale)
    .bind(data)
    .fetch_optional(db)
    .await?;
    Ok(id)
}

pub async fn item(db: &mut PgConnection, id: Uuid) -> Result<Option<ItemRow>> {
    let sql = format!("select {ITEM} from notifications.items where id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db).await?)
}

/// One page of the caller's feed (the transaction is scoped to them), newest first.
pub async fn feed(
    db: &mut PgConnection,
    user: Uuid,
    unread: Option<bool>,
    archived: bool,
    args: &PageArgs,
) -> Result<Page<ItemRow>> {
    let sql = format!(
        "select {ITEM} from notifications.items where user_id = $1 and ($2::uuid is null or id < $2) \
         and ($3::bool is null or (read_at is null) = $3) and ((archived_at is not null) = $4) \
         order by id desc limit $5"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(args.after)
        .bind(unread)
        .bind(archived)
        .bind(args.fetch())
        .fetch_all(db)
        .await?;
    Ok(args.page(rows))
}

pub async fn count(db: &mut PgConnection, user: Uuid, unread: Option<bool>, archived: bool) -> Result<i64> {
    let sql = "select count(*) from notifications.items where user_id = $1 \
               and ($2::bool is null or (read_at is null) = $2) and ((archived_at is not null) = $3)";
    Ok(sqlx::query_scalar(sql).bind(user).bind(unread).bind(archived).fetch_one(db).await?)
}

/// Sets an engagement timestamp (`seen_at`, `read_at`, `archived_at`) on one item (`Some`) or on
/// all of the user's (`None`); reading also marks seen. Returns the rows changed.
pub async fn mark(
    db: &mut PgConnection,
    user: Uuid,
    id: Option<Uuid>,
    column: Engagement,
) -> Result<Vec<ItemRow>> {
    let set = match column {
        Engagement::Seen => "seen_at = coalesce(seen_at, now())",
        Engagement::Read => "read_at = coalesce(read_at, now()), seen_at = coalesce(seen_at, now())",
        Engagement::Archived => "archived_at = coalesce(archived_at, now())",
    };
    let sql = format!(
        "update notifications.items set {set} where user_id = $1 and ($2::uuid is null or id = $2) returning {ITEM}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user).bind(id).fetch_all(db).await?)
}

/// What a user did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "NotificationEngagement")]
pub enum Engagement {
    Seen,
    Read,
    Archived,
}
