//! GraphQL of the permissions subgraph: it contributes `Organization.members`,
//! `Workspace.collaborators` and `User.organizations` to entities other subgraphs own, answers
//! `myPermissions`, and changes role bindings.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    Context, EmptySubscription, ID, InputObject, Object, Result, Schema, SchemaBuilder, SimpleObject,
};
use chrono::{DateTime, Utc};
use pyairtable_kit::authz::{self, Authorizer, OrganizationRole, Resource, WorkspaceRole};
use pyairtable_kit::connection::{PageArgs, PageConnection, connection, wants_total};
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;
use uuid::Uuid;

use crate::engine::{Engine, Standing};
use crate::policy::{Binding, Target, person};
use crate::service::{Kind, Permissions};
use crate::store::{self, BindingRow};

pub type PermissionsSchema = Schema<Query, Mutation, EmptySubscription>;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

/// The tenants subgraph's `Organization`, to which this subgraph contributes its members.
pub struct Organization {
    id: Uuid,
}

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// Members and their roles, in the order they joined.
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageConnection<Member>> {
        let args = PageArgs::parse(first, after, last, before)?;
        authz::require(ctx, "read_members", Resource::Organization { id: self.id }).await?;
        let rows = ctx.data::<DataLoader<PageLoader>>()?.load_one((self.id, args)).await?.unwrap_or_default();
        let total = if wants_total(ctx) {
            ctx.data::<DataLoader<CountLoader>>()?.load_one(self.id).await?.unwrap_or(0)
        } else {
            0
        };
        Ok(connection(args.page(rows), total, |r| r.id, Member))
    }

    /// The signed-in user's role here, if any.
    async fn viewer_role(&self, ctx: &Context<'_>) -> Result<Option<OrganizationRole>> {
        authz::require(ctx, "read", Resource::Organization { id: self.id }).await?;
        Ok(my_role(ctx, Resource::Organization { id: self.id })
            .await?
            .map(OrganizationRole::parse)
            .transpose()?)
    }
}

/// A member of an organization.
pub struct Member(BindingRow);

#[Object]
impl Member {
    /// The person (profile fields come from the users subgraph).
    async fn user(&self) -> User {
        User { id: self.0.subject_id }
    }
    async fn role(&self) -> Result<OrganizationRole> {
        Ok(OrganizationRole::parse(&self.0.role)?)
    }
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The workspaces subgraph's `Workspace`, to which this subgraph contributes collaborators.
pub struct Workspace {
    id: Uuid,
}

#[Object]
impl Workspace {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// Everyone with a role here, directly or through their organization role (owners and
    /// admins of the organization own every workspace), with the higher of the two.
    async fn collaborators(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageConnection<Collaborator>> {
        let args = PageArgs::parse(first, after, last, before)?;
        let resource = workspace(ctx, self.id).await?;
        authz::require(ctx, "read_collaborators", resource).await?;
        let Resource::Workspace { organization_id, .. } = resource else {
            return Err("not a workspace".into());
        };
        let all = ctx
            .data::<DataLoader<CollaboratorsLoader>>()?
            .load_one((self.id, organization_id))
            .await?
            .unwrap_or_default();
        let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
        Ok(connection(args.slice(all, |c| c.key), total, |c| c.key, |c| c))
    }

    /// The signed-in user's effective role here, if any.
    async fn viewer_role(&self, ctx: &Context<'_>) -> Result<Option<WorkspaceRole>> {
        let resource = workspace(ctx, self.id).await?;
        authz::require(ctx, "read", resource).await?;
        Ok(my_role(ctx, resource).await?.map(WorkspaceRole::parse).transpose()?)
    }
}

/// Someone with a role on a workspace.
#[derive(SimpleObject, Clone)]
pub struct Collaborator {
    #[graphql(skip)]
    key: Uuid,
    user: User,
    /// The effective role: the higher of the direct one and the one the organization role gives.
    role: WorkspaceRole,
    /// The role given on this workspace itself, if any.
    direct_role: Option<WorkspaceRole>,
}

/// The users subgraph's `User`.
#[derive(Clone)]
pub struct User {
    id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// Organizations this user is a member of, in the order joined (the signed-in user's only).
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageConnection<Organization>> {
        let args = PageArgs::parse(first, after, last, before)?;
        let me = caller(ctx)?.require_user()?;
        if me != self.id {
            return Err(
                pyairtable_kit::Error::Forbidden("only your own organizations are listed".into()).into()
            );
        }
        let db = ctx.data::<Permissions>()?.db();
        let mut tx = scoped(db, &Scope::user(me)).await?;
        let rows = store::memberships_page(&mut tx, me, &args).await?;
        let total = if wants_total(ctx) { store::tenants_of(&mut tx, &[me]).await?.len() } else { 0 };
        tx.commit().await.map_err(pyairtable_kit::Error::from)?;
        Ok(connection(
            args.page(rows),
            i64::try_from(total).unwrap_or(0),
            |r| r.id,
            |r| Organization { id: r.tenant_id },
        ))
    }
}

/// What the signed-in user may do on a resource.
#[derive(SimpleObject)]
pub struct MyPermissions {
    /// The effective role on an organization, if that is what was asked about.
    organization_role: Option<OrganizationRole>,
    /// The effective role on a workspace, if that is what was asked about.
    workspace_role: Option<WorkspaceRole>,
    /// Every action the policy allows, sorted.
    actions: Vec<String>,
}

#[derive(InputObject)]
pub struct ResourceInput {
    #[graphql(name = "type")]
    pub kind: Kind,
    pub id: ID,
}

#[derive(InputObject)]
pub struct WorkspaceRoleInput {
    pub workspace_id: ID,
    pub user_id: ID,
    pub role: WorkspaceRole,
}

#[derive(InputObject)]
pub struct MemberRoleInput {
    pub organization_id: ID,
    pub user_id: ID,
    pub role: OrganizationRole,
}

#[derive(InputObject)]
pub struct MemberInput {
    pub organization_id: ID,
    pub user_id: ID,
}

pub struct Query;

#[Object]
impl Query {
    /// The signed-in user's role and allowed actions on an organization or workspace.
    async fn my_permissions(&self, ctx: &Context<'_>, resource: ResourceInput) -> Result<MyPermissions> {
        let resource = resolve(ctx, &resource).await?;
        authz::require(ctx, "read", resource).await?;
        let Standing { role, actions } = standing(ctx, resource).await?;
        let (organization_role, workspace_role) = match resource {
            Resource::Workspace { .. } => (None, role.map(WorkspaceRole::parse).transpose()?),
            _ => (role.map(OrganizationRole::parse).transpose()?, None),
        };
        Ok(MyPermissions { organization_role, workspace_role, actions })
    }

    #[graphql(entity)]
    async fn find_organization_by_id(&self, id: ID) -> Option<Organization> {
        parse_id("id", &id).ok().map(|id| Organization { id })
    }

    #[graphql(entity)]
    async fn find_workspace_by_id(&self, id: ID) -> Option<Workspace> {
        parse_id("id", &id).ok().map(|id| Workspace { id })
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        parse_id("id", &id).ok().map(|id| User { id })
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Gives a member of the organization a role on one of its workspaces (at most one's own).
    async fn grant_workspace_role(
        &self,
        ctx: &Context<'_>,
        input: WorkspaceRoleInput,
    ) -> Result<WorkspaceGrant> {
        let (me, subject, resource) = workspace_target(ctx, &input.user_id, &input.workspace_id).await?;
        let row = ctx.data::<Permissions>()?.grant(me, subject, resource, input.role.as_str()).await?;
        WorkspaceGrant::from_row(row)
    }

    /// Changes someone's direct role on a workspace.
    async fn change_workspace_role(
        &self,
        ctx: &Context<'_>,
        input: WorkspaceRoleInput,
    ) -> Result<WorkspaceGrant> {
        let (me, subject, resource) = workspace_target(ctx, &input.user_id, &input.workspace_id).await?;
        let row = ctx.data::<Permissions>()?.change(me, subject, resource, input.role.as_str()).await?;
        WorkspaceGrant::from_row(row)
    }

    /// Takes someone's direct role on a workspace away.
    async fn revoke_workspace_role(&self, ctx: &Context<'_>, workspace_id: ID, user_id: ID) -> Result<bool> {
        let (me, subject, resource) = workspace_target(ctx, &user_id, &workspace_id).await?;
        ctx.data::<Permissions>()?.revoke(me, subject, resource).await?;
        Ok(true)
    }

    /// Changes a member's role in an organization (at most one's own; an organization keeps an
    /// owner).
    async fn change_member_role(&self, ctx: &Context<'_>, input: MemberRoleInput) -> Result<Member> {
        let me = caller(ctx)?.require_user()?;
        let organization = parse_id("organizationId", &input.organization_id)?;
        let subject = parse_id("userId", &input.user_id)?;
        let resource = Resource::Organization { id: organization };
        Ok(Member(ctx.data::<Permissions>()?.change(me, subject, resource, input.role.as_str()).await?))
    }

    /// Removes a member from an organization, with their workspace roles there.
    async fn remove_member(&self, ctx: &Context<'_>, input: MemberInput) -> Result<bool> {
        let me = caller(ctx)?.require_user()?;
        let organization = parse_id("organizationId", &input.organization_id)?;
        let subject = parse_id("userId", &input.user_id)?;
        ctx.data::<Permissions>()?.remove(me, organization, subject).await?;
        Ok(true)
    }

    /// Leaves an organization (its last owner cannot).
    async fn leave_organization(&self, ctx: &Context<'_>, organization_id: ID) -> Result<bool> {
        let me = caller(ctx)?.require_user()?;
        let organization = parse_id("organizationId", &organization_id)?;
        ctx.data::<Permissions>()?.remove(me, organization, me).await?;
        Ok(true)
    }

    /// Makes another member an owner; the caller stays as an admin.
    async fn transfer_ownership(&self, ctx: &Context<'_>, input: MemberInput) -> Result<Member> {
        let me = caller(ctx)?.require_user()?;
        let organization = parse_id("organizationId", &input.organization_id)?;
        let to = parse_id("userId", &input.user_id)?;
        Ok(Member(ctx.data::<Permissions>()?.transfer(me, organization, to).await?))
    }
}

/// A direct role on a workspace.
#[derive(SimpleObject)]
pub struct WorkspaceGrant {
    user: User,
    workspace: Workspace,
    role: WorkspaceRole,
}

impl WorkspaceGrant {
    fn from_row(row: BindingRow) -> Result<Self> {
        Ok(Self {
            user: User { id: row.subject_id },
            workspace: Workspace { id: row.resource_id },
            role: WorkspaceRole::parse(&row.role)?,
        })
    }
}

async fn workspace_target(
    ctx: &Context<'_>,
    user_id: &ID,
    workspace_id: &ID,
) -> Result<(Uuid, Uuid, Resource)> {
    let me = caller(ctx)?.require_user()?;
    let subject = parse_id("userId", user_id)?;
    let id = parse_id("workspaceId", workspace_id)?;
    Ok((me, subject, ctx.data::<Permissions>()?.resolve(me, Kind::Workspace, id).await?))
}

async fn resolve(ctx: &Context<'_>, input: &ResourceInput) -> Result<Resource> {
    let me = caller(ctx)?.require_user()?;
    let id = parse_id("resource.id", &input.id)?;
    Ok(ctx.data::<Permissions>()?.resolve(me, input.kind, id).await?)
}

async fn workspace(ctx: &Context<'_>, id: Uuid) -> Result<Resource> {
    let me = caller(ctx)?.require_user()?;
    let tenant = ctx.data::<DataLoader<WorkspaceTenantLoader>>()?.load_one((me, id)).await?;
    let organization_id =
        tenant.ok_or_else(|| pyairtable_kit::Error::NotFound("no such workspace".into()))?;
    Ok(Resource::Workspace { id, organization_id })
}

async fn my_role(ctx: &Context<'_>, resource: Resource) -> Result<Option<&'static str>> {
    Ok(standing(ctx, resource).await?.role)
}

/// The caller's standing on `resource`, batched with the other resolvers of the request.
async fn standing(ctx: &Context<'_>, resource: Resource) -> Result<Standing> {
    let me = caller(ctx)?.require_user()?;
    let loader = ctx.data::<DataLoader<StandingLoader>>()?;
    Ok(loader.load_one((me, resource)).await?.ok_or("no standing")?)
}

/// Standings of subjects on resources, batched per subject.
pub struct StandingLoader(pub Arc<Engine>);

impl Loader<(Uuid, Resource)> for StandingLoader {
    type Value = Standing;
    type Error = pyairtable_kit::Error;

    async fn load(
        &self,
        keys: &[(Uuid, Resource)],
    ) -> pyairtable_kit::Result<HashMap<(Uuid, Resource), Standing>> {
        let mut by_subject: HashMap<Uuid, Vec<Resource>> = HashMap::new();
        for (subject, resource) in keys {
            by_subject.entry(*subject).or_default().push(*resource);
        }
        let mut found = HashMap::with_capacity(keys.len());
        for (subject, resources) in by_subject {
            let standings = self.0.standings(subject, &resources).await?;
            found.extend(resources.into_iter().zip(standings).map(|(r, s)| ((subject, r), s)));
        }
        Ok(found)
    }
}

/// Pages of bindings on organizations (members), batched across organizations.
pub struct PageLoader(pub Permissions);

impl Loader<(Uuid, PageArgs)> for PageLoader {
    type Value = Vec<BindingRow>;
    type Error = pyairtable_kit::Error;

    async fn load(
        &self,
        keys: &[(Uuid, PageArgs)],
    ) -> pyairtable_kit::Result<HashMap<(Uuid, PageArgs), Vec<BindingRow>>> {
        let mut by_args: HashMap<PageArgs, Vec<Uuid>> = HashMap::new();
        for (id, args) in keys {
            by_args.entry(*args).or_default().push(*id);
        }
        let mut found: HashMap<(Uuid, PageArgs), Vec<BindingRow>> = HashMap::new();
        for (args, ids) in by_args {
            let mut tx = scoped(self.0.db(), &Scope::tenants(ids.iter().copied())).await?;
            for row in store::bindings_page(&mut tx, &ids, &args).await? {
                found.entry((row.resource_id, args)).or_default().push(row);
            }
            tx.commit().await?;
        }
        Ok(found)
    }
}

/// Counts of bindings on organizations, batched.
pub struct CountLoader(pub Permissions);

impl Loader<Uuid> for CountLoader {
    type Value = i64;
    type Error = pyairtable_kit::Error;

    async fn load(&self, keys: &[Uuid]) -> pyairtable_kit::Result<HashMap<Uuid, i64>> {
        let mut tx = scoped(self.0.db(), &Scope::tenants(keys.iter().copied())).await?;
        let counts = store::count_on(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(counts)
    }
}

/// The organization of workspaces, as far as the asking user's organizations show them.
pub struct WorkspaceTenantLoader(pub Permissions);

impl Loader<(Uuid, Uuid)> for WorkspaceTenantLoader {
    type Value = Uuid;
    type Error = pyairtable_kit::Error;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> pyairtable_kit::Result<HashMap<(Uuid, Uuid), Uuid>> {
        let mut found = HashMap::new();
        let subjects: BTreeSet<Uuid> = keys.iter().map(|(s, _)| *s).collect();
        for subject in subjects {
            let ids: Vec<Uuid> = keys.iter().filter(|(s, _)| *s == subject).map(|(_, w)| *w).collect();
            let tenants = self.0.engine().organizations_of(subject).await?;
            let mut tx = scoped(self.0.db(), &Scope::tenants(tenants)).await?;
            let mut tenant_of = store::workspace_tenants(&mut tx, &ids).await?;
            tx.commit().await?;
            if tenant_of.len() < ids.len() {
                // A workspace just created: its event may still be on its way here.
                let consumer = crate::events::consumer();
                if consumer.pending(self.0.db()).await? {
                    consumer.catch_up(self.0.db()).await?;
                    let tenants = self.0.engine().organizations_of(subject).await?;
                    let mut tx = scoped(self.0.db(), &Scope::tenants(tenants)).await?;
                    tenant_of = store::workspace_tenants(&mut tx, &ids).await?;
                    tx.commit().await?;
                }
            }
            found.extend(tenant_of.into_iter().map(|(w, t)| ((subject, w), t)));
        }
        Ok(found)
    }
}

/// Everyone with an effective role on workspaces, batched: direct bindings on the workspaces and
/// every membership of their organizations, judged by the policy.
pub struct CollaboratorsLoader(pub Permissions);

impl Loader<(Uuid, Uuid)> for CollaboratorsLoader {
    type Value = Vec<Collaborator>;
    type Error = pyairtable_kit::Error;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> pyairtable_kit::Result<HashMap<(Uuid, Uuid), Vec<Collaborator>>> {
        let tenants: BTreeSet<Uuid> = keys.iter().map(|(_, t)| *t).collect();
        let mut ids: Vec<Uuid> = keys.iter().map(|(w, _)| *w).collect();
        ids.extend(&tenants);
        let mut tx = scoped(self.0.db(), &Scope::tenants(tenants.iter().copied())).await?;
        let rows = store::bindings_on(&mut tx, &ids).await?;
        tx.commit().await?;
        let mut on: HashMap<Uuid, Vec<&BindingRow>> = HashMap::new();
        for row in &rows {
            on.entry(row.resource_id).or_default().push(row);
        }
        let policy = self.0.engine().policy();
        // The policy judges roles, not people: one evaluation per (organization role, direct role).
        let mut memo: HashMap<(Option<String>, Option<String>), Option<&'static str>> = HashMap::new();
        let mut found = HashMap::new();
        for &(workspace, tenant) in keys {
            let mut people: HashMap<Uuid, (Uuid, Option<String>, Option<String>)> = HashMap::new();
            for row in on.get(&tenant).into_iter().flatten() {
                people.entry(row.subject_id).or_insert((row.id, None, None)).1 = Some(row.role.clone());
            }
            for row in on.get(&workspace).into_iter().flatten() {
                let entry = people.entry(row.subject_id).or_insert((row.id, None, None));
                entry.0 = entry.0.min(row.id);
                entry.2 = Some(row.role.clone());
            }
            let mut list = Vec::new();
            for (user, (key, org_role, direct)) in people {
                let memo_key = (org_role.clone(), direct.clone());
                let role = match memo.get(&memo_key) {
                    Some(role) => *role,
                    None => {
                        let mut bindings = Vec::new();
                        if let Some(r) = &org_role {
                            bindings.push(Binding { resource_id: tenant, role: r.clone() });
                        }
                        if let Some(r) = &direct {
                            bindings.push(Binding { resource_id: workspace, role: r.clone() });
                        }
                        let someone = person(user, &bindings, &[tenant]);
                        // Live: the caller passed the read check, which a deleted organization fails.
                        let target = Target::new(
                            &Resource::Workspace { id: workspace, organization_id: tenant },
                            false,
                            &[],
                        );
                        let role = policy.effective_role(&someone, &target)?;
                        memo.insert(memo_key, role);
                        role
                    }
                };
                if let Some(role) = role {
                    let direct_role = direct.as_deref().map(WorkspaceRole::parse).transpose()?;
                    let role = WorkspaceRole::parse(role)?;
                    list.push(Collaborator { key, user: User { id: user }, role, direct_role });
                }
            }
            list.sort_by_key(|c| c.key);
            found.insert((workspace, tenant), list);
        }
        Ok(found)
    }
}
