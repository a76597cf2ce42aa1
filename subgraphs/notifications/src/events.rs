//! The consumer: keeps this subgraph's projections (accounts, organizations, members) and turns
//! events into notifications, in the transaction that moves its cursor. It only records: feed
//! items and queued deliveries (unique per event, recipient and channel, so an event applied
//! twice notifies once); the worker delivers them after the commit.

use std::future::Future;
use std::pin::Pin;

use pyairtable_kit::Result;
use pyairtable_kit::events::{Consumer, Event};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::deliveries::{self, NewDelivery};
use crate::preferences;
use crate::store::{self, Recipient};
use crate::workflows::{ChannelKind, Workflow, workflow};

const TOPICS: &[&str] = &[
    "auth.password_reset_requested",
    "user.registered",
    "organization.created",
    "organization.renamed",
    "member.invited",
    "member.joined",
    "role.changed",
    "member.removed",
    "webhook.endpoint_disabled",
];

pub fn consumer() -> Consumer {
    Consumer { name: "notifications", topics: TOPICS, handler: apply }
}

/// The fields of the events this consumer reads (each topic uses some of them).
#[derive(Deserialize)]
struct Payload {
    user_id: Option<Uuid>,
    email: Option<String>,
    display_name: Option<String>,
    locale: Option<String>,
    organization_id: Option<Uuid>,
    owner_id: Option<Uuid>,
    name: Option<String>,
    role: Option<String>,
    previous_role: Option<String>,
    resource_type: Option<String>,
    organization_name: Option<String>,
    accept_url: Option<String>,
    expires_days: Option<i64>,
    url: Option<String>,
    reason: Option<String>,
    reset_url: Option<String>,
    expires_minutes: Option<i64>,
}

fn apply<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        let payload: Payload = event.parse()?;
        project(db, &event.topic, &payload).await?;
        if event.id > horizon(db).await? {
            notify(db, event, &payload).await?;
        }
        Ok(())
    })
}

/// Events up to this id happened before notifications existed: they update the projections only
/// (their emails were sent by their publishers then).
async fn horizon(db: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("select event_id from notifications.horizon")
        .fetch_optional(db)
        .await?
        .unwrap_or(0))
}

async fn project(db: &mut PgConnection, topic: &str, p: &Payload) -> Result<()> {
    match (topic, p.organization_id, p.user_id) {
        ("user.registered", _, Some(user)) => {
            let (email, name) = (p.email.as_deref().unwrap_or_default(), p.display_name.as_deref());
            let locale = p.locale.as_deref().unwrap_or(crate::templates::DEFAULT_LOCALE);
            store::upsert_recipient(db, user, email, name.unwrap_or_default(), locale).await
        }
        ("organization.created", Some(org), _) => {
            store::set_organization(db, org, p.name.as_deref().unwrap_or_default()).await?;
            match p.owner_id {
                Some(owner) => store::set_member(db, org, owner, "owner").await,
                None => Ok(()),
            }
        }
        ("organization.renamed", Some(org), _) => {
            store::set_organization(db, org, p.name.as_deref().unwrap_or_default()).await
        }
        ("member.joined" | "role.changed", Some(org), Some(user)) if organization_level(p) => {
            store::set_member(db, org, user, p.role.as_deref().unwrap_or("member")).await
        }
        ("member.removed", Some(org), Some(user)) => store::remove_member(db, org, user).await,
        _ => Ok(()),
    }
}

/// Role changes on workspaces carry `resource_type: "workspace"`; organization roles none or
/// `"organization"`.
fn organization_level(p: &Payload) -> bool {
    p.resource_type.as_deref().is_none_or(|t| t == "organization")
}

/// Who gets the notification: an account, an address, or both.
struct Target {
    user: Option<Recipient>,
    email: Option<String>,
}

async fn notify(db: &mut PgConnection, event: &Event, p: &Payload) -> Result<()> {
    let Some(flow) = workflow(&event.topic) else { return Ok(()) };
    let organization_name = match (&p.organization_name, p.organization_id) {
        (Some(name), _) => name.clone(),
        (None, Some(org)) => store::organization_name(db, org).await?,
        (None, None) => String::new(),
    };
    let data = json!({
        "organization_name": organization_name, "role": p.role, "previous_role": p.previous_role,
        "url": p.url, "reason": p.reason, "accept_url": p.accept_url, "expires_days": p.expires_days,
        "reset_url": p.reset_url, "expires_minutes": p.expires_minutes,
    });
    for target in targets(db, &event.topic, p).await? {
        deliver(db, event.id, flow, &target, &data).await?;
    }
    Ok(())
}

async fn targets(db: &mut PgConnection, topic: &str, p: &Payload) -> Result<Vec<Target>> {
    let member = |user: Option<Recipient>| Target { email: None, user };
    Ok(match topic {
        "member.invited" => {
            let Some(address) = p.email.clone() else { return Ok(Vec::new()) };
            let user = store::recipient_by_email(db, &address).await?;
            // Without a link (events from before the link was published) there is no email.
            vec![Target { user, email: p.accept_url.as_ref().map(|_| address) }]
        }
        "auth.password_reset_requested" => match p.user_id {
            Some(user) => vec![Target { user: store::recipient(db, user).await?, email: p.email.clone() }],
            None => Vec::new(),
        },
        "member.joined" | "member.removed" => match p.user_id {
            Some(user) => vec![member(store::recipient(db, user).await?)],
            None => Vec::new(),
        },
        "role.changed" if organization_level(p) => match p.user_id {
            Some(user) => vec![member(store::recipient(db, user).await?)],
            None => Vec::new(),
        },
        "webhook.endpoint_disabled" => match p.organization_id {
            Some(org) => store::admins(db, org)
                .await?
                .into_iter()
                .map(|admin| Target { email: Some(admin.email.clone()), user: Some(admin) })
                .collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    })
}

/// Records the item and queues the deliveries of one recipient, as their preferences allow.
async fn deliver(
    db: &mut PgConnection,
    event: i64,
    flow: &Workflow,
    target: &Target,
    data: &Value,
) -> Result<()> {
    let locale = target.user.as_ref().map_or(crate::templates::DEFAULT_LOCALE, |u| u.locale.as_str());
    for channel in flow.channels {
        let wanted = match &target.user {
            // A critical workflow is on whatever the choices say (`preferences::resolve`): they
            // are not read for it.
            Some(user) if !flow.critical => {
                let choices = store::choices(db, user.user_id, flow.key, channel.as_str()).await?;
                preferences::resolve(false, choices).0
            }
            // Critical, or an address without an account (no preferences).
            _ => true,
        };
        if !wanted {
            continue;
        }
        let (recipient, item_id) = match (channel, &target.user, &target.email) {
            (ChannelKind::InApp, Some(user), _) => {
                let Some(item) = store::insert_item(db, event, user.user_id, flow.key, locale, data).await?
                else {
                    continue;
                };
                (user.user_id.to_string(), Some(item))
            }
            (ChannelKind::Email, _, Some(address)) => (address.clone(), None),
            _ => continue,
        };
        let new = NewDelivery {
            event_id: event,
            workflow: flow.key,
            channel: channel.as_str(),
            recipient: &recipient,
            user_id: target.user.as_ref().map(|u| u.user_id),
            item_id,
            locale,
            data,
        };
        deliveries::queue(db, &new).await?;
    }
    Ok(())
}
