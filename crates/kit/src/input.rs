//! Parsing of inputs shared by every subgraph: validated once at the edge, trusted after.

use uuid::Uuid;

use crate::error::{Error, Result};

/// Parses a GraphQL `ID` that must be one of our UUIDs; `field` names the input in the error.
pub fn parse_id(field: &str, id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::bad_input(field, format!("{field} is not a valid ID")))
}

/// Trims `value` and checks it is 1..=`max` characters with no control characters.
pub fn parse_text(field: &str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::bad_input(field, format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(Error::bad_input(field, format!("{field} must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::bad_input(field, format!("{field} must not contain control characters")));
    }
    Ok(value.to_owned())
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces; lower-cased.
/// Deliverability is proven by the verification email, not by a regex.
pub fn parse_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let bad = || Error::bad_input("email", "email is not a valid address");
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && local.chars().all(|c| !c.is_whitespace() && !c.is_control());
    if !(domain_ok && local_ok) || email.len() > 254 {
        return Err(bad());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_uuids() {
        assert!(parse_id("id", "0190f3a4-7b1c-7d9e-8f00-123456789abc").is_ok());
        let err = parse_id("organizationId", "1 or 1=1").expect_err("not a uuid");
        assert_eq!(err.to_string(), "organizationId is not a valid ID");
    }

    #[test]
    fn emails_are_normalised_or_refused() {
        assert_eq!(parse_email("  Ada@Example.COM ").expect("valid"), "ada@example.com");
        for bad in
            ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "ada@@x.io", "ada@x..io"]
        {
            assert!(parse_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(parse_text("name", "  Acme  ", 10).expect("valid"), "Acme");
        assert!(parse_text("name", "   ", 10).is_err());
        assert!(parse_text("name", &"é".repeat(11), 10).is_err());
        assert!(parse_text("name", "a\u{0}b", 10).is_err());
    }
}
