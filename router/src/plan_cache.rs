//! The cache of prepared operations (parsed, validated, planned). Entries belong to one
//! generation of the supergraph: the first lookup for a newer generation empties the cache, and
//! requests still running on an older one neither read nor fill it.

use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

/// What an entry is stored for: the operation text, the operation picked, and which progressive
/// overrides are on. Entries are found by a hash and then compared in full: two operations whose
/// hashes collide never share a plan.
#[derive(Clone, Copy)]
pub struct PlanKey<'a> {
    hash: u64,
    query: &'a str,
    operation_name: Option<&'a str>,
    overrides: u64,
}

struct Entry<V> {
    query: Box<str>,
    operation_name: Option<Box<str>>,
    overrides: u64,
    value: V,
}

impl<V> Entry<V> {
    fn is(&self, key: &PlanKey<'_>) -> bool {
        *self.query == *key.query
            && self.operation_name.as_deref() == key.operation_name
            && self.overrides == key.overrides
    }
}

type Generation<V> = (u64, LruCache<u64, Entry<V>>);

pub struct PlanCache<V> {
    inner: Mutex<Generation<V>>,
}

impl<V: Clone> PlanCache<V> {
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self { inner: Mutex::new((0, LruCache::new(capacity))) }
    }

    pub fn key<'a>(query: &'a str, operation_name: Option<&'a str>, overrides: u64) -> PlanKey<'a> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (query, operation_name, overrides).hash(&mut hasher);
        PlanKey { hash: hasher.finish(), query, operation_name, overrides }
    }

    /// The cache for `generation`, when it is current.
    fn current(&self, generation: u64) -> Option<MutexGuard<'_, Generation<V>>> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if generation > inner.0 {
            inner.1.clear();
            inner.0 = generation;
        }
        (inner.0 == generation).then_some(inner)
    }

    pub fn get(&self, generation: u64, key: PlanKey<'_>) -> Option<V> {
        self.current(generation)?.1.get(&key.hash).filter(|e| e.is(&key)).map(|e| e.value.clone())
    }

    pub fn put(&self, generation: u64, key: PlanKey<'_>, value: V) {
        if let Some(mut inner) = self.current(generation) {
            let entry = Entry {
                query: key.query.into(),
                operation_name: key.operation_name.map(Into::into),
                overrides: key.overrides,
                value,
            };
            inner.1.put(key.hash, entry);
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
        cache.put(3, key, 3);
        assert_eq!(
            cache.get(3, PlanCache::<u8>::key("{ a }", None, 1)),
            None,
            "overrides are part of the key"
        );
        assert_eq!(cache.get(3, PlanCache::<u8>::key("{ a }", Some("A"), 0)), None);
        let collision = PlanKey { query: "{ b }", ..key };
        assert_eq!(cache.get(3, collision), None, "an equal hash is not enough");
        assert_eq!(cache.get(3, key), Some(3));
    }
}
