//! Live messages between processes, for subscriptions: publish a JSON payload on a channel, and
//! every subscriber of that channel in every process receives it. In process by default; with
//! Redis (`REDIS_URL`), through Redis pub/sub: each process holds one pattern subscription
//! (`<prefix>bus:*`) and fans messages out to its local subscribers, so ten thousand
//! subscribers cost one Redis connection.
//!
//! Delivery is at most once and live only: a subscriber that is not listening when a message is
//! published does not get it, and a subscriber that falls more than [`CAPACITY`] messages behind
//! skips the oldest. Durable state lives in PostgreSQL; a client that reconnects reads it there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::Lifecycle;

/// Messages a subscriber may fall behind before it skips the oldest.
pub const CAPACITY: usize = 256;

/// The channels this process has subscribers on.
type Local = Arc<Mutex<HashMap<String, broadcast::Sender<Arc<Value>>>>>;

/// Publish/subscribe on named channels.
pub struct Bus {
    local: Local,
    redis: Option<Remote>,
}

struct Remote {
    connection: redis::aio::ConnectionManager,
    prefix: String,
}

impl Bus {
    /// A bus inside this process only.
    pub fn in_process() -> Self {
        Self { local: Local::default(), redis: None }
    }

    /// A bus shared through Redis by every process with the same `prefix`. The pattern
    /// subscription runs on `lifecycle` and reconnects when Redis goes away (messages published
    /// meanwhile are missed).
    pub fn redis(
        client: redis::Client,
        connection: redis::aio::ConnectionManager,
        prefix: &str,
        lifecycle: &Lifecycle,
    ) -> Self {
        let prefix = format!("{prefix}bus:");
        let local = Local::default();
        lifecycle.spawn(listen(client, prefix.clone(), local.clone(), lifecycle.clone()));
        Self { local, redis: Some(Remote { connection, prefix }) }
    }

    /// Sends `payload` to every subscriber of `channel`. Best effort: a Redis failure is logged
    /// and counted, never the caller's error (the durable record is already committed).
    pub async fn publish(&self, channel: &str, payload: Value) {
        let Some(remote) = &self.redis else {
            dispatch(&self.local, channel, payload);
            return;
        };
        let mut connection = remote.connection.clone();
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(format!("{}{channel}", remote.prefix))
            .arg(payload.to_string())
            .query_async(&mut connection)
            .await;
        if let Err(err) = sent {
            metrics::counter!("pyairtable_bus_errors_total").increment(1);
            tracing::warn!(channel, %err, "publishing on the bus");
        }
    }

    /// The messages published on `channel` from now on, until the stream is dropped.
    pub fn subscribe(&self, channel: &str) -> BoxStream<'static, Value> {
        let receiver = {
            let mut local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            local.entry(channel.to_owned()).or_insert_with(|| broadcast::channel(CAPACITY).0).subscribe()
        };
        futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(message) => return Some((Value::clone(&message), receiver)),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        metrics::counter!("pyairtable_bus_skipped_total").increment(skipped);
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    /// Subscribers of `channel` in this process.
    pub fn subscribers(&self, channel: &str) -> usize {
        let local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        local.get(channel).map_or(0, broadcast::Sender::receiver_count)
    }
}

/// Hands `payload` to this process's subscribers of `channel`; forgets a channel nobody listens to.
fn dispatch(local: &Local, channel: &str, payload: Value) {
    let mut local = local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(sender) = local.get(channel) else { return };
    if sender.send(Arc::new(payload)).is_err() {
        local.remove(channel);
    }
}

/// The process's one pattern subscription: reconnects with a growing pause until the stop.
async fn listen(client: redis::Client, prefix: String, local: Local, lifecycle: Lifecycle) {
    let mut pause = Duration::from_millis(100);
    while !lifecycle.is_stopping() {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(format!("{prefix}*")).await {
                Ok(()) => {
                    pause = Duration::from_millis(100);
                    let mut messages = pubsub.into_on_message();
                    loop {
                        tokio::select! {
                            () = lifecycle.stopping() => return,
                            message = messages.next() => match message {
                                Some(message) => deliver(&local, &prefix, &message),
                                None => break,
                            },
                        }
                    }
                    tracing::warn!("the bus lost its Redis subscription; reconnecting");
                }
                Err(err) => tracing::warn!(%err, "subscribing to the bus in Redis"),
            },
            Err(err) => tracing::warn!(%err, "connecting the bus to Redis"),
        }
        metrics::counter!("pyairtable_bus_errors_total").increment(1);
        tokio::select! {
            () = lifecycle.stopping() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

fn deliver(local: &Local, prefix: &str, message: &redis::Msg) {
    let Some(channel) = message.get_channel_name().strip_prefix(prefix) else { return };
    let payload = message.get_payload::<String>().ok().and_then(|text| serde_json::from_str(&text).ok());
    match payload {
        Some(payload) => dispatch(local, channel, payload),
        None => tracing::warn!(channel, "a bus message that is not JSON"),
    }
}
