//! Deduplication of identical in-flight subgraph fetches: while one fetch with a given key is
//! running, the same fetch from another request waits for its answer instead of sending its own.
//! The key holds the whole query, the variables and the caller's identity, so two callers'
//! fetches are never merged.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::transport::{SubgraphResponse, TransportError};

pub type FetchResult = Result<SubgraphResponse, TransportError>;

type Slot = watch::Receiver<Option<Arc<FetchResult>>>;

/// The fetches in flight, by key.
#[derive(Default)]
pub struct Inflight(Mutex<HashMap<Vec<u8>, Slot>>);

/// Removes the leader's slot when it finishes or is cancelled.
struct Leader<'a> {
    inflight: &'a Inflight,
    key: &'a [u8],
    slot: Slot,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut map = self.inflight.lock();
        if map.get(self.key).is_some_and(|s| s.same_channel(&self.slot)) {
            map.remove(self.key);
        }
    }
}

impl Inflight {
    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Slot>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `fetch`, unless a fetch with the same key is in flight: then `on_join` is called and
    /// its answer awaited. When the fetch being waited for is cancelled, this one runs after all.
    pub async fn run<F>(&self, key: Vec<u8>, fetch: F, on_join: impl FnOnce()) -> FetchResult
    where
        F: Future<Output = FetchResult>,
    {
        let joined = {
            let mut map = self.lock();
            match map.get(&key) {
                Some(slot) => Err(slot.clone()),
                None => {
                    let (sender, slot) = watch::channel(None);
                    map.insert(key.clone(), slot.clone());
                    Ok((sender, slot))
                }
            }
        };
        match joined {
            Ok((sender, slot)) => {
                let leader = Leader { inflight: self, key: &key, slot };
                let result = fetch.await;
                drop(leader);
                // Out of the map now: whoever waits has joined already. Copied only for them.
                if sender.receiver_count() > 0 {
                    let _ = sender.send(Some(Arc::new(result.clone())));
                }
                result
            }
            Err(mut slot) => {
                on_join();
                let shared = slot.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
                match shared {
                    Some(result) => result.as_ref().clone(),
                    None => fetch.await,
                }
            }
        }
    }
}
