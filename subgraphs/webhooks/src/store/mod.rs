//! SQL of the webhooks subgraph; it reads and writes the `webhooks` schema only, in transactions
//! scoped by row-level security (kit::db::Scope). Endpoints here; messages, the queue and the
//! attempt log in [`deliveries`].

pub mod deliveries;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pyairtable_kit::Result;
use pyairtable_kit::connection::{PageArgs, window_sql};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// A row of `webhooks.endpoints`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub rate_limit: Option<i32>,
    pub headers: Json<BTreeMap<String, String>>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointRow {
    /// The secrets that sign now: the current one, and the previous one during its 24 hours.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let previous = self
            .previous_secret
            .as_deref()
            .filter(|_| self.previous_secret_expires_at.is_some_and(|until| until > now));
        std::iter::once(self.secret.as_str()).chain(previous).collect()
    }

    /// Whether a message of `event_type` goes to this endpoint (an empty filter takes all).
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

const COLUMNS: &str = "id, tenant_id, url, description, event_types, enabled, disabled_reason, rate_limit, \
    headers, secret, previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at";

/// What an endpoint is made of (validated by the service).
#[derive(Debug, Clone)]
pub struct EndpointFields {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub rate_limit: Option<i32>,
    pub headers: BTreeMap<String, String>,
}

pub async fn insert(
    db: &mut PgConnection,
    tenant: Uuid,
    fields: &EndpointFields,
    secret: &str,
    created_by: Uuid,
) -> Result<EndpointRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into webhooks.endpoints (id, tenant_id, url, description, event_types, enabled, rate_limit, \
         headers, secret, created_by, after_event_id) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         (select coalesce(max(id), 0) from kit.events)) returning {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(&fields.url)
    .bind(&fields.description)
    .bind(&fields.event_types)
    .bind(fields.enabled)
    .bind(fields.rate_limit)
    .bind(Json(&fields.headers))
    .bind(secret)
    .bind(created_by)
    .fetch_one(db)
    .await?;
    Ok(row)
}

/// The endpoint; with `lock`, locked for the transaction (changes to it), else not (deliveries
/// must not hold up its owners' changes).
pub async fn by_id(db: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<EndpointRow>> {
    let lock = if lock { " for update" } else { "" };
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from webhooks.endpoints where id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Replaces the fields; re-enabling clears why it was disabled and the failure streak.
pub async fn update(db: &mut PgConnection, id: Uuid, fields: &EndpointFields) -> Result<EndpointRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update webhooks.endpoints set url = $2, description = $3, event_types = $4, \
         disabled_reason = case when $5 then null else disabled_reason end, \
         failing_since = case when $5 and not enabled then null else failing_since end, \
         enabled = $5, rate_limit = $6, headers = $7 where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(&fields.url)
    .bind(&fields.description)
    .bind(&fields.event_types)
    .bind(fields.enabled)
    .bind(fields.rate_limit)
    .bind(Json(&fields.headers))
    .fetch_one(db)
    .await?;
    Ok(row)
}

/// A new secret; the current one keeps signing until `previous_until`.
pub async fn rotate(
    db: &mut PgConnection,
    id: Uuid,
    secret: &str,
    previous_until: DateTime<Utc>,
) -> Result<EndpointRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update webhooks.endpoints set previous_secret = secret, previous_secret_expires_at = $3, \
         secret = $2 where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(secret)
    .bind(previous_until)
    .fetch_one(db)
    .await?;
    Ok(row)
}

pub async fn delete(db: &mut PgConnection, id: Uuid) -> Result<bool> {
    let done = sqlx::query("delete from webhooks.endpoints where id = $1").bind(id).execute(db).await?;
    Ok(done.rows_affected() > 0)
}

/// One page of a tenant's endpoints, and how many it has.
pub async fn page(db: &mut PgConnection, tenant: Uuid, args: &PageArgs) -> Result<(Vec<EndpointRow>, i64)> {
    let source =
        format!("select {COLUMNS}, tenant_id as parent from webhooks.endpoints where tenant_id = $1");
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(window_sql(&source, args, 2)))
        .bind(tenant)
        .bind(args.after)
        .bind(args.before)
        .bind(args.fetch())
        .fetch_all(&mut *db)
        .await?;
    let total = sqlx::query_scalar("select count(*) from webhooks.endpoints where tenant_id = $1")
        .bind(tenant)
        .fetch_one(db)
        .await?;
    Ok((rows, total))
}

/// The enabled endpoints of a tenant that existed before event `event` (the fan-out's
/// candidates: an endpoint receives what happens after it was created).
pub async fn enabled(db: &mut PgConnection, tenant: Uuid, event: i64) -> Result<Vec<EndpointRow>> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from webhooks.endpoints where tenant_id = $1 and enabled and after_event_id < $2 \
         order by id"
    )))
    .bind(tenant)
    .bind(event)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Disables an endpoint, saying why; false when it already was disabled.
pub async fn disable(db: &mut PgConnection, id: Uuid, reason: &str) -> Result<bool> {
    let done = sqlx::query(
        "update webhooks.endpoints set enabled = false, disabled_reason = $2 where id = $1 and enabled",
    )
    .bind(id)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records an attempt's outcome on the endpoint's failure streak; returns when it began (none
/// after a success).
pub async fn record_outcome(
    db: &mut PgConnection,
    id: Uuid,
    succeeded: bool,
) -> Result<Option<DateTime<Utc>>> {
    let since = sqlx::query_scalar(
        "update webhooks.endpoints set failing_since = case when $2 then null \
         else coalesce(failing_since, now()) end where id = $1 returning failing_since",
    )
    .bind(id)
    .bind(succeeded)
    .fetch_optional(db)
    .await?;
    Ok(since.flatten())
}

/// Removes every endpoint (and so message and attempt) of a purged tenant.
pub async fn delete_tenant(db: &mut PgConnection, tenant: Uuid) -> Result<()> {
    sqlx::query("delete from webhooks.endpoints where tenant_id = $1").bind(tenant).execute(db).await?;
    Ok(())
}
