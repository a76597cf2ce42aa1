//! Authentication at the router: `Authorization: Bearer <access token>` (an EdDSA JWT verified
//! here against the auth subgraph's JWKS) or `Bearer pat_...` (an API key the auth subgraph
//! resolves). The result is the [`Caller`] the router forwards to subgraphs.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
use pyairtable_kit::Caller;
use pyairtable_kit::authority::{AccessClaims, Authority, TokenAudience};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

/// Unknown `kid`s refetch the JWKS at most this often (random kids cannot flood the auth service).
const JWKS_REFETCH: Duration = Duration::from_secs(10);
/// The JWKS is refreshed in the background of requests after this long anyway.
const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
const API_KEY_TTL: Duration = Duration::from_secs(30);
const API_KEY_NEGATIVE_TTL: Duration = Duration::from_secs(5);
const API_KEY_CACHE: usize = 10_000;
const LEEWAY_SECS: u64 = 30;

/// Why a request's credentials were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad, expired or revoked credentials (the reason is for the log only).
    #[error("invalid credentials: {0}")]
    InvalidToken(String),
    /// The auth service could not be asked.
    #[error("authentication is unavailable: {0}")]
    Unavailable(String),
}

/// Root fields an anonymous caller may use.
#[derive(Debug, Clone)]
pub struct PublicOperations {
    pub queries: HashSet<String>,
    pub mutations: HashSet<String>,
}

impl Default for PublicOperations {
    fn default() -> Self {
        let mutations =
            ["signUp", "logIn", "refreshSession", "verifyEmail", "requestPasswordReset", "resetPassword"];
        Self { queries: HashSet::new(), mutations: mutations.into_iter().map(String::from).collect() }
    }
}

/// API-key answers by SHA-256 of the key: until when, and the caller (`None`: refused).
type ApiKeyCache = LruCache<[u8; 32], (Instant, Option<Caller>)>;

struct Jwks {
    keys: HashMap<String, DecodingKey>,
    document: serde_json::Value,
    fetched: Option<Instant>,
    /// When an unknown `kid` last caused a refetch.
    missed: Option<Instant>,
}

/// Verifies credentials; shared by every request of a router.
pub struct Authenticator {
    authority: Arc<dyn Authority>,
    validation: Validation,
    jwks: RwLock<Jwks>,
    refetch: tokio::sync::Mutex<()>,
    api_keys: Mutex<ApiKeyCache>,
    pub public: PublicOperations,
}

impl Authenticator {
    pub fn new(authority: Arc<dyn Authority>, audience: TokenAudience) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience.audience]);
        validation.set_issuer(&[audience.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let size = NonZeroUsize::new(API_KEY_CACHE).unwrap_or(NonZeroUsize::MIN);
        Self {
            authority,
            validation,
            jwks: RwLock::new(Jwks {
                keys: HashMap::new(),
                document: serde_json::json!({ "keys": [] }),
                fetched: None,
                missed: None,
            }),
            refetch: tokio::sync::Mutex::new(()),
            api_keys: Mutex::new(LruCache::new(size)),
            public: PublicOperations::default(),
        }
    }

    /// The caller behind the request's `Authorization` header (anonymous without one).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let Some(value) = authorization else {
            metric("anonymous", "ok");
            return Ok(Caller::anonymous());
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AuthError::InvalidToken("not a Bearer credential".into()))?;
        let (method, result) = if token.starts_with("pat_") {
            ("api_key", self.api_key(token).await)
        } else {
            ("jwt", self.jwt(token).await)
        };
        metric(
            method,
            match &result {
                Ok(_) => "ok",
                Err(AuthError::InvalidToken(_)) => "invalid",
                Err(AuthError::Unavailable(_)) => "unavailable",
            },
        );
        result
    }

    async fn jwt(&self, token: &str) -> Result<Caller, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::InvalidToken(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| AuthError::InvalidToken("no kid".into()))?;
        let key = self.key(&kid).await?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?
            .claims;
        let live = self
            .authority
            .session_live(claims.sid)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        if !live {
            return Err(AuthError::InvalidToken("the session has ended".into()));
        }
        Ok(claims.caller())
    }

    /// The key `kid` names, refetching the JWKS when it is unknown (rate-limited) or old.
    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let jwks = self.jwks.read().await;
            let fresh = jwks.fetched.is_some_and(|at| at.elapsed() < JWKS_MAX_AGE);
            if let Some(key) = jwks.keys.get(kid).filter(|_| fresh) {
                return Ok(key.clone());
            }
        }
        let _one_at_a_time = self.refetch.lock().await;
        let (stale, miss) = {
            let jwks = self.jwks.read().await;
            let stale = jwks.fetched.is_none_or(|at| at.elapsed() >= JWKS_MAX_AGE);
            let miss =
                !jwks.keys.contains_key(kid) && jwks.missed.is_none_or(|at| at.elapsed() >= JWKS_REFETCH);
            (stale, miss)
        };
        if stale || miss {
            self.fetch_jwks().await?;
            if miss && !stale {
                self.jwks.write().await.missed = Some(Instant::now());
            }
        }
        self.jwks
            .read()
            .await
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::InvalidToken(format!("unknown key id {kid:?}")))
    }

    async fn fetch_jwks(&self) -> Result<(), AuthError> {
        let document = self.authority.jwks().await.map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let keys = parse_jwks(&document);
        let mut jwks = self.jwks.write().await;
        (jwks.keys, jwks.document, jwks.fetched) = (keys, document, Some(Instant::now()));
        Ok(())
    }

    /// The JWKS document, as the auth subgraph publishes it.
    pub async fn jwks_document(&self) -> Result<serde_json::Value, AuthError> {
        let stale = self.jwks.read().await.fetched.is_none_or(|at| at.elapsed() >= JWKS_MAX_AGE);
        if stale {
            let _one_at_a_time = self.refetch.lock().await;
            self.fetch_jwks().await?;
        }
        Ok(self.jwks.read().await.document.clone())
    }

    async fn api_key(&self, token: &str) -> Result<Caller, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.lock_api_keys().get(&digest).cloned();
        let answer = match cached {
            Some((at, answer)) if at > Instant::now() => answer,
            _ => {
                let answer =
                    self.authority.api_key(token).await.map_err(|e| AuthError::Unavailable(e.to_string()))?;
                let ttl = if answer.is_some() { API_KEY_TTL } else { API_KEY_NEGATIVE_TTL };
                self.lock_api_keys().put(digest, (Instant::now() + ttl, answer.clone()));
                answer
            }
        };
        answer.ok_or_else(|| AuthError::InvalidToken("unknown, expired or revoked API key".into()))
    }

    fn lock_api_keys(&self) -> std::sync::MutexGuard<'_, ApiKeyCache> {
        self.api_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The Ed25519 keys of a JWKS document, by `kid`; anything else in it is ignored.
fn parse_jwks(document: &serde_json::Value) -> HashMap<String, DecodingKey> {
    let Some(keys) = document.get("keys").and_then(|k| k.as_array()) else { return HashMap::new() };
    keys.iter()
        .filter(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519")
        .filter_map(|k| {
            let kid = k["kid"].as_str()?;
            let key = DecodingKey::from_ed_components(k["x"].as_str()?).ok()?;
            Some((kid.to_owned(), key))
        })
        .collect()
}

fn metric(method: &'static str, outcome: &'static str) {
    metrics::counter!("router_authentications_total", "method" => method, "outcome" => outcome).increment(1);
}
