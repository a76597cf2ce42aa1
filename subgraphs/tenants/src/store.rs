//! SQL of the tenants subgraph; it reads and writes the `tenants` schema only.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};
use pyairtable_kit::error::unique_violation;
use pyairtable_kit::{Error, Result};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A row of `tenants.organizations`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `tenants.members`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[tracing::instrument(skip_all)]
pub async fn insert_organization(
    tx: &mut PgConnection,
    id: Uuid,
    name: &str,
    slug: &str,
) -> Result<OrganizationRow> {
    sqlx::query_as(
        "insert into tenants.organizations (id, name, slug) values ($1, $2, $3) \
         returning id, name, slug, created_at, updated_at",
    )
    .bind(id)
    .bind(name)
    .bind(slug)
    .fetch_one(tx)
    .await
    .map_err(|err| match unique_violation(&err) {
        Some("organizations_slug_key") => Error::Conflict(format!("the slug {slug:?} is taken")),
        _ => err.into(),
    })
}

#[tracing::instrument(skip_all)]
pub async fn insert_member(
    tx: &mut PgConnection,
    organization_id: Uuid,
    user_id: Uuid,
    role: &str,
) -> Result<MemberRow> {
    sqlx::query_as(
        "insert into tenants.members (organization_id, user_id, role) values ($1, $2, $3) \
         returning organization_id, user_id, role, joined_at",
    )
    .bind(organization_id)
    .bind(user_id)
    .bind(role)
    .fetch_one(tx)
    .await
    .map_err(|err| match unique_violation(&err) {
        Some("members_pkey") => Error::Conflict("this user is already a member".into()),
        _ => err.into(),
    })
}

pub async fn organization_by_slug(db: &PgPool, slug: &str) -> Result<Option<OrganizationRow>> {
    let row = sqlx::query_as(
        "select id, name, slug, created_at, updated_at from tenants.organizations where slug = $1",
    )
    .bind(slug)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

#[tracing::instrument(skip_all, fields(count = ids.len()))]
pub async fn organizations_by_ids(db: &PgPool, ids: &[Uuid]) -> Result<Vec<OrganizationRow>> {
    let rows = sqlx::query_as(
        "select id, name, slug, created_at, updated_at from tenants.organizations where id = any($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

#[tracing::instrument(skip_all, fields(count = organization_ids.len()))]
pub async fn members_of(db: &PgPool, organization_ids: &[Uuid]) -> Result<Vec<MemberRow>> {
    let rows = sqlx::query_as(
        "select organization_id, user_id, role, joined_at from tenants.members \
         where organization_id = any($1) order by joined_at, user_id",
    )
    .bind(organization_ids)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Organizations of each user, with the user id they were found for.
#[tracing::instrument(skip_all, fields(count = user_ids.len()))]
pub async fn organizations_of(db: &PgPool, user_ids: &[Uuid]) -> Result<Vec<(Uuid, OrganizationRow)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        user_id: Uuid,
        #[sqlx(flatten)]
        organization: OrganizationRow,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select m.user_id, o.id, o.name, o.slug, o.created_at, o.updated_at \
         from tenants.members m join tenants.organizations o on o.id = m.organization_id \
         where m.user_id = any($1) order by m.joined_at, o.id",
    )
    .bind(user_ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.organization)).collect())
}

/// Batches organization lookups of one request.
pub struct OrganizationLoader(pub PgPool);

impl Loader<Uuid> for OrganizationLoader {
    type Value = OrganizationRow;
    type Error = Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, OrganizationRow>> {
        let rows = organizations_by_ids(&self.0, keys).await?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

/// Batches member lists of organizations.
pub struct MembersLoader(pub PgPool);

impl Loader<Uuid> for MembersLoader {
    type Value = Vec<MemberRow>;
    type Error = Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<MemberRow>>> {
        let mut by_org: HashMap<Uuid, Vec<MemberRow>> = HashMap::new();
        for row in members_of(&self.0, keys).await? {
            by_org.entry(row.organization_id).or_default().push(row);
        }
        Ok(by_org)
    }
}

/// Batches the organizations of users.
pub struct MembershipsLoader(pub PgPool);

impl Loader<Uuid> for MembershipsLoader {
    type Value = Vec<OrganizationRow>;
    type Error = Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<OrganizationRow>>> {
        let mut by_user: HashMap<Uuid, Vec<OrganizationRow>> = HashMap::new();
        for (user_id, org) in organizations_of(&self.0, keys).await? {
            by_user.entry(user_id).or_default().push(org);
        }
        Ok(by_user)
    }
}

/// The role of `user_id` in the organization, locked for the transaction; `None` when either
/// does not exist or the user is not a member.
pub async fn role_of(db: &mut PgConnection, organization_id: Uuid, user_id: Uuid) -> Result<Option<String>> {
    let role = sqlx::query_scalar(
        "select role from tenants.members where organization_id = $1 and user_id = $2 for share",
    )
    .bind(organization_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(role)
}
