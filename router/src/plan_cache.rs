//! The cache of prepared operations (parsed, validated, planned). Entries belong to one
//! generation of the supergraph: the first lookup for a newer generation empties the cache, and
//! requests still running on an older one neither read nor fill it.

use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

pub struct PlanCache<V> {
    inner: Mutex<(u64, LruCache<u64, V>)>,
}

impl<V: Clone> PlanCache<V> {
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self { inner: Mutex::new((0, LruCache::new(capacity))) }
    }

    /// The cache key of an operation: its text, the operation picked, and which progressive
    /// overrides are on for this request.
    pub fn key(query: &str, operation_name: Option<&str>, overrides: u64) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (query, operation_name, overrides).hash(&mut hasher);
        hasher.finish()
    }

    /// The cache for `generation`, when it is current.
    fn current(&self, generation: u64) -> Option<MutexGuard<'_, (u64, LruCache<u64, V>)>> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if generation > inner.0 {
            inner.1.clear();
            inner.0 = generation;
        }
        (inner.0 == generation).then_some(inner)
    }

    pub fn get(&self, generation: u64, key: u64) -> Option<V> {
        self.current(generation)?.1.get(&key).cloned()
    }

    pub fn put(&self, generation: u64, key: u64, value: V) {
        if let Some(mut inner) = self.current(generation) {
            inner.1.put(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_generation_empties_the_cache_and_an_old_one_is_ignored() {
        let cache = PlanCache::new(8);
        let key = PlanCache::<u8>::key("{ a }", None, 0);
        cache.put(1, key, 1);
        assert_eq!(cache.get(1, key), Some(1));
        assert_eq!(cache.get(2, key), None, "generation 2 starts empty");
        cache.put(1, key, 9);
        assert_eq!(cache.get(1, key), None, "a request on generation 1 does not use the cache");
        assert_eq!(cache.get(2, key), None);
        assert_ne!(key, PlanCache::<u8>::key("{ a }", None, 1), "overrides are part of the key");
        assert_ne!(key, PlanCache::<u8>::key("{ a }", Some("A"), 0));
    }
}
