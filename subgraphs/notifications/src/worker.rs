//! The delivery worker: claims due deliveries, renders them and sends them on their channel,
//! records the outcome, and retries failures with exponential backoff until the attempt limit.
//! In-app deliveries publish the committed item on its user's bus channel.

use std::sync::Arc;
use std::time::Duration;

use pyairtable_kit::bus::Bus;
use pyairtable_kit::config::NotificationsConfig;
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::{Lifecycle, Result};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::channels::{Channel, Message};
use crate::deliveries::{self, DeliveryRow, WAKE};
use crate::service::channel;
use crate::store;
use crate::templates::Templates;
use crate::unsubscribe::Unsubscribe;

const BATCH: i64 = 20;
const POLL: Duration = Duration::from_secs(1);

/// What the worker sends with.
pub struct Worker {
    pub db: PgPool,
    pub bus: Arc<Bus>,
    pub templates: Arc<Templates>,
    pub email: Arc<dyn Channel>,
    pub sms: Option<Arc<dyn Channel>>,
    pub push: Option<Arc<dyn Channel>>,
    pub unsubscribe: Unsubscribe,
    pub config: NotificationsConfig,
}

impl Worker {
    /// Runs on `lifecycle` until it stops; a claimed batch is finished first.
    pub fn spawn(self, lifecycle: &Lifecycle) {
        let stop = lifecycle.clone();
        lifecycle.spawn(async move {
            let mut listener = listen(&self.db).await;
            while !stop.is_stopping() && !self.db.is_closed() {
                let handled = match self.run_once().await {
                    Ok(handled) => handled,
                    Err(err) => {
                        tracing::error!(%err, "delivering notifications");
                        0
                    }
                };
                if handled > 0 {
                    continue;
                }
                let wake = async {
                    match listener.as_mut() {
                        Some(listener) => drop(tokio::time::timeout(POLL, listener.recv()).await),
                        None => tokio::time::sleep(POLL).await,
                    }
                };
                tokio::select! {
                    () = stop.stopping() => {}
                    () = wake => {}
                }
            }
        });
    }

    /// Delivers the due deliveries of one batch; returns how many it tried.
    pub async fn run_once(&self) -> Result<usize> {
        let batch = deliveries::claim(&self.db, BATCH).await?;
        for delivery in &batch {
            let outcome = self.deliver(delivery).await?;
            let channel = delivery.channel.clone();
            metrics::counter!("pyairtable_notification_deliveries_total", "channel" => channel, "outcome" => outcome)
                .increment(1);
        }
        Ok(batch.len())
    }

    /// One attempt and its record; returns the status it leaves (`sent`, `retrying`, `failed`).
    async fn deliver(&self, delivery: &DeliveryRow) -> Result<String> {
        let Err(reason) = self.attempt(delivery).await else {
            deliveries::sent(&self.db, delivery.id).await?;
            return Ok("sent".to_owned());
        };
        let backoff = self.backoff(delivery.attempts);
        tracing::warn!(delivery = %delivery.id, channel = delivery.channel, %reason, "delivery failed");
        deliveries::attempt_failed(&self.db, delivery.id, &reason, backoff, self.config.max_attempts).await
    }

    /// The wait after attempt number `attempts + 1` failed: base × 2^attempts, at most a day.
    fn backoff(&self, attempts: i32) -> Duration {
        let factor = 2u32.saturating_pow(u32::try_from(attempts).unwrap_or(0).min(20));
        self.config.retry_base.saturating_mul(factor).min(Duration::from_secs(86_400))
    }

    async fn attempt(&self, delivery: &DeliveryRow) -> std::result::Result<(), String> {
        match delivery.channel.as_str() {
            "in_app" => self.publish(delivery).await.map_err(|e| e.to_string()),
            "email" => self.email.send(&self.message(delivery, "email").await?).await,
            "sms" => send_on(self.sms.as_deref(), &self.message(delivery, "sms").await?).await,
            "push" => send_on(self.push.as_deref(), &self.message(delivery, "push").await?).await,
            other => Err(format!("unknown channel {other}")),
        }
    }

    /// Publishes the committed item on its user's channel.
    async fn publish(&self, delivery: &DeliveryRow) -> Result<()> {
        let (Some(user), Some(item)) = (delivery.user_id, delivery.item_id) else { return Ok(()) };
        let mut tx = scoped(&self.db, &Scope::user(user)).await?;
        let row = store::item(&mut tx, item).await?;
        tx.commit().await?;
        if let Some(row) = row {
            let payload = serde_json::to_value(&row).map_err(pyairtable_kit::Error::internal)?;
            self.bus.publish(&channel(user), payload).await;
        }
        Ok(())
    }

    /// Renders the delivery for `channel` (email: subject, text, HTML; SMS and push: the in-app
    /// title and body), with an unsubscribe link in non-critical messages to an account.
    async fn message(
        &self,
        delivery: &DeliveryRow,
        channel: &'static str,
    ) -> std::result::Result<Message, String> {
        let mut data = delivery.data.clone();
        let link = self.unsubscribe.link(delivery).await.map_err(|e| e.to_string())?;
        if let Some(map) = data.as_object_mut() {
            map.insert("unsubscribe_url".into(), link.map_or(Value::Null, Value::String));
        }
        let part =
            |name: &str| self.templates.render(&delivery.workflow, &delivery.locale, name, &data).transpose();
        let (subject, text) = if channel == "email" {
            (part("subject.txt")?.unwrap_or_default(), part("text.txt")?.unwrap_or_default())
        } else {
            (part("title.txt")?.unwrap_or_default(), part("body.txt")?.unwrap_or_default())
        };
        let html = if channel == "email" { part("html.html")? } else { None };
        Ok(Message {
            channel,
            to: delivery.recipient.clone(),
            subject,
            text,
            html,
            workflow: delivery.workflow.clone(),
        })
    }
}

async fn send_on(channel: Option<&dyn Channel>, message: &Message) -> std::result::Result<(), String> {
    match channel {
        Some(channel) => channel.send(message).await,
        None => Err(format!("no {} provider is configured", message.channel)),
    }
}

async fn listen(db: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(db).await.ok()?;
    listener.listen(WAKE).await.ok()?;
    Some(listener)
}
