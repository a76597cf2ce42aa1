//! Domain rules of the auth subgraph: accounts, sign-in, sessions and their tokens.

use std::sync::Arc;

use chrono::{Duration, Utc};
use pyairtable_kit::authority::{AccessClaims, TokenAudience};
use pyairtable_kit::events;
use pyairtable_kit::input::{parse_email, parse_text};
use pyairtable_kit::mail::{Email, Mailer};
use pyairtable_kit::{Caller, Error, Result};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::keys::SigningKeys;
use crate::limits::{self, Attempt};
use crate::passwords::{self, Verified};
use crate::secrets::{self, new_secret};
use crate::sessions::SessionCache;
use crate::{mfa, store};

/// Sessions (and so refresh tokens) live thirty days; access tokens as configured
/// (`PYAIRTABLE_ACCESS_TOKEN_TTL_SECONDS`, ten minutes by default).
pub const SESSION_TTL: Duration = Duration::days(30);
/// A refresh token used again within this time (two tabs refreshing at once) is not reuse.
pub const REFRESH_GRACE: Duration = Duration::seconds(10);
const VERIFY_TTL: Duration = Duration::days(2);
const RESET_TTL: Duration = Duration::hours(1);
/// The message every failed sign-in gets, whatever failed.
const BAD_CREDENTIALS: &str = "wrong email or password";

/// The event the users subgraph turns into a profile.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
}
pub const USER_REGISTERED: &str = "user.registered";
/// Published with the reset link; the notifications subgraph sends the email.
pub const PASSWORD_RESET_REQUESTED: &str = "auth.password_reset_requested";

/// A signed-in session's tokens.
pub struct Tokens {
    pub user_id: Uuid,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

/// What signing in led to.
pub enum SignIn {
    Done(Tokens),
    /// The password was right; a second factor is needed.
    SecondFactorRequired,
}

/// The auth service.
#[derive(Clone)]
pub struct Auth {
    pub(crate) db: PgPool,
    pub(crate) keys: SigningKeys,
    pub(crate) sessions: SessionCache,
    mailer: Arc<dyn Mailer>,
    public_url: String,
    audience: TokenAudience,
    access_ttl: Duration,
}

impl Auth {
    pub fn new(
        db: PgPool,
        keys: SigningKeys,
        mailer: Arc<dyn Mailer>,
        public_url: String,
        access_ttl: std::time::Duration,
    ) -> Self {
        let sessions = SessionCache::default();
        sessions.listen(db.clone());
        let access_ttl = Duration::from_std(access_ttl).unwrap_or(Duration::minutes(10));
        Self { db, keys, sessions, mailer, public_url, audience: TokenAudience::default(), access_ttl }
    }

    #[tracing::instrument(skip_all)]
    pub async fn sign_up(
        &self,
        caller: &Caller,
        email: &str,
        password: String,
        name: &str,
    ) -> Result<Tokens> {
        let email = parse_email(email)?;
        let display_name = parse_text("displayName", name, 100)?;
        passwords::check_policy("password", &password)?;
        let hash = passwords::hash(password).await?;
        let user_id = Uuid::now_v7();
        let mut tx = self.db.begin().await?;
        store::insert_credentials(&mut tx, user_id, &email, &hash).await?;
        let event = UserRegistered { user_id, email: email.clone(), display_name };
        events::publish(&mut tx, USER_REGISTERED, &event).await?;
        let link = self.link_token(&mut tx, user_id, "verify_email", VERIFY_TTL).await?;
        let tokens = self.open_session(&mut tx, user_id, caller).await?;
        tx.commit().await?;
        self.send_verification(&email, &link).await;
        Ok(tokens)
    }

    /// Signs in. Unknown email, wrong password and a locked account answer alike.
    #[tracing::instrument(skip_all)]
    pub async fn sign_in(
        &self,
        caller: &Caller,
        email: &str,
        password: String,
        code: Option<&str>,
    ) -> Result<SignIn> {
        let email = parse_email(email).map_err(|_| Error::Unauthenticated(BAD_CREDENTIALS.into()))?;
        let account = format!("account:{email}");
        let ip = caller.ip.as_deref().map(|ip| format!("ip:{ip}"));
        for subject in std::iter::once(&account).chain(ip.as_ref()) {
            if let Attempt::Refused { retry_after } = limits::attempt(&self.db, subject).await? {
                return Err(Error::RateLimited { retry_after_secs: retry_after });
            }
        }
        let credentials = store::credentials_by_email(&self.db, &email).await?;
        let verified =
            passwords::verify(password.clone(), credentials.as_ref().map(|c| c.password_hash.clone()))
                .await?;
        let Some(credentials) = credentials.filter(|_| verified != Verified::No) else {
            return Err(Error::Unauthenticated(BAD_CREDENTIALS.into()));
        };
        if credentials.totp_enabled_at.is_some() {
            let Some(code) = code else { return Ok(SignIn::SecondFactorRequired) };
            if !mfa::check_second_factor(&self.db, &credentials, code).await? {
                return Err(Error::Unauthenticated("wrong second-factor code".into()));
            }
        }
        limits::clear(&self.db, &account).await?;
        if verified == Verified::YesRehash {
            let hash = passwords::hash(password).await?;
            store::set_password_hash(&self.db, credentials.user_id, &hash).await?;
        }
        let mut tx = self.db.begin().await?;
        let tokens = self.open_session(&mut tx, credentials.user_id, caller).await?;
        tx.commit().await?;
        Ok(SignIn::Done(tokens))
    }

    /// Exchanges a refresh token for new tokens; the old one is spent. A spent token used again
    /// (after the grace period) means it was stolen: the whole session is revoked.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let refused =
            || Error::Unauthenticated("the refresh token is invalid or expired; sign in again".into());
        let hash = secrets::hash(refresh_token);
        let mut tx = self.db.begin().await?;
        let state = store::lock_refresh(&mut tx, &hash).await?.ok_or_else(refused)?;
        if !state.session_live {
            return Err(refused());
        }
        if let Some(used_at) = state.used_at
            && Utc::now() - used_at > REFRESH_GRACE
        {
            store::revoke_sessions(
                &mut *tx,
                state.user_id,
                Some(state.session_id),
                None,
                "refresh token reuse",
            )
            .await?;
            tx.commit().await?;
            self.sessions.forget_user(state.user_id);
            tracing::warn!(session = %state.session_id, "refresh token reused: session revoked");
            return Err(refused());
        }
        let (token, new_hash) = new_secret("rt_");
        store::insert_refresh(&mut tx, &new_hash, state.session_id).await?;
        store::mark_refresh_used(&mut tx, &hash, &new_hash).await?;
        tx.commit().await?;
        let access_token = self.access_token(state.user_id, state.session_id, state.tenant_id).await?;
        Ok(Tokens {
            user_id: state.user_id,
            access_token,
            refresh_token: token,
            expires_in: self.access_ttl.num_seconds(),
        })
    }

    /// Makes the session act in one of the user's tenants: a new access token carries it as `tid`,
    /// and so do the ones refreshing gives from now on.
    pub async fn select_tenant(&self, caller: &Caller, tenant: Uuid) -> Result<(String, i64)> {
        let user = caller.require_user()?;
        let session = caller.session_id.ok_or_else(|| {
            Error::Forbidden("choose a tenant from a signed-in session, not with an API key".into())
        })?;
        if !crate::memberships::is_member(&self.db, user, tenant).await? {
            return Err(Error::Forbidden("you are not a member of this organization".into()));
        }
        if !store::set_session_tenant(&self.db, session, user, tenant).await? {
            return Err(Error::Unauthenticated("the session has ended".into()));
        }
        Ok((self.access_token(user, session, Some(tenant)).await?, self.access_ttl.num_seconds()))
    }

    pub async fn sign_out(&self, caller: &Caller) -> Result<bool> {
        let user = caller.require_user()?;
        let Some(session) = caller.session_id else { return Ok(false) };
        let revoked = store::revoke_sessions(&self.db, user, Some(session), None, "signed out").await?;
        self.sessions.forget_user(user);
        Ok(revoked > 0)
    }

    pub async fn revoke_session(&self, caller: &Caller, session: Uuid) -> Result<bool> {
        let user = caller.require_user()?;
        let revoked = store::revoke_sessions(&self.db, user, Some(session), None, "revoked by user").await?;
        self.sessions.forget_user(user);
        Ok(revoked > 0)
    }

    pub async fn revoke_other_sessions(&self, caller: &Caller) -> Result<u64> {
        let user = caller.require_user()?;
        let revoked =
            store::revoke_sessions(&self.db, user, None, caller.session_id, "revoked by user").await?;
        self.sessions.forget_user(user);
        Ok(revoked)
    }

    pub async fn sessions(&self, caller: &Caller) -> Result<Vec<store::Session>> {
        store::live_sessions(&self.db, caller.require_user()?).await
    }

    pub async fn verify_email(&self, token: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let user = store::take_one_time(&mut tx, &secrets::hash(token), "verify_email")
            .await?
            .ok_or_else(|| Error::bad_input("token", "the link is invalid, used or expired"))?;
        store::mark_email_verified(&mut tx, user).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends a new confirmation link to the caller (earlier links keep working until they expire).
    pub async fn resend_verification(&self, caller: &Caller) -> Result<bool> {
        let user = caller.require_user()?;
        let credentials = store::account(&self.db, user).await?;
        if credentials.email_verified_at.is_some() {
            return Ok(false);
        }
        let mut tx = self.db.begin().await?;
        let link = self.link_token(&mut tx, user, "verify_email", VERIFY_TTL).await?;
        tx.commit().await?;
        self.send_verification(&credentials.email, &link).await;
        Ok(true)
    }

    async fn send_verification(&self, email: &str, link: &str) {
        let body = format!(
            "Welcome to PyAirtable.\n\nConfirm your email address: {}/verify-email?token={link}\n\nThe link works once, for 48 hours.",
            self.public_url
        );
        self.send(email, "Confirm your email address", &body).await;
    }

    /// Always succeeds, whether or not the email has an account (no enumeration); the email is
    /// sent in the background so that the answer takes the same time either way.
    pub async fn request_password_reset(&self, email: &str) -> Result<()> {
        let Ok(email) = parse_email(email) else { return Ok(()) };
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.send_reset(&email).await {
                tracing::error!(%err, "sending a password reset");
            }
        });
        Ok(())
    }

    async fn send_reset(&self, email: &str) -> Result<()> {
        // A few resets per address, so that nobody can flood a mailbox with them.
        if let Attempt::Refused { .. } = limits::attempt(&self.db, &format!("reset:{email}")).await? {
            tracing::info!("password reset requests for an address over the limit; not sending");
            return Ok(());
        }
        let Some(credentials) = store::credentials_by_email(&self.db, email).await? else { return Ok(()) };
        let mut tx = self.db.begin().await?;
        let link = self.link_token(&mut tx, credentials.user_id, "reset_password", RESET_TTL).await?;
        // The notifications subgraph mails it (a critical workflow: opt-outs do not apply). The
        // link is a credential in the event log for its hour.
        let event = serde_json::json!({
            "user_id": credentials.user_id, "email": email,
            "reset_url": format!("{}/reset-password?token={link}", self.public_url),
            "expires_minutes": RESET_TTL.num_minutes(),
        });
        events::publish(&mut tx, PASSWORD_RESET_REQUESTED, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a new password from a reset link; every session is revoked.
    pub async fn reset_password(&self, token: &str, password: String) -> Result<()> {
        passwords::check_policy("newPassword", &password)?;
        let hash = passwords::hash(password).await?;
        let mut tx = self.db.begin().await?;
        let user = store::take_one_time(&mut tx, &secrets::hash(token), "reset_password")
            .await?
            .ok_or_else(|| Error::bad_input("token", "the link is invalid, used or expired"))?;
        store::set_password_hash(&mut *tx, user, &hash).await?;
        store::revoke_sessions(&mut *tx, user, None, None, "password reset").await?;
        tx.commit().await?;
        self.sessions.forget_user(user);
        Ok(())
    }

    /// Changes the password (the current one is required); other sessions are revoked.
    pub async fn change_password(&self, caller: &Caller, current: String, new: String) -> Result<()> {
        let user = caller.require_user()?;
        passwords::check_policy("newPassword", &new)?;
        let stored = store::credentials_by_id(&self.db, user).await?.map(|c| c.password_hash);
        if passwords::verify(current, stored).await? == Verified::No {
            return Err(Error::bad_input("currentPassword", "the current password is wrong"));
        }
        let hash = passwords::hash(new).await?;
        let mut tx = self.db.begin().await?;
        store::set_password_hash(&mut *tx, user, &hash).await?;
        store::revoke_sessions(&mut *tx, user, None, caller.session_id, "password changed").await?;
        tx.commit().await?;
        self.sessions.forget_user(user);
        Ok(())
    }

    async fn open_session(
        &self,
        tx: &mut sqlx::PgConnection,
        user_id: Uuid,
        caller: &Caller,
    ) -> Result<Tokens> {
        let session = Uuid::now_v7();
        store::insert_session(tx, session, user_id, caller, Utc::now() + SESSION_TTL).await?;
        let (refresh_token, hash) = new_secret("rt_");
        store::insert_refresh(tx, &hash, session).await?;
        let access_token = self.access_token(user_id, session, None).await?;
        Ok(Tokens { user_id, access_token, refresh_token, expires_in: self.access_ttl.num_seconds() })
    }

    async fn access_token(&self, user_id: Uuid, session: Uuid, tenant: Option<Uuid>) -> Result<String> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.audience.issuer.clone(),
            aud: self.audience.audience.clone(),
            sub: user_id,
            tid: tenant,
            sid: session,
            exp: now + self.access_ttl.num_seconds(),
            iat: now,
            jti: Uuid::now_v7(),
            scp: vec!["*".into()],
        };
        self.keys.sign(&claims).await
    }

    async fn link_token(
        &self,
        tx: &mut sqlx::PgConnection,
        user_id: Uuid,
        purpose: &str,
        ttl: Duration,
    ) -> Result<String> {
        let (token, hash) = new_secret("");
        store::insert_one_time(tx, &hash, user_id, purpose, Utc::now() + ttl).await?;
        Ok(token)
    }

    /// Sends an email; a failure is logged (the user can ask again), never shown to the caller.
    async fn send(&self, to: &str, subject: &str, text: &str) {
        let email =
            Email { to: to.to_owned(), subject: subject.to_owned(), text: text.to_owned(), html: None };
        if let Err(err) = self.mailer.send(email).await {
            tracing::error!(%err, "sending an email");
        }
    }
}
