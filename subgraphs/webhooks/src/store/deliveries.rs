//! Messages (one per event and endpoint, stored before any attempt), the queue workers claim
//! from, and the attempt log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pyairtable_kit::Result;
use pyairtable_kit::connection::{PageArgs, window_sql};
use sqlx::PgConnection;
use uuid::Uuid;

/// A row of `webhooks.messages`.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct MessageRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Option<i64>,
    pub event_type: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MessageRow {
    /// The `webhook-id` header: stable across attempts, so receivers can deduplicate.
    pub fn webhook_id(&self) -> String {
        format!("msg_{}", self.id.simple())
    }
}

const MESSAGE_COLUMNS: &str =
    "id, tenant_id, endpoint_id, event_id, event_type, body, status, attempts, created_at, updated_at";

/// A row of `webhooks.attempts`.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct AttemptRow {
    pub id: Uuid,
    pub message_id: Uuid,
    pub endpoint_id: Uuid,
    pub status: String,
    pub response_status: Option<i32>,
    pub latency_ms: i32,
    pub response_body: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

const ATTEMPT_COLUMNS: &str =
    "id, message_id, endpoint_id, status, response_status, latency_ms, response_body, error, created_at";

/// Stores a message and queues it (due now); `None` when this event already made one for this
/// endpoint (the fan-out is idempotent per event and endpoint).
pub async fn insert_message(
    db: &mut PgConnection,
    tenant: Uuid,
    endpoint: Uuid,
    event_id: Option<i64>,
    event_type: &str,
    body: &str,
) -> Result<Option<MessageRow>> {
    let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into webhooks.messages (id, tenant_id, endpoint_id, event_id, event_type, body) \
         values ($1, $2, $3, $4, $5, $6) on conflict (event_id, endpoint_id) do nothing returning {MESSAGE_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(endpoint)
    .bind(event_id)
    .bind(event_type)
    .bind(body)
    .fetch_optional(&mut *db)
    .await?;
    if let Some(message) = &row {
        enqueue(db, message.id, tenant, 0).await?;
    }
    Ok(row)
}

/// Queues a message for an attempt now, with a fresh schedule (a replay), or from the start.
pub async fn enqueue(db: &mut PgConnection, message: Uuid, tenant: Uuid, attempt: i32) -> Result<()> {
    sqlx::query(
        "insert into webhooks.queue (message_id, tenant_id, attempt, due_at) values ($1, $2, $3, now()) \
         on conflict (message_id) do update set attempt = excluded.attempt, due_at = now(), lease = null",
    )
    .bind(message)
    .bind(tenant)
    .bind(attempt)
    .execute(db)
    .await?;
    Ok(())
}

/// A leased queue entry: the message, its tenant, the attempts of its schedule so far, and the
/// lease that lets only this claim move it.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Claim {
    pub message_id: Uuid,
    pub tenant_id: Uuid,
    pub attempt: i32,
    pub lease: Uuid,
}

/// Leases the next due message for `lease_for` (skipping those other workers are claiming).
pub async fn claim(db: &mut PgConnection, lease_for: Duration) -> Result<Option<Claim>> {
    let row = sqlx::query_as("select message_id, tenant_id, attempt, lease from webhooks.claim_due($1)")
        .bind(lease_for)
        .fetch_optional(db)
        .await?;
    Ok(row)
}

/// Leases one queued message (a test-send attempts it at once).
pub async fn lease(db: &mut PgConnection, message: Uuid, lease_for: Duration) -> Result<Claim> {
    let row = sqlx::query_as(
        "update webhooks.queue set due_at = now() + $2, lease = gen_random_uuid() where message_id = $1 \
         returning message_id, tenant_id, attempt, lease",
    )
    .bind(message)
    .bind(lease_for)
    .fetch_one(db)
    .await?;
    Ok(row)
}

/// Moves a claimed message's next attempt to `due_at`, as attempt number `attempt`, and ends the
/// lease (a claim whose lease ran out and was taken by another worker changes nothing).
pub async fn reschedule(
    db: &mut PgConnection,
    claim: &Claim,
    attempt: i32,
    due_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("update webhooks.queue set attempt = $3, due_at = $4, lease = null where message_id = $1 and lease = $2")
        .bind(claim.message_id)
        .bind(claim.lease)
        .bind(attempt)
        .bind(due_at)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes a claimed message out of the queue (same rule as [`reschedule`]).
pub async fn dequeue(db: &mut PgConnection, claim: &Claim) -> Result<()> {
    sqlx::query("delete from webhooks.queue where message_id = $1 and lease = $2")
        .bind(claim.message_id)
        .bind(claim.lease)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes every message of a (disabled) endpoint out of the queue.
pub async fn dequeue_endpoint(db: &mut PgConnection, endpoint: Uuid) -> Result<()> {
    sqlx::query(
        "delete from webhooks.queue where message_id in \
         (select id from webhooks.messages where endpoint_id = $1)",
    )
    .bind(endpoint)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn message(db: &mut PgConnection, id: Uuid) -> Result<Option<MessageRow>> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {MESSAGE_COLUMNS} from webhooks.messages where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Sets a message's status after an attempt and counts the attempt.
pub async fn set_status(db: &mut PgConnection, id: Uuid, status: &str) -> Result<()> {
    sqlx::query("update webhooks.messages set status = $2, attempts = attempts + 1 where id = $1")
        .bind(id)
        .bind(status)
        .execute(db)
        .await?;
    Ok(())
}

/// An attempt, as it is logged.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub succeeded: bool,
    pub response_status: Option<i32>,
    pub latency_ms: i32,
    pub response_body: &'a str,
    pub error: Option<&'a str>,
}

pub async fn log_attempt(
    db: &mut PgConnection,
    message: &MessageRow,
    attempt: &NewAttempt<'_>,
) -> Result<AttemptRow> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into webhooks.attempts (id, tenant_id, message_id, endpoint_id, status, response_status, \
         latency_ms, response_body, error) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {ATTEMPT_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(message.tenant_id)
    .bind(message.id)
    .bind(message.endpoint_id)
    .bind(if attempt.succeeded { "succeeded" } else { "failed" })
    .bind(attempt.response_status)
    .bind(attempt.latency_ms)
    .bind(attempt.response_body)
    .bind(attempt.error)
    .fetch_one(db)
    .await?;
    Ok(row)
}

/// Attempts to an endpoint in the last second (its rate limit's measure).
pub async fn recent_attempts(db: &mut PgConnection, endpoint: Uuid) -> Result<i64> {
    let count = sqlx::query_scalar(
        "select count(*) from webhooks.attempts where endpoint_id = $1 and created_at > now() - interval '1 second'",
    )
    .bind(endpoint)
    .fetch_one(db)
    .await?;
    Ok(count)
}

/// One page of an endpoint's messages, and how many it has.
pub async fn messages_page(
    db: &mut PgConnection,
    endpoint: Uuid,
    args: &PageArgs,
) -> Result<(Vec<MessageRow>, i64)> {
    let source = format!(
        "select {MESSAGE_COLUMNS}, endpoint_id as parent from webhooks.messages where endpoint_id = $1"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(window_sql(&source, args, 2)))
        .bind(endpoint)
        .bind(args.after)
        .bind(args.before)
        .bind(args.fetch())
        .fetch_all(&mut *db)
        .await?;
    let total = sqlx::query_scalar("select count(*) from webhooks.messages where endpoint_id = $1")
        .bind(endpoint)
        .fetch_one(db)
        .await?;
    Ok((rows, total))
}

/// One page of a message's attempts, and how many it has.
pub async fn attempts_page(
    db: &mut PgConnection,
    message: Uuid,
    args: &PageArgs,
) -> Result<(Vec<AttemptRow>, i64)> {
    let source = format!(
        "select {ATTEMPT_COLUMNS}, message_id as parent from webhooks.attempts where message_id = $1"
    );
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(window_sql(&source, args, 2)))
        .bind(message)
        .bind(args.after)
        .bind(args.before)
        .bind(args.fetch())
        .fetch_all(&mut *db)
        .await?;
    let total = sqlx::query_scalar("select count(*) from webhooks.attempts where message_id = $1")
        .bind(message)
        .fetch_one(db)
        .await?;
    Ok((rows, total))
}

/// Queues every message of an endpoint created at or after `since` for a new attempt now.
pub async fn replay_since(db: &mut PgConnection, endpoint: Uuid, since: DateTime<Utc>) -> Result<i64> {
    let done = sqlx::query(
        "insert into webhooks.queue (message_id, tenant_id, attempt, due_at) \
         select id, tenant_id, 0, now() from webhooks.messages where endpoint_id = $1 and created_at >= $2 \
         on conflict (message_id) do update set attempt = 0, due_at = now(), lease = null",
    )
    .bind(endpoint)
    .bind(since)
    .execute(&mut *db)
    .await?;
    sqlx::query(
        "update webhooks.messages set status = 'pending' where endpoint_id = $1 and created_at >= $2",
    )
    .bind(endpoint)
    .bind(since)
    .execute(db)
    .await?;
    Ok(i64::try_from(done.rows_affected()).unwrap_or(i64::MAX))
}
