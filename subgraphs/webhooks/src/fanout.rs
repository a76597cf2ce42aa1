//! From domain events to messages: a kit event consumer stores one message per event and
//! enabled endpoint of the event's tenant that wants its type, in the transaction that moves
//! its cursor (and `(event, endpoint)` is unique), so each event makes its messages once.

use std::future::Future;
use std::pin::Pin;

use chrono::Utc;
use pyairtable_kit::Result;
use pyairtable_kit::db::Scope;
use pyairtable_kit::events::{Consumer, Event};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::catalog::{PURGED, TOPICS};
use crate::store::{self, deliveries};

/// The consumer that makes messages of the catalog's events; a purged organization's
/// endpoints, messages and attempts go with it (one consumer: each holds a LISTEN connection).
pub fn consumer() -> Consumer {
    Consumer { name: "webhooks.fanout", topics: TOPICS, handler: apply }
}

fn apply<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    if event.topic == PURGED { purge(db, event) } else { fan_out(db, event) }
}

/// The body every attempt of a message sends (Standard Webhooks' recommended envelope).
pub fn body(event_type: &str, data: &serde_json::Value) -> String {
    serde_json::json!({ "type": event_type, "timestamp": Utc::now().to_rfc3339(), "data": data }).to_string()
}

/// The tenant an event is about (`organization_id`), if any.
fn tenant_of(event: &Event) -> Option<Uuid> {
    event.payload.get("organization_id")?.as_str()?.parse().ok()
}

fn fan_out<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        let Some(tenant) = tenant_of(event) else {
            tracing::warn!(event_id = event.id, topic = event.topic, "event without organization_id");
            return Ok(());
        };
        Scope::tenant(tenant).apply(db).await?;
        let body = body(&event.topic, &event.payload);
        for endpoint in store::enabled(db, tenant, event.id).await?.iter().filter(|e| e.wants(&event.topic)) {
            deliveries::insert_message(db, tenant, endpoint.id, Some(event.id), &event.topic, &body).await?;
        }
        Ok(())
    })
}

#[derive(serde::Deserialize)]
struct Purged {
    organization_id: Uuid,
}

fn purge<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        let purged: Purged = event.parse()?;
        Scope::tenant(purged.organization_id).apply(db).await?;
        store::delete_tenant(db, purged.organization_id).await
    })
}
