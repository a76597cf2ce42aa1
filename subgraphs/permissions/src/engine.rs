//! The decision engine: bindings from PostgreSQL, rules from the oso policy, decisions cached.
//! It is the [`Authorizer`] of every subgraph (in process, or behind `/internal/authorize`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use pyairtable_kit::Result;
use pyairtable_kit::authz::{Authorizer, Check, Decision, Resource};
use pyairtable_kit::db::{Scope, scoped};
use sqlx::PgPool;
use uuid::Uuid;

use crate::cache::{DecisionCache, EVERYTHING, Slot};
use crate::policy::{Binding, Person, Policy, person};
use crate::store;

/// Decides, and forgets decisions when bindings change.
pub struct Engine {
    db: PgPool,
    policy: Policy,
    cache: DecisionCache,
}

/// The cache scope of decisions about profiles (they depend on memberships in any tenant).
const PEOPLE: &str = "people";

/// The cache scope of a tenant's decisions.
pub fn tenant_scope(tenant: Uuid) -> String {
    format!("tenant:{tenant}")
}

impl Engine {
    pub fn new(db: PgPool, policy: Policy, redis: Option<redis::aio::ConnectionManager>) -> Arc<Self> {
        Arc::new(Self { db, policy, cache: DecisionCache::new(redis) })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Forgets decisions in `tenant` (and, when memberships changed, about profiles).
    pub async fn forget(&self, tenant: Uuid, memberships_changed: bool) {
        let mut scopes = vec![tenant_scope(tenant)];
        if memberships_changed {
            scopes.push(PEOPLE.to_owned());
        }
        if let Err(err) = self.cache.bump(&scopes).await {
            tracing::error!(%err, "forgetting authorization decisions; stale ones expire within a minute");
        }
    }

    /// Forgets every decision (events changed bindings in tenants not tracked one by one).
    pub async fn forget_everything(&self) {
        if let Err(err) = self.cache.bump(&[EVERYTHING.to_owned()]).await {
            tracing::error!(%err, "forgetting authorization decisions; stale ones expire within a minute");
        }
    }

    /// Applies pending binding events first, so a decision never lags a change that committed.
    async fn catch_up(&self) -> Result<()> {
        let consumer = crate::events::consumer();
        if consumer.pending(&self.db).await? && consumer.catch_up(&self.db).await? > 0 {
            self.forget_everything().await;
        }
        Ok(())
    }

    /// `subject` with its bindings in `tenants` (and its memberships when `with_tenants`).
    pub async fn person_in(&self, subject: Uuid, tenants: &[Uuid]) -> Result<(Person, Vec<Uuid>)> {
        let mut tx = scoped(&self.db, &Scope::tenants(tenants.iter().copied()).with_user(subject)).await?;
        let rows = store::bindings_of(&mut tx, subject, tenants).await?;
        tx.commit().await?;
        let present: Vec<Uuid> =
            rows.iter().map(|r| r.tenant_id).collect::<BTreeSet<_>>().into_iter().collect();
        let bindings: Vec<Binding> =
            rows.into_iter().map(|r| Binding { resource_id: r.resource_id, role: r.role }).collect();
        Ok((person(subject, &bindings, &present), present))
    }

    async fn evaluate(&self, subject: Uuid, checks: &[&Check]) -> Result<Vec<Decision>> {
        let tenants: Vec<Uuid> =
            checks.iter().filter_map(|c| c.resource.tenant()).collect::<BTreeSet<_>>().into_iter().collect();
        let profiles: Vec<Uuid> = checks
            .iter()
            .filter_map(|c| match c.resource {
                Resource::User { id } => Some(id),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut tx = scoped(&self.db, &Scope::user(subject)).await?;
        let mine: Vec<Uuid> =
            store::tenants_of(&mut tx, &[subject]).await?.into_iter().map(|(_, t)| t).collect();
        let mut scope_tenants: BTreeSet<Uuid> = tenants.iter().copied().collect();
        scope_tenants.extend(&mine);
        Scope::tenants(scope_tenants).with_user(subject).apply(&mut tx).await?;
        let rows = store::bindings_of(&mut tx, subject, &tenants).await?;
        // Others' memberships, as far as row-level security shows them: in the subject's tenants.
        let mut theirs: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        if !profiles.is_empty() {
            for (user, tenant) in store::tenants_of(&mut tx, &profiles).await? {
                theirs.entry(user).or_default().push(tenant);
            }
        }
        tx.commit().await?;

        let member_of: BTreeSet<Uuid> = rows.iter().map(|r| r.tenant_id).collect();
        let bindings: Vec<Binding> =
            rows.into_iter().map(|r| Binding { resource_id: r.resource_id, role: r.role }).collect();
        let actor = person(subject, &bindings, &mine);
        checks
            .iter()
            .map(|check| {
                let allowed = self.policy.allows(
                    &actor,
                    &check.action,
                    &check.resource,
                    theirs.get(&resource_user(&check.resource)).map(Vec::as_slice).unwrap_or(&[]),
                )?;
                Ok(match (allowed, check.resource) {
                    (true, _) => Decision::Allow,
                    (false, Resource::User { .. }) => Decision::Hide,
                    (false, resource) => {
                        let in_tenant = resource.tenant().is_some_and(|t| member_of.contains(&t));
                        let sees = in_tenant && self.sees(&actor, &resource)?;
                        if sees { Decision::Forbid } else { Decision::Hide }
                    }
                })
            })
            .collect()
    }

    /// Whether the subject may see the resource at all (deciding FORBIDDEN vs NOT_FOUND).
    fn sees(&self, actor: &Person, resource: &Resource) -> Result<bool> {
        self.policy.allows(actor, "read", resource, &[])
    }
}

fn resource_user(resource: &Resource) -> Uuid {
    match resource {
        Resource::User { id } => *id,
        _ => Uuid::nil(),
    }
}

fn slot(subject: Uuid, check: &Check) -> Slot {
    let (scope, resource) = match check.resource {
        Resource::Organization { id } => (tenant_scope(id), format!("o:{id}")),
        Resource::Workspace { id, organization_id } => (tenant_scope(organization_id), format!("w:{id}")),
        Resource::User { id } => (PEOPLE.to_owned(), format!("u:{id}")),
    };
    Slot { scope, key: format!("{subject}:{}:{resource}", check.action) }
}

#[async_trait::async_trait]
impl Authorizer for Engine {
    async fn decide(&self, subject: Uuid, checks: &[Check]) -> Result<Vec<Decision>> {
        let slots: Vec<Slot> = checks.iter().map(|check| slot(subject, check)).collect();
        let cached = self.cache.get(&slots).await?;
        let missing: Vec<usize> =
            cached.iter().enumerate().filter(|(_, c)| c.1.is_none()).map(|(i, _)| i).collect();
        let mut decisions: Vec<Decision> = cached.iter().map(|c| c.1.unwrap_or(Decision::Hide)).collect();
        if missing.is_empty() {
            return Ok(decisions);
        }
        self.catch_up().await?;
        let to_decide: Vec<&Check> = missing.iter().map(|&i| &checks[i]).collect();
        let fresh = self.evaluate(subject, &to_decide).await?;
        let mut entries = Vec::with_capacity(missing.len());
        for (&i, decision) in missing.iter().zip(fresh) {
            decisions[i] = decision;
            entries.push((slots[i].clone(), cached[i].0.clone(), decision));
        }
        self.cache.put(&entries).await?;
        Ok(decisions)
    }

    async fn organizations_of(&self, subject: Uuid) -> Result<Vec<Uuid>> {
        self.catch_up().await?;
        let mut tx = scoped(&self.db, &Scope::user(subject)).await?;
        let tenants = store::tenants_of(&mut tx, &[subject]).await?;
        tx.commit().await?;
        Ok(tenants.into_iter().map(|(_, t)| t).collect())
    }

    async fn sync(&self) -> Result<()> {
        self.catch_up().await
    }
}
