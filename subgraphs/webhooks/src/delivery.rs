//! One delivery attempt over HTTP: the Standard Webhooks headers, signatures by every secret that
//! signs now, a 15 s timeout, no redirects (a 3xx is a failure), SSRF checks (see [`crate::ssrf`]),
//! and the retry schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pyairtable_kit::bus::Bus;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::signature;
use crate::ssrf::{self, Guard};
use crate::store::EndpointRow;
use crate::store::deliveries::MessageRow;

/// The whole attempt, connection included, fits in this.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The response body is logged up to this many bytes.
pub const BODY_LIMIT: usize = 4096;
/// When attempts happen, from the first (Svix's schedule): attempt n+1 waits `SCHEDULE[n]`.
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The delay before the next attempt once `done` attempts of the schedule failed, jittered by
/// ±20 %, and never shorter than a `Retry-After` (bounded by the schedule's longest step); none
/// when the schedule is spent.
pub fn next_delay(done: usize, retry_after: Option<Duration>) -> Option<Duration> {
    let step = *SCHEDULE.get(done)?;
    let jittered = step.mul_f64(0.8 + 0.4 * rand::random::<f64>());
    let longest = SCHEDULE[SCHEDULE.len() - 1];
    Some(retry_after.map_or(jittered, |r| jittered.max(r.min(longest))))
}

/// What an attempt came to.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub succeeded: bool,
    pub response_status: Option<u16>,
    pub latency: Duration,
    pub response_body: String,
    /// Why there is no counted response: refused, timed out, no connection, a redirect.
    pub error: Option<String>,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl Outcome {
    /// The receiver said the endpoint is gone for good (410): it is disabled.
    pub fn gone(&self) -> bool {
        self.response_status == Some(410)
    }
}

/// The HTTP client of deliveries.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_loopback: bool,
    /// Where attempts and new messages are announced to subscriptions.
    pub bus: Arc<Bus>,
}

impl Sender {
    pub fn new(allow_loopback: bool, bus: Arc<Bus>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(Guard { allow_loopback }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .build()?;
        Ok(Self { client, allow_loopback, bus })
    }

    /// Whether loopback addresses may be delivered to (development and tests).
    pub fn allow_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// Sends `message` to `endpoint` once, signed as of `now`.
    pub async fn send(&self, endpoint: &EndpointRow, message: &MessageRow, now: DateTime<Utc>) -> Outcome {
        let url = match ssrf::check_url(&endpoint.url, self.allow_loopback) {
            Ok(url) => url,
            Err(why) => return failure(Duration::ZERO, format!("refused: {why}")),
        };
        let headers = match headers(endpoint, message, now) {
            Ok(headers) => headers,
            Err(why) => return failure(Duration::ZERO, why),
        };
        let started = Instant::now();
        let sent = self.client.post(url).headers(headers).body(message.body.clone()).send().await;
        match sent {
            Ok(response) => read(response, started).await,
            Err(err) => failure(started.elapsed(), describe(&err)),
        }
    }
}

/// Custom headers first, then ours (which custom headers may not name).
fn headers(endpoint: &EndpointRow, message: &MessageRow, now: DateTime<Utc>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in endpoint.headers.iter() {
        let name = HeaderName::try_from(name.as_str()).map_err(|e| format!("header {name}: {e}"))?;
        let value = HeaderValue::try_from(value.as_str()).map_err(|e| format!("header {name}: {e}"))?;
        map.insert(name, value);
    }
    let keys = endpoint
        .signing_secrets(now)
        .into_iter()
        .map(signature::decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let (id, timestamp) = (message.webhook_id(), now.timestamp());
    let signature = signature::header(&keys, &id, timestamp, message.body.as_bytes());
    let ours = [
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
        (CONTENT_TYPE.as_str(), "application/json".to_owned()),
        (USER_AGENT.as_str(), concat!("PyAirtable-Webhooks/", env!("CARGO_PKG_VERSION")).to_owned()),
    ];
    for (name, value) in ours {
        let value = HeaderValue::try_from(value).map_err(|e| e.to_string())?;
        map.insert(HeaderName::from_static(name), value);
    }
    Ok(map)
}

async fn read(mut response: reqwest::Response, started: Instant) -> Outcome {
    let status = response.status();
    let retry_after = matches!(status.as_u16(), 429 | 503)
        .then(|| response.headers().get(RETRY_AFTER).and_then(parse_retry_after))
        .flatten();
    let mut body = Vec::new();
    while body.len() < BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(BODY_LIMIT);
    let error = status.is_redirection().then(|| format!("redirect ({status}) not followed"));
    Outcome {
        succeeded: status.is_success(),
        response_status: Some(status.as_u16()),
        latency: started.elapsed(),
        response_body: String::from_utf8_lossy(&body).into_owned(),
        error,
        retry_after,
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

fn failure(latency: Duration, error: String) -> Outcome {
    Outcome { latency, error: Some(error), ..Outcome::default() }
}

/// The error and its causes, one sentence (the refusal of [`Guard`] is among the causes).
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return format!("timed out after {} s", TIMEOUT.as_secs());
    }
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_svix_with_jitter_and_retry_after() {
        for (done, step) in SCHEDULE.iter().enumerate() {
            let delay = next_delay(done, None).expect("within the schedule");
            assert!(delay >= step.mul_f64(0.8) && delay <= step.mul_f64(1.2), "{done}: {delay:?}");
        }
        assert_eq!(next_delay(SCHEDULE.len(), None), None, "eight attempts at most");
        let honoured = next_delay(1, Some(Duration::from_secs(120))).expect("delay");
        assert_eq!(honoured, Duration::from_secs(120));
        let bounded = next_delay(1, Some(Duration::from_secs(86_400 * 30))).expect("delay");
        assert_eq!(bounded, Duration::from_secs(10 * 3600));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after(&HeaderValue::from_static("7")), Some(Duration::from_secs(7)));
        let later = (Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let parsed = parse_retry_after(&HeaderValue::try_from(later).expect("value")).expect("a date");
        assert!(parsed > Duration::from_secs(80) && parsed <= Duration::from_secs(90));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }
}
