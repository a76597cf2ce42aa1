//! Domain rules of the tenants subgraph: organizations and invitations. Who may do what is the
//! permissions subgraph's policy (asked through the kit's authorizer); this service keeps the
//! rest (names, slugs, grace periods, tokens).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use pyairtable_kit::authz::{self, Authorizer, Check, OrganizationRole, Resource};
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::events::publish;
use pyairtable_kit::input::{parse_email, parse_text};
use pyairtable_kit::secrets;
use pyairtable_kit::{Error, Lifecycle, Result};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, InvitationRow, NewInvitation, OrganizationRow};

/// How long a deleted organization can be restored before it is purged.
pub const GRACE_DAYS: i32 = 30;
/// How long an invitation link works.
const INVITATION_DAYS: i64 = 7;
/// How often purging runs.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The tenants service.
#[derive(Clone)]
pub struct Tenants {
    db: PgPool,
    authorizer: Arc<dyn Authorizer>,
    public_url: String,
}

impl Tenants {
    pub fn new(db: PgPool, authorizer: Arc<dyn Authorizer>, public_url: String) -> Self {
        Self { db, authorizer, public_url }
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    async fn require(&self, caller: Uuid, action: &str, organization: Uuid) -> Result<()> {
        let check = Check::new(action, Resource::Organization { id: organization });
        let decision = self.authorizer.decide(caller, std::slice::from_ref(&check)).await?;
        decision.first().copied().unwrap_or(pyairtable_kit::authz::Decision::Hide).into_result(&check)
    }

    /// Creates an organization; the creator becomes its owner (through `organization.created`).
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, caller: Uuid, name: &str, slug: Option<&str>) -> Result<OrganizationRow> {
        let name = parse_text("name", name, 100)?;
        let slug = match slug {
            Some(slug) => parse_slug(slug)?,
            None => slug_from_name(&name)?,
        };
        let id = Uuid::now_v7();
        let mut tx = scoped(&self.db, &Scope::tenant(id)).await?;
        let org = store::insert_organization(&mut tx, id, &name, &slug, caller).await?;
        let payload = serde_json::json!({ "organization_id": id, "owner_id": caller, "name": name });
        publish(&mut tx, "organization.created", &payload).await?;
        tx.commit().await?;
        authz::sync_after_commit(self.authorizer.as_ref()).await;
        Ok(org)
    }

    #[tracing::instrument(skip_all, fields(organization_id = %id))]
    pub async fn rename(&self, caller: Uuid, id: Uuid, name: &str) -> Result<OrganizationRow> {
        let name = parse_text("name", name, 100)?;
        self.require(caller, "update", id).await?;
        let mut tx = scoped(&self.db, &Scope::tenant(id)).await?;
        let org = store::rename(&mut tx, id, &name).await?.ok_or_else(not_found)?;
        publish(&mut tx, "organization.renamed", &serde_json::json!({ "organization_id": id, "name": name }))
            .await?;
        tx.commit().await?;
        Ok(org)
    }

    /// Deletes softly: the organization disappears at once and can be restored for
    /// [`GRACE_DAYS`], then it is purged.
    #[tracing::instrument(skip_all, fields(organization_id = %id))]
    pub async fn delete(&self, caller: Uuid, id: Uuid) -> Result<OrganizationRow> {
        self.require(caller, "delete", id).await?;
        self.set_deleted(id, true).await
    }

    #[tracing::instrument(skip_all, fields(organization_id = %id))]
    pub async fn restore(&self, caller: Uuid, id: Uuid) -> Result<OrganizationRow> {
        self.require(caller, "restore", id).await?;
        self.set_deleted(id, false).await
    }

    async fn set_deleted(&self, id: Uuid, deleted: bool) -> Result<OrganizationRow> {
        let mut tx = scoped(&self.db, &Scope::tenant(id)).await?;
        let org = store::set_deleted(&mut tx, id, deleted, GRACE_DAYS).await?.ok_or_else(not_found)?;
        let topic = if deleted { "organization.deleted" } else { "organization.restored" };
        publish(&mut tx, topic, &serde_json::json!({ "organization_id": id })).await?;
        tx.commit().await?;
        authz::sync_after_commit(self.authorizer.as_ref()).await;
        Ok(org)
    }

    /// An organization the caller may see, by slug.
    pub async fn by_slug(&self, caller: Uuid, slug: &str) -> Result<Option<OrganizationRow>> {
        let Ok(slug) = parse_slug(slug) else { return Ok(None) };
        let mine = self.authorizer.organizations_of(caller).await?;
        let mut tx = scoped(&self.db, &Scope::tenants(mine)).await?;
        let org = store::organization_by_slug(&mut tx, &slug).await?;
        tx.commit().await?;
        Ok(org)
    }

    /// Invites an address, at or below the inviter's own role; the link goes by email.
    #[tracing::instrument(skip_all, fields(organization_id = %organization))]
    pub async fn invite(
        &self,
        caller: Uuid,
        organization: Uuid,
        email: &str,
        role: OrganizationRole,
    ) -> Result<InvitationRow> {
        let email = parse_email(email)?;
        let role = role.as_str();
        self.require(caller, &format!("invite_{role}"), organization).await?;
        let (token, hash) = new_token(organization);
        let mut tx = scoped(&self.db, &Scope::tenant(organization)).await?;
        let org =
            store::organizations(&mut tx, &[organization]).await?.pop().filter(|o| o.deleted_at.is_none());
        let org = org.ok_or_else(not_found)?;
        let new = NewInvitation {
            tenant_id: organization,
            email: &email,
            role,
            token_hash: &hash,
            invited_by: caller,
            expires_at: Utc::now() + chrono::Duration::days(INVITATION_DAYS),
        };
        let invitation = store::insert_invitation(&mut tx, &new).await?;
        self.publish_invitation(&mut tx, &org.name, &invitation, &token).await?;
        tx.commit().await?;
        Ok(invitation)
    }

    /// Sends a pending invitation again, with a new link (the old one stops working).
    pub async fn resend(&self, caller: Uuid, id: Uuid) -> Result<InvitationRow> {
        let (invitation, mut tx) = self.pending(caller, id).await?;
        self.require(caller, &format!("invite_{}", invitation.role), invitation.tenant_id).await?;
        let (token, hash) = new_token(invitation.tenant_id);
        let expires = Utc::now() + chrono::Duration::days(INVITATION_DAYS);
        let invitation = store::renew_invitation(&mut tx, id, &hash, expires).await?;
        let org =
            store::organizations(&mut tx, &[invitation.tenant_id]).await?.pop().ok_or_else(not_found)?;
        self.publish_invitation(&mut tx, &org.name, &invitation, &token).await?;
        tx.commit().await?;
        Ok(invitation)
    }

    pub async fn revoke(&self, caller: Uuid, id: Uuid) -> Result<InvitationRow> {
        let (invitation, mut tx) = self.pending(caller, id).await?;
        self.require(caller, "manage_members", invitation.tenant_id).await?;
        let invitation = store::close_invitation(&mut tx, id, "revoked", None).await?;
        let payload = serde_json::json!({ "organization_id": invitation.tenant_id, "invitation_id": id });
        publish(&mut tx, "invitation.revoked", &payload).await?;
        tx.commit().await?;
        Ok(invitation)
    }

    /// A pending invitation in one of the caller's organizations, locked.
    async fn pending(
        &self,
        caller: Uuid,
        id: Uuid,
    ) -> Result<(InvitationRow, sqlx::Transaction<'static, sqlx::Postgres>)> {
        let mine = self.authorizer.organizations_of(caller).await?;
        let mut tx = scoped(&self.db, &Scope::tenants(mine)).await?;
        let invitation = store::invitation_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| Error::NotFound("no such invitation".into()))?;
        if invitation.status != "pending" {
            return Err(Error::Conflict(format!("this invitation is {}", invitation.status)));
        }
        Ok((invitation, tx))
    }

    /// Accepts an invitation with the token from its email: the caller joins with its role
    /// (through `invitation.accepted`).
    #[tracing::instrument(skip_all)]
    pub async fn accept(&self, caller: Uuid, token: &str) -> Result<OrganizationRow> {
        let invalid = || Error::bad_input("token", "the invitation is invalid, used, revoked or expired");
        let organization = token_tenant(token).ok_or_else(invalid)?;
        let mut tx = scoped(&self.db, &Scope::tenant(organization)).await?;
        let invitation =
            store::invitation_by_token(&mut tx, &secrets::hash(token)).await?.ok_or_else(invalid)?;
        if invitation.status != "pending" || invitation.expires_at <= Utc::now() {
            return Err(invalid());
        }
        let org = store::organizations(&mut tx, &[organization]).await?.pop();
        let org = org.filter(|o| o.deleted_at.is_none()).ok_or_else(invalid)?;
        store::close_invitation(&mut tx, invitation.id, "accepted", Some(caller)).await?;
        let payload = serde_json::json!({
            "organization_id": organization, "invitation_id": invitation.id, "user_id": caller,
            "role": invitation.role,
        });
        publish(&mut tx, "invitation.accepted", &payload).await?;
        tx.commit().await?;
        authz::sync_after_commit(self.authorizer.as_ref()).await;
        Ok(org)
    }

    /// `member.invited`, with what the invitation email needs: the notifications subgraph sends
    /// it (and puts it in the invitee's feed when they have an account). The accept link carries
    /// the invitation's secret, so the event log holds a live credential until the invitation
    /// is used, revoked or expires (7 days); the log is readable by the platform's roles only.
    async fn publish_invitation(
        &self,
        tx: &mut sqlx::PgConnection,
        organization: &str,
        invitation: &InvitationRow,
        token: &str,
    ) -> Result<()> {
        let payload = serde_json::json!({
            "organization_id": invitation.tenant_id, "invitation_id": invitation.id,
            "email": invitation.email, "role": invitation.role, "invited_by": invitation.invited_by,
            "organization_name": organization, "expires_days": INVITATION_DAYS,
            "accept_url": format!("{}/accept-invitation?token={token}", self.public_url),
        });
        publish(tx, "member.invited", &payload).await
    }

    /// Purges organizations whose grace period is over, every hour, in the background, until
    /// the process stops.
    pub fn spawn_purge(&self, lifecycle: &Lifecycle) -> tokio::task::JoinHandle<()> {
        let (this, stop) = (self.clone(), lifecycle.clone());
        lifecycle.spawn(async move {
            while !stop.is_stopping() && !this.db.is_closed() {
                if let Err(err) = purge(&this.db).await {
                    tracing::error!(%err, "purging deleted organizations");
                }
                tokio::select! {
                    () = stop.stopping() => {}
                    () = tokio::time::sleep(PURGE_EVERY) => {}
                }
            }
        })
    }
}

/// Deletes organizations past their grace period and tells other subgraphs
/// (`organization.purged`); returns how many. Runs hourly in every tenants process; concurrent
/// runs each delete different rows.
pub async fn purge(db: &PgPool) -> Result<usize> {
    let mut tx = db.begin().await?;
    let purged = store::purge(&mut tx, GRACE_DAYS).await?;
    for id in &purged {
        publish(&mut tx, "organization.purged", &serde_json::json!({ "organization_id": id })).await?;
    }
    tx.commit().await?;
    Ok(purged.len())
}

fn not_found() -> Error {
    Error::NotFound("no such organization".into())
}

/// `inv_<organization id><32 random bytes>`, URL-safe: the organization id lets the token be
/// looked up inside that tenant's rows only.
fn new_token(organization: Uuid) -> (String, Vec<u8>) {
    let random: [u8; 32] = rand::random();
    let mut bytes = organization.as_bytes().to_vec();
    bytes.extend_from_slice(&random);
    let token = format!("inv_{}", B64.encode(bytes));
    let hash = secrets::hash(&token);
    (token, hash)
}

fn token_tenant(token: &str) -> Option<Uuid> {
    let bytes = B64.decode(token.strip_prefix("inv_")?).ok()?;
    if bytes.len() != 48 {
        return None;
    }
    Uuid::from_slice(bytes.get(..16)?).ok()
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
    fn invitation_tokens_name_their_tenant_and_nothing_else_parses() {
        let org = Uuid::now_v7();
        let (token, hash) = new_token(org);
        assert_eq!(token_tenant(&token), Some(org));
        assert_eq!(hash, secrets::hash(&token));
        for bad in ["", "inv_", "inv_!!!", "pat_abc", &token[..token.len() - 2]] {
            assert_eq!(token_tenant(bad), None, "{bad:?}");
        }
    }
}
