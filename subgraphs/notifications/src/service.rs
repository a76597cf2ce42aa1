//! The feed as its owner sees it: every function takes the caller and runs in a transaction
//! scoped to them (row-level security shows a user only their own items and preferences).

use std::sync::Arc;

use pyairtable_kit::connection::{Page, PageArgs};
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::{Error, Result};
use sqlx::PgPool;
use uuid::Uuid;

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
        store::set_preference(&mut tx, me, workflow_key.unwrap_or("*"), channel.as_str(), enabled).await?;
        tx.commit().await?;
        Ok(())
    }
}
