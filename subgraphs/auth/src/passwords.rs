//! Password policy and hashing: argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1),
//! re-hashed on sign-in when the parameters rise.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use pyairtable_kit::{Error, Result};

/// OWASP Password Storage Cheat Sheet, argon2id, first recommendation.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// The 10,000 most common passwords (see `data/common-passwords.LICENSE`).
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../data/common-passwords.txt").lines().collect());

/// A hash of a random password, verified against when the email is unknown, so that an unknown
/// email costs the same time as a wrong password.
static DECOY: LazyLock<String> = LazyLock::new(|| {
    let random: [u8; 16] = rand::random();
    hash_now(&format!("{random:?}")).unwrap_or_default()
});

/// Hashes at once at most: each takes 19 MiB and tens of milliseconds of a core, so a burst of
/// sign-ins (or an attack) queues here instead of exhausting memory and CPU.
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    tokio::sync::Semaphore::new(cores * 2)
});

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _slot = HASHING.acquire().await.map_err(Error::internal)?;
    tokio::task::spawn_blocking(work).await.map_err(Error::internal)
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy; `field` names the input in the error.
pub fn check_policy(field: &str, password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(Error::bad_input(field, format!("{field} must be at least {MIN_LENGTH} characters")));
    }
    if length > MAX_LENGTH {
        return Err(Error::bad_input(field, format!("{field} must be at most {MAX_LENGTH} characters")));
    }
    if COMMON.contains(password) || COMMON.contains(password.to_lowercase().as_str()) {
        return Err(Error::bad_input(
            field,
            format!("{field} is one of the most common passwords; choose another"),
        ));
    }
    Ok(())
}

fn hash_now(password: &str) -> Result<String> {
    let salt = new_salt()?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("hashing a password: {e}")))
}

fn new_salt() -> Result<SaltString> {
    let bytes: [u8; 16] = rand::random();
    SaltString::encode_b64(&bytes).map_err(|e| Error::internal(anyhow::anyhow!("salt: {e}")))
}

/// Hashes on the blocking pool (about 20 ms of CPU).
pub async fn hash(password: String) -> Result<String> {
    hashing(move || hash_now(&password)).await?
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Right password, stored with weaker parameters than today's: store a new hash.
    YesRehash,
}

/// Verifies `password` against `stored`, or against a decoy when there is no stored hash (the
/// answer is then always `No`, in about the same time).
pub async fn verify(password: String, stored: Option<String>) -> Result<Verified> {
    hashing(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DECOY.clone());
        let Ok(parsed) = PasswordHash::new(&stored) else { return Verified::No };
        let ok = argon2().verify_password(password.as_bytes(), &parsed).is_ok();
        match (known && ok, weaker_than_today(&parsed)) {
            (false, _) => Verified::No,
            (true, true) => Verified::YesRehash,
            (true, false) => Verified::Yes,
        }
    })
    .await
}

fn weaker_than_today(hash: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(hash) else { return true };
    hash.algorithm.as_str() != "argon2id"
        || params.m_cost() < MEMORY_KIB
        || params.t_cost() < ITERATIONS
        || params.p_cost() < PARALLELISM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_long_and_common_passwords() {
        assert!(check_policy("password", "correct horse battery").is_ok());
        for bad in ["short", &"x".repeat(129), "password", "iloveyou", "Password1", "qwertyuiop"] {
            assert!(check_policy("password", bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(COMMON.len(), 10_000);
        // Length counts characters, not bytes.
        assert!(check_policy("password", "ééééééé").is_err());
        assert!(check_policy("password", "éééééééé").is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_weak_ones_ask_for_a_rehash() {
        let stored = hash("correct horse battery".into()).await.expect("hash");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        let ok = verify("correct horse battery".into(), Some(stored.clone())).await.expect("verify");
        assert_eq!(ok, Verified::Yes);
        assert_eq!(verify("wrong".into(), Some(stored)).await.expect("verify"), Verified::No);
        assert_eq!(verify("anything".into(), None).await.expect("verify"), Verified::No);

        let weak =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(4096, 1, 1, None).expect("params"))
                .hash_password(b"correct horse battery", &new_salt().expect("salt"))
                .expect("weak hash")
                .to_string();
        let rehash = verify("correct horse battery".into(), Some(weak)).await.expect("verify");
        assert_eq!(rehash, Verified::YesRehash);
    }
}
