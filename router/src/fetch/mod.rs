//! Subgraph fetches as the executor makes them: per-subgraph timeouts, retries of idempotent
//! fetches with jittered backoff, a circuit breaker, deduplication of identical in-flight
//! fetches, and metrics per fetch.

mod breaker;
mod dedupe;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyairtable_kit::Caller;
use serde_json::{Map, Value};

use self::breaker::Breaker;
use self::dedupe::{FetchResult, Inflight};
use crate::transport::{EventStream, SubgraphRequest, Transport, TransportError, request_body};

/// How the router treats subgraph fetches.
#[derive(Debug, Clone)]
pub struct SubgraphPolicy {
    /// Timeout of one attempt, unless `timeouts` names the subgraph.
    pub timeout: Duration,
    /// Per-subgraph timeouts, by subgraph name.
    pub timeouts: HashMap<String, Duration>,
    /// Further attempts of a query after a connection error or a 5xx (mutations are never retried).
    pub retries: u32,
    /// The first retry waits between half of this and all of it; each next one twice as long.
    pub retry_backoff: Duration,
    /// Consecutive failures that open a subgraph's circuit (0: never).
    pub breaker_failures: u32,
    /// How long an open circuit refuses fetches before one probe is let through.
    pub breaker_cooldown: Duration,
    /// Share one answer between identical in-flight queries of the same caller.
    pub dedupe: bool,
}

impl Default for SubgraphPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            timeouts: HashMap::new(),
            retries: 2,
            retry_backoff: Duration::from_millis(50),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(10),
            dedupe: true,
        }
    }
}

/// One fetch from a subgraph.
pub struct Fetch<'a> {
    pub query: &'a str,
    pub variables: Map<String, Value>,
    /// More variables, as JSON text (entity representations, written by the executor).
    pub written: Vec<(String, String)>,
    pub caller: &'a Caller,
    pub request_id: &'a str,
    /// A query (may be retried and shared), not a mutation.
    pub idempotent: bool,
}

impl Fetch<'_> {
    fn request<'a>(&'a self, body: Option<&'a Bytes>) -> SubgraphRequest<'a> {
        SubgraphRequest {
            query: self.query,
            variables: &self.variables,
            caller: self.caller,
            request_id: self.request_id,
            written: &self.written,
            body,
        }
    }
}

/// One subgraph as the executor sees it.
pub struct Fetcher {
    name: String,
    transport: Arc<dyn Transport>,
    timeout: Duration,
    policy: SubgraphPolicy,
    breaker: Breaker,
    inflight: Inflight,
}

impl Fetcher {
    pub fn new(name: &str, transport: Arc<dyn Transport>, policy: &SubgraphPolicy) -> Self {
        Self {
            name: name.to_owned(),
            transport,
            timeout: policy.timeouts.get(name).copied().unwrap_or(policy.timeout),
            policy: policy.clone(),
            breaker: Breaker::new(policy.breaker_failures, policy.breaker_cooldown),
            inflight: Inflight::default(),
        }
    }

    /// The transport (kept across reloads while the subgraph's address does not change).
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    pub async fn fetch(&self, fetch: Fetch<'_>) -> FetchResult {
        // Written once: the HTTP body of every attempt, and the heart of the deduplication key.
        let body =
            self.transport.wants_body().then(|| request_body(fetch.query, &fetch.variables, &fetch.written));
        if !(fetch.idempotent && self.policy.dedupe) {
            return self.attempts(&fetch, body.as_ref()).await;
        }
        let key = dedupe_key(&fetch, body.as_ref());
        let joined = || {
            metrics::counter!("router_subgraph_fetches_deduplicated_total", "subgraph" => self.name.clone())
                .increment(1);
        };
        self.inflight.run(key, self.attempts(&fetch, body.as_ref()), joined).await
    }

    /// Opens a subscription on the subgraph (through its circuit breaker; opening is bounded by
    /// the subgraph's timeout, the events are not). Never retried nor shared.
    pub async fn subscribe(&self, fetch: Fetch<'_>) -> Result<EventStream, TransportError> {
        let result = match self.breaker.permit() {
            None => Err(TransportError::CircuitOpen),
            Some(permit) => {
                let opening = self.transport.subscribe(fetch.request(None));
                let result = tokio::time::timeout(self.timeout, opening)
                    .await
                    .unwrap_or(Err(TransportError::Timeout(self.timeout)));
                match &result {
                    // Only a subgraph that is down counts against its circuit.
                    Err(err @ (TransportError::Unreachable(_) | TransportError::Timeout(_))) => {
                        if permit.failure() {
                            tracing::warn!(subgraph = %self.name, %err, "circuit opened after repeated failures");
                        }
                    }
                    _ => permit.success(),
                }
                result
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) => err.outcome(),
        };
        let labels = [("subgraph", self.name.clone()), ("outcome", outcome.to_owned())];
        metrics::counter!("router_subgraph_subscriptions_total", &labels).increment(1);
        result
    }

    /// The first attempt and the retries the policy allows.
    async fn attempts(&self, fetch: &Fetch<'_>, body: Option<&Bytes>) -> FetchResult {
        let retries = if fetch.idempotent { self.policy.retries } else { 0 };
        let mut attempt = 0;
        loop {
            let result = self.attempt(fetch, body).await;
            match &result {
                Err(err) if err.is_transient() && attempt < retries => {
                    tracing::info!(subgraph = %self.name, request_id = fetch.request_id, %err, attempt, "retrying subgraph fetch");
                    metrics::counter!("router_subgraph_fetch_retries_total", "subgraph" => self.name.clone())
                        .increment(1);
                    tokio::time::sleep(backoff(self.policy.retry_backoff, attempt)).await;
                    attempt += 1;
                }
                _ => return result,
            }
        }
    }

    async fn attempt(&self, fetch: &Fetch<'_>, body: Option<&Bytes>) -> FetchResult {
        let started = Instant::now();
        let result = match self.breaker.permit() {
            None => Err(TransportError::CircuitOpen),
            Some(permit) => {
                let result = tokio::time::timeout(self.timeout, self.transport.fetch(fetch.request(body)))
                    .await
                    .unwrap_or(Err(TransportError::Timeout(self.timeout)));
                match &result {
                    Ok(_) => permit.success(),
                    Err(_) if permit.failure() => {
                        tracing::warn!(subgraph = %self.name, "circuit opened after repeated failures");
                    }
                    Err(_) => {}
                }
                result
            }
        };
        self.record(&result, started);
        result
    }

    fn record(&self, result: &FetchResult, started: Instant) {
        let outcome = match result {
            Ok(response) if response.errors.is_empty() => "ok",
            Ok(_) => "graphql_errors",
            Err(err) => err.outcome(),
        };
        let labels = [("subgraph", self.name.clone()), ("outcome", outcome.to_owned())];
        metrics::counter!("router_subgraph_fetches_total", &labels).increment(1);
        metrics::histogram!("router_subgraph_fetch_duration_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        metrics::gauge!("router_subgraph_circuit_open", "subgraph" => self.name.clone())
            .set(if self.breaker.is_open() { 1.0 } else { 0.0 });
    }
}

/// Exactly what makes two fetches the same: query, variables, the caller's whole identity and
/// the client headers the request forwards (the leader's headers go with the shared fetch).
fn dedupe_key(fetch: &Fetch<'_>, body: Option<&Bytes>) -> Vec<u8> {
    let mut key = serde_json::to_vec(fetch.caller).unwrap_or_default();
    for (name, value) in crate::headers::current().iter() {
        key.push(b'\n');
        key.extend_from_slice(name.as_str().as_bytes());
        key.extend_from_slice(b": ");
        key.extend_from_slice(value.as_bytes());
    }
    key.push(b'\n');
    match body {
        Some(body) => key.extend_from_slice(body),
        None => key.extend_from_slice(&request_body(fetch.query, &fetch.variables, &fetch.written)),
    }
    key
}

/// "Equal jitter": half of `base * 2^attempt`, plus a random part of the other half.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(2u32.saturating_pow(attempt.min(16)));
    let half = ceiling / 2;
    half + half.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_within_its_bounds() {
        let base = Duration::from_millis(100);
        for attempt in 0..4 {
            let ceiling = base * 2u32.pow(attempt);
            for _ in 0..50 {
                let wait = backoff(base, attempt);
                assert!(wait >= ceiling / 2 && wait <= ceiling, "{wait:?} for attempt {attempt}");
            }
        }
        assert!(backoff(base, u32::MAX) <= base * 65536, "bounded");
    }
}
