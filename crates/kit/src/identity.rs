//! The caller's identity, as the router forwards it to subgraphs.
//!
//! Over the network the router sends it in [`IDENTITY_HEADER`], signed with HMAC-SHA256 under a key
//! derived from the shared internal secret, with a short expiry. Subgraphs accept identity from that
//! header only; a request without it, or with a forged, altered or expired one, is refused. In one
//! process the router hands the [`Caller`] to the subgraph schema directly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::Secret;
use crate::error::{Error, Result};

/// The internal header carrying the signed identity from the router to a subgraph.
pub const IDENTITY_HEADER: &str = "x-pyairtable-identity";

/// How long a signed identity stays valid: one hop, so a few seconds would do; a minute absorbs
/// clock skew between hosts.
const LIFETIME_SECS: i64 = 60;
const VERSION: &str = "v1";

/// Who is calling: a verified user (with tenant, session and scopes) or nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    #[serde(rename = "sub", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(rename = "tid", default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    #[serde(rename = "sid", default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The client's IP address as the router saw it (for per-IP limits and session records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's `User-Agent` (at most 200 characters), for session records.
    #[serde(rename = "ua", default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl Caller {
    /// A caller who presented no credentials.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A signed-in user, without tenant or session (tests and internal jobs).
    pub fn user(user_id: Uuid) -> Self {
        Self { user_id: Some(user_id), ..Self::default() }
    }

    /// The user id, or UNAUTHENTICATED.
    pub fn require_user(&self) -> Result<Uuid> {
        self.user_id.ok_or_else(|| Error::Unauthenticated("sign in to do this".into()))
    }
}

/// Why a signed identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("missing identity header")]
    Missing,
    #[error("malformed identity header")]
    Malformed,
    #[error("identity signature does not verify")]
    BadSignature,
    #[error("identity expired")]
    Expired,
}

#[derive(Serialize, Deserialize)]
struct Signed {
    #[serde(flatten)]
    caller: Caller,
    exp: i64,
}

/// Signs and verifies identity headers.
#[derive(Clone)]
pub struct IdentityKey {
    key: [u8; 32],
}

impl IdentityKey {
    /// Derives the signing key from the shared internal secret (domain-separated, so the secret can
    /// serve other internal purposes without one signature standing in for another).
    pub fn new(secret: &Secret) -> Self {
        let mut mac = hmac(secret.expose().as_bytes());
        mac.update(b"pyairtable/identity/v1");
        Self { key: mac.finalize().into_bytes().into() }
    }

    /// The header value for `caller`, valid for a minute from `now` (Unix seconds).
    pub fn sign(&self, caller: &Caller, now: i64) -> String {
        let body = Signed { caller: caller.clone(), exp: now + LIFETIME_SECS };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let payload = B64.encode(json);
        let mut mac = hmac(&self.key);
        mac.update(VERSION.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{VERSION}.{payload}.{tag}")
    }

    /// The caller in a header value, if its signature verifies and it has not expired.
    pub fn verify(&self, header: &str, now: i64) -> Result<Caller, IdentityError> {
        let mut parts = header.split('.');
        let (Some(VERSION), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdentityError::Malformed);
        };
        let tag = B64.decode(tag).map_err(|_| IdentityError::Malformed)?;
        let mut mac = hmac(&self.key);
        mac.update(VERSION.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).map_err(|_| IdentityError::BadSignature)?;
        let json = B64.decode(payload).map_err(|_| IdentityError::Malformed)?;
        let signed: Signed = serde_json::from_slice(&json).map_err(|_| IdentityError::Malformed)?;
        if signed.exp < now || signed.exp > now + 2 * LIFETIME_SECS {
            return Err(IdentityError::Expired);
        }
        Ok(signed.caller)
    }
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Whether a request to an internal endpoint carries a valid identity signed by a peer with the
/// internal secret (always false when no secret is configured).
pub fn signed_internally(key: Option<&IdentityKey>, headers: &http::HeaderMap) -> bool {
    let Some(key) = key else { return false };
    let header = headers.get(IDENTITY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    key.verify(header, chrono::Utc::now().timestamp()).is_ok()
}

/// The caller of the current GraphQL request.
pub fn caller<'a>(ctx: &async_graphql::Context<'a>) -> Result<&'a Caller> {
    ctx.data::<Caller>().map_err(|_| Error::internal(anyhow::anyhow!("no caller in request context")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> IdentityKey {
        IdentityKey::new(&Secret::new(secret.repeat(32)))
    }

    fn alice() -> Caller {
        Caller { scopes: vec!["read".into()], ..Caller::user(Uuid::now_v7()) }
    }

    #[test]
    fn a_signed_identity_round_trips() {
        let header = key("a").sign(&alice(), 1_000);
        let caller = key("a").verify(&header, 1_010).expect("verifies");
        assert_eq!(caller.scopes, vec!["read".to_string()]);
    }

    #[test]
    fn another_secret_altered_payload_or_expiry_is_refused() {
        let caller = alice();
        let header = key("a").sign(&caller, 1_000);
        assert_eq!(key("b").verify(&header, 1_000), Err(IdentityError::BadSignature));
        assert_eq!(key("a").verify(&header, 1_061), Err(IdentityError::Expired));

        let mut parts: Vec<String> = header.split('.').map(str::to_owned).collect();
        let forged = Signed { caller: Caller::user(Uuid::now_v7()), exp: 1_060 };
        parts[1] = B64.encode(serde_json::to_vec(&forged).expect("json"));
        assert_eq!(key("a").verify(&parts.join("."), 1_000), Err(IdentityError::BadSignature));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let k = key("a");
        for header in ["", "v1", "v1.a.b.c", "v2.eyJ9.AAAA", "v1.%%%.%%%"] {
            assert!(k.verify(header, 0).is_err(), "{header:?} accepted");
        }
    }

    #[test]
    fn a_future_dated_identity_is_refused() {
        let header = key("a").sign(&alice(), 10_000);
        assert_eq!(key("a").verify(&header, 1_000), Err(IdentityError::Expired));
    }
}
