//! Batched loads of the files subgraph (one statement per request level, whatever the number of
//! workspaces or files asked about).

use std::collections::{BTreeSet, HashMap};

use async_graphql::dataloader::Loader;
use pyairtable_kit::connection::{Page, PageArgs};
use pyairtable_kit::db::{Scope, scoped};
use uuid::Uuid;

use crate::service::Files;
use crate::store::{self, FileRow};

/// The organization of a workspace, as one caller may find it (in that caller's organizations).
pub struct TenantLoader(pub Files);

impl Loader<(Uuid, Uuid)> for TenantLoader {
    type Value = Uuid;
    type Error = pyairtable_kit::Error;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> pyairtable_kit::Result<HashMap<(Uuid, Uuid), Uuid>> {
        let mut found = self.lookup(keys).await?;
        if found.len() < keys.len() {
            // A workspace created a moment ago: its event may not be applied yet.
            crate::events::consumer().catch_up(self.0.db()).await?;
            found = self.lookup(keys).await?;
        }
        Ok(found)
    }
}

impl TenantLoader {
    async fn lookup(&self, keys: &[(Uuid, Uuid)]) -> pyairtable_kit::Result<HashMap<(Uuid, Uuid), Uuid>> {
        let mut found = HashMap::new();
        let callers: BTreeSet<Uuid> = keys.iter().map(|(c, _)| *c).collect();
        for caller in callers {
            let ids: Vec<Uuid> = keys.iter().filter(|(c, _)| *c == caller).map(|(_, w)| *w).collect();
            let mine = self.0.authorizer().organizations_of(caller).await?;
            let mut tx = scoped(self.0.db(), &Scope::tenants(mine)).await?;
            let rows = store::workspace_tenants(&mut tx, &ids).await?;
            tx.commit().await?;
            found.extend(rows.into_iter().map(|(workspace, tenant)| ((caller, workspace), tenant)));
        }
        Ok(found)
    }
}

/// One page of a workspace's files, keyed by (organization, workspace, page).
pub struct PageLoader(pub Files);

impl Loader<(Uuid, Uuid, PageArgs)> for PageLoader {
    type Value = Page<FileRow>;
    type Error = pyairtable_kit::Error;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid, PageArgs)],
    ) -> pyairtable_kit::Result<HashMap<(Uuid, Uuid, PageArgs), Page<FileRow>>> {
        let mut found = HashMap::new();
        let pages: BTreeSet<PageArgsKey> = keys.iter().map(|(_, _, a)| PageArgsKey(*a)).collect();
        for PageArgsKey(args) in pages {
            let group: Vec<&(Uuid, Uuid, PageArgs)> = keys.iter().filter(|(_, _, a)| *a == args).collect();
            let tenants: BTreeSet<Uuid> = group.iter().map(|(t, _, _)| *t).collect();
            let workspaces: Vec<Uuid> = group.iter().map(|(_, w, _)| *w).collect();
            let mut tx = scoped(self.0.db(), &Scope::tenants(tenants)).await?;
            let rows = store::pages(&mut tx, &workspaces, &args).await?;
            tx.commit().await?;
            let mut by_workspace: HashMap<Uuid, Vec<FileRow>> = HashMap::new();
            for row in rows {
                by_workspace.entry(row.workspace_id).or_default().push(row);
            }
            for (tenant, workspace, _) in group {
                let rows = by_workspace.remove(workspace).unwrap_or_default();
                found.insert((*tenant, *workspace, args), args.page(rows));
            }
        }
        Ok(found)
    }
}

/// Ready files of each workspace, keyed by (organization, workspace).
pub struct CountLoader(pub Files);

impl Loader<(Uuid, Uuid)> for CountLoader {
    type Value = i64;
    type Error = pyairtable_kit::Error;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> pyairtable_kit::Result<HashMap<(Uuid, Uuid), i64>> {
        let tenants: BTreeSet<Uuid> = keys.iter().map(|(t, _)| *t).collect();
        let workspaces: Vec<Uuid> = keys.iter().map(|(_, w)| *w).collect();
        let mut tx = scoped(self.0.db(), &Scope::tenants(tenants)).await?;
        let counts: HashMap<Uuid, i64> = store::counts(&mut tx, &workspaces).await?.into_iter().collect();
        tx.commit().await?;
        Ok(keys.iter().map(|key| (*key, counts.get(&key.1).copied().unwrap_or(0))).collect())
    }
}

/// `PageArgs` in a sorted set (grouping keys by page request).
#[derive(PartialEq, Eq)]
struct PageArgsKey(PageArgs);

impl PartialOrd for PageArgsKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PageArgsKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |a: &PageArgs| (a.after, a.before, a.limit, a.backward);
        key(&self.0).cmp(&key(&other.0))
    }
}
