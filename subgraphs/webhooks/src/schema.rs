//! GraphQL of the webhooks subgraph: endpoints, their messages and the attempts of each (Relay
//! connections), the event-type catalog, and the mutations. Thin: the service decides.

use async_graphql::{Context, Enum, ID, Json, Object, Result, Schema, SchemaBuilder, SimpleObject};
use chrono::{DateTime, Utc};
use pyairtable_kit::authz;
use pyairtable_kit::authz::Resource;
use pyairtable_kit::connection::{Page, PageArgs, PageConnection, connection};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;
use uuid::Uuid;

use crate::catalog::EVENT_TYPES;
use crate::input::{CreateInput, UpdateInput};
use crate::service::{MANAGE, Webhooks};
use crate::store::EndpointRow;
use crate::store::deliveries::{AttemptRow, MessageRow};
use crate::subscription::Subscription;

pub type WebhooksSchema = Schema<Query, Mutation, Subscription>;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription).enable_federation().enable_subscription_in_federation()
}

pub(crate) fn webhooks<'a>(ctx: &Context<'a>) -> Result<&'a Webhooks> {
    ctx.data::<Webhooks>()
}

/// A page of rows as a connection: `args` cut it, `total` counts them all.
fn page<T, N: async_graphql::OutputType>(
    args: &PageArgs,
    (rows, total): (Vec<T>, i64),
    id: impl Fn(&T) -> Uuid,
    node: impl Fn(T) -> N,
) -> PageConnection<N> {
    let cut: Page<T> = args.page(rows);
    connection(cut, total, id, node)
}

/// A URL this organization's events are delivered to, signed with the endpoint's secret.
pub struct WebhookEndpoint(EndpointRow);

#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn organization(&self) -> Organization {
        Organization { id: self.0.tenant_id }
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The types delivered; empty: every type of the catalog.
    async fn event_types(&self) -> &[String] {
        &self.0.event_types
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Why the platform disabled it (410 Gone, or sustained failure).
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// Attempts per second at most; null: no limit.
    async fn rate_limit(&self) -> Option<i32> {
        self.0.rate_limit
    }
    /// Custom request headers (they may hold credentials: owners and admins only).
    async fn headers(&self, ctx: &Context<'_>) -> Result<Vec<WebhookHeader>> {
        authz::require(ctx, MANAGE, Resource::Organization { id: self.0.tenant_id }).await?;
        Ok(self.0.headers.iter().map(|(n, v)| WebhookHeader { name: n.clone(), value: v.clone() }).collect())
    }
    /// The signing secret, `whsec_` + base64 (owners and admins only).
    async fn secret(&self, ctx: &Context<'_>) -> Result<&str> {
        authz::require(ctx, MANAGE, Resource::Organization { id: self.0.tenant_id }).await?;
        Ok(&self.0.secret)
    }
    /// Until when the secret replaced by the last rotation still signs too.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_expires_at.filter(|until| *until > Utc::now())
    }
    /// Since when every attempt failed (null after a success).
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The messages made for this endpoint, oldest first.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageConnection<WebhookMessage>> {
        let args = PageArgs::parse(first, after, last, before)?;
        let rows = webhooks(ctx)?.messages(&self.0, &args).await?;
        Ok(page(&args, rows, |m: &MessageRow| m.id, WebhookMessage))
    }
}

#[derive(SimpleObject)]
pub struct WebhookHeader {
    name: String,
    value: String,
}

#[derive(SimpleObject)]
pub struct WebhookEventType {
    name: &'static str,
    description: &'static str,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebhookMessageStatus {
    /// Attempts to come.
    Pending,
    /// A 2xx came back.
    Delivered,
    /// The retry schedule ran out, or the endpoint is gone.
    Failed,
}

/// One event for one endpoint: the body every attempt sends.
pub struct WebhookMessage(pub(crate) MessageRow);

#[Object]
impl WebhookMessage {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The `webhook-id` header of its attempts (receivers deduplicate on it).
    async fn webhook_id(&self) -> String {
        self.0.webhook_id()
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The body sent: `{type, timestamp, data}`.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.body).unwrap_or(serde_json::Value::Null))
    }
    async fn status(&self) -> WebhookMessageStatus {
        match self.0.status.as_str() {
            "delivered" => WebhookMessageStatus::Delivered,
            "failed" => WebhookMessageStatus::Failed,
            _ => WebhookMessageStatus::Pending,
        }
    }
    async fn attempt_count(&self) -> i32 {
        self.0.attempts
    }
    async fn endpoint_id(&self) -> ID {
        ID(self.0.endpoint_id.to_string())
    }
    /// The id of the domain event it came from (null for test messages).
    async fn event_id(&self) -> Option<String> {
        self.0.event_id.map(|id| id.to_string())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Its attempts, oldest first.
    async fn attempts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageConnection<WebhookAttempt>> {
        let args = PageArgs::parse(first, after, last, before)?;
        let rows = webhooks(ctx)?.attempts(&self.0, &args).await?;
        Ok(page(&args, rows, |a: &AttemptRow| a.id, WebhookAttempt))
    }
}

/// One delivery attempt, as logged.
pub struct WebhookAttempt(pub(crate) AttemptRow);

#[Object]
impl WebhookAttempt {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn message_id(&self) -> ID {
        ID(self.0.message_id.to_string())
    }
    async fn endpoint_id(&self) -> ID {
        ID(self.0.endpoint_id.to_string())
    }
    /// A 2xx came back.
    async fn succeeded(&self) -> bool {
        self.0.status == "succeeded"
    }
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status
    }
    async fn latency_ms(&self) -> i32 {
        self.0.latency_ms
    }
    /// The first 4 KiB of the response body.
    async fn response_body(&self) -> &str {
        &self.0.response_body
    }
    /// Why no response counted: a refused address, a timeout, a connection error, a redirect.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The tenants subgraph's `Organization`.
pub struct Organization {
    id: Uuid,
}

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
}

pub struct Query;

#[Object]
impl Query {
    /// Every event type an endpoint may receive.
    async fn webhook_event_types(&self) -> Vec<WebhookEventType> {
        EVENT_TYPES.iter().map(|(name, description)| WebhookEventType { name, description }).collect()
    }

    /// An organization's endpoints, oldest first (members and above).
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageConnection<WebhookEndpoint>> {
        let me = caller(ctx)?.require_user()?;
        let organization = parse_id("organizationId", &organization_id)?;
        let args = PageArgs::parse(first, after, last, before)?;
        let rows = webhooks(ctx)?.endpoints(me, organization, &args).await?;
        Ok(page(&args, rows, |e: &EndpointRow| e.id, WebhookEndpoint))
    }

    async fn webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookEndpoint> {
        let me = caller(ctx)?.require_user()?;
        Ok(WebhookEndpoint(webhooks(ctx)?.endpoint(me, parse_id("id", &id)?).await?))
    }

    async fn webhook_message(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookMessage> {
        let me = caller(ctx)?.require_user()?;
        Ok(WebhookMessage(webhooks(ctx)?.message(me, parse_id("id", &id)?).await?))
    }

    #[graphql(entity)]
    async fn find_organization_by_id(&self, id: ID) -> Option<Organization> {
        parse_id("id", &id).ok().map(|id| Organization { id })
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// A new endpoint with a new secret (owners and admins).
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        input: CreateInput,
    ) -> Result<WebhookEndpoint> {
        let me = caller(ctx)?.require_user()?;
        let organization = parse_id("organizationId", &organization_id)?;
        Ok(WebhookEndpoint(webhooks(ctx)?.create(me, organization, input).await?))
    }

    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateInput,
    ) -> Result<WebhookEndpoint> {
        let me = caller(ctx)?.require_user()?;
        Ok(WebhookEndpoint(webhooks(ctx)?.update(me, parse_id("id", &id)?, input).await?))
    }

    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let me = caller(ctx)?.require_user()?;
        webhooks(ctx)?.delete(me, parse_id("id", &id)?).await?;
        Ok(true)
    }

    /// A new secret (`secret`, or generated); the previous one keeps signing for 24 hours.
    async fn rotate_webhook_endpoint_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        secret: Option<String>,
    ) -> Result<WebhookEndpoint> {
        let me = caller(ctx)?.require_user()?;
        Ok(WebhookEndpoint(webhooks(ctx)?.rotate(me, parse_id("id", &id)?, secret).await?))
    }

    /// Sends a `webhook.test` message to the endpoint now; returns the attempt.
    async fn send_test_webhook(&self, ctx: &Context<'_>, endpoint_id: ID) -> Result<WebhookAttempt> {
        let me = caller(ctx)?.require_user()?;
        Ok(WebhookAttempt(webhooks(ctx)?.test_send(me, parse_id("endpointId", &endpoint_id)?).await?))
    }

    /// Attempts one message again now, with a fresh retry schedule.
    async fn replay_webhook_message(&self, ctx: &Context<'_>, message_id: ID) -> Result<WebhookMessage> {
        let me = caller(ctx)?.require_user()?;
        Ok(WebhookMessage(webhooks(ctx)?.replay(me, parse_id("messageId", &message_id)?).await?))
    }

    /// Attempts every message of the endpoint made since `since` again; returns how many.
    async fn replay_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        since: DateTime<Utc>,
    ) -> Result<i32> {
        let me = caller(ctx)?.require_user()?;
        let count = webhooks(ctx)?.replay_since(me, parse_id("endpointId", &endpoint_id)?, since).await?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}
