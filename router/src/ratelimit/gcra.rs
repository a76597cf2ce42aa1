//! GCRA (the generic cell rate algorithm) on one key, and the in-process store of its state.
//!
//! A key's state is one number, its theoretical arrival time (TAT). A request of `cost` units
//! under a quota of `limit` per `window` moves the TAT by `cost * window / limit`; it is allowed
//! when the new TAT is at most one window ahead of now. The same arithmetic runs in Redis (the
//! Lua script in `redis.rs`), in microseconds as doubles.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sweep expired keys when the map grows past this many entries.
const SWEEP_AT: usize = 100_000;

/// What one key's check found, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub allowed: bool,
    /// Allowed: the units still available after this request. Refused: 0.
    pub remaining: u64,
    /// Allowed: until the budget is whole again. Refused: until the request would pass.
    pub wait_us: f64,
}

/// One key's arithmetic: the new TAT (to store when everything passed) and the verdict.
pub fn check(tat: Option<f64>, now: f64, cost: u64, limit: u64, window_us: f64) -> (f64, Cell) {
    let interval = window_us / limit as f64;
    let base = tat.unwrap_or(now).max(now);
    let new_tat = base + cost as f64 * interval;
    let allow_at = new_tat - window_us;
    if cost > limit {
        return (base, Cell { allowed: false, remaining: 0, wait_us: window_us });
    }
    // A microsecond of slack absorbs floating-point rounding.
    if allow_at - now > 1.0 {
        (base, Cell { allowed: false, remaining: 0, wait_us: allow_at - now })
    } else {
        let remaining = ((now - allow_at).max(0.0) / interval + 1e-9).floor() as u64;
        (new_tat, Cell { allowed: true, remaining, wait_us: new_tat - now })
    }
}

/// Every key's TAT in this process.
pub struct MemoryStore {
    epoch: Instant,
    tats: Mutex<HashMap<String, f64>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self { epoch: Instant::now(), tats: Mutex::new(HashMap::new()) }
    }
}

impl MemoryStore {
    /// Checks every `(key, cost, limit, window)` and charges them all, or none when one refuses.
    pub fn check_all(&self, checks: &[(String, u64, u64, Duration)]) -> Vec<Cell> {
        let now = self.epoch.elapsed().as_secs_f64() * 1e6;
        let mut tats = self.tats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let results: Vec<(f64, Cell)> = checks
            .iter()
            .map(|(key, cost, limit, window)| {
                check(tats.get(key).copied(), now, *cost, *limit, window.as_secs_f64() * 1e6)
            })
            .collect();
        if results.iter().all(|(_, cell)| cell.allowed) {
            for ((key, ..), (tat, _)) in checks.iter().zip(&results) {
                tats.insert(key.clone(), *tat);
            }
            if tats.len() > SWEEP_AT {
                tats.retain(|_, tat| *tat > now);
            }
        }
        results.into_iter().map(|(_, cell)| cell).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: f64 = 60e6;

    #[test]
    fn a_full_budget_then_one_unit_per_interval() {
        let mut tat = None;
        for i in 0..10 {
            let (next, cell) = check(tat, 0.0, 1, 10, MINUTE);
            assert!(cell.allowed, "request {i}");
            assert_eq!(cell.remaining, 9 - i);
            tat = Some(next);
        }
        let (_, refused) = check(tat, 0.0, 1, 10, MINUTE);
        assert!(!refused.allowed);
        assert!((refused.wait_us - 6e6).abs() < 1.0, "one interval: {}", refused.wait_us);
        let (_, later) = check(tat, 6e6, 1, 10, MINUTE);
        assert!(later.allowed, "one interval later one unit is back");
    }

    #[test]
    fn costs_spend_several_units_and_a_cost_over_the_limit_never_passes() {
        let (tat, cell) = check(None, 0.0, 7, 10, MINUTE);
        assert_eq!((cell.allowed, cell.remaining), (true, 3));
        let (_, cell) = check(Some(tat), 0.0, 4, 10, MINUTE);
        assert!(!cell.allowed);
        assert!((cell.wait_us - 6e6).abs() < 1.0);
        assert!(!check(None, 0.0, 11, 10, MINUTE).1.allowed);
    }

    #[test]
    fn all_or_nothing_across_keys() {
        let store = MemoryStore::default();
        let window = Duration::from_secs(60);
        let a = ("a".to_owned(), 1, 1, window);
        let b = ("b".to_owned(), 1, 5, window);
        assert!(store.check_all(&[a.clone(), b.clone()]).iter().all(|c| c.allowed));
        let second = store.check_all(&[a, b.clone()]);
        assert!(!second[0].allowed && second[1].allowed);
        assert_eq!(store.check_all(&[b])[0].remaining, 3, "the refused request charged nothing");
    }
}
