//! The feed as its owner sees it: every function takes the caller and runs in a transaction
//! scoped to them (row-level security shows a user only their own items and preferences).

use std::sync::Arc;

use pyairtable_kit::connection::{Page, PageArgs};
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::{Error, Result};
use sqlx::PgPool;
use uuid::Uuid;

use crate::preferences::{self, ALL_WORKFLOWS, Preference};
use crate::store::{self, Engagement, ItemRow};
use crate::templates::Templates;
use crate::workflows::{ChannelKind, workflow};

/// The bus channel of one user's new notifications.
pub fn channel(user: Uuid) -> String {
    format!("notifications:{user}")
}

#[derive(Clone)]
pub struct Feed {
    db: PgPool,
    pub templates: Arc<Templates>,
}

impl Feed {
    pub fn new(db: PgPool, templates: Arc<Templates>) -> Self {
        Self { db, templates }
    }

    #[tracing::instrument(skip_all)]
    pub async fn page(
        &self,
        me: Uuid,
        unread: Option<bool>,
        archived: bool,
        args: &PageArgs,
    ) -> Result<(Page<ItemRow>, i64)> {
        let mut tx = scoped(&self.db, &Scope::user(me)).await?;
        let page = store::feed(&mut tx, me, unread, archived, args).await?;
        let total = store::count(&mut tx, me, unread, archived).await?;
        tx.commit().await?;
        Ok((page, total))
    }

    pub async fn unread_count(&self, me: Uuid) -> Result<i64> {
        let mut tx = scoped(&self.db, &Scope::user(me)).await?;
        let count = store::count(&mut tx, me, Some(true), false).await?;
        tx.commit().await?;
        Ok(count)
    }

    /// Marks one of the caller's items (another user's looks like none at all: NOT_FOUND).
    #[tracing::instrument(skip_all, fields(notification_id = %id))]
    pub async fn mark(&self, me: Uuid, id: Uuid, how: Engagement) -> Result<ItemRow> {
        let mut tx = scoped(&self.db, &Scope::user(me)).await?;
        let row = store::mark(&mut tx, me, Some(id), how).await?.pop();
        tx.commit().await?;
        row.ok_or_else(|| Error::NotFound("no such notification".into()))
    }

    /// Marks all of the caller's items; returns how many there are.
    pub async fn mark_all(&self, me: Uuid, how: Engagement) -> Result<usize> {
        let mut tx = scoped(&self.db, &Scope::user(me)).await?;
        let rows = store::mark(&mut tx, me, None, how).await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Sets the language of the caller's notifications (`en`, `fr`, `pt-BR`, ...); templates
    /// without a translation fall back to the language, then English.
    pub async fn set_locale(&self, me: Uuid, locale: &str) -> Result<String> {
        let locale = parse_locale(locale)?;
        let mut tx = scoped(&self.db, &Scope::user(me)).await?;
        let known = store::set_locale(&mut tx, me, &locale).await?;
        tx.commit().await?;
        if !known {
            return Err(Error::NotFound("no account is known for you yet; try again in a moment".into()));
        }
        Ok(locale)
    }

    /// Sets the caller's choice for a workflow on a channel (`workflow: None`: every workflow).
    pub async fn set_preference(
        &self,
        me: Uuid,
        workflow_key: Option<&str>,
        channel: ChannelKind,
        enabled: bool,
    ) -> Result<()> {
        if let Some(key) = workflow_key
            && workflow(key).is_none()
        {
            return Err(Error::bad_input("workflow", format!("{key:?} is not a notification workflow")));
        }
        let mut tx = scoped(&self.db, &Scope::user(me)).await?;
        store::set_preference(&mut tx, me, workflow_key.unwrap_or(ALL_WORKFLOWS), channel.as_str(), enabled)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The caller's settings: every workflow on each of its channels and every channel for all
    /// workflows, each effective value with what decided it. Only their own rows are read.
    #[tracing::instrument(skip_all)]
    pub async fn preferences(&self, me: Uuid) -> Result<Vec<Preference>> {
        let mut tx = scoped(&self.db, &Scope::user(me)).await?;
        let choices = store::preferences(&mut tx, me).await?;
        tx.commit().await?;
        Ok(preferences::table(&choices))
    }
}

/// A BCP 47 language tag of the simple kind: 2–3 letters, optionally `-` and a 2-letter region.
fn parse_locale(raw: &str) -> Result<String> {
    let (language, region) =
        raw.trim().split_once(['-', '_']).map_or((raw.trim(), None), |(l, r)| (l, Some(r)));
    let language_ok = (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_alphabetic());
    let region_ok = region.is_none_or(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()));
    if !language_ok || !region_ok {
        return Err(Error::bad_input("locale", "locale must look like en, fr or pt-BR"));
    }
    Ok(match region {
        Some(region) => format!("{}-{}", language.to_ascii_lowercase(), region.to_ascii_uppercase()),
        None => language.to_ascii_lowercase(),
    })
}
