//! A circuit breaker per subgraph: after `threshold` consecutive failures the circuit opens and
//! fetches fail at once; after `cooldown` one probe is let through (half-open). Its success
//! closes the circuit, its failure opens it for another cooldown.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else waits for its verdict.
    HalfOpen,
}

/// The breaker of one subgraph. A `threshold` of 0 never opens.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

/// Leave to send one request; report how it went with [`Permit::success`] or
/// [`Permit::failure`]. A permit dropped unreported (the request was cancelled) lets the next
/// request probe.
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold, cooldown, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A permit, or `None` while the circuit is open.
    pub fn permit(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => return None,
        };
        Some(Permit { breaker: self, probe, reported: false })
    }

    /// Whether fetches are refused right now.
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    fn close(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// Counts a failure; true when it opened the circuit.
    fn fail(&self, probe: bool) -> bool {
        let mut state = self.lock();
        let failures = match *state {
            State::Closed { failures } => failures.saturating_add(1),
            _ if probe => self.threshold,
            // Requests sent before the circuit opened end while it is open: nothing to add.
            _ => return false,
        };
        if self.threshold == 0 || failures < self.threshold {
            *state = State::Closed { failures };
            return false;
        }
        *state = State::Open { until: Instant::now() + self.cooldown };
        true
    }
}

impl Permit<'_> {
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.close();
    }

    /// Reports a failure; true when it opened the circuit.
    pub fn failure(mut self) -> bool {
        self.reported = true;
        self.breaker.fail(self.probe)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            *self.breaker.lock() = State::Open { until: Instant::now() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_once() {
        let breaker = Breaker::new(2, Duration::ZERO);
        assert!(!breaker.permit().expect("closed").failure());
        breaker.permit().expect("closed").success();
        assert!(!breaker.permit().expect("closed").failure(), "a success resets the count");
        assert!(breaker.permit().expect("closed").failure(), "the second failure in a row opens");
        let probe = breaker.permit().expect("the cooldown is over: one probe");
        assert!(breaker.permit().is_none(), "only one probe at a time");
        assert!(probe.failure(), "a failed probe opens again");
        breaker.permit().expect("probe").success();
        assert!(!breaker.is_open());
    }

    #[test]
    fn stays_open_during_the_cooldown_and_a_dropped_probe_lets_another_try() {
        let breaker = Breaker::new(1, Duration::from_secs(3600));
        assert!(breaker.permit().expect("closed").failure());
        assert!(breaker.permit().is_none(), "open for an hour");
        let breaker = Breaker::new(1, Duration::ZERO);
        assert!(breaker.permit().expect("closed").failure());
        drop(breaker.permit().expect("probe"));
        assert!(breaker.permit().is_some(), "a cancelled probe does not wedge the circuit");
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let breaker = Breaker::new(0, Duration::from_secs(3600));
        for _ in 0..100 {
            assert!(!breaker.permit().expect("never open").failure());
        }
    }
}
