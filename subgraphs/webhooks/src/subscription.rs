//! Live delivery status over GraphQL subscriptions, through the kit's bus: the worker publishes
//! each logged attempt on its endpoint's channel and each new message (when its first attempt
//! begins) on its organization's; a subscription checks `read_webhooks` once, when it starts.
//! Live only (the bus is at most once): the log in PostgreSQL is the record.

use std::sync::Arc;

use async_graphql::{Context, ID, Result, Subscription};
use futures::{Stream, StreamExt};
use pyairtable_kit::bus::Bus;
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::schema::{WebhookAttempt, WebhookMessage, webhooks};
use crate::service::READ;
use crate::store::deliveries::{AttemptRow, MessageRow};

/// Where the attempts of an endpoint are announced.
pub fn attempts_channel(endpoint: Uuid) -> String {
    format!("webhooks.attempts.{endpoint}")
}

/// Where the new messages of an organization are announced.
pub fn messages_channel(organization: Uuid) -> String {
    format!("webhooks.messages.{organization}")
}

/// Announces `row` on `channel` (nothing is lost if it cannot be encoded: it is in the log).
pub async fn announce(bus: &Bus, channel: &str, row: &impl serde::Serialize) {
    match serde_json::to_value(row) {
        Ok(value) => bus.publish(channel, value).await,
        Err(err) => tracing::warn!(%err, channel, "webhooks: cannot announce"),
    }
}

fn rows<T: DeserializeOwned>(bus: &Bus, channel: &str) -> impl Stream<Item = T> + use<T> {
    bus.subscribe(channel).filter_map(|value| async move { serde_json::from_value(value).ok() })
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Every attempt to this endpoint as it is logged (members and above).
    async fn webhook_delivery_updated(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
    ) -> Result<impl Stream<Item = WebhookAttempt> + use<>> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("endpointId", &endpoint_id)?;
        webhooks(ctx)?.endpoint(me, id).await?;
        let bus = ctx.data::<Arc<Bus>>()?;
        Ok(rows::<AttemptRow>(bus, &attempts_channel(id)).map(WebhookAttempt))
    }

    /// Every message made for the organization's endpoints, when its first attempt begins
    /// (members and above).
    async fn webhook_message_created(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
    ) -> Result<impl Stream<Item = WebhookMessage> + use<>> {
        let me = caller(ctx)?.require_user()?;
        let organization = parse_id("organizationId", &organization_id)?;
        webhooks(ctx)?.require(me, READ, organization).await?;
        let bus = ctx.data::<Arc<Bus>>()?;
        Ok(rows::<MessageRow>(bus, &messages_channel(organization)).map(WebhookMessage))
    }
}
