//! Opaque secrets handed to clients (refresh tokens, link tokens, API keys, recovery codes):
//! 32 random bytes, shown once, stored only as a SHA-256 hash.

pub use pyairtable_kit::secrets::{hash, new_secret};

/// Ten recovery codes of the form `xxxxx-xxxxx` (lower-case base32, about 50 bits each).
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..10)
        .map(|_| {
            let bytes: [u8; 10] = rand::random();
            let chars: String =
                bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed() {
        let (a, hash_a) = new_secret("rt_");
        let (b, _) = new_secret("rt_");
        assert!(a.starts_with("rt_") && a.len() == 3 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(hash_a, hash(&a));
        assert_eq!(hash_a.len(), 32);
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        assert!(codes.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
    }
}
