//! Domain events through a transactional outbox in PostgreSQL (`kit.events`).
//!
//! [`publish`] writes an event in the caller's transaction, so an event exists exactly when its
//! change committed. Each consumer keeps a cursor (`kit.event_cursors`) and applies events in id
//! order inside the same transaction that moves its cursor: a crash loses nothing and applies
//! nothing twice. Publishers take a transaction-level advisory lock before inserting, so ids
//! commit in id order and a cursor never passes over an event that commits late.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::Kit;
use crate::error::Result;

/// Channel notified on every publish, so consumers wake at once.
const CHANNEL: &str = "pyairtable_events";
/// Consumers also poll, in case a notification was missed.
const POLL: Duration = Duration::from_secs(5);
const BATCH: i64 = 100;

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub topic: String,
    pub payload: serde_json::Value,
}

impl Event {
    /// The payload as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.payload.clone())
            .map_err(|e| crate::Error::internal(anyhow::anyhow!("event {} ({}): {e}", self.id, self.topic)))
    }
}

/// Writes `payload` under `topic` in `tx`; it becomes visible to consumers when `tx` commits.
/// `tx` must be inside a transaction (a `Transaction`, or a consumer's connection).
pub async fn publish(tx: &mut PgConnection, topic: &str, payload: &impl Serialize) -> Result<()> {
    let payload = serde_json::to_value(payload).map_err(crate::Error::internal)?;
    sqlx::query("select pg_advisory_xact_lock(hashtext('kit.events'))").execute(&mut *tx).await?;
    sqlx::query("insert into kit.events (topic, payload) values ($1, $2)")
        .bind(topic)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    sqlx::query("select pg_notify($1, $2)").bind(CHANNEL).bind(topic).execute(&mut *tx).await?;
    Ok(())
}

/// Applies one event inside the consumer's transaction.
pub type Handler =
    for<'a> fn(&'a mut PgConnection, &'a Event) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// A named consumer of some topics.
#[derive(Clone)]
pub struct Consumer {
    pub name: &'static str,
    pub topics: &'static [&'static str],
    pub handler: Handler,
}

impl Consumer {
    /// Applies every pending event; returns how many it applied. Concurrent callers (several
    /// processes) are serialised on the cursor row.
    pub async fn catch_up(&self, db: &PgPool) -> Result<usize> {
        let mut applied = 0;
        loop {
            let mut tx = db.begin().await?;
            sqlx::query("insert into kit.event_cursors (consumer) values ($1) on conflict do nothing")
                .bind(self.name)
                .execute(&mut *tx)
                .await?;
            let position: i64 =
                sqlx::query_scalar("select position from kit.event_cursors where consumer = $1 for update")
                    .bind(self.name)
                    .fetch_one(&mut *tx)
                    .await?;
            let events: Vec<Event> = sqlx::query_as(
                "select id, topic, payload from kit.events where id > $1 order by id limit $2",
            )
            .bind(position)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = events.last().map(|e| e.id) else { return Ok(applied) };
            for event in events.iter().filter(|e| self.topics.contains(&e.topic.as_str())) {
                (self.handler)(&mut tx, event).await?;
                applied += 1;
            }
            sqlx::query("update kit.event_cursors set position = $2, updated_at = now() where consumer = $1")
                .bind(self.name)
                .bind(last)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
    }

    /// Whether events of this consumer's topics wait to be applied (one cheap statement, no lock:
    /// for hot paths that apply pending events only when there are some).
    pub async fn pending(&self, db: &PgPool) -> Result<bool> {
        let pending = sqlx::query_scalar(
            "select exists(select 1 from kit.events where topic = any($2) and id > \
             coalesce((select position from kit.event_cursors where consumer = $1), 0))",
        )
        .bind(self.name)
        .bind(self.topics)
        .fetch_one(db)
        .await?;
        Ok(pending)
    }

    /// Runs in the background on `kit`'s lifecycle: catches up at start, on every notification,
    /// and every few seconds; returns after the batch in hand once the shutdown begins.
    pub fn spawn(self, kit: &Kit) -> tokio::task::JoinHandle<()> {
        if let Ok(mut consumers) = kit.consumers.lock() {
            consumers.push(self.name);
        }
        let (db, lifecycle) = (kit.db.clone(), kit.lifecycle.clone());
        kit.lifecycle.spawn(async move {
            let mut listener = listen(&db).await;
            while !lifecycle.is_stopping() && !db.is_closed() {
                match self.catch_up(&db).await {
                    Ok(applied) => {
                        metrics::counter!("pyairtable_events_applied_total", "consumer" => self.name)
                            .increment(applied as u64);
                    }
                    Err(err) => {
                        metrics::counter!("pyairtable_event_consumer_errors_total", "consumer" => self.name)
                            .increment(1);
                        tracing::error!(consumer = self.name, %err, "applying events");
                    }
                }
                let wake = async {
                    match listener.as_mut() {
                        Some(listener) => {
                            let _ = tokio::time::timeout(POLL, listener.recv()).await;
                        }
                        None => tokio::time::sleep(POLL).await,
                    }
                };
                tokio::select! {
                    () = lifecycle.stopping() => {}
                    () = wake => {}
                }
            }
        })
    }
}

/// A connection listening for publishes, or none (then consumers only poll).
async fn listen(db: &PgPool) -> Option<PgListener> {
    match PgListener::connect_with(db).await {
        Ok(mut listener) => match listener.listen(CHANNEL).await {
            Ok(()) => Some(listener),
            Err(err) => {
                tracing::warn!(%err, "event listener: LISTEN failed; polling only");
                None
            }
        },
        Err(err) => {
            tracing::warn!(%err, "event listener: no connection; polling only");
            None
        }
    }
}
