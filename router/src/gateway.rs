//! The supergraph the router serves, swappable at run time: a reload builds the new supergraph
//! and its fetchers beside the old ones and swaps them in one step. A request takes the current
//! [`Active`] once and keeps it to its end, so in-flight requests finish on the schema they
//! started with.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

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
    /// Why the last reload of the watched file failed; `None` after a good one.
    last_error: Mutex<Option<String>>,
    failed_reloads: AtomicU64,
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
        Ok(Self {
            current: RwLock::new(Arc::new(active)),
            connector,
            policy,
            last_error: Mutex::new(None),
            failed_reloads: AtomicU64::new(0),
        })
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

    /// How many reloads of the watched file failed, and why the last one did (until one succeeds).
    pub fn reload_failures(&self) -> (u64, Option<String>) {
        let last = self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        (self.failed_reloads.load(Ordering::SeqCst), last)
    }

    fn record(&self, result: Result<(), String>) {
        let mut last = self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if result.is_err() {
            self.failed_reloads.fetch_add(1, Ordering::SeqCst);
            metrics::counter!("router_supergraph_reloads_total", "outcome" => "error").increment(1);
        }
        *last = result.err();
    }

    /// Reads `path` every `every` and reloads it when its content changed (a supergraph is small;
    /// reading it is cheaper than trusting modification times, which atomic renames and coarse
    /// clocks blur). An invalid file is logged and the current supergraph keeps serving. Stops
    /// when the gateway is dropped.
    pub fn watch(self: &Arc<Self>, path: PathBuf, every: Duration) -> tokio::task::JoinHandle<()> {
        let gateway = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen = content_hash(&path).await;
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(gateway) = gateway.upgrade() else { return };
                let now = content_hash(&path).await;
                if now == seen {
                    continue;
                }
                seen = now;
                let result = match tokio::fs::read_to_string(&path).await {
                    Ok(sdl) => gateway.reload(&sdl).map(drop).map_err(|e| e.to_string()),
                    Err(err) => Err(format!("cannot read it: {err}")),
                };
                if let Err(err) = &result {
                    tracing::error!(path = %path.display(), %err, "supergraph not reloaded; the previous one keeps serving");
                }
                gateway.record(result);
            }
        })
    }
}

/// A hash of the file's content; `None` while it cannot be read.
async fn content_hash(path: &std::path::Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = tokio::fs::read(path).await.ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
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
