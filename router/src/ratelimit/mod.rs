//! Rate limits: per caller, per tenant and per IP on every request, a stricter budget for the
//! anonymous operations, and cost points per tenant. GCRA, in process by default and in Redis
//! when configured (several routers then share one budget).
//!
//! When Redis fails, the decision falls back to this process's own store (logged, counted in
//! `router_rate_limit_backend_errors_total`): each router then enforces every budget on its own,
//! so the limits loosen by at most the number of routers instead of vanishing, and a Redis outage
//! does not take the API down with it.

mod gcra;
mod shared;

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use pyairtable_kit::config::Quota;

use crate::response::GraphQLError;
use gcra::MemoryStore;

/// The error code of a refusal.
pub const RATE_LIMITED: &str = "RATE_LIMITED";

/// One budget a request draws on.
#[derive(Debug, Clone)]
pub struct Limit {
    /// The policy's name, as the `RateLimit` headers show it (`caller`, `tenant`, `ip`, ...).
    pub policy: &'static str,
    /// Whose budget (a user id, an IP, a hash): part of the storage key only.
    pub partition: String,
    pub quota: Quota,
    pub cost: u64,
}

/// What one budget said.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub policy: &'static str,
    pub quota: Quota,
    pub allowed: bool,
    pub remaining: u64,
    /// Allowed: until the budget is whole again. Refused: until the request would pass.
    pub wait: Duration,
}

/// The verdicts of one or more decisions on a request.
#[derive(Debug, Clone, Default)]
pub struct RateStatus {
    pub verdicts: Vec<Verdict>,
}

impl RateStatus {
    pub fn allowed(&self) -> bool {
        self.verdicts.iter().all(|v| v.allowed)
    }

    pub fn extend(&mut self, other: RateStatus) {
        self.verdicts.extend(other.verdicts);
    }

    /// Whole seconds until a refused request would pass.
    pub fn retry_after(&self) -> Option<u64> {
        self.verdicts.iter().filter(|v| !v.allowed).map(|v| ceil_secs(v.wait)).max()
    }

    /// The GraphQL error of a refusal: `RATE_LIMITED`, with `retryAfter` (seconds) and the policy.
    pub fn error(&self) -> Option<GraphQLError> {
        let refused = self.verdicts.iter().filter(|v| !v.allowed).max_by_key(|v| v.wait)?;
        let retry_after = ceil_secs(refused.wait);
        let message = format!("rate limit exceeded ({}); retry in {retry_after} s", refused.policy);
        Some(
            GraphQLError::new(message, RATE_LIMITED)
                .with_extension("retryAfter", retry_after)
                .with_extension("policy", refused.policy)
                .with_extension("limit", refused.quota.limit)
                .with_extension("window", refused.quota.window.as_secs()),
        )
    }

    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10), and
    /// `Retry-After` on a refusal.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        if self.verdicts.is_empty() {
            return;
        }
        let policies: Vec<String> = self
            .verdicts
            .iter()
            .map(|v| format!("\"{}\";q={};w={}", v.policy, v.quota.limit, v.quota.window.as_secs()))
            .collect();
        let limits: Vec<String> = self
            .verdicts
            .iter()
            .map(|v| format!("\"{}\";r={};t={}", v.policy, v.remaining, ceil_secs(v.wait)))
            .collect();
        for (name, value) in [("ratelimit-policy", policies.join(", ")), ("ratelimit", limits.join(", "))] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        if let Some(seconds) = self.retry_after() {
            headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000_000) as u64
}

/// Decides whether requests fit their budgets.
pub struct RateLimiter {
    memory: MemoryStore,
    redis: Option<::redis::aio::ConnectionManager>,
    prefix: String,
}

impl RateLimiter {
    /// Budgets kept in this process.
    pub fn in_process() -> Self {
        Self { memory: MemoryStore::default(), redis: None, prefix: String::new() }
    }

    /// Budgets kept in Redis under `prefix`, shared by every router using it.
    pub fn redis(connection: ::redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self { memory: MemoryStore::default(), redis: Some(connection), prefix: format!("{prefix}rl:") }
    }

    /// Checks every limit and charges them all, or none when one refuses.
    pub async fn check(&self, limits: &[Limit]) -> RateStatus {
        if limits.is_empty() {
            return RateStatus::default();
        }
        let checks: Vec<(String, u64, u64, Duration)> = limits
            .iter()
            .map(|l| {
                (
                    format!("{}{}:{}", self.prefix, l.policy, l.partition),
                    l.cost,
                    l.quota.limit,
                    l.quota.window,
                )
            })
            .collect();
        let cells = match &self.redis {
            Some(connection) => match shared::check_all(connection, &checks).await {
                Ok(cells) => cells,
                Err(err) => {
                    tracing::warn!(%err, "rate limits: Redis failed; this router decides alone");
                    metrics::counter!("router_rate_limit_backend_errors_total").increment(1);
                    self.memory.check_all(&checks)
                }
            },
            None => self.memory.check_all(&checks),
        };
        let verdicts = limits
            .iter()
            .zip(cells)
            .map(|(limit, cell)| Verdict {
                policy: limit.policy,
                quota: limit.quota,
                allowed: cell.allowed,
                remaining: cell.remaining,
                wait: Duration::from_micros(cell.wait_us.ceil() as u64),
            })
            .collect();
        RateStatus { verdicts }
    }
}
