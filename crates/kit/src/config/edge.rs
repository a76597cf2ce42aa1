//! The router's edge settings: environment, limits, rate limits, persisted queries, CORS, CSRF
//! and header propagation. Parsed with the rest of [`super::Config`], validated the same way.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{ConfigError, Env};

/// Where the platform runs: development (the zero-configuration default) or production.
/// Production turns off introspection, field suggestions, GraphiQL and cross-origin requests
/// unless each is turned back on by its own variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    #[default]
    Development,
    Production,
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "development" => Ok(Self::Development),
            "production" => Ok(Self::Production),
            other => Err(format!("unknown value {other:?}; expected development or production")),
        }
    }
}

/// A budget: at most `limit` units per `window`, refilled continuously (GCRA), so a caller may
/// spend the whole budget at once and then `limit / window` per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub window: Duration,
}

impl Quota {
    pub const fn per_minute(limit: u64) -> Self {
        Self { limit, window: Duration::from_secs(60) }
    }
}

impl FromStr for Quota {
    type Err = String;
    /// `N/WINDOW` with the window in `s`, `m` or `h` (`600/1m`, `20/10s`).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not N/WINDOW (600/1m, 20/10s, 5000/1h) or off");
        let (limit, window) = s.split_once('/').ok_or_else(bad)?;
        let limit: u64 = limit.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let unit = match window.chars().last() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            _ => return Err(bad()),
        };
        let count: u64 = window[..window.len() - 1].parse().map_err(|_| bad())?;
        if limit == 0 || count == 0 || limit > 1_000_000_000 || count * unit > 86_400 {
            return Err(format!("{s:?}: the limit must be 1..=10^9 and the window 1 s..=24 h"));
        }
        Ok(Self { limit, window: Duration::from_secs(count * unit) })
    }
}

/// Rate limits; `None` turns one off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per signed-in user or API key.
    pub caller: Option<Quota>,
    /// Requests per tenant, shared by all its users.
    pub tenant: Option<Quota>,
    /// Requests per client IP address.
    pub ip: Option<Quota>,
    /// Anonymous operations (sign-up, log-in, refresh, reset, verification) per IP.
    pub anonymous_ip: Option<Quota>,
    /// Anonymous operations per target account (the `email` they name).
    pub anonymous_account: Option<Quota>,
    /// Cost points per tenant (per user without a tenant, per IP when anonymous).
    pub cost: Option<Quota>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            caller: Some(Quota::per_minute(1200)),
            tenant: Some(Quota::per_minute(6000)),
            ip: Some(Quota::per_minute(3000)),
            anonymous_ip: Some(Quota::per_minute(30)),
            anonymous_account: Some(Quota { limit: 10, window: Duration::from_secs(600) }),
            cost: Some(Quota::per_minute(100_000)),
        }
    }
}

/// Limits on one operation, checked before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_depth: u32,
    pub max_aliases: u32,
    pub max_root_fields: u32,
    pub max_tokens: u32,
    /// Operations in one JSON array (1: arrays are refused).
    pub max_batch: u32,
    pub max_cost: u64,
    /// Assumed length of a list whose size no argument or `@listSize` gives.
    pub list_size: u32,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_depth: 15,
            max_aliases: 30,
            max_root_fields: 20,
            max_tokens: 10_000,
            max_batch: 10,
            max_cost: 10_000,
            list_size: 10,
        }
    }
}

/// Which origins may call the router from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// No cross-origin request is allowed (production default).
    None,
    /// `http://localhost`, `127.0.0.1` and `[::1]` on any port (development default).
    Localhost,
    /// Any origin (`*`); never with credentials.
    Any,
    /// These exact origins.
    List(Vec<String>),
}

/// Cross-origin resource sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub origins: Origins,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub credentials: bool,
    pub max_age: Duration,
}

impl Cors {
    fn defaults(environment: Environment) -> Self {
        let headers = [
            "content-type",
            "authorization",
            "apollo-require-preflight",
            "x-apollo-operation-name",
            "apollographql-client-name",
            "apollographql-client-version",
            "x-request-id",
        ];
        Self {
            origins: match environment {
                Environment::Development => Origins::Localhost,
                Environment::Production => Origins::None,
            },
            methods: vec!["GET".into(), "POST".into()],
            headers: headers.map(String::from).to_vec(),
            credentials: false,
            max_age: Duration::from_secs(600),
        }
    }
}

/// Everything at the router's front door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    pub environment: Environment,
    pub introspection: bool,
    pub graphiql: bool,
    /// "Did you mean ..." in validation errors.
    pub suggestions: bool,
    /// Refuse GET and simple-content-type POST requests without a preflight-forcing header.
    pub csrf_prevention: bool,
    /// Automatic persisted queries.
    pub apq: bool,
    /// A file or folder of trusted documents: when set, only they run.
    pub trusted_documents: Option<PathBuf>,
    /// Client headers forwarded to subgraphs (lower case).
    pub propagate_headers: Vec<String>,
    /// Prefix of every Redis key the router writes (several deployments on one Redis).
    pub redis_prefix: String,
    pub rate_limits: RateLimits,
    pub limits: QueryLimits,
    pub cors: Cors,
    pub websockets: WebSocketLimits,
}

/// How the router treats GraphQL WebSockets and event streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketLimits {
    /// How long a socket may stay open before `connection_init` (then closed with 4408).
    pub init_timeout: Duration,
    /// How often an idle client is pinged (and its credentials checked again).
    pub keepalive: Duration,
    /// Operations at once on one socket.
    pub max_operations: u32,
    /// Messages queued for one client before its subscriptions wait for it.
    pub buffer: u32,
    /// A client that does not take one message within this time is disconnected.
    pub write_timeout: Duration,
}

impl Default for WebSocketLimits {
    fn default() -> Self {
        Self {
            init_timeout: Duration::from_secs(3),
            keepalive: Duration::from_secs(12),
            max_operations: 100,
            buffer: 32,
            write_timeout: Duration::from_secs(10),
        }
    }
}

fn websockets(env: &Env, d: WebSocketLimits) -> Result<WebSocketLimits, ConfigError> {
    let millis = |name: &str, max: u64, default: Duration| -> Result<Duration, ConfigError> {
        Ok(env.bounded(name, 100, max)?.map_or(default, Duration::from_millis))
    };
    Ok(WebSocketLimits {
        init_timeout: millis("PYAIRTABLE_WS_INIT_TIMEOUT_MS", 60_000, d.init_timeout)?,
        keepalive: millis("PYAIRTABLE_WS_KEEPALIVE_MS", 600_000, d.keepalive)?,
        max_operations: env.bounded("PYAIRTABLE_WS_MAX_OPERATIONS", 1, 10_000)?.unwrap_or(d.max_operations),
        buffer: env.bounded("PYAIRTABLE_WS_BUFFER", 1, 10_000)?.unwrap_or(d.buffer),
        write_timeout: millis("PYAIRTABLE_WS_WRITE_TIMEOUT_MS", 600_000, d.write_timeout)?,
    })
}

impl EdgeConfig {
    /// The settings of `environment` with nothing overridden.
    pub fn defaults(environment: Environment) -> Self {
        let development = environment == Environment::Development;
        Self {
            environment,
            introspection: development,
            graphiql: development,
            suggestions: development,
            csrf_prevention: true,
            apq: true,
            trusted_documents: None,
            propagate_headers: vec!["accept-language".into()],
            redis_prefix: "pyairtable:".into(),
            rate_limits: RateLimits::default(),
            limits: QueryLimits::default(),
            cors: Cors::defaults(environment),
            websockets: WebSocketLimits::default(),
        }
    }

    pub(super) fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let environment = env.parse::<Environment>("PYAIRTABLE_ENV")?.unwrap_or_default();
        let d = Self::defaults(environment);
        Ok(Self {
            environment,
            introspection: env.boolean("PYAIRTABLE_INTROSPECTION")?.unwrap_or(d.introspection),
            graphiql: env.boolean("PYAIRTABLE_GRAPHIQL")?.unwrap_or(d.graphiql),
            suggestions: env.boolean("PYAIRTABLE_FIELD_SUGGESTIONS")?.unwrap_or(d.suggestions),
            csrf_prevention: env.boolean("PYAIRTABLE_CSRF_PREVENTION")?.unwrap_or(d.csrf_prevention),
            apq: env.boolean("PYAIRTABLE_APQ")?.unwrap_or(d.apq),
            trusted_documents: env.string("PYAIRTABLE_TRUSTED_DOCUMENTS").map(PathBuf::from),
            propagate_headers: propagate_headers(env)?.unwrap_or(d.propagate_headers),
            redis_prefix: env.string("PYAIRTABLE_REDIS_PREFIX").unwrap_or(d.redis_prefix),
            rate_limits: rate_limits(env, d.rate_limits)?,
            limits: query_limits(env, d.limits)?,
            cors: cors(env, d.cors)?,
            websockets: websockets(env, d.websockets)?,
        })
    }
}

fn quota(env: &Env, name: &str, default: Option<Quota>) -> Result<Option<Quota>, ConfigError> {
    match env.string(name).as_deref() {
        None => Ok(default),
        Some("off") => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|e| ConfigError::new(name, e)),
    }
}

fn rate_limits(env: &Env, d: RateLimits) -> Result<RateLimits, ConfigError> {
    Ok(RateLimits {
        caller: quota(env, "PYAIRTABLE_RATE_LIMIT_CALLER", d.caller)?,
        tenant: quota(env, "PYAIRTABLE_RATE_LIMIT_TENANT", d.tenant)?,
        ip: quota(env, "PYAIRTABLE_RATE_LIMIT_IP", d.ip)?,
        anonymous_ip: quota(env, "PYAIRTABLE_RATE_LIMIT_ANONYMOUS_IP", d.anonymous_ip)?,
        anonymous_account: quota(env, "PYAIRTABLE_RATE_LIMIT_ANONYMOUS_ACCOUNT", d.anonymous_account)?,
        cost: quota(env, "PYAIRTABLE_COST_BUDGET", d.cost)?,
    })
}

fn query_limits(env: &Env, d: QueryLimits) -> Result<QueryLimits, ConfigError> {
    Ok(QueryLimits {
        max_depth: env.bounded("PYAIRTABLE_MAX_DEPTH", 1, 1000)?.unwrap_or(d.max_depth),
        max_aliases: env.bounded("PYAIRTABLE_MAX_ALIASES", 0, 100_000)?.unwrap_or(d.max_aliases),
        max_root_fields: env.bounded("PYAIRTABLE_MAX_ROOT_FIELDS", 1, 100_000)?.unwrap_or(d.max_root_fields),
        max_tokens: env.bounded("PYAIRTABLE_MAX_TOKENS", 10, 10_000_000)?.unwrap_or(d.max_tokens),
        max_batch: env.bounded("PYAIRTABLE_MAX_BATCH_SIZE", 1, 1000)?.unwrap_or(d.max_batch),
        max_cost: env.bounded("PYAIRTABLE_MAX_COST", 1, u64::MAX / 4)?.unwrap_or(d.max_cost),
        list_size: env.bounded("PYAIRTABLE_COST_LIST_SIZE", 1, 100_000)?.unwrap_or(d.list_size),
    })
}

/// Headers no rule may forward: the router sets them itself, or they describe the hop.
const NEVER_FORWARDED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "accept",
    "x-request-id",
    "x-pyairtable-identity",
];

fn propagate_headers(env: &Env) -> Result<Option<Vec<String>>, ConfigError> {
    const NAME: &str = "PYAIRTABLE_PROPAGATE_HEADERS";
    let Some(raw) = env.string(NAME) else { return Ok(None) };
    if raw == "none" {
        return Ok(Some(Vec::new()));
    }
    list(&raw)
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .map(|h| {
            let valid = !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                Err(ConfigError::new(NAME, format!("{h:?} is not a header name")))
            } else if NEVER_FORWARDED.contains(&h.as_str()) {
                Err(ConfigError::new(NAME, format!("{h} is set by the router and cannot be forwarded")))
            } else {
                Ok(h)
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn cors(env: &Env, d: Cors) -> Result<Cors, ConfigError> {
    let origins = match env.string("PYAIRTABLE_CORS_ORIGINS").as_deref() {
        None => d.origins,
        Some("none") => Origins::None,
        Some("localhost") => Origins::Localhost,
        Some("*") => Origins::Any,
        Some(raw) => Origins::List(origin_list(raw)?),
    };
    let credentials = env.boolean("PYAIRTABLE_CORS_CREDENTIALS")?.unwrap_or(d.credentials);
    if credentials && origins == Origins::Any {
        return Err(ConfigError::new(
            "PYAIRTABLE_CORS_CREDENTIALS",
            "cannot be true with PYAIRTABLE_CORS_ORIGINS=* (browsers refuse it); list the origins",
        ));
    }
    let methods = match env.string("PYAIRTABLE_CORS_METHODS") {
        None => d.methods,
        Some(raw) => list(&raw.to_ascii_uppercase())
            .into_iter()
            .map(|m| match m.as_str() {
                "GET" | "POST" => Ok(m),
                _ => Err(ConfigError::new("PYAIRTABLE_CORS_METHODS", format!("{m}: only GET and POST"))),
            })
            .collect::<Result<_, _>>()?,
    };
    let headers =
        env.string("PYAIRTABLE_CORS_HEADERS").map_or(d.headers, |raw| list(&raw.to_ascii_lowercase()));
    let max_age = env.bounded("PYAIRTABLE_CORS_MAX_AGE", 0, 86_400)?.map_or(d.max_age, Duration::from_secs);
    Ok(Cors { origins, methods, headers, credentials, max_age })
}

fn origin_list(raw: &str) -> Result<Vec<String>, ConfigError> {
    list(raw)
        .into_iter()
        .map(|origin| {
            let origin = origin.trim_end_matches('/').to_owned();
            let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(['/', '?', '#', ' ', '*'])) {
                Err(ConfigError::new(
                    "PYAIRTABLE_CORS_ORIGINS",
                    format!("{origin:?} is not an origin (https://app.example.com)"),
                ))
            } else {
                Ok(origin)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
