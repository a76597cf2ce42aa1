//! Gauges sampled in the background: the PostgreSQL pool and the lag of this process's event
//! consumers (events committed that a consumer has not looked at yet).

use std::time::Duration;

use sqlx::PgPool;

use crate::Kit;

const EVERY: Duration = Duration::from_secs(5);

/// Samples every few seconds until the kit stops or its pool closes.
pub(crate) fn spawn(kit: &Kit) {
    let (db, consumers, lifecycle) = (kit.db.clone(), kit.consumers.clone(), kit.lifecycle.clone());
    let max = f64::from(kit.config.db_max_connections);
    kit.lifecycle.spawn(async move {
        while !db.is_closed() {
            pool(&db, max);
            let names: Vec<&'static str> = consumers.lock().map(|c| c.clone()).unwrap_or_default();
            if !names.is_empty()
                && let Err(err) = lag(&db, &names).await
            {
                tracing::debug!(%err, "sampling the event consumers' lag");
            }
            tokio::select! {
                () = lifecycle.stopping() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    });
}

fn pool(db: &PgPool, max: f64) {
    let size = f64::from(db.size());
    let idle = f64::from(u32::try_from(db.num_idle()).unwrap_or(u32::MAX));
    metrics::gauge!("pyairtable_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("pyairtable_db_pool_connections", "state" => "in_use").set((size - idle).max(0.0));
    metrics::gauge!("pyairtable_db_pool_max_connections").set(max);
}

async fn lag(db: &PgPool, consumers: &[&'static str]) -> sqlx::Result<()> {
    let names: Vec<String> = consumers.iter().map(|c| (*c).to_owned()).collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select n.name, greatest(coalesce((select max(id) from kit.events), 0) - coalesce(c.position, 0), 0) \
         from unnest($1::text[]) as n(name) left join kit.event_cursors c on c.consumer = n.name",
    )
    .bind(&names)
    .fetch_all(db)
    .await?;
    for (consumer, lag) in rows {
        #[allow(clippy::cast_precision_loss)] // lags beyond 2^53 events are not a concern
        metrics::gauge!("pyairtable_event_consumer_lag_events", "consumer" => consumer).set(lag as f64);
    }
    Ok(())
}
