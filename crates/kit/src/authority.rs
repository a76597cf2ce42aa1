//! What the router asks the auth subgraph to authenticate requests: the public signing keys, the
//! caller behind an API key, and whether a session is still live.
//!
//! In one process the auth subgraph hands the router its own implementation (straight to the
//! database); over the network the router uses [`HttpAuthority`], which calls the auth service's
//! internal endpoints with the router's signed identity header.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{Caller, IdentityKey};

/// Paths the auth service serves for [`HttpAuthority`].
pub mod paths {
    /// Public: the JSON Web Key Set of the keys that sign access tokens.
    pub const JWKS: &str = "/.well-known/jwks.json";
    /// Internal (router identity required): `POST {"token": "pat_..."}` → [`super::ApiKeyAnswer`].
    pub const API_KEY: &str = "/internal/api-key";
    /// Internal (router identity required): `GET .../{session id}` → [`super::SessionAnswer`].
    pub const SESSION: &str = "/internal/sessions";
}

/// The claims of an access token (JWT). `aud` is a single string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    pub sid: Uuid,
    pub exp: i64,
    pub iat: i64,
    pub jti: Uuid,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scp: Vec<String>,
}

impl AccessClaims {
    /// The caller these claims stand for.
    pub fn caller(&self) -> Caller {
        Caller {
            user_id: Some(self.sub),
            tenant_id: self.tid,
            session_id: Some(self.sid),
            scopes: self.scp.clone(),
            ..Caller::default()
        }
    }
}

/// The issuer and audience every access token carries and the router demands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAudience {
    pub issuer: String,
    pub audience: String,
}

impl Default for TokenAudience {
    fn default() -> Self {
        Self { issuer: "pyairtable".into(), audience: "pyairtable-api".into() }
    }
}

/// Answer of [`paths::API_KEY`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyAnswer {
    pub caller: Option<Caller>,
}

/// Answer of [`paths::SESSION`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAnswer {
    pub live: bool,
}

/// Why the authority could not answer (not "the credential is bad": that is `Ok(None)`/`false`).
#[derive(Debug, thiserror::Error)]
#[error("auth service: {0}")]
pub struct AuthorityError(pub String);

impl From<crate::internal::InternalError> for AuthorityError {
    fn from(err: crate::internal::InternalError) -> Self {
        Self(err.0)
    }
}

/// The auth subgraph, as the router sees it.
#[async_trait::async_trait]
pub trait Authority: Send + Sync + 'static {
    /// The JWKS document (`{"keys": [...]}`) of the keys that sign access tokens: the previous,
    /// current and next key.
    async fn jwks(&self) -> Result<serde_json::Value, AuthorityError>;
    /// The caller an API key (`pat_...`) stands for; `None` when unknown, expired or revoked.
    async fn api_key(&self, token: &str) -> Result<Option<Caller>, AuthorityError>;
    /// Whether a session exists and is neither revoked nor expired.
    async fn session_live(&self, session_id: Uuid) -> Result<bool, AuthorityError>;
}

/// [`Authority`] over HTTP: the auth service's base URL (`http://auth:4000`).
pub struct HttpAuthority {
    base: String,
    http: crate::internal::Client,
    key: IdentityKey,
}

impl HttpAuthority {
    pub fn new(base_url: &str, key: IdentityKey, timeout: Duration) -> Self {
        let base = base_url.trim_end_matches('/').trim_end_matches("/graphql").to_owned();
        Self { base, http: crate::internal::Client::new(timeout), key }
    }

    fn identity(&self) -> String {
        self.key.sign(&Caller::anonymous(), chrono::Utc::now().timestamp())
    }
}

#[async_trait::async_trait]
impl Authority for HttpAuthority {
    async fn jwks(&self) -> Result<serde_json::Value, AuthorityError> {
        Ok(self.http.get(&format!("{}{}", self.base, paths::JWKS), None).await?)
    }

    async fn api_key(&self, token: &str) -> Result<Option<Caller>, AuthorityError> {
        let body = serde_json::json!({ "token": token });
        let url = format!("{}{}", self.base, paths::API_KEY);
        let answer: serde_json::Value = self.http.post(&url, &self.identity(), &body).await?;
        let answer: ApiKeyAnswer =
            serde_json::from_value(answer).map_err(|e| AuthorityError(format!("api key answer: {e}")))?;
        Ok(answer.caller)
    }

    async fn session_live(&self, session_id: Uuid) -> Result<bool, AuthorityError> {
        let url = format!("{}{}/{session_id}", self.base, paths::SESSION);
        let answer = self.http.get(&url, Some(&self.identity())).await?;
        let answer: SessionAnswer =
            serde_json::from_value(answer).map_err(|e| AuthorityError(format!("session answer: {e}")))?;
        Ok(answer.live)
    }
}
