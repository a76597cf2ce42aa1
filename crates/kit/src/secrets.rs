//! Secrets handed to people (link tokens, invitation tokens, API keys): 32 random bytes,
//! URL-safe, stored only as their SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

/// A new secret starting with `prefix`, and its stored form.
pub fn new_secret(prefix: &str) -> (String, Vec<u8>) {
    let bytes: [u8; 32] = rand::random();
    let secret = format!("{prefix}{}", B64.encode(bytes));
    let hash = hash(&secret);
    (secret, hash)
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
