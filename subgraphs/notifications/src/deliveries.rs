//! The delivery log: one row per (event, recipient, channel), whatever the channel. Status is
//! `queued` → `sent`, or `retrying` (with the last error) → ... → `sent` or `failed` after the
//! attempt limit. The row is never deleted, so nothing is lost.

use std::time::Duration;

use pyairtable_kit::Result;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Channel told when deliveries are queued, so the worker wakes at once.
pub const WAKE: &str = "pyairtable_notifications";
/// How long a claimed delivery is held by its worker before another may take it (a crash
/// mid-send: the delivery is tried again, at least once).
const LEASE_SECS: i64 = 120;

/// A delivery to make.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub workflow: String,
    pub channel: String,
    pub recipient: String,
    pub user_id: Option<Uuid>,
    pub item_id: Option<Uuid>,
    pub locale: String,
    pub data: serde_json::Value,
    pub attempts: i32,
}

/// What to deliver, as the consumer queues it.
pub struct NewDelivery<'a> {
    pub event_id: i64,
    pub workflow: &'a str,
    pub channel: &'a str,
    pub recipient: &'a str,
    pub user_id: Option<Uuid>,
    pub item_id: Option<Uuid>,
    pub locale: &'a str,
    pub data: &'a serde_json::Value,
}

/// Queues a delivery; an event applied twice queues it once.
pub async fn queue(db: &mut PgConnection, new: &NewDelivery<'_>) -> Result<bool> {
    let done = sqlx::query(
        "insert into notifications.deliveries \
         (id, event_id, workflow, channel, recipient, user_id, item_id, locale, data) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict on constraint deliveries_once do nothing",
    )
    .bind(Uuid::now_v7())
    .bind(new.event_id)
    .bind(new.workflow)
    .bind(new.channel)
    .bind(new.recipient)
    .bind(new.user_id)
    .bind(new.item_id)
    .bind(new.locale)
    .bind(new.data)
    .execute(&mut *db)
    .await?;
    sqlx::query("select pg_notify($1, '')").bind(WAKE).execute(db).await?;
    Ok(done.rows_affected() == 1)
}

/// Claims up to `limit` due deliveries for this worker (skipping those others hold).
pub async fn claim(db: &PgPool, limit: i64) -> Result<Vec<DeliveryRow>> {
    let rows = sqlx::query_as(
        "update notifications.deliveries set next_attempt_at = now() + make_interval(secs => $2) \
         where id in (select id from notifications.deliveries where status in ('queued', 'retrying') \
         and next_attempt_at <= now() order by next_attempt_at limit $1 for update skip locked) \
         returning id, workflow, channel, recipient, user_id, item_id, locale, data, attempts",
    )
    .bind(limit)
    .bind(LEASE_SECS as f64)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

pub async fn sent(db: &PgPool, id: Uuid) -> Result<()> {
    sqlx::query(
        "update notifications.deliveries set status = 'sent', attempts = attempts + 1, sent_at = now() \
         where id = $1",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Records a failed attempt: tried again after `backoff`, or failed for good at `max_attempts`.
/// Returns the status it is left in (`retrying` or `failed`).
pub async fn attempt_failed(
    db: &PgPool,
    id: Uuid,
    error: &str,
    backoff: Duration,
    max_attempts: i32,
) -> Result<String> {
    let status = sqlx::query_scalar(
        "update notifications.deliveries set attempts = attempts + 1, last_error = $2, \
         status = case when attempts + 1 >= $4 then 'failed' else 'retrying' end, \
         next_attempt_at = now() + make_interval(secs => $3) where id = $1 returning status",
    )
    .bind(id)
    .bind(error)
    .bind(backoff.as_secs_f64())
    .bind(max_attempts)
    .fetch_one(db)
    .await?;
    Ok(status)
}
