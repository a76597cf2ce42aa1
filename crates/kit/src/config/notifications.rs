//! Settings of the notifications subgraph: delivery retries and the HTTP providers of SMS and push.

use std::time::Duration;

use super::{ConfigError, Env};

/// The notifications subgraph's settings.
#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: i32,
    /// The wait before the first retry; it doubles with every attempt.
    pub retry_base: Duration,
    /// The SMS provider adapter posts here (JSON), when set.
    pub sms_url: Option<String>,
    /// The push provider adapter posts here (JSON), when set.
    pub push_url: Option<String>,
}

pub(super) fn notifications_config(env: &Env) -> Result<NotificationsConfig, ConfigError> {
    Ok(NotificationsConfig {
        max_attempts: env.bounded("PYAIRTABLE_NOTIFICATIONS_MAX_ATTEMPTS", 1, 100)?.unwrap_or(5),
        retry_base: Duration::from_millis(
            env.bounded("PYAIRTABLE_NOTIFICATIONS_RETRY_BASE_MS", 1, 3_600_000)?.unwrap_or(30_000),
        ),
        sms_url: env.public_url("PYAIRTABLE_NOTIFICATIONS_SMS_URL")?,
        push_url: env.public_url("PYAIRTABLE_NOTIFICATIONS_PUSH_URL")?,
    })
}
