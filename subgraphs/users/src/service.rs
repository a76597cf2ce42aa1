//! Domain rules of the users subgraph.

use pyairtable_kit::input::parse_text;
use pyairtable_kit::{Error, Result};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, UserRow};

/// Profile changes; `None` keeps the current value.
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// `Some(None)` removes the avatar.
    pub avatar_file_id: Option<Option<Uuid>>,
}

/// The users service.
#[derive(Clone)]
pub struct Users {
    db: PgPool,
}

impl Users {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn update_profile(&self, id: Uuid, patch: ProfilePatch) -> Result<UserRow> {
        let display_name = patch.display_name.map(|v| parse_text("displayName", &v, 100)).transpose()?;
        let locale = patch.locale.map(|v| parse_locale(&v)).transpose()?;
        let time_zone = patch.time_zone.map(|v| parse_time_zone(&v)).transpose()?;
        let update =
            store::ProfileUpdate { display_name, locale, time_zone, avatar_file_id: patch.avatar_file_id };
        store::update_profile(&self.db, id, &update)
            .await?
            .ok_or_else(|| Error::NotFound("no profile for the signed-in user".into()))
    }
}

/// A BCP 47 language tag of the common shape: `en`, `pt-BR`, `zh-Hant-TW`.
fn parse_locale(raw: &str) -> Result<String> {
    let value = raw.trim();
    let mut parts = value.split('-');
    let language_ok =
        parts.next().is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase()));
    let rest_ok = parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !(language_ok && rest_ok) {
        return Err(Error::bad_input("locale", "locale must be a language tag such as en or pt-BR"));
    }
    Ok(value.to_owned())
}

/// An IANA time zone name of the tz database's shape (`UTC`, `Europe/Paris`,
/// `America/Argentina/Buenos_Aires`).
fn parse_time_zone(raw: &str) -> Result<String> {
    let value = raw.trim();
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    };
    if value.len() > 64 || !value.split('/').all(segment_ok) {
        return Err(Error::bad_input("timeZone", "timeZone must be an IANA name such as Europe/Paris"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_and_time_zones_have_their_shapes() {
        assert!(parse_locale("pt-BR").is_ok() && parse_locale("en").is_ok());
        assert!(parse_locale("EN").is_err() && parse_locale("e").is_err() && parse_locale("en_US").is_err());
        assert!(parse_time_zone("Europe/Paris").is_ok() && parse_time_zone("UTC").is_ok());
        assert!(parse_time_zone("../etc").is_err() && parse_time_zone("europe/paris").is_err());
    }
}
