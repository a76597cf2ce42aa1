//! The delivery worker: leases the next due message with `FOR UPDATE SKIP LOCKED` (any number of
//! workers and processes share the queue), attempts it without holding a connection, and logs
//! the attempt and its consequences. A worker killed mid-attempt logs nothing: when its lease
//! runs out the message is due again and attempted again (at-least-once).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::events::publish;
use pyairtable_kit::{Lifecycle, Result};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;

use crate::catalog::ENDPOINT_DISABLED;
use crate::delivery::{Outcome, Sender, TIMEOUT, next_delay};
use crate::store::deliveries::{self, AttemptRow, Claim, MessageRow, NewAttempt};
use crate::store::{self, EndpointRow};
use crate::subscription::{announce, attempts_channel, messages_channel};

/// Idle loops look for due messages this often (the fan-out commits in the kit's consumer);
/// replays and test-sends of this process wake them at once.
const POLL: Duration = Duration::from_millis(250);
/// A claim lasts longer than the longest attempt; then the message is due again.
pub const LEASE: Duration = Duration::from_secs(TIMEOUT.as_secs() * 2);
/// Attempts one process makes at a time, at most.
const MAX_CONCURRENCY: u32 = 4;
/// An endpoint failing for this long without a success is disabled.
pub const DISABLE_AFTER: chrono::Duration = chrono::Duration::days(5);

/// Runs the delivery loops on the process's lifecycle (one per four pooled connections, one to
/// four: a loop uses a connection only around its attempt); each finishes the attempt in hand
/// and returns once the shutdown begins (or the pool closes). `wake` starts idle loops at once.
pub fn spawn(db: PgPool, sender: Sender, wake: Arc<Notify>, lifecycle: &Lifecycle, pool_size: u32) {
    for _ in 0..(pool_size / 4).clamp(1, MAX_CONCURRENCY) {
        let (db, sender, wake, stop) = (db.clone(), sender.clone(), wake.clone(), lifecycle.clone());
        lifecycle.spawn(async move { run(db, sender, wake, stop).await });
    }
}

async fn run(db: PgPool, sender: Sender, wake: Arc<Notify>, stop: Lifecycle) {
    while !stop.is_stopping() && !db.is_closed() {
        let woken = wake.notified();
        while !stop.is_stopping() {
            match deliver_next(&db, &sender).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    tracing::error!(%err, "webhook worker");
                    break;
                }
            }
        }
        tokio::select! {
            () = stop.stopping() => {}
            () = woken => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Leases one due message and attempts it; false when none is due.
pub async fn deliver_next(db: &PgPool, sender: &Sender) -> Result<bool> {
    let claim = deliveries::claim(&mut *db.acquire().await?, LEASE).await?;
    let Some(claim) = claim else { return Ok(false) };
    deliver(db, sender, &claim).await?;
    Ok(true)
}

/// Attempts a claimed message and logs it; `None` when there was nothing to attempt (the
/// message or its endpoint is gone or disabled) or the endpoint's rate limit defers it.
pub async fn deliver(db: &PgPool, sender: &Sender, claim: &Claim) -> Result<Option<AttemptRow>> {
    let mut tx = scoped(db, &Scope::tenant(claim.tenant_id)).await?;
    let message = deliveries::message(&mut tx, claim.message_id).await?;
    let endpoint = match &message {
        Some(message) => store::by_id(&mut tx, message.endpoint_id, false).await?,
        None => None,
    };
    let (Some(message), Some(endpoint)) = (message, endpoint.filter(|e| e.enabled)) else {
        deliveries::dequeue(&mut tx, claim).await?;
        tx.commit().await?;
        return Ok(None);
    };
    if let Some(limit) = endpoint.rate_limit
        && deliveries::recent_attempts(&mut tx, endpoint.id).await? >= i64::from(limit)
    {
        let later = Utc::now() + chrono::Duration::milliseconds(1000 / i64::from(limit).max(1));
        deliveries::reschedule(&mut tx, claim, claim.attempt, later).await?;
        tx.commit().await?;
        return Ok(None);
    }
    tx.commit().await?;
    if claim.attempt == 0 && message.attempts == 0 {
        announce(&sender.bus, &messages_channel(message.tenant_id), &message).await;
    }
    let outcome = sender.send(&endpoint, &message, Utc::now()).await;
    let mut tx = scoped(db, &Scope::tenant(claim.tenant_id)).await?;
    let logged = record(&mut tx, &endpoint, &message, claim, &outcome).await?;
    tx.commit().await?;
    announce(&sender.bus, &attempts_channel(endpoint.id), &logged).await;
    Ok(Some(logged))
}

/// Logs an attempt and what follows from it: delivered, retried on the schedule, failed for
/// good, the endpoint disabled (410, or failing for [`DISABLE_AFTER`]).
async fn record(
    tx: &mut PgConnection,
    endpoint: &EndpointRow,
    message: &MessageRow,
    claim: &Claim,
    outcome: &Outcome,
) -> Result<AttemptRow> {
    let attempt = claim.attempt;
    let logged = deliveries::log_attempt(tx, message, &new_attempt(outcome)).await?;
    let failing_since = store::record_outcome(tx, endpoint.id, outcome.succeeded).await?;
    let done = usize::try_from(attempt + 1).unwrap_or(usize::MAX);
    let next =
        (!outcome.succeeded && !outcome.gone()).then(|| next_delay(done, outcome.retry_after)).flatten();
    match next {
        Some(delay) => {
            let due = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(10));
            deliveries::set_status(tx, message.id, "pending").await?;
            deliveries::reschedule(tx, claim, attempt + 1, due).await?;
        }
        None => {
            let status = if outcome.succeeded { "delivered" } else { "failed" };
            deliveries::set_status(tx, message.id, status).await?;
            deliveries::dequeue(tx, claim).await?;
        }
    }
    let reason = if outcome.gone() {
        Some("the endpoint answered 410 Gone".to_owned())
    } else {
        failing_since
            .filter(|since| Utc::now() - *since >= DISABLE_AFTER)
            .map(|since| format!("every attempt failed since {}", since.to_rfc3339()))
    };
    if let Some(reason) = reason {
        disable(tx, endpoint, &reason).await?;
    }
    Ok(logged)
}

fn new_attempt(outcome: &Outcome) -> NewAttempt<'_> {
    NewAttempt {
        succeeded: outcome.succeeded,
        response_status: outcome.response_status.map(i32::from),
        latency_ms: i32::try_from(outcome.latency.as_millis()).unwrap_or(i32::MAX),
        response_body: &outcome.response_body,
        error: outcome.error.as_deref(),
    }
}

/// Disables the endpoint, takes its messages out of the queue, and publishes
/// `webhook.endpoint_disabled` (once: not again when it already was disabled).
async fn disable(tx: &mut PgConnection, endpoint: &EndpointRow, reason: &str) -> Result<()> {
    if !store::disable(tx, endpoint.id, reason).await? {
        return Ok(());
    }
    deliveries::dequeue_endpoint(tx, endpoint.id).await?;
    tracing::warn!(endpoint_id = %endpoint.id, reason, "webhook endpoint disabled");
    let payload = serde_json::json!({
        "organization_id": endpoint.tenant_id, "endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason,
    });
    publish(tx, ENDPOINT_DISABLED, &payload).await
}
