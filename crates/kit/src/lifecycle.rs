//! Shutdown: one stop signal per process, a tracker for the background work that must finish
//! before the process exits, and the grace period that bounds both.
//!
//! The contract (docs/ARCHITECTURE.md, "Shutdown"): when [`Lifecycle::stop`] is called (SIGTERM,
//! SIGINT, or a test), the HTTP server stops accepting and drains in-flight requests, and every
//! worker spawned with [`Lifecycle::spawn`] sees [`Lifecycle::stopping`] complete: it finishes the
//! unit of work in hand (an event batch, a webhook attempt), closes what it holds (a WebSocket
//! with [`StopReason::websocket_close_code`]) and returns. The process waits for both, at most
//! the grace period, then closes its pools.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the process stops. Decides how long-lived connections are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM: an orchestrator replaces this process (a rollout, a rescheduled pod); clients
    /// should reconnect, to another replica.
    Restart,
    /// SIGINT, or stopped by its owner (a test, an embedding program).
    GoingAway,
}

impl StopReason {
    /// The WebSocket close code to send: 1012 (service restart) or 1001 (going away).
    pub fn websocket_close_code(self) -> u16 {
        match self {
            Self::Restart => 1012,
            Self::GoingAway => 1001,
        }
    }
}

/// The stop signal and the tracked background work of one process. Cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

struct Inner {
    token: CancellationToken,
    tasks: TaskTracker,
    reason: OnceLock<StopReason>,
    grace: Duration,
}

impl Lifecycle {
    /// A running lifecycle whose shutdown may take up to `grace`.
    pub fn new(grace: Duration) -> Self {
        let inner = Inner {
            token: CancellationToken::new(),
            tasks: TaskTracker::new(),
            reason: OnceLock::new(),
            grace,
        };
        Self { inner: Arc::new(inner) }
    }

    /// How long draining requests and finishing workers may take, together.
    pub fn grace(&self) -> Duration {
        self.inner.grace
    }

    /// Starts the shutdown. The first reason given is the one kept; later calls do nothing.
    pub fn stop(&self, reason: StopReason) {
        if self.inner.reason.set(reason).is_ok() {
            tracing::info!(?reason, grace_seconds = self.inner.grace.as_secs(), "shutting down");
        }
        self.inner.tasks.close();
        self.inner.token.cancel();
    }

    /// Whether the shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Why the process stops, once it does.
    pub fn reason(&self) -> Option<StopReason> {
        self.inner.reason.get().copied()
    }

    /// Completes when the shutdown begins (at once if it has).
    pub async fn stopping(&self) {
        self.inner.token.cancelled().await;
    }

    /// A token cancelled when the shutdown begins, for code that takes one.
    pub fn token(&self) -> CancellationToken {
        self.inner.token.clone()
    }

    /// Runs `task` in the background; the shutdown waits for it (within the grace period). The
    /// task must return soon after [`Lifecycle::stopping`] completes.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.tasks.spawn(task)
    }

    /// Background tasks still running.
    pub fn running_tasks(&self) -> usize {
        self.inner.tasks.len()
    }

    /// Waits until every tracked task has returned, or `deadline`; true when they all returned.
    pub async fn wait_for_tasks(&self, deadline: Instant) -> bool {
        self.inner.tasks.close();
        tokio::time::timeout_at(deadline, self.inner.tasks.wait()).await.is_ok()
    }
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("stopping", &self.is_stopping())
            .field("tasks", &self.running_tasks())
            .field("grace", &self.inner.grace)
            .finish()
    }
}

/// Listens for SIGTERM ([`StopReason::Restart`]) and SIGINT ([`StopReason::GoingAway`]) from
/// the moment it is called (so a signal that arrives before the future is first polled is not
/// lost to the default action, which would kill the process undrained); the future completes on
/// the first of them. Call it inside the runtime.
pub fn signal() -> impl Future<Output = StopReason> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => tokio::select! {
                    _ = term.recv() => StopReason::Restart,
                    _ = interrupt.recv() => StopReason::GoingAway,
                },
                (term, interrupt) => {
                    let err = term.err().or(interrupt.err()).map(|e| e.to_string()).unwrap_or_default();
                    tracing::warn!(%err, "cannot listen for SIGTERM/SIGINT; waiting for Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                    StopReason::GoingAway
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        StopReason::GoingAway
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_see_the_stop_and_the_wait_is_bounded() {
        let lifecycle = Lifecycle::new(Duration::from_secs(5));
        let seen = lifecycle.clone();
        let worker = lifecycle.spawn(async move {
            seen.stopping().await;
            seen.reason()
        });
        let stuck = lifecycle.spawn(std::future::pending::<()>());
        assert!(!lifecycle.is_stopping());
        lifecycle.stop(StopReason::Restart);
        lifecycle.stop(StopReason::GoingAway);
        assert_eq!(worker.await.expect("worker"), Some(StopReason::Restart), "the first reason stays");
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(!lifecycle.wait_for_tasks(deadline).await, "a stuck task does not hold the exit");
        stuck.abort();
        assert!(lifecycle.wait_for_tasks(Instant::now() + Duration::from_secs(5)).await);
        assert_eq!(StopReason::Restart.websocket_close_code(), 1012);
        assert_eq!(StopReason::GoingAway.websocket_close_code(), 1001);
    }
}
