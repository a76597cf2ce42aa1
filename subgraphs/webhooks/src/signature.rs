//! Standard Webhooks signatures: secrets (`whsec_` + base64 of the key bytes), the
//! `webhook-signature` header we send, and [`verify`] for receivers.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
//! `v1,` + base64(HMAC-SHA256(key bytes, content)). During a rotation several signatures are
//! sent, separated by spaces; a receiver accepts the message when one of them verifies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of every secret.
pub const PREFIX: &str = "whsec_";
/// Key bytes a secret may carry.
pub const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Key bytes of the secrets we generate.
const GENERATED_BYTES: usize = 32;
/// How far a message's timestamp may be from the receiver's clock.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Why a message or a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the secret is not whsec_ followed by base64 of 24 to 64 bytes")]
    BadSecret,
    #[error("the {0} header is missing or not text")]
    MissingHeader(&'static str),
    #[error("the webhook-timestamp header is not a number of seconds")]
    BadTimestamp,
    #[error("the message timestamp is more than 5 minutes from now")]
    OutsideTolerance,
    #[error("no signature matches")]
    NoMatch,
}

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn generate() -> String {
    let key: [u8; GENERATED_BYTES] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a secret (24 to 64 of them).
pub fn decode(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let encoded = secret.strip_prefix(PREFIX).ok_or(VerifyError::BadSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| VerifyError::BadSecret)?;
    if KEY_BYTES.contains(&key.len()) { Ok(key) } else { Err(VerifyError::BadSecret) }
}

/// `v1,<base64 signature>` of one message with one key.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(mac(key, id, timestamp, body)))
}

/// The `webhook-signature` header value: one signature per key, space separated.
pub fn header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter().map(|key| sign(key, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a received message: the headers `webhook-id`, `webhook-timestamp` (within ±5 minutes
/// of `now`, in Unix seconds) and `webhook-signature`, against `secret` and the raw `body`.
/// Empty or truncated signatures (`v1,` alone, a prefix of the right one) never match: a
/// signature must decode to exactly the 32 bytes of the expected one.
pub fn verify(secret: &str, headers: &http::HeaderMap, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let key = decode(secret)?;
    let text = |name: &'static str| {
        headers.get(name).and_then(|v| v.to_str().ok()).ok_or(VerifyError::MissingHeader(name))
    };
    let (id, timestamp, signatures) =
        (text("webhook-id")?, text("webhook-timestamp")?, text("webhook-signature")?);
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(VerifyError::OutsideTolerance);
    }
    let expected = mac(&key, id, timestamp, body);
    let matches = signatures.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|candidate| {
        STANDARD
            .decode(candidate)
            .is_ok_and(|given| given.len() == expected.len() && bool::from(given.ct_eq(&expected)))
    });
    if matches { Ok(()) } else { Err(VerifyError::NoMatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str, timestamp: i64, signature: &str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in [
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature.to_owned()),
        ] {
            map.insert(name, value.parse().expect("a header value"));
        }
        map
    }

    /// The example of the Standard Webhooks specification (its reference libraries' test vector).
    #[test]
    fn the_specification_example_verifies() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(sign(&decode(secret).expect("secret"), id, 1614265330, body), signature);
        assert_eq!(verify(secret, &headers(id, 1614265330, signature), body, 1614265330), Ok(()));
    }

    #[test]
    fn empty_truncated_stale_and_foreign_signatures_are_refused() {
        let secret = generate();
        let key = decode(&secret).expect("a generated secret decodes");
        assert_eq!(key.len(), 32);
        let now = 1_700_000_000;
        let good = sign(&key, "msg_1", now, b"{}");
        let check = |sig: &str, at: i64| verify(&secret, &headers("msg_1", now, sig), b"{}", at);
        assert_eq!(check(&good, now), Ok(()));
        assert_eq!(check(&format!("v1,AAAA {good}"), now), Ok(()), "one of several matches");
        for bad in
            ["", "v1,", "v1, ", "v1,=", &good[..good.len() - 4], "v2,abc", &good.replace("v1,", "v1a,")]
        {
            assert_eq!(check(bad, now), Err(VerifyError::NoMatch), "{bad:?}");
        }
        assert_eq!(check(&good, now + 301), Err(VerifyError::OutsideTolerance));
        assert_eq!(check(&good, now - 301), Err(VerifyError::OutsideTolerance));
        assert_eq!(check(&good, now + 300), Ok(()));
        let other = generate();
        assert_eq!(verify(&other, &headers("msg_1", now, &good), b"{}", now), Err(VerifyError::NoMatch));
        assert_eq!(verify(&secret, &headers("msg_1", now, &good), b"{ }", now), Err(VerifyError::NoMatch));
    }

    #[test]
    fn secrets_carry_24_to_64_bytes() {
        for (len, ok) in [(23, false), (24, true), (64, true), (65, false)] {
            let secret = format!("{PREFIX}{}", STANDARD.encode(vec![7u8; len]));
            assert_eq!(decode(&secret).is_ok(), ok, "{len} bytes");
        }
        assert_eq!(decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(VerifyError::BadSecret));
        assert_eq!(decode("whsec_not base64!"), Err(VerifyError::BadSecret));
        assert!(generate().starts_with(PREFIX) && generate() != generate());
    }
}
