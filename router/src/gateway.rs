//! The supergraph the router serves, swappable at run time: a reload builds the new supergraph
//! and its fetchers beside the old ones and swaps them in one step. A request takes the current
//! [`Active`] once and keeps it to its end, so in-flight requests finish on the schema they
//! started with.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::RouterError;
use crate::fetch::{Fetcher, SubgraphPolicy};
use crate::supergraph::{SubgraphInfo, Supergraph};
use crate::transport::Transport;

/// Makes the transport to a subgraph a supergraph names (its URL may be overridden).
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, subgraph: &SubgraphInfo) -> Result<Arc<dyn Transport>, String>;
}

/// Fixed transports by subgraph name (in-process subgraphs, tests).
impl Connector for HashMap<String, Arc<dyn Transport>> {
    fn connect(&self, subgraph: &SubgraphInfo) -> Result<Arc<dyn Transport>, String> {
        self.get(&subgraph.name).cloned().ok_or_else(|| "no transport for it".to_owned())
    }
}

/// One supergraph and the fetchers of its subgraphs.
pub struct Active {
    pub supergraph: Supergraph,
    pub fetchers: HashMap<String, Arc<Fetcher>>,
    /// Counts swaps: the plan cache keeps one generation.
    pub generation: u64,
}

/// The current supergraph and how to reach subgraphs of the next one.
pub struct Gateway {
    current: RwLock<Arc<Active>>,
    connector: Box<dyn Connector>,
    policy: SubgraphPolicy,
}

impl Gateway {
    pub fn new(
        supergraph: Supergraph,
        connector: impl Connector,
        policy: SubgraphPolicy,
    ) -> Result<Self, RouterError> {
        let connector: Box<dyn Connector> = Box::new(connector);
        let fetchers = connect_all(&supergraph, connector.as_ref(), &policy, None)?;
        let active = Active { supergraph, fetchers, generation: 1 };
        Ok(Self { current: RwLock::new(Arc::new(active)), connector, policy })
    }

    /// The supergraph new requests run on.
    pub fn current(&self) -> Arc<Active> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Loads `sdl` and, when it is valid and every subgraph can be reached, serves it to new
    /// requests. Subgraphs whose name and URL did not change keep their fetcher (connections,
    /// circuit state). Returns the new version, or why the old supergraph stays.
    pub fn reload(&self, sdl: &str) -> Result<u64, RouterError> {
        let supergraph = Supergraph::parse(sdl)?;
        let old = self.current();
        if supergraph.version == old.supergraph.version {
            return Ok(old.supergraph.version);
        }
        let fetchers = connect_all(&supergraph, self.connector.as_ref(), &self.policy, Some(&old))?;
        let version = supergraph.version;
        let active = Active { supergraph, fetchers, generation: old.generation + 1 };
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(active);
        metrics::counter!("router_supergraph_reloads_total", "outcome" => "ok").increment(1);
        tracing::info!(version = format!("{version:016x}"), "supergraph reloaded");
        Ok(version)
    }

    /// Checks `path` every `every` and reloads it when it changed; an invalid file is logged and
    /// the current supergraph keeps serving. Stops when the gateway is dropped.
    pub fn watch(self: &Arc<Self>, path: PathBuf, every: Duration) -> tokio::task::JoinHandle<()> {
        let gateway = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen = stamp(&path);
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(gateway) = gateway.upgrade() else { return };
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                let result = match tokio::fs::read_to_string(&path).await {
                    Ok(sdl) => gateway.reload(&sdl).map(drop).map_err(|e| e.to_string()),
                    Err(err) => Err(format!("cannot read it: {err}")),
                };
                if let Err(err) = result {
                    metrics::counter!("router_supergraph_reloads_total", "outcome" => "error").increment(1);
                    tracing::error!(path = %path.display(), %err, "supergraph not reloaded; the previous one keeps serving");
                }
            }
        })
    }
}

/// What tells a changed file: modification time and size (a rewrite within the same second
/// usually changes the size; the content hash decides whether anything changed at all).
fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

fn connect_all(
    supergraph: &Supergraph,
    connector: &dyn Connector,
    policy: &SubgraphPolicy,
    old: Option<&Active>,
) -> Result<HashMap<String, Arc<Fetcher>>, RouterError> {
    let mut fetchers = HashMap::new();
    let mut missing = Vec::new();
    for info in &supergraph.subgraphs {
        let unchanged = old.and_then(|old| {
            let before = old.supergraph.subgraphs.iter().find(|s| s.name == info.name)?;
            (before == info).then(|| old.fetchers.get(&info.name).cloned()).flatten()
        });
        let fetcher = match unchanged {
            Some(fetcher) => fetcher,
            None => match connector.connect(info) {
                Ok(transport) => Arc::new(Fetcher::new(&info.name, transport, policy)),
                Err(err) => {
                    missing.push(format!("{}: {err}", info.name));
                    continue;
                }
            },
        };
        fetchers.insert(info.name.clone(), fetcher);
    }
    if missing.is_empty() { Ok(fetchers) } else { Err(RouterError::MissingSubgraphs(missing)) }
}
