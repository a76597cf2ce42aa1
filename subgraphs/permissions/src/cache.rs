//! Decisions, cached in Redis when configured (shared by every permissions replica) or in
//! process. Each decision is stored under its scope's epoch (a tenant, or `people` for profile
//! checks); a binding change bumps the epoch, so every decision made before it is ignored at
//! once, and a decision computed concurrently with the change lands under the old epoch, where
//! nobody reads it. Entries also expire, as a safety net.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;
use pyairtable_kit::Result;
use pyairtable_kit::authz::Decision;
use redis::aio::ConnectionManager;

const TTL: Duration = Duration::from_secs(60);
const LOCAL_CAPACITY: usize = 100_000;

/// Reads epochs and decisions in one round trip: ARGV holds (scope, key) pairs; the answer holds
/// (epoch, decision or "") pairs. An epoch is `<epoch of everything>.<epoch of the scope>`.
const READ: &str = r"
local out = {}
local all = redis.call('GET', 'authz:epoch:*') or '0'
for i = 1, #ARGV, 2 do
  local epoch = all .. '.' .. (redis.call('GET', 'authz:epoch:' .. ARGV[i]) or '0')
  local value = redis.call('GET', 'authz:d:' .. ARGV[i] .. ':' .. epoch .. ':' .. ARGV[i + 1]) or ''
  out[#out + 1] = epoch
  out[#out + 1] = value
end
return out
";

/// A place in the cache: a scope and a key within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    pub scope: String,
    pub key: String,
}

pub enum DecisionCache {
    Local(Mutex<Local>),
    Redis(ConnectionManager),
}

pub struct Local {
    all: u64,
    epochs: HashMap<String, u64>,
    decisions: LruCache<(String, String, String), (Decision, Instant)>,
}

/// The scope whose bump forgets every decision.
pub const EVERYTHING: &str = "*";

impl DecisionCache {
    pub fn new(redis: Option<ConnectionManager>) -> Self {
        match redis {
            Some(redis) => Self::Redis(redis),
            None => {
                let capacity = NonZeroUsize::new(LOCAL_CAPACITY).unwrap_or(NonZeroUsize::MIN);
                Self::Local(Mutex::new(Local {
                    all: 0,
                    epochs: HashMap::new(),
                    decisions: LruCache::new(capacity),
                }))
            }
        }
    }

    /// The current epoch of each slot's scope, and the decision cached under it, if any.
    pub async fn get(&self, slots: &[Slot]) -> Result<Vec<(String, Option<Decision>)>> {
        match self {
            Self::Local(local) => {
                let mut local = lock(local);
                let now = Instant::now();
                Ok(slots
                    .iter()
                    .map(|slot| {
                        let epoch =
                            format!("{}.{}", local.all, local.epochs.get(&slot.scope).copied().unwrap_or(0));
                        let entry = (slot.scope.clone(), epoch.clone(), slot.key.clone());
                        let decision = local
                            .decisions
                            .get(&entry)
                            .filter(|(_, at)| now.duration_since(*at) < TTL)
                            .map(|(decision, _)| *decision);
                        (epoch, decision)
                    })
                    .collect())
            }
            Self::Redis(redis) => {
                if slots.is_empty() {
                    return Ok(Vec::new());
                }
                let script = redis::Script::new(READ);
                let mut invocation = script.prepare_invoke();
                for slot in slots {
                    invocation.arg(&slot.scope).arg(&slot.key);
                }
                let answer: Vec<String> =
                    invocation.invoke_async(&mut redis.clone()).await.map_err(redis_error)?;
                Ok(answer
                    .chunks(2)
                    .map(|pair| {
                        let epoch = pair.first().cloned().unwrap_or_default();
                        let decision = pair.get(1).and_then(|d| decode(d));
                        (epoch, decision)
                    })
                    .collect())
            }
        }
    }

    /// Stores decisions under the epochs they were computed at.
    pub async fn put(&self, entries: &[(Slot, String, Decision)]) -> Result<()> {
        match self {
            Self::Local(local) => {
                let mut local = lock(local);
                let now = Instant::now();
                for (slot, epoch, decision) in entries {
                    local
                        .decisions
                        .put((slot.scope.clone(), epoch.clone(), slot.key.clone()), (*decision, now));
                }
                Ok(())
            }
            Self::Redis(redis) => {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut pipe = redis::pipe();
                for (slot, epoch, decision) in entries {
                    let key = format!("authz:d:{}:{epoch}:{}", slot.scope, slot.key);
                    pipe.set_ex(key, encode(*decision), TTL.as_secs()).ignore();
                }
                pipe.query_async::<()>(&mut redis.clone()).await.map_err(redis_error)
            }
        }
    }

    /// Forgets every decision in `scopes` ([`EVERYTHING`]: all of them).
    pub async fn bump(&self, scopes: &[String]) -> Result<()> {
        match self {
            Self::Local(local) => {
                let mut local = lock(local);
                for scope in scopes {
                    if scope == EVERYTHING {
                        local.all += 1;
                    } else {
                        *local.epochs.entry(scope.clone()).or_default() += 1;
                    }
                }
                Ok(())
            }
            Self::Redis(redis) => {
                let mut pipe = redis::pipe();
                for scope in scopes {
                    pipe.incr(format!("authz:epoch:{scope}"), 1).ignore();
                }
                pipe.query_async::<()>(&mut redis.clone()).await.map_err(redis_error)
            }
        }
    }
}

fn lock(local: &Mutex<Local>) -> std::sync::MutexGuard<'_, Local> {
    // A panic while holding the lock cannot leave the cache inconsistent in a harmful way.
    local.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn encode(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Forbid => "forbid",
        Decision::Hide => "hide",
    }
}

fn decode(value: &str) -> Option<Decision> {
    match value {
        "allow" => Some(Decision::Allow),
        "forbid" => Some(Decision::Forbid),
        "hide" => Some(Decision::Hide),
        _ => None,
    }
}

fn redis_error(err: redis::RedisError) -> pyairtable_kit::Error {
    pyairtable_kit::Error::internal(anyhow::anyhow!("redis (authorization cache): {err}"))
}
