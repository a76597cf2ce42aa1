//! Decisions, cached in Redis when configured (shared by every permissions replica) or in
//! process. A decision is stored under the version of what it depends on
//! (`permissions.versions`, bumped in the transaction of every binding change), so a change is
//! seen by the very next check everywhere: the new version finds no entry. Entries expire, which
//! only bounds memory.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;
use pyairtable_kit::Result;
use pyairtable_kit::authz::Decision;
use redis::aio::ConnectionManager;

const TTL: Duration = Duration::from_secs(600);
const LOCAL_CAPACITY: usize = 100_000;

/// Where a decision is kept: the scope it depends on, that scope's version, and the question.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    pub scope: String,
    pub version: i64,
    pub key: String,
}

impl Slot {
    fn redis_key(&self) -> String {
        format!("authz:d:{}:{}:{}", self.scope, self.version, self.key)
    }
}

pub enum DecisionCache {
    Local(Mutex<LruCache<Slot, (Decision, Instant)>>),
    Redis(ConnectionManager),
}

impl DecisionCache {
    pub fn new(redis: Option<ConnectionManager>) -> Self {
        match redis {
            Some(redis) => Self::Redis(redis),
            None => {
                let capacity = NonZeroUsize::new(LOCAL_CAPACITY).unwrap_or(NonZeroUsize::MIN);
                Self::Local(Mutex::new(LruCache::new(capacity)))
            }
        }
    }

    /// The decision cached in each slot, if any (one round trip to Redis).
    pub async fn get(&self, slots: &[Slot]) -> Result<Vec<Option<Decision>>> {
        match self {
            Self::Local(local) => {
                let mut local = lock(local);
                let now = Instant::now();
                Ok(slots
                    .iter()
                    .map(|slot| {
                        local.get(slot).filter(|(_, at)| now.duration_since(*at) < TTL).map(|(d, _)| *d)
                    })
                    .collect())
            }
            Self::Redis(redis) => {
                if slots.is_empty() {
                    return Ok(Vec::new());
                }
                let keys: Vec<String> = slots.iter().map(Slot::redis_key).collect();
                let values: Vec<Option<String>> = redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut redis.clone())
                    .await
                    .map_err(redis_error)?;
                Ok(values.iter().map(|v| v.as_deref().and_then(decode)).collect())
            }
        }
    }

    /// Stores decisions in their slots.
    pub async fn put(&self, entries: &[(Slot, Decision)]) -> Result<()> {
        match self {
            Self::Local(local) => {
                let mut local = lock(local);
                let now = Instant::now();
                for (slot, decision) in entries {
                    local.put(slot.clone(), (*decision, now));
                }
                Ok(())
            }
            Self::Redis(redis) => {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut pipe = redis::pipe();
                for (slot, decision) in entries {
                    pipe.set_ex(slot.redis_key(), encode(*decision), TTL.as_secs()).ignore();
                }
                pipe.query_async::<()>(&mut redis.clone()).await.map_err(redis_error)
            }
        }
    }
}

fn lock<T>(local: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
