//! Domain rules of the tenants subgraph.

use async_graphql::Enum;
use pyairtable_kit::input::parse_text;
use pyairtable_kit::{Caller, Error, Result};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, MemberRow, OrganizationRow};

/// A role in an organization, highest first.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OrganizationRole {
    Owner,
    Admin,
    Member,
    Guest,
}

impl OrganizationRole {
    /// The stored form (`tenants.members.role`).
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Guest => "guest",
        }
    }

    /// Reads the stored form; anything else is a broken invariant, not a client error.
    pub fn from_db(value: &str) -> Result<Self> {
        match value {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            "guest" => Ok(Self::Guest),
            other => Err(Error::internal(anyhow::anyhow!("unknown role {other:?} in tenants.members"))),
        }
    }
}

/// Tells other subgraphs (auth: which tenants a user may act in) that a member joined.
async fn member_added(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    organization_id: Uuid,
    user_id: Uuid,
    role: OrganizationRole,
) -> Result<()> {
    let payload =
        serde_json::json!({ "organization_id": organization_id, "user_id": user_id, "role": role.as_db() });
    pyairtable_kit::events::publish(tx, "member.added", &payload).await
}

pub struct NewOrganization {
    pub name: String,
    pub slug: Option<String>,
    pub owner_id: Uuid,
}

pub struct NewMember {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: OrganizationRole,
}

/// The tenants service.
#[derive(Clone)]
pub struct Tenants {
    db: PgPool,
}

impl Tenants {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }

    /// Creates an organization and makes `owner_id` its owner, in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, new: NewOrganization) -> Result<OrganizationRow> {
        let name = parse_text("name", &new.name, 100)?;
        let slug = match new.slug {
            Some(slug) => parse_slug(&slug)?,
            None => slug_from_name(&name)?,
        };
        let mut tx = self.db.begin().await?;
        let org = store::insert_organization(&mut tx, Uuid::now_v7(), &name, &slug).await?;
        store::insert_member(&mut tx, org.id, new.owner_id, OrganizationRole::Owner.as_db()).await?;
        member_added(&mut tx, org.id, new.owner_id, OrganizationRole::Owner).await?;
        tx.commit().await?;
        Ok(org)
    }

    #[tracing::instrument(skip_all, fields(organization_id = %new.organization_id))]
    pub async fn add_member(&self, caller: &Caller, new: NewMember) -> Result<MemberRow> {
        let me = caller.require_user()?;
        let mut tx = self.db.begin().await?;
        let my_role = store::role_of(&mut tx, new.organization_id, me).await?;
        let Some(my_role) = my_role.as_deref().map(OrganizationRole::from_db).transpose()? else {
            return Err(Error::NotFound("no such organization".into()));
        };
        if !matches!(my_role, OrganizationRole::Owner | OrganizationRole::Admin) {
            return Err(Error::Forbidden("only owners and admins add members".into()));
        }
        if new.role == OrganizationRole::Owner && my_role != OrganizationRole::Owner {
            return Err(Error::Forbidden("only owners make owners".into()));
        }
        let member =
            store::insert_member(&mut tx, new.organization_id, new.user_id, new.role.as_db()).await?;
        member_added(&mut tx, new.organization_id, new.user_id, new.role).await?;
        tx.commit().await?;
        Ok(member)
    }

    pub async fn by_slug(&self, slug: &str) -> Result<Option<OrganizationRow>> {
        match parse_slug(slug) {
            Ok(slug) => store::organization_by_slug(&self.db, &slug).await,
            Err(_) => Ok(None),
        }
    }
}

/// Lower-case letters and digits in dash-separated words, 3..=48 characters.
pub fn parse_slug(raw: &str) -> Result<String> {
    let slug = raw.trim();
    let words_ok = slug
        .split('-')
        .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    if !(3..=48).contains(&slug.len()) || !words_ok {
        return Err(Error::bad_input(
            "slug",
            "slug must be 3 to 48 lower-case letters, digits and single dashes",
        ));
    }
    Ok(slug.to_owned())
}

/// `Acme Corp.` → `acme-corp`; ASCII letters and digits only.
fn slug_from_name(name: &str) -> Result<String> {
    let lowered = name.to_lowercase();
    let words: Vec<&str> =
        lowered.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut slug = words.join("-");
    slug.truncate(48);
    let slug = slug.trim_end_matches('-').to_owned();
    parse_slug(&slug).map_err(|_| {
        Error::bad_input("slug", "cannot derive a slug from this name; give one (3 to 48 a-z, 0-9, -)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_derived_or_checked() {
        assert_eq!(slug_from_name("Acme Corp.").expect("slug"), "acme-corp");
        assert_eq!(slug_from_name("  Élan   Vital 2 ").expect("slug"), "lan-vital-2");
        assert!(slug_from_name("日本").is_err());
        for bad in ["ab", "Acme", "a--b", "-abc", "abc-", "a b c", &"a".repeat(49)] {
            assert!(parse_slug(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_slug("acme-2").is_ok());
    }

    #[test]
    fn roles_round_trip_through_storage() {
        for role in [
            OrganizationRole::Owner,
            OrganizationRole::Admin,
            OrganizationRole::Member,
            OrganizationRole::Guest,
        ] {
            assert_eq!(OrganizationRole::from_db(role.as_db()).expect("known"), role);
        }
        assert!(OrganizationRole::from_db("root").is_err());
    }
}
