//! GraphQL types and operations of the tenants subgraph (thin: they call the service).

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, EmptySubscription, ID, InputObject, Object, Result, Schema, SchemaBuilder};
use chrono::{DateTime, Utc};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;
use uuid::Uuid;

use crate::service::{NewMember, NewOrganization, OrganizationRole, Tenants};
use crate::store::{MemberRow, MembersLoader, MembershipsLoader, OrganizationLoader, OrganizationRow};

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
    /// Members, oldest first.
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<Member>> {
        let loader = ctx.data::<DataLoader<MembersLoader>>()?;
        let rows = loader.load_one(self.0.id).await?.unwrap_or_default();
        Ok(rows.into_iter().map(Member).collect())
    }
}

/// A user's membership in an organization.
pub struct Member(MemberRow);

#[Object]
impl Member {
    /// The user (its fields come from the users subgraph).
    async fn user(&self) -> User {
        User { id: self.0.user_id }
    }
    async fn role(&self) -> Result<OrganizationRole> {
        Ok(OrganizationRole::from_db(&self.0.role)?)
    }
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}

/// The users subgraph's `User`, to which this subgraph contributes `organizations`.
pub struct User {
    id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// Organizations this user is a member of, oldest membership first.
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        let loader = ctx.data::<DataLoader<MembershipsLoader>>()?;
        let rows = loader.load_one(self.id).await?.unwrap_or_default();
        Ok(rows.into_iter().map(Organization).collect())
    }
}

pub struct Query;

#[Object]
impl Query {
    /// An organization by id.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Organization>> {
        load(ctx, parse_id("id", &id)?).await
    }

    /// An organization by slug.
    async fn organization_by_slug(&self, ctx: &Context<'_>, slug: String) -> Result<Option<Organization>> {
        Ok(ctx.data::<Tenants>()?.by_slug(&slug).await?.map(Organization))
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

async fn load(ctx: &Context<'_>, id: Uuid) -> Result<Option<Organization>> {
    let loader = ctx.data::<DataLoader<OrganizationLoader>>()?;
    Ok(loader.load_one(id).await?.map(Organization))
}

#[derive(InputObject)]
pub struct CreateOrganizationInput {
    pub name: String,
    /// Derived from the name when omitted.
    pub slug: Option<String>,
}

#[derive(InputObject)]
pub struct AddOrganizationMemberInput {
    pub organization_id: ID,
    pub user_id: ID,
    pub role: OrganizationRole,
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates an organization; the caller becomes its owner.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<Organization> {
        let new =
            NewOrganization { name: input.name, slug: input.slug, owner_id: caller(ctx)?.require_user()? };
        Ok(Organization(ctx.data::<Tenants>()?.create(new).await?))
    }

    /// Adds a user to an organization (owners and admins; nobody grants above their own role).
    async fn add_organization_member(
        &self,
        ctx: &Context<'_>,
        input: AddOrganizationMemberInput,
    ) -> Result<Member> {
        let new = NewMember {
            organization_id: parse_id("organizationId", &input.organization_id)?,
            user_id: parse_id("userId", &input.user_id)?,
            role: input.role,
        };
        Ok(Member(ctx.data::<Tenants>()?.add_member(caller(ctx)?, new).await?))
    }
}
