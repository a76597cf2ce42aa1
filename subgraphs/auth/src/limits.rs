//! Brute-force protection for sign-in, per account and per client IP.
//!
//! Every attempt is counted before the password is checked, on a row locked for the count, so
//! parallel attempts cannot slip past the limit. Past the limit, the subject is locked with an
//! exponential backoff (30 s, 1 min, 2 min, ... up to an hour); a successful sign-in clears the
//! account's counter (not the IP's).

use chrono::{Duration, Utc};
use pyairtable_kit::Result;
use sqlx::PgPool;

use crate::store::{self, Failures};

/// Attempts allowed per window before the backoff starts.
const ACCOUNT_LIMIT: i32 = 5;
const IP_LIMIT: i32 = 30;
const WINDOW: Duration = Duration::minutes(15);
const FIRST_LOCK_SECS: i64 = 30;
const MAX_LOCK_SECS: i64 = 3600;

/// Whether an attempt may go ahead.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    Allowed,
    Refused { retry_after: u64 },
}

/// Counts an attempt of `subject` (`account:<email>` or `ip:<address>`).
pub async fn attempt(db: &PgPool, subject: &str) -> Result<Attempt> {
    let limit = if subject.starts_with("ip:") { IP_LIMIT } else { ACCOUNT_LIMIT };
    let mut tx = db.begin().await?;
    let state = store::lock_failures(&mut tx, subject).await?;
    let (state, decision) = decide(state, limit, Utc::now());
    store::save_failures(&mut tx, subject, &state).await?;
    tx.commit().await?;
    Ok(decision)
}

/// Forgets the failures of `subject`.
pub async fn clear(db: &PgPool, subject: &str) -> Result<()> {
    store::clear_failures(db, subject).await
}

fn decide(mut state: Failures, limit: i32, now: chrono::DateTime<Utc>) -> (Failures, Attempt) {
    if let Some(until) = state.locked_until.filter(|until| *until > now) {
        let retry_after = (until - now).num_seconds().max(1) as u64;
        return (state, Attempt::Refused { retry_after });
    }
    // A quiet window (and a quiet spell after the last lock) starts over.
    if state.window_started_at + WINDOW < now && state.locked_until.is_none_or(|until| until + WINDOW < now) {
        state.failures = 0;
        state.window_started_at = now;
        state.locked_until = None;
    }
    state.failures += 1;
    if state.failures <= limit {
        return (state, Attempt::Allowed);
    }
    let over = u32::try_from(state.failures - limit - 1).unwrap_or(0).min(12);
    let lock = (FIRST_LOCK_SECS << over).min(MAX_LOCK_SECS);
    state.locked_until = Some(now + Duration::seconds(lock));
    (state, Attempt::Refused { retry_after: lock as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(now: chrono::DateTime<Utc>) -> Failures {
        Failures { failures: 0, window_started_at: now, locked_until: None }
    }

    #[test]
    fn the_limit_then_doubling_locks() {
        let now = Utc::now();
        let mut state = fresh(now);
        for _ in 0..5 {
            let (next, decision) = decide(state, 5, now);
            assert_eq!(decision, Attempt::Allowed);
            state = next;
        }
        let (state, decision) = decide(state, 5, now);
        assert_eq!(decision, Attempt::Refused { retry_after: 30 });
        // Locked: refused without counting.
        let (state, decision) = decide(state, 5, now + Duration::seconds(10));
        assert_eq!(decision, Attempt::Refused { retry_after: 20 });
        assert_eq!(state.failures, 6);
        // After the lock, the next failure doubles it.
        let (_, decision) = decide(state, 5, now + Duration::seconds(31));
        assert_eq!(decision, Attempt::Refused { retry_after: 60 });
        let later = now + Duration::hours(10);
        let (_, decision) =
            decide(Failures { failures: 40, window_started_at: now, locked_until: None }, 5, later);
        assert_eq!(decision, Attempt::Allowed, "a window long past starts over");
        let (_, decision) =
            decide(Failures { failures: 60, window_started_at: later, locked_until: None }, 5, later);
        assert_eq!(decision, Attempt::Refused { retry_after: 3600 }, "capped at an hour");
    }
}
