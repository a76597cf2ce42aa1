//! Which tenants a user belongs to, learnt from the tenants subgraph's events, so that a session
//! can act in one of them (the access token's `tid`) without auth reading tenants' tables.

use std::future::Future;
use std::pin::Pin;

use pyairtable_kit::Result;
use pyairtable_kit::events::{Consumer, Event};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Deserialize)]
struct Membership {
    organization_id: Uuid,
    user_id: Uuid,
}

pub fn consumer() -> Consumer {
    Consumer { name: "auth.memberships", topics: &["member.joined", "member.removed"], handler: apply }
}

fn apply<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        let member: Membership = event.parse()?;
        if event.topic == "member.joined" {
            sqlx::query(
                "insert into auth.memberships (user_id, tenant_id) values ($1, $2) on conflict do nothing",
            )
            .bind(member.user_id)
            .bind(member.organization_id)
            .execute(db)
            .await?;
        } else {
            sqlx::query("delete from auth.memberships where user_id = $1 and tenant_id = $2")
                .bind(member.user_id)
                .bind(member.organization_id)
                .execute(&mut *db)
                .await?;
            // Sessions acting in that tenant lose it at their next refresh.
            sqlx::query("update auth.sessions set tenant_id = null where user_id = $1 and tenant_id = $2")
                .bind(member.user_id)
                .bind(member.organization_id)
                .execute(db)
                .await?;
        }
        Ok(())
    })
}

/// Whether `user` belongs to `tenant` (pending events are applied first on a miss).
pub async fn is_member(db: &sqlx::PgPool, user: Uuid, tenant: Uuid) -> Result<bool> {
    let query = "select exists(select 1 from auth.memberships where user_id = $1 and tenant_id = $2)";
    if sqlx::query_scalar(query).bind(user).bind(tenant).fetch_one(db).await? {
        return Ok(true);
    }
    consumer().catch_up(db).await?;
    Ok(sqlx::query_scalar(query).bind(user).bind(tenant).fetch_one(db).await?)
}
