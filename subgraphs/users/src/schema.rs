//! GraphQL types and operations of the users subgraph (thin: they call the service).

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, EmptySubscription, ID, InputObject, MaybeUndefined, Object, Result, Schema, SchemaBuilder,
};
use chrono::{DateTime, Utc};
use pyairtable_kit::authz::{self, Resource};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;

use crate::service::{ProfilePatch, Users};
use crate::store::{UserLoader, UserRow};

pub type UsersSchema = Schema<Query, Mutation, EmptySubscription>;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

/// A person with an account. Other subgraphs add fields to it (organizations, ...).
pub struct User(UserRow);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Login email, lower-case.
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// The `File` id of the avatar, if any (the files subgraph resolves `avatar` from it).
    async fn avatar_file_id(&self) -> Option<ID> {
        self.0.avatar_file_id.map(|id| ID(id.to_string()))
    }
    /// BCP 47 language tag, e.g. `en` or `pt-BR`.
    async fn locale(&self) -> &str {
        &self.0.locale
    }
    /// IANA time zone, e.g. `Europe/Paris`.
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct Query;

#[Object]
impl Query {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let id = caller(ctx)?.require_user()?;
        load(ctx, id).await
    }

    /// A user by id: oneself, or someone sharing an organization with the caller (else null).
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        load(ctx, parse_id("id", &id)?).await
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        match parse_id("id", &id) {
            Ok(id) => load(ctx, id).await,
            Err(_) => Ok(None),
        }
    }
}

/// A profile the caller may see (the policy: one's own, or someone sharing an organization).
async fn load(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Option<User>> {
    let allowed = authz::allowed(ctx, "read", &[Resource::User { id }]).await?;
    if !allowed.first().copied().unwrap_or(false) {
        return Ok(None);
    }
    let loader = ctx.data::<DataLoader<UserLoader>>()?;
    Ok(loader.load_one(id).await?.map(User))
}

/// Only the fields given change.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// The `File` id of the new avatar; null removes it.
    pub avatar_file_id: MaybeUndefined<ID>,
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Updates the signed-in user's profile.
    async fn update_my_profile(&self, ctx: &Context<'_>, input: UpdateProfileInput) -> Result<User> {
        let id = caller(ctx)?.require_user()?;
        let patch = ProfilePatch {
            display_name: input.display_name,
            locale: input.locale,
            time_zone: input.time_zone,
            avatar_file_id: match input.avatar_file_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => Some(Some(parse_id("avatarFileId", &id)?)),
            },
        };
        Ok(User(ctx.data::<Users>()?.update_profile(id, patch).await?))
    }
}
