//! GraphQL of the notifications subgraph: the caller's feed, engagement, preferences, and the
//! live `notificationReceived` subscription.

use async_graphql::{Context, ID, Object, Result, Schema, SchemaBuilder, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use pyairtable_kit::bus::Bus;
use pyairtable_kit::connection::{PageArgs, PageConnection, connection};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;
use std::sync::Arc;

use crate::preferences::Preference;
use crate::service::{Feed, channel};
use crate::store::{Engagement, ItemRow};
use crate::workflows::ChannelKind;

pub type NotificationsSchema = Schema<Query, Mutation, SubscriptionRoot>;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, SubscriptionRoot> {
    Schema::build(Query, Mutation, SubscriptionRoot).enable_federation().enable_subscription_in_federation()
}

/// A notification in the signed-in user's feed. Engagement (seen, read, archived) is the user's;
/// how it was delivered is in the delivery log.
pub struct Notification(pub ItemRow);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The workflow that made it (the event type: `member.invited`, ...).
    async fn workflow(&self) -> &str {
        &self.0.workflow
    }
    /// The title, in the recipient's language where a translation exists.
    async fn title(&self, ctx: &Context<'_>) -> Result<String> {
        render(ctx, &self.0, "title.txt")
    }
    async fn body(&self, ctx: &Context<'_>) -> Result<String> {
        render(ctx, &self.0, "body.txt")
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.seen_at
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }
}

fn render(ctx: &Context<'_>, row: &ItemRow, part: &str) -> Result<String> {
    let feed = ctx.data::<Feed>()?;
    let mut data = row.data.clone();
    if let Some(map) = data.as_object_mut() {
        map.entry("unsubscribe_url").or_insert(serde_json::Value::Null);
    }
    match feed.templates.render(&row.workflow, &row.locale, part, &data) {
        Some(Ok(text)) => Ok(text),
        None => Ok(String::new()),
        Some(Err(err)) => Err(pyairtable_kit::Error::internal(std::io::Error::other(err)).into()),
    }
}

/// Which notifications to list.
#[derive(async_graphql::InputObject, Default)]
pub struct NotificationFilter {
    /// true: unread only; false: read only; unset: both.
    unread: Option<bool>,
    /// true: the archived ones only (they are left out otherwise).
    #[graphql(default = false)]
    archived: bool,
}

pub struct Query;

#[Object]
impl Query {
    /// The signed-in user's notifications, newest first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<NotificationFilter>,
    ) -> Result<PageConnection<Notification>> {
        let me = caller(ctx)?.require_user()?;
        let args = PageArgs::parse(first, after, None, None)?;
        let filter = filter.unwrap_or_default();
        let (page, total) = ctx.data::<Feed>()?.page(me, filter.unread, filter.archived, &args).await?;
        Ok(connection(page, total, |r: &ItemRow| r.id, Notification))
    }

    /// How many of the signed-in user's notifications are unread (archived ones not counted).
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let me = caller(ctx)?.require_user()?;
        Ok(ctx.data::<Feed>()?.unread_count(me).await?)
    }

    /// The signed-in user's notification settings: every workflow on each of its channels
    /// (critical ones always enabled), then each channel for every workflow (the global
    /// choices), with the effective `enabled` and what decided it.
    async fn notification_preferences(&self, ctx: &Context<'_>) -> Result<Vec<Preference>> {
        let me = caller(ctx)?.require_user()?;
        Ok(ctx.data::<Feed>()?.preferences(me).await?)
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Marks one of your notifications seen, read (and so seen) or archived.
    async fn mark_notification(&self, ctx: &Context<'_>, id: ID, status: Engagement) -> Result<Notification> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("id", &id)?;
        Ok(Notification(ctx.data::<Feed>()?.mark(me, id, status).await?))
    }

    /// Marks all your notifications; returns how many.
    async fn mark_all_notifications(&self, ctx: &Context<'_>, status: Engagement) -> Result<i32> {
        let me = caller(ctx)?.require_user()?;
        let count = ctx.data::<Feed>()?.mark_all(me, status).await?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// Sets the language of your notifications (`en`, `fr`, `pt-BR`, ...); returns it normalised.
    async fn set_notification_locale(&self, ctx: &Context<'_>, locale: String) -> Result<String> {
        let me = caller(ctx)?.require_user()?;
        Ok(ctx.data::<Feed>()?.set_locale(me, &locale).await?)
    }

    /// Turns a channel on or off for one workflow, or for all (no `workflow`: the global
    /// opt-out). Critical notifications (password reset, security alerts) ignore opt-outs.
    async fn set_notification_preference(
        &self,
        ctx: &Context<'_>,
        workflow: Option<String>,
        channel: ChannelKind,
        enabled: bool,
    ) -> Result<bool> {
        let me = caller(ctx)?.require_user()?;
        ctx.data::<Feed>()?.set_preference(me, workflow.as_deref(), channel, enabled).await?;
        Ok(enabled)
    }
}

pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Each new notification of the signed-in user, live, as it is made (on every instance:
    /// through Redis pub/sub when configured). Missed ones are in `notifications`.
    async fn notification_received(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Notification>> {
        let me = caller(ctx)?.require_user()?;
        let bus = ctx.data::<Arc<Bus>>()?;
        let stream = bus.subscribe(&channel(me)).filter_map(move |message| {
            let row = serde_json::from_value::<ItemRow>(message).ok().filter(|row| row.user_id == me);
            futures::future::ready(row.map(Notification))
        });
        Ok(stream)
    }
}
