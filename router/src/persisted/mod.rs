//! Automatic persisted queries (Apollo's APQ protocol) and trusted documents.
//!
//! APQ: a client sends `extensions.persistedQuery { version: 1, sha256Hash }` without the query;
//! an unknown hash answers `PERSISTED_QUERY_NOT_FOUND` (message `PersistedQueryNotFound`, as
//! Apollo Client's persisted-queries link expects), and the client retries with the query, which
//! the router checks against the hash and stores once the operation has parsed and validated
//! (so the store holds only real operations). The store is an LRU in process, or Redis (24 h)
//! when configured, with the LRU in front of it.
//!
//! Trusted documents: when a list is configured, only its documents run (by hash, by
//! `documentId`, or by exact text).

mod trusted;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lru::LruCache;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::response::GraphQLError;
pub use trusted::TrustedDocuments;

/// The error codes of persisted queries.
pub mod code {
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    pub const PERSISTED_QUERY_NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
    pub const PERSISTED_QUERY_HASH_MISMATCH: &str = "PERSISTED_QUERY_HASH_MISMATCH";
    pub const PERSISTED_QUERY_NOT_IN_LIST: &str = "PERSISTED_QUERY_NOT_IN_LIST";
}

const MEMORY_ENTRIES: usize = 10_000;
const REDIS_TTL_SECS: u64 = 24 * 3600;
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// The lowercase hex SHA-256 of a document, as APQ names it.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The document a request runs.
#[derive(Debug)]
pub struct Resolved {
    pub query: String,
    /// A hash to store the query under once it has validated.
    pub register: Option<String>,
    /// Whether the document is in the trusted list (always true without a list).
    pub trusted: bool,
}

/// Persisted queries of one router.
pub struct PersistedQueries {
    apq: bool,
    memory: Mutex<LruCache<String, Arc<str>>>,
    redis: Option<(redis::aio::ConnectionManager, String)>,
    trusted: Option<Arc<TrustedDocuments>>,
}

fn error(message: &str, code: &str) -> Box<GraphQLError> {
    Box::new(GraphQLError::new(message, code))
}

impl PersistedQueries {
    pub fn new(
        apq: bool,
        redis: Option<(redis::aio::ConnectionManager, &str)>,
        trusted: Option<Arc<TrustedDocuments>>,
    ) -> Self {
        let size = NonZeroUsize::new(MEMORY_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Self {
            apq,
            memory: Mutex::new(LruCache::new(size)),
            redis: redis.map(|(c, prefix)| (c, format!("{prefix}apq:"))),
            trusted,
        }
    }

    /// Whether only trusted documents run.
    pub fn locked(&self) -> bool {
        self.trusted.is_some()
    }

    /// The document of a request: its query, or the one its hash or id names.
    pub async fn resolve(
        &self,
        query: Option<String>,
        extensions: Option<&Map<String, Value>>,
        document_id: Option<&str>,
    ) -> Result<Resolved, Box<GraphQLError>> {
        let persisted = extensions.and_then(|e| e.get("persistedQuery")).filter(|p| !p.is_null());
        let hash = match (persisted, document_id) {
            (Some(persisted), _) => Some(self.hash_of(persisted)?),
            (None, Some(id)) => Some(id.to_owned()),
            (None, None) => None,
        };
        let query = query.filter(|q| !q.trim().is_empty());
        match (query, hash) {
            (Some(query), None) => {
                let trusted = self.trusted.as_ref().is_none_or(|t| t.contains_text(&query));
                Ok(Resolved { query, register: None, trusted })
            }
            (Some(query), Some(hash)) => {
                if sha256_hex(&query) != hash.to_ascii_lowercase() {
                    return Err(error(
                        "the query does not match its sha256Hash",
                        code::PERSISTED_QUERY_HASH_MISMATCH,
                    ));
                }
                let trusted =
                    self.trusted.as_ref().is_none_or(|t| t.get(&hash).is_some() || t.contains_text(&query));
                let register = (self.apq && self.trusted.is_none()).then_some(hash);
                Ok(Resolved { query, register, trusted })
            }
            (None, Some(hash)) => self.lookup(&hash).await,
            (None, None) => Err(error("the request has no query", crate::response::code::BAD_REQUEST)),
        }
    }

    fn hash_of(&self, persisted: &Value) -> Result<String, Box<GraphQLError>> {
        if !self.apq && self.trusted.is_none() {
            return Err(error("PersistedQueryNotSupported", code::PERSISTED_QUERY_NOT_SUPPORTED));
        }
        if persisted.get("version").and_then(Value::as_u64) != Some(1) {
            let message = "only persistedQuery version 1 is supported";
            return Err(error(message, code::PERSISTED_QUERY_NOT_SUPPORTED));
        }
        match persisted.get("sha256Hash").and_then(Value::as_str) {
            Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(hash.to_ascii_lowercase())
            }
            _ => Err(error(
                "persistedQuery.sha256Hash must be 64 hex digits",
                crate::response::code::BAD_REQUEST,
            )),
        }
    }

    async fn lookup(&self, hash: &str) -> Result<Resolved, Box<GraphQLError>> {
        if let Some(trusted) = &self.trusted {
            return match trusted.get(hash) {
                Some(query) => Ok(Resolved { query: query.to_owned(), register: None, trusted: true }),
                None => {
                    Err(error("the document is not in the trusted list", code::PERSISTED_QUERY_NOT_IN_LIST))
                }
            };
        }
        let cached = self.lock().get(hash).cloned();
        let found = match cached {
            Some(query) => Some(query.to_string()),
            None => self.redis_get(hash).await,
        };
        match found {
            Some(query) => {
                self.lock().put(hash.to_owned(), Arc::from(query.as_str()));
                Ok(Resolved { query, register: None, trusted: true })
            }
            None => Err(error("PersistedQueryNotFound", code::PERSISTED_QUERY_NOT_FOUND)),
        }
    }

    /// Stores a validated query under its hash.
    pub async fn register(&self, hash: &str, query: &str) {
        self.lock().put(hash.to_owned(), Arc::from(query));
        let Some((connection, prefix)) = &self.redis else { return };
        let mut command = redis::cmd("SET");
        command.arg(format!("{prefix}{hash}")).arg(query).arg("EX").arg(REDIS_TTL_SECS);
        let mut connection = connection.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, command.query_async::<()>(&mut connection)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => redis_failed(&err.to_string()),
            Err(_) => redis_failed("timed out"),
        }
    }

    async fn redis_get(&self, hash: &str) -> Option<String> {
        let (connection, prefix) = self.redis.as_ref()?;
        let mut command = redis::cmd("GET");
        command.arg(format!("{prefix}{hash}"));
        let mut connection = connection.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, command.query_async::<Option<String>>(&mut connection))
            .await
        {
            Ok(Ok(found)) => found,
            Ok(Err(err)) => {
                redis_failed(&err.to_string());
                None
            }
            Err(_) => {
                redis_failed("timed out");
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<str>>> {
        self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A Redis failure costs a retry with the full query (the client's next request), never an error.
fn redis_failed(err: &str) {
    tracing::warn!(%err, "persisted queries: Redis failed; using this router's memory only");
    metrics::counter!("router_apq_backend_errors_total").increment(1);
}
