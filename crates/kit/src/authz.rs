//! Authorization: every subgraph asks the permissions subgraph, for every query and mutation,
//! whether the caller may do an action on a resource. The rules live in one oso policy there.
//!
//! In one process the permissions subgraph hands the kit its engine ([`Kit::set_authorizer`]);
//! as separate services the kit calls it over HTTP ([`HttpAuthorizer`]). Either way, resolvers go
//! through [`require`] / [`allowed`], which batch the checks of one request into one call
//! ([`AuthzLoader`]), so a list of fifty items costs one decision round, not fifty.
//!
//! [`Kit::set_authorizer`]: crate::Kit::set_authorizer

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::identity::{Caller, IdentityKey, caller};
use crate::internal::Client;

/// Paths the permissions service serves for [`HttpAuthorizer`] (router identity required).
pub mod paths {
    /// `POST {"subject", "checks": [...]}` → `{"decisions": [...]}`.
    pub const DECIDE: &str = "/internal/authorize";
    /// `POST {"subject"}` → `{"organizations": [...]}`.
    pub const ORGANIZATIONS: &str = "/internal/organizations-of";
    /// `POST {}` → `{}`: apply pending binding events now.
    pub const SYNC: &str = "/internal/sync";
}

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    /// An organization (a tenant).
    Organization { id: Uuid },
    /// A workspace, with the organization it belongs to.
    Workspace { id: Uuid, organization_id: Uuid },
    /// A person's profile.
    User { id: Uuid },
}

impl Resource {
    /// The tenant whose data this is (none for a person, who may belong to many).
    pub fn tenant(&self) -> Option<Uuid> {
        match self {
            Self::Organization { id } => Some(*id),
            Self::Workspace { organization_id, .. } => Some(*organization_id),
            Self::User { .. } => None,
        }
    }

    /// The name of its kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Organization { .. } => "organization",
            Self::Workspace { .. } => "workspace",
            Self::User { .. } => "user",
        }
    }
}

/// A role in an organization, highest first. The policy names them in lower case.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationRole {
    Owner,
    Admin,
    Member,
    Guest,
}

/// A role on a workspace, highest first. The policy names them in lower case.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceRole {
    Owner,
    Creator,
    Editor,
    Commenter,
    Viewer,
}

impl OrganizationRole {
    pub const ALL: [Self; 4] = [Self::Owner, Self::Admin, Self::Member, Self::Guest];

    /// The policy's and the database's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Guest => "guest",
        }
    }

    /// Reads a stored name; anything else is a broken invariant.
    pub fn parse(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown organization role {value:?}")))
    }
}

impl WorkspaceRole {
    pub const ALL: [Self; 5] = [Self::Owner, Self::Creator, Self::Editor, Self::Commenter, Self::Viewer];

    /// The policy's and the database's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Creator => "creator",
            Self::Editor => "editor",
            Self::Commenter => "commenter",
            Self::Viewer => "viewer",
        }
    }

    /// Reads a stored name; anything else is a broken invariant.
    pub fn parse(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown workspace role {value:?}")))
    }
}

/// One question: may the subject do `action` on `resource`?
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Check {
    pub action: String,
    pub resource: Resource,
}

impl Check {
    pub fn new(action: &str, resource: Resource) -> Self {
        Self { action: action.to_owned(), resource }
    }
}

/// The answer to a [`Check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    /// The subject can see the resource but may not do this (FORBIDDEN).
    Forbid,
    /// The subject has no access to the resource at all: its existence is not disclosed
    /// (NOT_FOUND).
    Hide,
}

impl Decision {
    pub fn allowed(self) -> bool {
        self == Self::Allow
    }

    /// `Ok` when allowed, else the error a client should see.
    pub fn into_result(self, check: &Check) -> Result<()> {
        match self {
            Self::Allow => Ok(()),
            Self::Forbid => Err(Error::Forbidden(format!(
                "you may not {} this {}",
                check.action.replace('_', " "),
                check.resource.kind()
            ))),
            Self::Hide => Err(Error::NotFound(format!("no such {}", check.resource.kind()))),
        }
    }
}

/// The permissions subgraph, as other subgraphs see it.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync + 'static {
    /// One decision per check, in order, for `subject` (a signed-in user).
    async fn decide(&self, subject: Uuid, checks: &[Check]) -> Result<Vec<Decision>>;
    /// The organizations `subject` is a member of (any role), for lists that span tenants.
    async fn organizations_of(&self, subject: Uuid) -> Result<Vec<Uuid>>;
    /// Applies binding changes that events committed a moment ago (an accepted invitation, a
    /// new organization or workspace) and forgets decisions they outdate. A subgraph calls it
    /// after committing such an event, so the caller's next request already sees the change.
    async fn sync(&self) -> Result<()>;
}

#[derive(Serialize, Deserialize)]
pub struct DecideRequest {
    pub subject: Uuid,
    pub checks: Vec<Check>,
}

#[derive(Serialize, Deserialize)]
pub struct DecideAnswer {
    pub decisions: Vec<Decision>,
}

#[derive(Serialize, Deserialize)]
pub struct OrganizationsRequest {
    pub subject: Uuid,
}

#[derive(Serialize, Deserialize)]
pub struct OrganizationsAnswer {
    pub organizations: Vec<Uuid>,
}

/// [`Authorizer`] over HTTP: the permissions service's base URL (`http://permissions:4000`).
pub struct HttpAuthorizer {
    base: String,
    http: Client,
    key: IdentityKey,
}

impl HttpAuthorizer {
    pub fn new(base_url: &str, key: IdentityKey, timeout: Duration) -> Self {
        let base = base_url.trim_end_matches('/').trim_end_matches("/graphql").to_owned();
        Self { base, http: Client::new(timeout), key }
    }

    async fn post<A: serde::de::DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<A> {
        let identity = self.key.sign(&Caller::anonymous(), chrono::Utc::now().timestamp());
        let body = serde_json::to_value(body).map_err(Error::internal)?;
        let answer = self
            .http
            .post(&format!("{}{path}", self.base), &identity, &body)
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("permissions service: {e}")))?;
        serde_json::from_value(answer)
            .map_err(|e| Error::internal(anyhow::anyhow!("permissions service answer: {e}")))
    }
}

#[async_trait::async_trait]
impl Authorizer for HttpAuthorizer {
    async fn decide(&self, subject: Uuid, checks: &[Check]) -> Result<Vec<Decision>> {
        let request = DecideRequest { subject, checks: checks.to_vec() };
        let answer: DecideAnswer = self.post(paths::DECIDE, &request).await?;
        if answer.decisions.len() != checks.len() {
            return Err(Error::internal(anyhow::anyhow!("permissions service: wrong number of decisions")));
        }
        Ok(answer.decisions)
    }

    async fn organizations_of(&self, subject: Uuid) -> Result<Vec<Uuid>> {
        let answer: OrganizationsAnswer =
            self.post(paths::ORGANIZATIONS, &OrganizationsRequest { subject }).await?;
        Ok(answer.organizations)
    }

    async fn sync(&self) -> Result<()> {
        let _: serde_json::Value = self.post(paths::SYNC, &serde_json::json!({})).await?;
        Ok(())
    }
}

/// Calls [`Authorizer::sync`] after a change committed. A failure is logged, not returned: the
/// change stands, and the permissions subgraph's own consumer applies it within seconds (the
/// caller may be refused until then), so a retry would only repeat a change that was made.
pub async fn sync_after_commit(authorizer: &dyn Authorizer) {
    if let Err(err) = authorizer.sync().await {
        tracing::warn!(%err, "permissions did not apply the change at once; its consumer will");
    }
}

/// Stands in when no authorizer was configured: refuses everything, loudly.
pub struct Unconfigured;

#[async_trait::async_trait]
impl Authorizer for Unconfigured {
    async fn decide(&self, _: Uuid, _: &[Check]) -> Result<Vec<Decision>> {
        Err(Error::internal(anyhow::anyhow!("no authorizer: the permissions subgraph is not configured")))
    }
    async fn organizations_of(&self, _: Uuid) -> Result<Vec<Uuid>> {
        Err(Error::internal(anyhow::anyhow!("no authorizer: the permissions subgraph is not configured")))
    }
    async fn sync(&self) -> Result<()> {
        Err(Error::internal(anyhow::anyhow!("no authorizer: the permissions subgraph is not configured")))
    }
}

/// Batches the checks of concurrent resolvers into one [`Authorizer::decide`] per subject.
pub struct AuthzLoader(pub Arc<dyn Authorizer>);

/// A check by one subject.
pub type AuthzKey = (Uuid, Check);

impl Loader<AuthzKey> for AuthzLoader {
    type Value = Decision;
    type Error = Error;

    async fn load(&self, keys: &[AuthzKey]) -> Result<HashMap<AuthzKey, Decision>> {
        let mut by_subject: HashMap<Uuid, Vec<Check>> = HashMap::new();
        for (subject, check) in keys {
            by_subject.entry(*subject).or_default().push(check.clone());
        }
        let mut decisions = HashMap::with_capacity(keys.len());
        for (subject, checks) in by_subject {
            let answers = self.0.decide(subject, &checks).await?;
            decisions.extend(checks.into_iter().zip(answers).map(|(check, d)| ((subject, check), d)));
        }
        Ok(decisions)
    }
}

/// The loader a subgraph schema carries (`.data(authz::loader(kit.authorizer()))`).
pub fn loader(authorizer: Arc<dyn Authorizer>) -> DataLoader<AuthzLoader> {
    crate::subgraph::dataloader(AuthzLoader(authorizer)).delay(Duration::from_millis(1))
}

/// The decisions for the signed-in caller (UNAUTHENTICATED when anonymous), in order.
pub async fn decide(ctx: &Context<'_>, checks: Vec<Check>) -> Result<Vec<Decision>> {
    let subject = caller(ctx)?.require_user()?;
    let loader =
        ctx.data::<DataLoader<AuthzLoader>>().map_err(|e| Error::internal(anyhow::anyhow!(e.message)))?;
    let keys: Vec<AuthzKey> = checks.into_iter().map(|check| (subject, check)).collect();
    let found = loader.load_many(keys.iter().cloned()).await?;
    keys.iter()
        .map(|key| {
            found.get(key).copied().ok_or_else(|| Error::internal(anyhow::anyhow!("no decision for {key:?}")))
        })
        .collect()
}

/// `Ok` when the caller may do `action` on `resource`; else FORBIDDEN, or NOT_FOUND when the
/// caller has no access to it at all.
pub async fn require(ctx: &Context<'_>, action: &str, resource: Resource) -> Result<()> {
    let check = Check::new(action, resource);
    let decision = decide(ctx, vec![check.clone()]).await?;
    decision.first().copied().unwrap_or(Decision::Hide).into_result(&check)
}

/// Which of `resources` the caller may do `action` on.
pub async fn allowed(ctx: &Context<'_>, action: &str, resources: &[Resource]) -> Result<Vec<bool>> {
    let checks = resources.iter().map(|r| Check::new(action, *r)).collect();
    Ok(decide(ctx, checks).await?.into_iter().map(Decision::allowed).collect())
}
