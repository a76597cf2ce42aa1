//! The router's settings for subgraph fetches and the supergraph file.

use std::time::Duration;

use super::{ConfigError, Env};

/// How the router fetches from subgraphs and follows its supergraph file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationConfig {
    /// Per-subgraph fetch timeouts (`PYAIRTABLE_SUBGRAPH_TIMEOUT_MS` for the others).
    pub subgraph_timeouts: Vec<(String, Duration)>,
    pub retries: u32,
    pub retry_backoff: Duration,
    /// Consecutive failures that open a subgraph's circuit; 0 never opens it.
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub dedupe: bool,
    /// Subgraphs spoken to in HTTP/2 with prior knowledge (h2c); `all` for every one.
    pub http2: Vec<String>,
    /// How often the supergraph file is checked for changes; `None`: never (no hot reload).
    pub supergraph_poll: Option<Duration>,
    /// Progressive override labels (`@override(label:)`) turned on.
    pub override_labels: Vec<String>,
}

impl FederationConfig {
    pub(super) fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let millis = |name: &str, min: u64, max: u64, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(env.bounded(name, min, max)?.unwrap_or(default)))
        };
        let poll = env.bounded("PYAIRTABLE_SUPERGRAPH_POLL_MS", 0u64, 3_600_000)?.unwrap_or(1000);
        Ok(Self {
            subgraph_timeouts: subgraph_timeouts(env, "PYAIRTABLE_SUBGRAPH_TIMEOUTS")?,
            retries: env.bounded("PYAIRTABLE_SUBGRAPH_RETRIES", 0, 10)?.unwrap_or(2),
            retry_backoff: millis("PYAIRTABLE_SUBGRAPH_RETRY_BACKOFF_MS", 1, 60_000, 50)?,
            breaker_failures: env.bounded("PYAIRTABLE_SUBGRAPH_BREAKER_FAILURES", 0, 10_000)?.unwrap_or(5),
            breaker_cooldown: millis("PYAIRTABLE_SUBGRAPH_BREAKER_COOLDOWN_MS", 1, 3_600_000, 10_000)?,
            dedupe: env.boolean("PYAIRTABLE_SUBGRAPH_DEDUPE")?.unwrap_or(true),
            http2: names(env, "PYAIRTABLE_SUBGRAPH_HTTP2")?,
            supergraph_poll: (poll > 0).then(|| Duration::from_millis(poll)),
            override_labels: env
                .string("PYAIRTABLE_OVERRIDE_LABELS")
                .map(|raw| {
                    raw.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Whether `subgraph` is spoken to in HTTP/2 with prior knowledge.
    pub fn http2_for(&self, subgraph: &str) -> bool {
        self.http2.iter().any(|n| n == subgraph || n == "all")
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn names(env: &Env, variable: &str) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.string(variable) else { return Ok(Vec::new()) };
    raw.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|name| {
            if valid_name(name) {
                Ok(name.to_owned())
            } else {
                Err(ConfigError::new(
                    variable,
                    format!("{name:?} is not a subgraph name (letters, digits, _ and -)"),
                ))
            }
        })
        .collect()
}

/// `name=milliseconds` pairs, comma separated.
fn subgraph_timeouts(env: &Env, variable: &str) -> Result<Vec<(String, Duration)>, ConfigError> {
    let Some(raw) = env.string(variable) else { return Ok(Vec::new()) };
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let bad =
                || ConfigError::new(variable, format!("{pair:?} is not name=milliseconds (1..=600000)"));
            let (name, ms) = pair.split_once('=').ok_or_else(bad)?;
            let (name, ms) = (name.trim(), ms.trim().parse::<u64>().map_err(|_| bad())?);
            if !valid_name(name) || !(1..=600_000).contains(&ms) {
                return Err(bad());
            }
            Ok((name.to_owned(), Duration::from_millis(ms)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        Config::from_vars(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn defaults_retry_twice_break_after_five_and_poll_every_second() {
        let fed = config(&[]).expect("defaults").federation;
        assert_eq!((fed.retries, fed.breaker_failures), (2, 5));
        assert!(fed.dedupe && fed.http2.is_empty() && fed.override_labels.is_empty());
        assert_eq!(fed.supergraph_poll, Some(std::time::Duration::from_secs(1)));
    }

    #[test]
    fn values_are_parsed_and_checked() {
        let fed = config(&[
            ("PYAIRTABLE_SUBGRAPH_TIMEOUTS", "users=500, tenants=2000"),
            ("PYAIRTABLE_SUBGRAPH_HTTP2", "users"),
            ("PYAIRTABLE_SUPERGRAPH_POLL_MS", "0"),
            ("PYAIRTABLE_OVERRIDE_LABELS", "new-billing, beta"),
            ("PYAIRTABLE_SUBGRAPH_DEDUPE", "false"),
        ])
        .expect("valid")
        .federation;
        assert_eq!(fed.subgraph_timeouts[1], ("tenants".to_owned(), std::time::Duration::from_secs(2)));
        assert!(fed.http2_for("users") && !fed.http2_for("tenants"));
        assert_eq!(fed.supergraph_poll, None);
        assert_eq!(fed.override_labels, ["new-billing", "beta"]);
        assert!(!fed.dedupe);
        for (name, value) in [
            ("PYAIRTABLE_SUBGRAPH_TIMEOUTS", "users"),
            ("PYAIRTABLE_SUBGRAPH_TIMEOUTS", "users=0"),
            ("PYAIRTABLE_SUBGRAPH_TIMEOUTS", "us ers=10"),
            ("PYAIRTABLE_SUBGRAPH_RETRIES", "11"),
            ("PYAIRTABLE_SUBGRAPH_BREAKER_COOLDOWN_MS", "0"),
            ("PYAIRTABLE_SUBGRAPH_HTTP2", "a/b"),
            ("PYAIRTABLE_SUBGRAPH_DEDUPE", "perhaps"),
        ] {
            let err = config(&[(name, value)]).expect_err(value);
            assert_eq!(err.variable, name, "{err}");
        }
        let typo = config(&[("PYAIRTABLE_SUBGRAPH_RETRYS", "1")]).expect_err("typo");
        assert!(typo.problem.contains("did you mean PYAIRTABLE_SUBGRAPH_RETRIES?"), "{typo}");
    }
}
