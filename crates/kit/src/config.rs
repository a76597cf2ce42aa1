//! Typed configuration from the environment, validated once at start.
//!
//! Every variable is either conventional (`DATABASE_URL`, `REDIS_URL`) or carries the `PYAIRTABLE_`
//! prefix. An unknown `PYAIRTABLE_*` variable is an error (a typo must not silently fall back to a
//! default), and every error names the variable at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

mod edge;
mod federation;

pub use edge::{Cors, EdgeConfig, Environment, Origins, QueryLimits, Quota, RateLimits, WebSocketLimits};
pub use federation::FederationConfig;
mod files;
pub use files::{FilesConfig, MAX_FILE_SIZE, ObjectStoreConfig};
mod notifications;
pub use notifications::NotificationsConfig;

/// Variables under this prefix are reserved for test suites and ignored by the configuration.
const TEST_PREFIX: &str = "PYAIRTABLE_TEST_";
const PREFIX: &str = "PYAIRTABLE_";

/// Every variable the configuration understands, with its one-line description (also used by
/// `pyairtable doctor`-style help and the README table).
pub const VARIABLES: &[(&str, &str)] = &[
    ("DATABASE_URL", "PostgreSQL URL; unset: a private cluster under <data dir>/pg"),
    ("REDIS_URL", "Redis URL; unset: in-process cache and pub/sub"),
    (
        "SMTP_URL",
        "SMTP server for outgoing email (smtp:// STARTTLS, smtps:// TLS); unset: .eml files in <data dir>/outbox",
    ),
    ("PYAIRTABLE_MAIL_FROM", "sender of outgoing email (default PyAirtable <no-reply@localhost>)"),
    (
        "PYAIRTABLE_PUBLIC_URL",
        "base URL users reach the platform at, for links in emails (default http://127.0.0.1:4000)",
    ),
    ("PYAIRTABLE_LISTEN", "address to listen on (default 127.0.0.1:4000)"),
    ("PYAIRTABLE_DATA_DIR", "where zero-config state lives (default ./data)"),
    ("PYAIRTABLE_LOG", "log filter, tracing EnvFilter syntax (default info)"),
    ("PYAIRTABLE_LOG_FORMAT", "json or pretty (default json)"),
    ("PYAIRTABLE_DB_MAX_CONNECTIONS", "PostgreSQL pool size (default 20)"),
    (
        "PYAIRTABLE_MIGRATE",
        "apply migrations at start (default true); false: refuse to start while some are pending",
    ),
    ("PYAIRTABLE_INTERNAL_SECRET", "shared secret (>= 32 bytes) signing router-to-subgraph identity"),
    ("PYAIRTABLE_SUBGRAPHS", "router: name=url pairs, comma separated"),
    (
        "PYAIRTABLE_PERMISSIONS_URL",
        "subgraphs run as services: where the permissions service is (default http://permissions:4000)",
    ),
    ("PYAIRTABLE_SUPERGRAPH", "router: supergraph SDL file (instead of composing)"),
    (
        "PYAIRTABLE_ENV",
        "development or production (default development): sets the defaults of introspection, \
         suggestions, GraphiQL and CORS",
    ),
    ("PYAIRTABLE_GRAPHIQL", "serve GraphiQL at / : true or false (default: true in development)"),
    ("PYAIRTABLE_INTROSPECTION", "answer introspection queries (default: true in development)"),
    ("PYAIRTABLE_FIELD_SUGGESTIONS", "\"Did you mean\" in validation errors (default: true in development)"),
    (
        "PYAIRTABLE_CSRF_PREVENTION",
        "refuse GET/simple POST without a preflight-forcing header (default true)",
    ),
    ("PYAIRTABLE_APQ", "automatic persisted queries: true or false (default true)"),
    ("PYAIRTABLE_TRUSTED_DOCUMENTS", "file or folder of trusted documents; when set, only they run"),
    ("PYAIRTABLE_PROPAGATE_HEADERS", "client headers forwarded to subgraphs (default accept-language; none)"),
    ("PYAIRTABLE_REDIS_PREFIX", "prefix of the router's Redis keys (default pyairtable:)"),
    ("PYAIRTABLE_RATE_LIMIT_CALLER", "requests per user or API key, N/WINDOW or off (default 1200/1m)"),
    ("PYAIRTABLE_RATE_LIMIT_TENANT", "requests per tenant (default 6000/1m)"),
    ("PYAIRTABLE_RATE_LIMIT_IP", "requests per client IP (default 3000/1m)"),
    ("PYAIRTABLE_RATE_LIMIT_ANONYMOUS_IP", "sign-up/log-in/refresh/reset/verify per IP (default 30/1m)"),
    ("PYAIRTABLE_RATE_LIMIT_ANONYMOUS_ACCOUNT", "the same per target email (default 10/10m)"),
    ("PYAIRTABLE_COST_BUDGET", "cost points per tenant (else user, else IP) (default 100000/1m)"),
    ("PYAIRTABLE_MAX_DEPTH", "deepest field nesting of an operation (default 15)"),
    ("PYAIRTABLE_MAX_ALIASES", "aliases in an operation (default 30)"),
    ("PYAIRTABLE_MAX_ROOT_FIELDS", "root fields in an operation (default 20)"),
    ("PYAIRTABLE_MAX_TOKENS", "lexical tokens in a document (default 10000)"),
    ("PYAIRTABLE_MAX_BATCH_SIZE", "operations in one JSON array request; 1 refuses arrays (default 10)"),
    ("PYAIRTABLE_MAX_COST", "estimated cost of one operation (default 10000)"),
    ("PYAIRTABLE_COST_LIST_SIZE", "assumed size of a list without first/last or @listSize (default 10)"),
    (
        "PYAIRTABLE_WS_INIT_TIMEOUT_MS",
        "router: wait for a WebSocket's connection_init, then 4408 (default 3000)",
    ),
    (
        "PYAIRTABLE_WS_KEEPALIVE_MS",
        "router: ping and re-check credentials of idle sockets and streams (default 12000)",
    ),
    ("PYAIRTABLE_WS_MAX_OPERATIONS", "router: operations at once on one WebSocket (default 100)"),
    ("PYAIRTABLE_WS_BUFFER", "router: messages queued for one slow client (default 32)"),
    (
        "PYAIRTABLE_WS_WRITE_TIMEOUT_MS",
        "router: a client not taking a message this long is cut (default 10000)",
    ),
    (
        "PYAIRTABLE_CORS_ORIGINS",
        "allowed origins: comma list, *, localhost or none (default by PYAIRTABLE_ENV)",
    ),
    ("PYAIRTABLE_CORS_METHODS", "allowed methods (default GET,POST)"),
    ("PYAIRTABLE_CORS_HEADERS", "allowed request headers (default content-type,authorization,...)"),
    ("PYAIRTABLE_CORS_CREDENTIALS", "allow credentials (cookies) cross-origin (default false)"),
    ("PYAIRTABLE_CORS_MAX_AGE", "seconds a browser may cache a preflight (default 600)"),
    ("PYAIRTABLE_SUBGRAPH_TIMEOUT_MS", "router: timeout of one subgraph fetch (default 30000)"),
    (
        "PYAIRTABLE_SUBGRAPH_TIMEOUTS",
        "router: per-subgraph fetch timeouts, name=milliseconds pairs, comma separated",
    ),
    (
        "PYAIRTABLE_SUBGRAPH_RETRIES",
        "router: retries of a query fetch after a connection error or 5xx (default 2)",
    ),
    (
        "PYAIRTABLE_SUBGRAPH_RETRY_BACKOFF_MS",
        "router: first retry's backoff, doubled each time, jittered (default 50)",
    ),
    (
        "PYAIRTABLE_SUBGRAPH_BREAKER_FAILURES",
        "router: consecutive failures that open a subgraph's circuit; 0: never (default 5)",
    ),
    (
        "PYAIRTABLE_SUBGRAPH_BREAKER_COOLDOWN_MS",
        "router: how long an open circuit refuses fetches before a probe (default 10000)",
    ),
    (
        "PYAIRTABLE_SUBGRAPH_DEDUPE",
        "router: share identical in-flight query fetches of one caller (default true)",
    ),
    ("PYAIRTABLE_SUBGRAPH_HTTP2", "router: subgraphs spoken to in HTTP/2 with prior knowledge (h2c), or all"),
    (
        "PYAIRTABLE_SUPERGRAPH_POLL_MS",
        "router: how often the supergraph file is checked for changes; 0: never (default 1000)",
    ),
    ("PYAIRTABLE_OVERRIDE_LABELS", "router: progressive @override labels turned on, comma separated"),
    (
        "PYAIRTABLE_TRUSTED_PROXIES",
        "router: CIDRs whose X-Forwarded-For is believed (default loopback and private ranges; none: never)",
    ),
    (
        "PYAIRTABLE_OBJECT_STORE_URL",
        "where file contents go: s3://bucket[/prefix] (with the AWS_* variables) or file:///path; \
         unset: <data dir>/files",
    ),
    (
        "PYAIRTABLE_FILES_URL",
        "base URL of the files service's upload/download endpoints as clients reach them \
         (default: the public URL in one process, the files service's own address otherwise)",
    ),
    ("PYAIRTABLE_FILES_MAX_SIZE", "largest file accepted, e.g. 100MiB (default 1GiB, at most 5GiB)"),
    (
        "PYAIRTABLE_FILES_MULTIPART_MAX_SIZE",
        "largest file in a GraphQL multipart request (default 32MiB, at most PYAIRTABLE_FILES_MAX_SIZE)",
    ),
    (
        "PYAIRTABLE_ACCESS_TOKEN_TTL_SECONDS",
        "lifetime of the access tokens auth issues, 60 to 86400 (default 600)",
    ),
    ("PYAIRTABLE_FILES_QUOTA", "bytes each organization may store (default 10GiB)"),
    ("PYAIRTABLE_FILES_URL_TTL_SECONDS", "lifetime of signed upload and download URLs (default 900)"),
    (
        "PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK",
        "deliver webhooks to loopback addresses (development and tests only; refused in production)",
    ),
    (
        "PYAIRTABLE_NOTIFICATIONS_MAX_ATTEMPTS",
        "attempts per notification delivery before it is marked failed (default 5)",
    ),
    (
        "PYAIRTABLE_NOTIFICATIONS_RETRY_BASE_MS",
        "wait before a delivery's first retry, doubling each time (default 30000)",
    ),
    (
        "PYAIRTABLE_NOTIFICATIONS_SMS_URL",
        "HTTP endpoint of the SMS provider adapter (JSON POST); unset: no SMS",
    ),
    (
        "PYAIRTABLE_NOTIFICATIONS_PUSH_URL",
        "HTTP endpoint of the push provider adapter (JSON POST); unset: no push",
    ),
    (
        "PYAIRTABLE_SHUTDOWN_GRACE_SECONDS",
        "on SIGTERM/SIGINT: how long in-flight requests and background work may take to finish (default 20)",
    ),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTLP/HTTP collector base URL (http://host:4318); traces go to <it>/v1/traces",
    ),
    (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTLP/HTTP traces URL, used as is (wins over OTEL_EXPORTER_OTLP_ENDPOINT)",
    ),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "only http/protobuf is supported"),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "only http/protobuf is supported"),
    ("OTEL_SDK_DISABLED", "true: export no traces even when an endpoint is set"),
];

/// Standard AWS variables (credentials, region, endpoint) are passed to the S3 client as they are.
const AWS_PREFIX: &str = "AWS_";

/// A configuration error: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { variable: variable.into(), problem: problem.into() }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            other => Err(format!("unknown value {other:?}; expected json or pretty")),
        }
    }
}

/// A secret that is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The configuration of one `pyairtable` process, whatever its role.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Option<Secret>,
    pub redis_url: Option<Secret>,
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    /// Without a trailing slash.
    pub public_url: String,
    /// Whether PYAIRTABLE_PUBLIC_URL was set (else `public_url` is the default).
    pub public_url_set: bool,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log: String,
    pub log_format: LogFormat,
    pub db_max_connections: u32,
    pub migrate: bool,
    pub internal_secret: Option<Secret>,
    pub subgraphs: Vec<(String, String)>,
    pub supergraph: Option<PathBuf>,
    /// The router's front door: environment, limits, CORS, persisted queries...
    pub edge: EdgeConfig,
    pub subgraph_timeout_ms: u64,
    /// Where subgraphs running as services ask for authorization decisions.
    pub permissions_url: String,
    /// Peers whose `X-Forwarded-For` names the client (ingresses, load balancers).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Subgraph fetches and the supergraph file (router).
    pub federation: FederationConfig,
    /// Files: the object store and the limits.
    pub files: FilesConfig,
    /// Webhooks may be delivered to loopback addresses (never in production).
    pub webhooks_allow_loopback: bool,
    /// Notifications: delivery retries, SMS and push providers.
    pub notifications: NotificationsConfig,
    /// How long the access tokens auth issues are valid (refresh tokens live as long as sessions).
    pub access_token_ttl: std::time::Duration,
    /// How long the shutdown may take to drain requests and finish background work.
    pub shutdown_grace: std::time::Duration,
    /// Where spans are exported over OTLP/HTTP (`.../v1/traces`), when configured.
    pub otlp_traces_endpoint: Option<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (the process environment, or a test's map).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let env = Env::new(vars)?;
        let edge = EdgeConfig::from_env(&env)?;
        let data_dir = env.string("PYAIRTABLE_DATA_DIR").map_or_else(|| PathBuf::from("data"), PathBuf::from);
        Ok(Self {
            files: files::files_config(&env, &data_dir)?,
            webhooks_allow_loopback: webhooks_allow_loopback(&env, edge.environment)?,
            notifications: notifications::notifications_config(&env)?,
            database_url: env.string("DATABASE_URL").map(Secret),
            redis_url: env.string("REDIS_URL").map(Secret),
            smtp_url: env.smtp_url("SMTP_URL")?,
            mail_from: env
                .mailbox("PYAIRTABLE_MAIL_FROM")?
                .unwrap_or_else(|| "PyAirtable <no-reply@localhost>".into()),
            public_url: env
                .public_url("PYAIRTABLE_PUBLIC_URL")?
                .unwrap_or_else(|| "http://127.0.0.1:4000".into()),
            public_url_set: env.string("PYAIRTABLE_PUBLIC_URL").is_some(),
            listen: env.parse("PYAIRTABLE_LISTEN")?.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 4000))),
            data_dir,
            log: env.string("PYAIRTABLE_LOG").unwrap_or_else(|| "info".into()),
            log_format: env.parse("PYAIRTABLE_LOG_FORMAT")?.unwrap_or(LogFormat::Json),
            db_max_connections: env.bounded("PYAIRTABLE_DB_MAX_CONNECTIONS", 1, 1000)?.unwrap_or(20),
            migrate: env.boolean("PYAIRTABLE_MIGRATE")?.unwrap_or(true),
            internal_secret: env.secret("PYAIRTABLE_INTERNAL_SECRET", 32)?,
            subgraphs: env.pairs("PYAIRTABLE_SUBGRAPHS")?,
            supergraph: env.string("PYAIRTABLE_SUPERGRAPH").map(PathBuf::from),
            edge,
            subgraph_timeout_ms: env.bounded("PYAIRTABLE_SUBGRAPH_TIMEOUT_MS", 1, 600_000)?.unwrap_or(30_000),
            permissions_url: env
                .public_url("PYAIRTABLE_PERMISSIONS_URL")?
                .unwrap_or_else(|| "http://permissions:4000".into()),
            trusted_proxies: env.networks("PYAIRTABLE_TRUSTED_PROXIES")?.unwrap_or_else(private_networks),
            federation: FederationConfig::from_env(&env)?,
            access_token_ttl: std::time::Duration::from_secs(
                env.bounded("PYAIRTABLE_ACCESS_TOKEN_TTL_SECONDS", 60, 86_400)?.unwrap_or(600),
            ),
            shutdown_grace: std::time::Duration::from_secs(
                env.bounded("PYAIRTABLE_SHUTDOWN_GRACE_SECONDS", 0, 3600)?.unwrap_or(20),
            ),
            otlp_traces_endpoint: otlp_traces_endpoint(&env)?,
        })
    }

    /// The internal secret, required when processes talk to each other over the network.
    pub fn require_internal_secret(&self) -> Result<&Secret, ConfigError> {
        self.internal_secret.as_ref().ok_or_else(|| {
            ConfigError::new(
                "PYAIRTABLE_INTERNAL_SECRET",
                "required when the router and subgraphs run as separate services \
                 (the same value, at least 32 bytes, on every service)",
            )
        })
    }
}

/// PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK, refused in production (an endpoint could reach the
/// platform's own services).
fn webhooks_allow_loopback(env: &Env, environment: Environment) -> Result<bool, ConfigError> {
    const NAME: &str = "PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK";
    let allow = env.boolean(NAME)?.unwrap_or(false);
    if allow && environment == Environment::Production {
        return Err(ConfigError::new(NAME, "refused in production (PYAIRTABLE_ENV=production)"));
    }
    Ok(allow)
}

/// The OTLP/HTTP traces URL from the standard OpenTelemetry variables, checked.
fn otlp_traces_endpoint(env: &Env) -> Result<Option<String>, ConfigError> {
    for name in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
        if let Some(protocol) = env.string(name).filter(|p| p != "http/protobuf") {
            return Err(ConfigError::new(name, format!("{protocol:?}: only http/protobuf is supported")));
        }
    }
    if env.boolean("OTEL_SDK_DISABLED")?.unwrap_or(false) {
        return Ok(None);
    }
    let (name, url) = match env.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        Some(url) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
        None => match env.string("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(base) => {
                ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("{}/v1/traces", base.trim_end_matches('/')))
            }
            None => return Ok(None),
        },
    };
    if url.starts_with("https://") {
        return Err(ConfigError::new(
            name,
            "https is not supported: export to an OpenTelemetry Collector beside the service over http://",
        ));
    }
    let authority = url.strip_prefix("http://").and_then(|rest| rest.split('/').next());
    if authority.is_none_or(|a| a.is_empty() || a.contains([' ', '?', '#'])) {
        return Err(ConfigError::new(name, format!("{url:?} is not an http:// URL")));
    }
    Ok(Some(url))
}

/// Loopback and private ranges: where an ingress or load balancer in front of the router lives.
fn private_networks() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"]
        .iter()
        .filter_map(|cidr| cidr.parse().ok())
        .collect()
}

/// Parses `name=url,name=url` (also used for repeated `--subgraph name=url` flags).
pub fn parse_subgraph_pair(pair: &str) -> Result<(String, String), String> {
    let (name, url) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not name=url"))?;
    let (name, url) = (name.trim(), url.trim());
    let valid_name =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(format!("{name:?} is not a subgraph name (letters, digits, _ and -)"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    Ok((name.to_owned(), url.to_owned()))
}

/// The environment, with unknown `PYAIRTABLE_*` names already rejected.
struct Env(BTreeMap<String, String>);

impl Env {
    fn new(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let known: Vec<&str> = VARIABLES.iter().map(|(name, _)| *name).collect();
        let mut map = BTreeMap::new();
        for (name, value) in vars {
            let ours = name.starts_with(PREFIX) && !name.starts_with(TEST_PREFIX);
            if ours && !known.contains(&name.as_str()) {
                return Err(unknown_variable(&name, &known));
            }
            if ours || known.contains(&name.as_str()) || name.starts_with(AWS_PREFIX) {
                map.insert(name, value);
            }
        }
        Ok(Self(map))
    }

    fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.string(name)
            .map(|raw| raw.parse::<T>().map_err(|e| ConfigError::new(name, format!("{raw:?}: {e}"))))
            .transpose()
    }

    /// Every `AWS_*` variable, for the S3 client.
    fn aws(&self) -> Vec<(String, Secret)> {
        self.0
            .iter()
            .filter(|(name, _)| name.starts_with(AWS_PREFIX))
            .map(|(name, value)| (name.clone(), Secret(value.clone())))
            .collect()
    }

    fn size(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(raw) = self.string(name) else { return Ok(None) };
        let size = files::parse_size(&raw).map_err(|e| ConfigError::new(name, e))?;
        if size < min || size > max {
            return Err(ConfigError::new(name, format!("{raw} is out of range {min}..={max} bytes")));
        }
        Ok(Some(size))
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        self.string(name)
            .map(|raw| match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(name, format!("unknown value {raw:?}; expected true or false"))),
            })
            .transpose()
    }

    fn bounded<T>(&self, name: &str, min: T, max: T) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
        T::Err: fmt::Display,
    {
        match self.parse::<T>(name)? {
            Some(v) if v < min || v > max => {
                Err(ConfigError::new(name, format!("{v} is out of range {min}..={max}")))
            }
            other => Ok(other),
        }
    }

    fn secret(&self, name: &str, min_len: usize) -> Result<Option<Secret>, ConfigError> {
        match self.string(name) {
            Some(v) if v.len() < min_len => Err(ConfigError::new(
                name,
                format!("too short ({} bytes); use at least {min_len} random bytes", v.len()),
            )),
            other => Ok(other.map(Secret)),
        }
    }

    fn smtp_url(&self, name: &str) -> Result<Option<Secret>, ConfigError> {
        let Some(raw) = self.string(name) else { return Ok(None) };
        if !(raw.starts_with("smtp://") || raw.starts_with("smtps://")) {
            return Err(ConfigError::new(
                name,
                "must start with smtp:// (STARTTLS or plain) or smtps:// (TLS)",
            ));
        }
        Ok(Some(Secret(raw)))
    }

    fn mailbox(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let Some(raw) = self.string(name) else { return Ok(None) };
        raw.parse::<lettre::message::Mailbox>()
            .map_err(|e| ConfigError::new(name, format!("{raw:?} is not a mailbox (Name <address>): {e}")))?;
        Ok(Some(raw))
    }

    fn public_url(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let Some(raw) = self.string(name) else { return Ok(None) };
        let rest = raw.strip_prefix("https://").or_else(|| raw.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
            return Err(ConfigError::new(name, format!("{raw:?} is not an http(s) URL without query")));
        }
        Ok(Some(raw.trim_end_matches('/').to_owned()))
    }

    fn networks(&self, name: &str) -> Result<Option<Vec<ipnet::IpNet>>, ConfigError> {
        let Some(raw) = self.string(name) else { return Ok(None) };
        if raw == "none" {
            return Ok(Some(Vec::new()));
        }
        raw.split(',')
            .map(|cidr| {
                let cidr = cidr.trim();
                cidr.parse::<ipnet::IpNet>()
                    .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::new(name, format!("{cidr:?} is not an address or CIDR (10.0.0.0/8)"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn pairs(&self, name: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(raw) = self.string(name) else { return Ok(Vec::new()) };
        raw.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| parse_subgraph_pair(p).map_err(|e| ConfigError::new(name, e)))
            .collect()
    }
}

fn unknown_variable(name: &str, known: &[&str]) -> ConfigError {
    let closest = known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, k)| format!("; did you mean {k}?"))
        .unwrap_or_default();
    ConfigError::new(name, format!("unknown variable{closest}"))
}

/// Levenshtein distance, for "did you mean" hints on a handful of short names.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_need_no_variables() {
        let config = Config::from_vars(vars(&[("HOME", "/root")])).expect("defaults");
        assert_eq!(config.listen.to_string(), "127.0.0.1:4000");
        assert!(config.database_url.is_none() && config.migrate && config.edge.graphiql);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn unknown_prefixed_variable_is_named_with_a_hint() {
        let err = Config::from_vars(vars(&[("PYAIRTABLE_LISTN", "0.0.0.0:1")])).expect_err("typo");
        assert_eq!(err.variable, "PYAIRTABLE_LISTN");
        assert!(err.problem.contains("did you mean PYAIRTABLE_LISTEN?"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            ("PYAIRTABLE_LOG_FORMAT", "yaml"),
            ("PYAIRTABLE_LISTEN", "localhost"),
            ("PYAIRTABLE_MIGRATE", "maybe"),
            ("PYAIRTABLE_DB_MAX_CONNECTIONS", "0"),
            ("PYAIRTABLE_INTERNAL_SECRET", "short"),
            ("PYAIRTABLE_SUBGRAPHS", "users=ftp://x"),
            ("PYAIRTABLE_SHUTDOWN_GRACE_SECONDS", "-1"),
            ("PYAIRTABLE_ACCESS_TOKEN_TTL_SECONDS", "30"),
            ("PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK", "perhaps"),
        ];
        for (name, value) in cases {
            let err = Config::from_vars(vars(&[(name, value)])).expect_err(name);
            assert_eq!(err.variable, name);
            assert!(err.to_string().starts_with(&format!("configuration: {name}: ")), "{err}");
        }
    }

    #[test]
    fn test_variables_and_foreign_variables_are_ignored() {
        let config = Config::from_vars(vars(&[
            ("PYAIRTABLE_TEST_DATABASE_URL", "postgres://x"),
            ("PATH", "/bin"),
            ("PYAIRTABLE_SUBGRAPHS", "users=http://127.0.0.1:4001/graphql, tenants=http://h:1/graphql"),
        ]))
        .expect("valid");
        assert_eq!(config.subgraphs.len(), 2);
        assert_eq!(config.subgraphs[1].0, "tenants");
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_none() {
        let config = Config::from_vars(vars(&[("PYAIRTABLE_TRUSTED_PROXIES", "10.1.0.0/16, 192.0.2.7")]))
            .expect("valid");
        let nets: Vec<String> = config.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.1.0.0/16", "192.0.2.7/32"]);
        let none = Config::from_vars(vars(&[("PYAIRTABLE_TRUSTED_PROXIES", "none")])).expect("valid");
        assert!(none.trusted_proxies.is_empty());
        let err = Config::from_vars(vars(&[("PYAIRTABLE_TRUSTED_PROXIES", "10.0.0.0/33")])).expect_err("bad");
        assert_eq!(err.variable, "PYAIRTABLE_TRUSTED_PROXIES");
        assert!(!Config::from_vars(vars(&[])).expect("default").trusted_proxies.is_empty());
    }

    #[test]
    fn mail_settings_are_checked() {
        let bad = [
            ("SMTP_URL", "http://mail:25"),
            ("PYAIRTABLE_MAIL_FROM", "not a mailbox"),
            ("PYAIRTABLE_PUBLIC_URL", "ftp://x"),
            ("PYAIRTABLE_PUBLIC_URL", "https://x/?a=1"),
        ];
        for (name, value) in bad {
            let err = Config::from_vars(vars(&[(name, value)])).expect_err(value);
            assert_eq!(err.variable, name);
        }
        let config = Config::from_vars(vars(&[
            ("SMTP_URL", "smtp://user:pw@mail:587"),
            ("PYAIRTABLE_MAIL_FROM", "Acme <hi@acme.test>"),
            ("PYAIRTABLE_PUBLIC_URL", "https://app.acme.test/"),
        ]))
        .expect("valid");
        assert_eq!(config.public_url, "https://app.acme.test");
        assert!(!format!("{config:?}").contains("pw@"), "the SMTP password is a secret");
    }

    #[test]
    fn otlp_endpoints_follow_the_standard_variables() {
        let endpoint =
            |pairs: &[(&str, &str)]| Config::from_vars(vars(pairs)).map(|c| c.otlp_traces_endpoint);
        assert_eq!(endpoint(&[]).expect("valid"), None);
        let base = endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).expect("valid");
        assert_eq!(base.as_deref(), Some("http://collector:4318/v1/traces"));
        let both = endpoint(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/custom"),
        ]);
        assert_eq!(both.expect("valid").as_deref(), Some("http://other:4318/custom"));
        let off = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "true")];
        assert_eq!(endpoint(&off).expect("valid"), None);
        for (name, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ] {
            assert_eq!(endpoint(&[(name, value)]).expect_err(value).variable, name);
        }
    }

    #[test]
    fn webhooks_reach_loopback_only_outside_production() {
        let on = [("PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK", "true")];
        assert!(Config::from_vars(vars(&on)).expect("development").webhooks_allow_loopback);
        assert!(!Config::from_vars(vars(&[])).expect("default").webhooks_allow_loopback);
        let err = Config::from_vars(vars(&[on[0], ("PYAIRTABLE_ENV", "production")])).expect_err("prod");
        assert_eq!(err.variable, "PYAIRTABLE_WEBHOOKS_ALLOW_LOOPBACK");
    }

    #[test]
    fn secrets_are_not_printed() {
        let secret = "s".repeat(40);
        let config = Config::from_vars(vars(&[("PYAIRTABLE_INTERNAL_SECRET", &secret)])).expect("valid");
        assert!(!format!("{config:?}").contains(&secret));
    }
}
