//! `pyairtable doctor`: checks the configuration and every external part it names, without
//! changing anything (no migration, no mail sent), and says what is wrong, one line per check.

use std::future::Future;
use std::time::Duration;

use crate::config::{Config, Secret};

/// How long one check may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but not as production wants it.
    Warn,
    Fail,
    /// Not configured, so not checked.
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

impl Check {
    pub(crate) fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self { name, status, detail: detail.into() }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        write!(f, "{status:<5} {}: {}", self.name, self.detail)
    }
}

/// Runs every check against the configuration read from `vars`.
pub async fn run(vars: impl IntoIterator<Item = (String, String)>) -> Vec<Check> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let config = match Config::from_vars(vars.clone()) {
        Ok(config) => config,
        Err(err) => return vec![Check::new("config", Status::Fail, err.to_string())],
    };
    let set = |name: &str| vars.iter().any(|(k, v)| k == name && !v.trim().is_empty());
    let mut checks = vec![config_check(&config)];
    checks.extend(crate::doctor_db::postgresql(&config).await);
    checks.push(redis(&config).await);
    checks.push(storage(&config).await);
    checks.push(crate::doctor_store::object_store(&config).await);
    checks.push(smtp(&config).await);
    if set("PYAIRTABLE_PERMISSIONS_URL") {
        checks.push(service("permissions", &config.permissions_url).await);
    } else {
        checks.push(Check::new("permissions", Status::Skip, "PYAIRTABLE_PERMISSIONS_URL unset"));
    }
    for (name, url) in &config.subgraphs {
        let base = url.trim_end_matches('/').trim_end_matches("/graphql");
        checks.push(service("subgraph", base).await.named(name));
    }
    if let Some(endpoint) = &config.otlp_traces_endpoint {
        checks.push(otlp(endpoint).await);
    }
    checks
}

impl Check {
    fn named(mut self, subgraph: &str) -> Self {
        self.detail = format!("{subgraph}: {}", self.detail);
        self
    }
}

fn config_check(config: &Config) -> Check {
    let mut notes = vec![format!("listen {}", config.listen)];
    if config.database_url.is_none() {
        notes.push("DATABASE_URL unset: private PostgreSQL cluster".into());
    }
    if config.redis_url.is_none() {
        notes.push("REDIS_URL unset: in-process cache".into());
    }
    if config.smtp_url.is_none() {
        notes.push("SMTP_URL unset: mail goes to the outbox folder".into());
    }
    if config.internal_secret.is_none() {
        let detail =
            "PYAIRTABLE_INTERNAL_SECRET unset: only `serve` runs without it (router and subgraphs need it)";
        return Check::new("config", Status::Warn, format!("{detail}; {}", notes.join("; ")));
    }
    Check::new("config", Status::Ok, format!("valid; {}", notes.join("; ")))
}

/// Runs `check` within [`TIMEOUT`], failing with `what did not answer within 5 s` otherwise.
pub(crate) async fn bounded<F>(name: &'static str, what: &str, check: F) -> Check
where
    F: Future<Output = Check>,
{
    tokio::time::timeout(TIMEOUT, check).await.unwrap_or_else(|_| {
        Check::new(name, Status::Fail, format!("{what} did not answer within {} s", TIMEOUT.as_secs()))
    })
}

async fn redis(config: &Config) -> Check {
    let Some(url) = &config.redis_url else {
        return Check::new("redis", Status::Skip, "REDIS_URL unset: cache and rate limits in process");
    };
    let place = redact(url);
    bounded("redis", &place, async {
        let client = match redis::Client::open(url.expose()) {
            Ok(client) => client,
            Err(err) => {
                return Check::new("redis", Status::Fail, format!("REDIS_URL is not a Redis URL: {err}"));
            }
        };
        let info = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            redis::cmd("INFO").arg("server").query_async::<String>(&mut conn).await
        };
        match info.await {
            Ok(info) => redis_version(&place, &info),
            Err(err) => Check::new("redis", Status::Fail, format!("{place}: {err}")),
        }
    })
    .await
}

fn redis_version(place: &str, info: &str) -> Check {
    let version = info.lines().find_map(|l| l.strip_prefix("redis_version:")).unwrap_or("?").trim();
    let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 7 {
        return Check::new(
            "redis",
            Status::Warn,
            format!("{place} answers, but Redis {version} is older than 7"),
        );
    }
    Check::new("redis", Status::Ok, format!("{place} answers PING (Redis {version})"))
}

/// The data folder (outbox, private cluster, local files by default) must be writable; the
/// object store has its own check (`doctor_store`).
async fn storage(config: &Config) -> Check {
    let dir = config.data_dir.clone();
    let probe = dir.join(format!(".doctor-{}", uuid::Uuid::now_v7()));
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&probe, b"ok").await?;
        tokio::fs::remove_file(&probe).await
    };
    match written.await {
        Ok(()) => Check::new(
            "storage",
            Status::Ok,
            format!("data dir {} is writable (PYAIRTABLE_DATA_DIR)", dir.display()),
        ),
        Err(err) => Check::new(
            "storage",
            Status::Fail,
            format!("{} is not writable: {err} (PYAIRTABLE_DATA_DIR)", dir.display()),
        ),
    }
}

/// Connects and says EHLO (and STARTTLS and AUTH when the URL asks), then NOOP; sends nothing.
async fn smtp(config: &Config) -> Check {
    let Some(url) = &config.smtp_url else {
        return Check::new("smtp", Status::Skip, "SMTP_URL unset: mail is written to <data dir>/outbox");
    };
    let place = redact(url);
    bounded("smtp", &place, async {
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose()) {
            Ok(builder) => builder.timeout(Some(TIMEOUT)).build::<Tokio1Executor>(),
            Err(err) => return Check::new("smtp", Status::Fail, format!("SMTP_URL: {err}")),
        };
        match transport.test_connection().await {
            Ok(true) => Check::new("smtp", Status::Ok, format!("{place} answers EHLO (no mail sent)")),
            Ok(false) => Check::new(
                "smtp",
                Status::Fail,
                format!("{place} accepted the connection, then stopped answering"),
            ),
            Err(err) => Check::new("smtp", Status::Fail, format!("{place}: {err}")),
        }
    })
    .await
}

/// Another PyAirtable service: its `/readyz` must answer 200.
async fn service(name: &'static str, base: &str) -> Check {
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    let client = crate::internal::Client::new(TIMEOUT);
    match client.status(&url).await {
        Ok(200) => Check::new(name, Status::Ok, format!("{url} answers 200")),
        Ok(status) => Check::new(name, Status::Fail, format!("{url} answers {status} (not ready)")),
        Err(err) => Check::new(name, Status::Fail, err.to_string()),
    }
}

/// The collector: a TCP connection to the traces endpoint's host and port.
async fn otlp(endpoint: &str) -> Check {
    let authority = endpoint.trim_start_matches("http://").split('/').next().unwrap_or_default();
    let address = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    bounded("otlp", endpoint, async {
        match tokio::net::TcpStream::connect(&address).await {
            Ok(_) => Check::new("otlp", Status::Ok, format!("{endpoint}: the collector accepts connections")),
            Err(err) => Check::new("otlp", Status::Fail, format!("{endpoint}: {err} (traces would be lost)")),
        }
    })
    .await
}

/// A URL without its password, for messages.
pub(crate) fn redact(url: &Secret) -> String {
    let raw = url.expose();
    let Some((scheme, rest)) = raw.split_once("://") else { return "(unparsable URL)".into() };
    let rest = rest.split_once('@').map_or(rest, |(_, host)| host);
    let rest = rest.split_once('?').map_or(rest, |(path, _)| path);
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_report() {
        assert_eq!(redact(&Secret::new("redis://:hunter2@cache:6379/0")), "redis://cache:6379/0");
        assert_eq!(redact(&Secret::new("smtps://me:pw@mail:465?tls=required")), "smtps://mail:465");
        assert_eq!(redact(&Secret::new("garbage")), "(unparsable URL)");
    }

    #[test]
    fn old_redis_is_a_warning() {
        assert_eq!(redis_version("r", "# Server\r\nredis_version:6.2.1\r\n").status, Status::Warn);
        assert_eq!(redis_version("r", "redis_version:7.2.4\r\n").status, Status::Ok);
    }
}
