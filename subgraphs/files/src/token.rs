//! Signed URLs of the files service's own endpoint: `base64url(claims).base64url(HMAC-SHA256)`,
//! short-lived, naming one file and what may be done with it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// What a signed URL lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    #[serde(rename = "u")]
    Upload,
    #[serde(rename = "d")]
    Download,
    #[serde(rename = "t")]
    Thumbnail,
}

/// What a token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "p")]
    pub purpose: Purpose,
    #[serde(rename = "f")]
    pub file: Uuid,
    #[serde(rename = "t")]
    pub tenant: Uuid,
    /// Expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Altered, truncated, signed with another key, or for another purpose.
    Invalid,
    Expired,
}

/// Signs and verifies tokens with the key every files replica shares.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let tag = B64.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The claims of `token` if it is ours, for `purpose`, and not expired at `now`.
    pub fn verify(&self, token: &str, purpose: Purpose, now: i64) -> Result<Claims, TokenError> {
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Invalid)?;
        self.mac(payload).verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let json = B64.decode(payload).map_err(|_| TokenError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
        if claims.purpose != purpose {
            return Err(TokenError::Invalid);
        }
        if claims.expires < now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(b"pyairtable/files/v1.");
        mac.update(payload.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(purpose: Purpose, expires: i64) -> Claims {
        Claims { purpose, file: Uuid::now_v7(), tenant: Uuid::now_v7(), expires }
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let signer = Signer::new([7; 32]);
        let c = claims(Purpose::Download, 1_000);
        let token = signer.sign(&c);
        assert_eq!(signer.verify(&token, Purpose::Download, 999), Ok(c));
        assert_eq!(signer.verify(&token, Purpose::Download, 1_001), Err(TokenError::Expired));
        assert_eq!(signer.verify(&token, Purpose::Upload, 999), Err(TokenError::Invalid));
    }

    #[test]
    fn altered_or_foreign_tokens_are_invalid() {
        let signer = Signer::new([7; 32]);
        let token = signer.sign(&claims(Purpose::Download, 1_000));
        assert_eq!(Signer::new([8; 32]).verify(&token, Purpose::Download, 0), Err(TokenError::Invalid));
        let (_, tag) = token.split_once('.').expect("two parts");
        let forged = B64.encode(serde_json::to_vec(&claims(Purpose::Download, 9_999)).expect("json"));
        assert_eq!(signer.verify(&format!("{forged}.{tag}"), Purpose::Download, 0), Err(TokenError::Invalid));
        for junk in ["", ".", "a.b", "%%.%%", &token[..token.len() - 2]] {
            assert_eq!(signer.verify(junk, Purpose::Download, 0), Err(TokenError::Invalid), "{junk:?}");
        }
    }
}
