//! The decision engine: bindings from PostgreSQL, rules from the oso policy, decisions cached.
//! It is the [`Authorizer`] of every subgraph (in process, or behind `/internal/authorize`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use pyairtable_kit::Result;
use pyairtable_kit::authz::{Authorizer, Check, Decision, Resource};
use pyairtable_kit::db::{Scope, scoped};
use sqlx::PgPool;
use uuid::Uuid;

use crate::cache::{DecisionCache, Slot};
use crate::policy::{Binding, Policy, Target, person};
use crate::store;

/// Decides, with decisions cached under the versions of what they depend on.
pub struct Engine {
    db: PgPool,
    policy: Policy,
    cache: DecisionCache,
}

/// The version scope of profile decisions: organization memberships anywhere.
const PEOPLE: Uuid = Uuid::nil();

impl Engine {
    pub fn new(db: PgPool, policy: Policy, redis: Option<redis::aio::ConnectionManager>) -> Arc<Self> {
        Arc::new(Self { db, policy, cache: DecisionCache::new(redis) })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Applies binding events that committed but are not applied yet (an organization just
    /// created, an invitation just accepted), so a decision never lags a change that committed.
    pub async fn catch_up(&self) -> Result<()> {
        let consumer = crate::events::consumer();
        if consumer.pending(&self.db).await? {
            consumer.catch_up(&self.db).await?;
        }
        Ok(())
    }

    /// The subject's effective role on each resource and every action the policy allows there,
    /// in order (one transaction for all of them).
    pub async fn standings(&self, subject: Uuid, resources: &[Resource]) -> Result<Vec<Standing>> {
        let tenants = distinct(resources.iter().filter_map(Resource::tenant));
        let mut tx = scoped(&self.db, &Scope::tenants(tenants.iter().copied()).with_user(subject)).await?;
        let rows = store::bindings_of(&mut tx, subject, &tenants).await?;
        let deleted = store::deleted_organizations(&mut tx, &tenants).await?;
        tx.commit().await?;
        let actor = person(subject, &bindings(rows), &tenants);
        resources
            .iter()
            .map(|resource| {
                let tenant = resource.tenant().unwrap_or_default();
                let target = Target::new(resource, deleted.get(&tenant).copied().unwrap_or(false), &[]);
                Ok(Standing {
                    role: self.policy.effective_role(&actor, &target)?,
                    actions: self.policy.allowed_actions(&actor, &target)?,
                })
            })
            .collect()
    }

    async fn evaluate(&self, subject: Uuid, checks: &[&Check]) -> Result<Vec<Decision>> {
        let tenants: Vec<Uuid> = distinct(checks.iter().filter_map(|c| c.resource.tenant()));
        let workspaces: Vec<Uuid> = distinct(checks.iter().filter_map(|c| match c.resource {
            Resource::Workspace { id, .. } => Some(id),
            _ => None,
        }));
        let profiles: Vec<Uuid> = distinct(checks.iter().filter_map(|c| match c.resource {
            Resource::User { id } => Some(id),
            _ => None,
        }));
        let mut tx = scoped(&self.db, &Scope::user(subject)).await?;
        let mine: Vec<Uuid> =
            store::tenants_of(&mut tx, &[subject]).await?.into_iter().map(|(_, t)| t).collect();
        let mut scope_tenants: BTreeSet<Uuid> = tenants.iter().copied().collect();
        scope_tenants.extend(&mine);
        Scope::tenants(scope_tenants).with_user(subject).apply(&mut tx).await?;
        let rows = store::bindings_of(&mut tx, subject, &tenants).await?;
        let facts = Facts {
            deleted: store::deleted_organizations(&mut tx, &tenants).await?,
            workspaces: if workspaces.is_empty() {
                HashMap::new()
            } else {
                store::workspace_tenants(&mut tx, &workspaces).await?
            },
            // Others' memberships, as far as row-level security shows them: in the subject's tenants.
            profiles: if profiles.is_empty() {
                HashMap::new()
            } else {
                let mut theirs: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
                for (user, tenant) in store::tenants_of(&mut tx, &profiles).await? {
                    theirs.entry(user).or_default().push(tenant);
                }
                theirs
            },
        };
        tx.commit().await?;

        let member_of: BTreeSet<Uuid> = rows.iter().map(|r| r.tenant_id).collect();
        let actor = person(subject, &bindings(rows), &mine);
        checks
            .iter()
            .map(|check| {
                let Some(target) = facts.target(&check.resource) else { return Ok(Decision::Hide) };
                if self.policy.allows(&actor, &check.action, &target)? {
                    return Ok(Decision::Allow);
                }
                // Refused: FORBIDDEN if the subject may see the resource at all, else NOT_FOUND.
                let in_tenant = check.resource.tenant().is_some_and(|t| member_of.contains(&t));
                let sees = in_tenant && self.policy.allows(&actor, "read", &target)?;
                Ok(if sees { Decision::Forbid } else { Decision::Hide })
            })
            .collect()
    }
}

/// What the database says about the resources of one batch of checks.
struct Facts {
    /// Known organizations, and whether each is deleted.
    deleted: HashMap<Uuid, bool>,
    /// The organization of each known workspace.
    workspaces: HashMap<Uuid, Uuid>,
    /// The organizations of each person whose profile is checked (as far as the subject sees).
    profiles: HashMap<Uuid, Vec<Uuid>>,
}

impl Facts {
    /// The policy's view of `resource`, or `None` when it does not exist as described (an
    /// unknown organization, or a workspace that is not in the organization it is said to be in).
    fn target(&self, resource: &Resource) -> Option<Target> {
        match resource {
            Resource::Organization { id } => Some(Target::new(resource, *self.deleted.get(id)?, &[])),
            Resource::Workspace { id, organization_id } => {
                if self.workspaces.get(id) != Some(organization_id) {
                    return None;
                }
                Some(Target::new(resource, *self.deleted.get(organization_id)?, &[]))
            }
            Resource::User { id } => {
                Some(Target::new(resource, false, self.profiles.get(id).map(Vec::as_slice).unwrap_or(&[])))
            }
        }
    }
}

/// A subject's standing on a resource.
#[derive(Debug, Clone)]
pub struct Standing {
    pub role: Option<&'static str>,
    pub actions: Vec<String>,
}

fn distinct(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    ids.collect::<BTreeSet<_>>().into_iter().collect()
}

fn bindings(rows: Vec<store::BindingRow>) -> Vec<Binding> {
    rows.into_iter().map(|r| Binding { resource_id: r.resource_id, role: r.role }).collect()
}

/// What a check's decision depends on: its tenant's bindings, or memberships anywhere.
fn scope_of(resource: &Resource) -> Uuid {
    resource.tenant().unwrap_or(PEOPLE)
}

fn slot(subject: Uuid, check: &Check, versions: &HashMap<Uuid, i64>) -> Slot {
    let resource = match check.resource {
        Resource::Organization { id } => format!("o:{id}"),
        Resource::Workspace { id, .. } => format!("w:{id}"),
        Resource::User { id } => format!("u:{id}"),
    };
    let scope = scope_of(&check.resource);
    Slot {
        scope: scope.to_string(),
        version: versions.get(&scope).copied().unwrap_or(0),
        key: format!("{subject}:{}:{resource}", check.action),
    }
}

#[async_trait::async_trait]
impl Authorizer for Engine {
    async fn decide(&self, subject: Uuid, checks: &[Check]) -> Result<Vec<Decision>> {
        let scopes = distinct(checks.iter().map(|c| scope_of(&c.resource)));
        let versions = store::versions(&self.db, &scopes).await?;
        let slots: Vec<Slot> = checks.iter().map(|check| slot(subject, check, &versions)).collect();
        let cached = self.cache.get(&slots).await?;
        let missing: Vec<usize> = (0..checks.len()).filter(|&i| cached[i].is_none()).collect();
        let mut decisions: Vec<Decision> = cached.iter().map(|c| c.unwrap_or(Decision::Hide)).collect();
        if missing.is_empty() {
            return Ok(decisions);
        }
        self.catch_up().await?;
        let to_decide: Vec<&Check> = missing.iter().map(|&i| &checks[i]).collect();
        let fresh = self.evaluate(subject, &to_decide).await?;
        let mut entries = Vec::with_capacity(missing.len());
        for (&i, decision) in missing.iter().zip(fresh) {
            decisions[i] = decision;
            // Under the versions read before evaluating: if a change committed meanwhile, this
            // entry sits under an outdated version, where nobody looks.
            entries.push((slots[i].clone(), decision));
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
