//! GraphQL of the workspaces subgraph: `Workspace` (an entity), and the `workspaces` lists it
//! contributes to `Organization` and `User`.

use std::collections::{BTreeSet, HashMap};

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, EmptySubscription, ID, Object, Result, Schema, SchemaBuilder};
use chrono::{DateTime, Utc};
use pyairtable_kit::authz::{self, Resource};
use pyairtable_kit::connection::{Page, PageArgs, PageConnection, connection};
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;
use uuid::Uuid;

use crate::service::{Workspaces, resource};
use crate::store::{self, WorkspaceRow};

pub type WorkspacesSchema = Schema<Query, Mutation, EmptySubscription>;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

/// A workspace: a group of bases inside an organization, shared with collaborators.
pub struct Workspace(WorkspaceRow);

#[Object]
impl Workspace {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn organization(&self) -> Organization {
        Organization { id: self.0.tenant_id }
    }
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }
    async fn created_by(&self) -> User {
        User { id: self.0.created_by }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// The tenants subgraph's `Organization`.
pub struct Organization {
    id: Uuid,
}

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The workspaces of this organization the signed-in user may see, oldest first.
    async fn workspaces(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default = false)] include_archived: bool,
    ) -> Result<PageConnection<Workspace>> {
        let args = PageArgs::parse(first, after, last, before)?;
        authz::require(ctx, "read", Resource::Organization { id: self.id }).await?;
        visible(ctx, &[self.id], include_archived, &args).await
    }
}

/// The users subgraph's `User`.
pub struct User {
    id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// Every workspace this user may see, across organizations (the signed-in user's only).
    async fn workspaces(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default = false)] include_archived: bool,
    ) -> Result<PageConnection<Workspace>> {
        let args = PageArgs::parse(first, after, last, before)?;
        let me = caller(ctx)?.require_user()?;
        if me != self.id {
            return Err(pyairtable_kit::Error::Forbidden("only your own workspaces are listed".into()).into());
        }
        let organizations = ctx.data::<Workspaces>()?.authorizer().organizations_of(me).await?;
        visible(ctx, &organizations, include_archived, &args).await
    }
}

/// The page of workspaces of `organizations` the caller may read: their ids (one statement),
/// the decisions (one batch), then the rows of the page (one statement).
async fn visible(
    ctx: &Context<'_>,
    organizations: &[Uuid],
    include_archived: bool,
    args: &PageArgs,
) -> Result<PageConnection<Workspace>> {
    let ids_loader = ctx.data::<DataLoader<IdsLoader>>()?;
    let keys = organizations.iter().map(|o| (*o, include_archived));
    let found = ids_loader.load_many(keys).await?;
    let mut candidates: Vec<Resource> = organizations
        .iter()
        .flat_map(|o| found.get(&(*o, include_archived)).into_iter().flatten())
        .map(|id| Resource::Workspace { id: *id, organization_id: organization_of(&found, *id) })
        .collect();
    candidates.sort_by_key(workspace_id);
    let allowed = authz::allowed(ctx, "read", &candidates).await?;
    let readable: Vec<Resource> =
        candidates.into_iter().zip(allowed).filter(|(_, ok)| *ok).map(|(r, _)| r).collect();
    let total = i64::try_from(readable.len()).unwrap_or(i64::MAX);
    let page: Page<Resource> = args.slice(readable, workspace_id);
    let rows = ctx.data::<DataLoader<WorkspaceLoader>>()?.load_many(page.items.iter().map(key)).await?;
    let page = Page {
        items: page.items.iter().filter_map(|r| rows.get(&key(r)).cloned()).collect(),
        has_previous: page.has_previous,
        has_next: page.has_next,
    };
    Ok(connection(page, total, |r: &WorkspaceRow| r.id, Workspace))
}

fn organization_of(found: &HashMap<(Uuid, bool), Vec<Uuid>>, id: Uuid) -> Uuid {
    found.iter().find(|(_, ids)| ids.contains(&id)).map(|((o, _), _)| *o).unwrap_or_default()
}

fn workspace_id(resource: &Resource) -> Uuid {
    match resource {
        Resource::Workspace { id, .. } => *id,
        _ => Uuid::nil(),
    }
}

fn key(resource: &Resource) -> (Uuid, Uuid) {
    match resource {
        Resource::Workspace { id, organization_id } => (*organization_id, *id),
        _ => (Uuid::nil(), Uuid::nil()),
    }
}

pub struct Query;

#[Object]
impl Query {
    /// A workspace by id (null when it does not exist or the caller may not see it).
    async fn workspace(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Workspace>> {
        load(ctx, parse_id("id", &id)?).await
    }

    #[graphql(entity)]
    async fn find_workspace_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Workspace>> {
        match parse_id("id", &id) {
            Ok(id) => load(ctx, id).await,
            Err(_) => Ok(None),
        }
    }

    #[graphql(entity)]
    async fn find_organization_by_id(&self, id: ID) -> Option<Organization> {
        parse_id("id", &id).ok().map(|id| Organization { id })
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        parse_id("id", &id).ok().map(|id| User { id })
    }
}

/// A workspace the caller may read, or `None`.
async fn load(ctx: &Context<'_>, id: Uuid) -> Result<Option<Workspace>> {
    let me = caller(ctx)?.require_user()?;
    let Some(row) = ctx.data::<DataLoader<EntityLoader>>()?.load_one((me, id)).await? else {
        return Ok(None);
    };
    let allowed = authz::allowed(ctx, "read", &[resource(&row)]).await?;
    Ok(allowed.first().copied().unwrap_or(false).then_some(Workspace(row)))
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates a workspace in an organization (members and above); the creator owns it.
    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        name: String,
    ) -> Result<Workspace> {
        let me = caller(ctx)?.require_user()?;
        let organization = parse_id("organizationId", &organization_id)?;
        Ok(Workspace(ctx.data::<Workspaces>()?.create(me, organization, &name).await?))
    }

    async fn rename_workspace(&self, ctx: &Context<'_>, workspace_id: ID, name: String) -> Result<Workspace> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("workspaceId", &workspace_id)?;
        Ok(Workspace(ctx.data::<Workspaces>()?.rename(me, id, &name).await?))
    }

    /// Archives a workspace: it leaves lists (unless `includeArchived`) and can be restored.
    async fn archive_workspace(&self, ctx: &Context<'_>, workspace_id: ID) -> Result<Workspace> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("workspaceId", &workspace_id)?;
        Ok(Workspace(ctx.data::<Workspaces>()?.set_archived(me, id, true).await?))
    }

    async fn restore_workspace(&self, ctx: &Context<'_>, workspace_id: ID) -> Result<Workspace> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("workspaceId", &workspace_id)?;
        Ok(Workspace(ctx.data::<Workspaces>()?.set_archived(me, id, false).await?))
    }

    /// Deletes a workspace for good (its owners).
    async fn delete_workspace(&self, ctx: &Context<'_>, workspace_id: ID) -> Result<bool> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("workspaceId", &workspace_id)?;
        ctx.data::<Workspaces>()?.delete(me, id).await?;
        Ok(true)
    }
}

/// Workspace ids of organizations, batched (called after the organization read check).
pub struct IdsLoader(pub Workspaces);

impl Loader<(Uuid, bool)> for IdsLoader {
    type Value = Vec<Uuid>;
    type Error = pyairtable_kit::Error;

    async fn load(&self, keys: &[(Uuid, bool)]) -> pyairtable_kit::Result<HashMap<(Uuid, bool), Vec<Uuid>>> {
        let mut found: HashMap<(Uuid, bool), Vec<Uuid>> = HashMap::new();
        for archived in [false, true] {
            let tenants: Vec<Uuid> = keys.iter().filter(|(_, a)| *a == archived).map(|(t, _)| *t).collect();
            if tenants.is_empty() {
                continue;
            }
            let mut tx = scoped(self.0.db(), &Scope::tenants(tenants.iter().copied())).await?;
            for (tenant, id) in store::ids_in(&mut tx, &tenants, archived).await? {
                found.entry((tenant, archived)).or_default().push(id);
            }
            tx.commit().await?;
        }
        Ok(found)
    }
}

/// Workspace rows by (organization, id), batched (called after read checks).
pub struct WorkspaceLoader(pub Workspaces);

impl Loader<(Uuid, Uuid)> for WorkspaceLoader {
    type Value = WorkspaceRow;
    type Error = pyairtable_kit::Error;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> pyairtable_kit::Result<HashMap<(Uuid, Uuid), WorkspaceRow>> {
        let tenants: BTreeSet<Uuid> = keys.iter().map(|(t, _)| *t).collect();
        let ids: Vec<Uuid> = keys.iter().map(|(_, id)| *id).collect();
        let mut tx = scoped(self.0.db(), &Scope::tenants(tenants)).await?;
        let rows = store::by_ids(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|row| ((row.tenant_id, row.id), row)).collect())
    }
}

/// Workspace rows by id as one user may find them (in that user's organizations), batched.
pub struct EntityLoader(pub Workspaces);

impl Loader<(Uuid, Uuid)> for EntityLoader {
    type Value = WorkspaceRow;
    type Error = pyairtable_kit::Error;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> pyairtable_kit::Result<HashMap<(Uuid, Uuid), WorkspaceRow>> {
        let mut found = HashMap::new();
        let subjects: BTreeSet<Uuid> = keys.iter().map(|(s, _)| *s).collect();
        for subject in subjects {
            let ids: Vec<Uuid> = keys.iter().filter(|(s, _)| *s == subject).map(|(_, id)| *id).collect();
            let mine = self.0.authorizer().organizations_of(subject).await?;
            let mut tx = scoped(self.0.db(), &Scope::tenants(mine)).await?;
            found.extend(store::by_ids(&mut tx, &ids).await?.into_iter().map(|row| ((subject, row.id), row)));
            tx.commit().await?;
        }
        Ok(found)
    }
}
