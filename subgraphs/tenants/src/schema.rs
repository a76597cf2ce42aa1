//! GraphQL types and operations of the tenants subgraph (thin: they call the service).

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    Context, EmptySubscription, Enum, ID, InputObject, Object, Result, Schema, SchemaBuilder,
};
use chrono::{DateTime, Utc};
use pyairtable_kit::authz::{self, OrganizationRole, Resource};
use pyairtable_kit::connection::{PageArgs, PageConnection, connection, wants_total};
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;
use uuid::Uuid;

use crate::service::{GRACE_DAYS, Tenants};
use crate::store::{self, InvitationRow, OrganizationRow};

pub type TenantsSchema = Schema<Query, Mutation, EmptySubscription>;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

/// A customer organization: the tenant that owns workspaces and their data.
pub struct Organization(OrganizationRow);

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// URL-safe unique handle.
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When it was deleted; it can be restored until this plus the grace period.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
    /// When a deleted organization is purged for good.
    async fn purge_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at.map(|at| at + chrono::Duration::days(i64::from(GRACE_DAYS)))
    }

    /// Invitations, newest last (members and above).
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageConnection<Invitation>> {
        let args = PageArgs::parse(first, after, last, before)?;
        authz::require(ctx, "read_invitations", Resource::Organization { id: self.0.id }).await?;
        let tenants = ctx.data::<Tenants>()?;
        let mut tx = scoped(tenants.db(), &Scope::tenant(self.0.id)).await?;
        let rows = store::invitations_page(&mut tx, &[self.0.id], &args).await?;
        let total = if wants_total(ctx) {
            store::count_invitations(&mut tx, &[self.0.id]).await?.first().map_or(0, |(_, n)| *n)
        } else {
            0
        };
        tx.commit().await.map_err(pyairtable_kit::Error::from)?;
        Ok(connection(args.page(rows), total, |r| r.id, Invitation))
    }
}

/// Where an invitation stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invitation to join an organization, sent by email.
pub struct Invitation(InvitationRow);

#[Object]
impl Invitation {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// The role the invitee gets.
    async fn role(&self) -> Result<OrganizationRole> {
        Ok(OrganizationRole::parse(&self.0.role)?)
    }
    async fn status(&self) -> InvitationStatus {
        match self.0.status.as_str() {
            "accepted" => InvitationStatus::Accepted,
            "revoked" => InvitationStatus::Revoked,
            _ if self.0.expires_at <= Utc::now() => InvitationStatus::Expired,
            _ => InvitationStatus::Pending,
        }
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn invited_by(&self) -> User {
        User { id: self.0.invited_by }
    }
    /// Who accepted it, once accepted.
    async fn accepted_by(&self) -> Option<User> {
        self.0.accepted_by.map(|id| User { id })
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        load(ctx, self.0.tenant_id).await
    }
}

/// The users subgraph's `User`, referenced by key.
pub struct User {
    id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
}

pub struct Query;

#[Object]
impl Query {
    /// An organization by id (null when it does not exist or the caller may not see it).
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Organization>> {
        load(ctx, parse_id("id", &id)?).await
    }

    /// An organization of the caller's, by slug.
    async fn organization_by_slug(&self, ctx: &Context<'_>, slug: String) -> Result<Option<Organization>> {
        let me = caller(ctx)?.require_user()?;
        Ok(ctx.data::<Tenants>()?.by_slug(me, &slug).await?.map(Organization))
    }

    #[graphql(entity)]
    async fn find_organization_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Organization>> {
        match parse_id("id", &id) {
            Ok(id) => load(ctx, id).await,
            Err(_) => Ok(None),
        }
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        parse_id("id", &id).ok().map(|id| User { id })
    }
}

/// A live organization the caller may read, or `None` (no disclosure of why).
async fn load(ctx: &Context<'_>, id: Uuid) -> Result<Option<Organization>> {
    let allowed = authz::allowed(ctx, "read", &[Resource::Organization { id }]).await?;
    if !allowed.first().copied().unwrap_or(false) {
        return Ok(None);
    }
    let loader = ctx.data::<DataLoader<OrganizationLoader>>()?;
    Ok(loader.load_one(id).await?.filter(|o| o.deleted_at.is_none()).map(Organization))
}

/// Batches organization lookups (after authorization) into one statement.
pub struct OrganizationLoader(pub Tenants);

impl Loader<Uuid> for OrganizationLoader {
    type Value = OrganizationRow;
    type Error = pyairtable_kit::Error;

    async fn load(&self, keys: &[Uuid]) -> pyairtable_kit::Result<HashMap<Uuid, OrganizationRow>> {
        let mut tx = scoped(self.0.db(), &Scope::tenants(keys.iter().copied())).await?;
        let rows = store::organizations(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

#[derive(InputObject)]
pub struct CreateOrganizationInput {
    pub name: String,
    /// Derived from the name when omitted.
    pub slug: Option<String>,
}

#[derive(InputObject)]
pub struct InviteMemberInput {
    pub organization_id: ID,
    pub email: String,
    /// At most the inviter's own role.
    pub role: OrganizationRole,
}

pub struct Mutation;

fn org_id(id: &ID) -> Result<Uuid> {
    Ok(parse_id("organizationId", id)?)
}

#[Object]
impl Mutation {
    /// Creates an organization; the caller becomes its owner.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<Organization> {
        let me = caller(ctx)?.require_user()?;
        Ok(Organization(ctx.data::<Tenants>()?.create(me, &input.name, input.slug.as_deref()).await?))
    }

    async fn rename_organization(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        name: String,
    ) -> Result<Organization> {
        let me = caller(ctx)?.require_user()?;
        Ok(Organization(ctx.data::<Tenants>()?.rename(me, org_id(&organization_id)?, &name).await?))
    }

    /// Deletes an organization (owners). It can be restored during the grace period (30 days).
    async fn delete_organization(&self, ctx: &Context<'_>, organization_id: ID) -> Result<Organization> {
        let me = caller(ctx)?.require_user()?;
        Ok(Organization(ctx.data::<Tenants>()?.delete(me, org_id(&organization_id)?).await?))
    }

    async fn restore_organization(&self, ctx: &Context<'_>, organization_id: ID) -> Result<Organization> {
        let me = caller(ctx)?.require_user()?;
        Ok(Organization(ctx.data::<Tenants>()?.restore(me, org_id(&organization_id)?).await?))
    }

    /// Invites someone by email, at or below one's own role.
    async fn invite_member(&self, ctx: &Context<'_>, input: InviteMemberInput) -> Result<Invitation> {
        let me = caller(ctx)?.require_user()?;
        let tenants = ctx.data::<Tenants>()?;
        Ok(Invitation(tenants.invite(me, org_id(&input.organization_id)?, &input.email, input.role).await?))
    }

    /// Sends a pending invitation again with a new link.
    async fn resend_invitation(&self, ctx: &Context<'_>, invitation_id: ID) -> Result<Invitation> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("invitationId", &invitation_id)?;
        Ok(Invitation(ctx.data::<Tenants>()?.resend(me, id).await?))
    }

    async fn revoke_invitation(&self, ctx: &Context<'_>, invitation_id: ID) -> Result<Invitation> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("invitationId", &invitation_id)?;
        Ok(Invitation(ctx.data::<Tenants>()?.revoke(me, id).await?))
    }

    /// Joins an organization with the token from an invitation email.
    async fn accept_invitation(&self, ctx: &Context<'_>, token: String) -> Result<Organization> {
        let me = caller(ctx)?.require_user()?;
        Ok(Organization(ctx.data::<Tenants>()?.accept(me, &token).await?))
    }
}
