//! Domain rules of the webhooks subgraph. Who may do what is the permissions subgraph's policy
//! (`manage_webhooks`: owners and admins; `read_webhooks`: members and above), asked through the
//! kit's authorizer; which rows a transaction sees, row-level security.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pyairtable_kit::authz::{Authorizer, Check, Decision, Resource};
use pyairtable_kit::connection::PageArgs;
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::{Error, Result};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::delivery::Sender;
use crate::input::{self, CreateInput, UpdateInput};
use crate::store::deliveries::{self, AttemptRow, MessageRow};
use crate::store::{self, EndpointRow};
use crate::{catalog, fanout, worker};

/// Change endpoints, see their secrets and headers, test-send, replay.
pub const MANAGE: &str = "manage_webhooks";
/// See endpoints and their delivery logs.
pub const READ: &str = "read_webhooks";
/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

type Tx = Transaction<'static, Postgres>;

#[derive(Clone)]
pub struct Webhooks {
    db: PgPool,
    authorizer: Arc<dyn Authorizer>,
    sender: Sender,
    /// Wakes this process's idle delivery loops (after a replay).
    wake: Arc<Notify>,
}

impl Webhooks {
    pub fn new(db: PgPool, authorizer: Arc<dyn Authorizer>, sender: Sender, wake: Arc<Notify>) -> Self {
        Self { db, authorizer, sender, wake }
    }

    pub async fn require(&self, caller: Uuid, action: &str, organization: Uuid) -> Result<()> {
        let check = Check::new(action, Resource::Organization { id: organization });
        let decision = self.authorizer.decide(caller, std::slice::from_ref(&check)).await?;
        decision.first().copied().unwrap_or(Decision::Hide).into_result(&check)
    }

    /// A transaction over the caller's organizations (RLS hides every other tenant's rows).
    async fn mine(&self, caller: Uuid) -> Result<Tx> {
        let organizations = self.authorizer.organizations_of(caller).await?;
        scoped(&self.db, &Scope::tenants(organizations)).await
    }

    /// An endpoint of the caller's organizations on which the caller may do `action`, and the
    /// transaction; NOT_FOUND when it is not there to see.
    async fn endpoint_for(
        &self,
        caller: Uuid,
        id: Uuid,
        action: &str,
        lock: bool,
    ) -> Result<(EndpointRow, Tx)> {
        let mut tx = self.mine(caller).await?;
        let row = store::by_id(&mut tx, id, lock)
            .await?
            .ok_or_else(|| Error::NotFound("no such webhook endpoint".into()))?;
        self.require(caller, action, row.tenant_id).await?;
        Ok((row, tx))
    }

    /// A message of the caller's organizations, its endpoint and the transaction.
    async fn message_for(
        &self,
        caller: Uuid,
        id: Uuid,
        action: &str,
    ) -> Result<(MessageRow, EndpointRow, Tx)> {
        let mut tx = self.mine(caller).await?;
        let message = deliveries::message(&mut tx, id)
            .await?
            .ok_or_else(|| Error::NotFound("no such webhook message".into()))?;
        let endpoint = store::by_id(&mut tx, message.endpoint_id, false)
            .await?
            .ok_or_else(|| Error::NotFound("no such webhook message".into()))?;
        self.require(caller, action, message.tenant_id).await?;
        Ok((message, endpoint, tx))
    }

    #[tracing::instrument(skip_all, fields(organization_id = %organization))]
    pub async fn create(&self, caller: Uuid, organization: Uuid, input: CreateInput) -> Result<EndpointRow> {
        let fields = input.parse(self.sender.allow_loopback())?;
        self.require(caller, MANAGE, organization).await?;
        let mut tx = scoped(&self.db, &Scope::tenant(organization)).await?;
        let row = store::insert(&mut tx, organization, &fields, &input::secret(None)?, caller).await?;
        tx.commit().await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(endpoint_id = %id))]
    pub async fn update(&self, caller: Uuid, id: Uuid, input: UpdateInput) -> Result<EndpointRow> {
        let (row, mut tx) = self.endpoint_for(caller, id, MANAGE, true).await?;
        let fields = input.apply(&row, self.sender.allow_loopback())?;
        let row = store::update(&mut tx, id, &fields).await?;
        if !row.enabled {
            deliveries::dequeue_endpoint(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(endpoint_id = %id))]
    pub async fn delete(&self, caller: Uuid, id: Uuid) -> Result<()> {
        let (_, mut tx) = self.endpoint_for(caller, id, MANAGE, true).await?;
        store::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new secret (given, or generated); the current one keeps signing for 24 hours.
    #[tracing::instrument(skip_all, fields(endpoint_id = %id))]
    pub async fn rotate(&self, caller: Uuid, id: Uuid, secret: Option<String>) -> Result<EndpointRow> {
        let secret = input::secret(secret)?;
        let (_, mut tx) = self.endpoint_for(caller, id, MANAGE, true).await?;
        let row = store::rotate(&mut tx, id, &secret, Utc::now() + ROTATION_OVERLAP).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// An endpoint the caller may read.
    pub async fn endpoint(&self, caller: Uuid, id: Uuid) -> Result<EndpointRow> {
        let (row, tx) = self.endpoint_for(caller, id, READ, false).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn endpoints(
        &self,
        caller: Uuid,
        organization: Uuid,
        args: &PageArgs,
    ) -> Result<(Vec<EndpointRow>, i64)> {
        self.require(caller, READ, organization).await?;
        let mut tx = scoped(&self.db, &Scope::tenant(organization)).await?;
        let page = store::page(&mut tx, organization, args).await?;
        tx.commit().await?;
        Ok(page)
    }

    /// The endpoint's messages; the caller may read the endpoint (checked by the parent field).
    pub async fn messages(&self, endpoint: &EndpointRow, args: &PageArgs) -> Result<(Vec<MessageRow>, i64)> {
        let mut tx = scoped(&self.db, &Scope::tenant(endpoint.tenant_id)).await?;
        let page = deliveries::messages_page(&mut tx, endpoint.id, args).await?;
        tx.commit().await?;
        Ok(page)
    }

    pub async fn attempts(&self, message: &MessageRow, args: &PageArgs) -> Result<(Vec<AttemptRow>, i64)> {
        let mut tx = scoped(&self.db, &Scope::tenant(message.tenant_id)).await?;
        let page = deliveries::attempts_page(&mut tx, message.id, args).await?;
        tx.commit().await?;
        Ok(page)
    }

    pub async fn message(&self, caller: Uuid, id: Uuid) -> Result<MessageRow> {
        let (message, _, tx) = self.message_for(caller, id, READ).await?;
        tx.commit().await?;
        Ok(message)
    }

    /// Sends a `webhook.test` message now and returns the attempt; retries, if it failed, follow
    /// the schedule like any message's.
    #[tracing::instrument(skip_all, fields(endpoint_id = %id))]
    pub async fn test_send(&self, caller: Uuid, id: Uuid) -> Result<AttemptRow> {
        let (endpoint, mut tx) = self.endpoint_for(caller, id, MANAGE, false).await?;
        let data =
            serde_json::json!({ "organization_id": endpoint.tenant_id, "endpoint_id": id, "test": true });
        let body = fanout::body(catalog::TEST, &data);
        let message = deliveries::insert_message(&mut tx, endpoint.tenant_id, id, None, catalog::TEST, &body)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("a test message without an event collided")))?;
        let claim = deliveries::lease(&mut tx, message.id, worker::LEASE).await?;
        tx.commit().await?;
        // Deferred by the rate limit: the message stays queued and goes out within a second.
        worker::deliver(&self.db, &self.sender, &claim)
            .await?
            .ok_or(Error::RateLimited { retry_after_secs: 1 })
    }

    /// Queues one message for a new attempt now, with a fresh schedule.
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn replay(&self, caller: Uuid, id: Uuid) -> Result<MessageRow> {
        let (message, endpoint, mut tx) = self.message_for(caller, id, MANAGE).await?;
        require_enabled(&endpoint)?;
        deliveries::enqueue(&mut tx, message.id, message.tenant_id, 0).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(message)
    }

    /// Queues every message of the endpoint since `since` again; returns how many.
    #[tracing::instrument(skip_all, fields(endpoint_id = %id))]
    pub async fn replay_since(&self, caller: Uuid, id: Uuid, since: DateTime<Utc>) -> Result<i64> {
        let (endpoint, mut tx) = self.endpoint_for(caller, id, MANAGE, false).await?;
        require_enabled(&endpoint)?;
        let count = deliveries::replay_since(&mut tx, id, since).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(count)
    }
}

fn require_enabled(endpoint: &EndpointRow) -> Result<()> {
    if endpoint.enabled {
        return Ok(());
    }
    Err(Error::Refused {
        code: crate::ENDPOINT_DISABLED,
        message: "the endpoint is disabled; enable it first (updateWebhookEndpoint)".into(),
    })
}
