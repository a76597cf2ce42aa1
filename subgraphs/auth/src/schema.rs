//! GraphQL types and operations of the auth subgraph (thin: they call the service).

use async_graphql::{
    Context, EmptySubscription, ID, InputObject, Object, Result, Schema, SchemaBuilder, SimpleObject,
};
use chrono::{DateTime, Utc};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;

use crate::api_keys::{self, ApiKey as ApiKeyRow};
use crate::mfa;
use crate::service::{Auth, SignIn, Tokens};
use crate::store;

pub type AuthSchema = Schema<Query, Mutation, EmptySubscription>;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

fn auth<'a>(ctx: &Context<'a>) -> Result<&'a Auth> {
    ctx.data::<Auth>()
}

/// A user, as far as the auth subgraph knows it (the users subgraph owns the profile).
pub struct User {
    id: uuid::Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// Whether the user confirmed their email address (only they can see it).
    async fn email_verified(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        Ok(own_credentials(ctx, self.id).await?.map(|c| c.email_verified_at.is_some()))
    }
    /// Whether sign-in asks for a second factor (only the user can see it).
    async fn two_factor_enabled(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        Ok(own_credentials(ctx, self.id).await?.map(|c| c.totp_enabled_at.is_some()))
    }
}

async fn own_credentials(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Option<store::Credentials>> {
    if caller(ctx)?.user_id != Some(id) {
        return Ok(None);
    }
    Ok(store::credentials_by_id(&auth(ctx)?.db, id).await?)
}

/// Tokens of a session: send `accessToken` as `Authorization: Bearer ...`; trade `refreshToken`
/// for new tokens before `expiresIn` seconds have passed.
#[derive(SimpleObject)]
pub struct AuthTokens {
    access_token: String,
    refresh_token: String,
    /// Seconds until the access token expires.
    expires_in: i64,
    token_type: &'static str,
}

impl From<Tokens> for AuthTokens {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_in: t.expires_in,
            token_type: "Bearer",
        }
    }
}

/// The answer to signing up or in.
pub struct SignInPayload {
    tokens: Option<Tokens>,
}

#[Object]
impl SignInPayload {
    /// Null when a second factor is required.
    async fn tokens(&self) -> Option<AuthTokens> {
        self.tokens.as_ref().map(|t| AuthTokens {
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.clone(),
            expires_in: t.expires_in,
            token_type: "Bearer",
        })
    }
    /// True when the password was right and a TOTP or recovery code must be given (`code`).
    async fn second_factor_required(&self) -> bool {
        self.tokens.is_none()
    }
    async fn user(&self) -> Option<User> {
        self.tokens.as_ref().map(|t| User { id: t.user_id })
    }
}

/// A signed-in device.
pub struct Session(store::Session, bool);

#[Object]
impl Session {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn last_used_at(&self) -> DateTime<Utc> {
        self.0.last_used_at
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    /// Whether this is the session of the request.
    async fn current(&self) -> bool {
        self.1
    }
}

/// A personal access token (never its secret).
pub struct ApiKey(ApiKeyRow);

#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The first characters of the key, to recognise it.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    async fn scopes(&self) -> &[String] {
        &self.0.scopes
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
}

/// An access token for the chosen tenant (the refresh token does not change).
#[derive(SimpleObject)]
pub struct TenantToken {
    access_token: String,
    expires_in: i64,
}

#[derive(SimpleObject)]
pub struct CreatedApiKey {
    api_key: ApiKey,
    /// The key itself (`pat_...`): shown this once only.
    secret: String,
}

#[derive(SimpleObject)]
pub struct TwoFactorEnrollment {
    /// Base32 secret for authenticator apps that cannot scan the URL.
    secret: String,
    /// `otpauth://` URL (show it as a QR code).
    otpauth_url: String,
}

pub struct Query;

#[Object]
impl Query {
    /// The caller's live sessions.
    async fn my_sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let caller = caller(ctx)?;
        let sessions = auth(ctx)?.sessions(caller).await?;
        Ok(sessions
            .into_iter()
            .map(|s| {
                let current = Some(s.id) == caller.session_id;
                Session(s, current)
            })
            .collect())
    }

    /// The caller's API keys.
    async fn my_api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKey>> {
        Ok(api_keys::list(&auth(ctx)?.db, caller(ctx)?).await?.into_iter().map(ApiKey).collect())
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Result<User> {
        Ok(User { id: parse_id("id", &id)? })
    }
}

#[derive(InputObject)]
pub struct SignUpInput {
    email: String,
    /// 8 to 128 characters, not one of the 10,000 most common passwords.
    password: String,
    display_name: String,
}

#[derive(InputObject)]
pub struct LogInInput {
    email: String,
    password: String,
    /// A TOTP code or a recovery code, when the account has a second factor.
    code: Option<String>,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    name: String,
    scopes: Vec<String>,
    /// 1 to 366 days; default 90.
    expires_in_days: Option<i32>,
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates an account and signs in; a confirmation link is emailed.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<SignInPayload> {
        let tokens =
            auth(ctx)?.sign_up(caller(ctx)?, &input.email, input.password, &input.display_name).await?;
        Ok(SignInPayload { tokens: Some(tokens) })
    }

    async fn log_in(&self, ctx: &Context<'_>, input: LogInInput) -> Result<SignInPayload> {
        let outcome =
            auth(ctx)?.sign_in(caller(ctx)?, &input.email, input.password, input.code.as_deref()).await?;
        Ok(SignInPayload {
            tokens: match outcome {
                SignIn::Done(t) => Some(t),
                SignIn::SecondFactorRequired => None,
            },
        })
    }

    /// Trades a refresh token for new tokens (the old refresh token is spent).
    async fn refresh_session(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthTokens> {
        Ok(auth(ctx)?.refresh(&refresh_token).await?.into())
    }

    /// Makes the current session act in one of the caller's organizations: returns an access token
    /// whose `tid` is that organization (refreshing keeps it).
    async fn select_tenant(&self, ctx: &Context<'_>, organization_id: ID) -> Result<TenantToken> {
        let tenant = parse_id("organizationId", &organization_id)?;
        let (access_token, expires_in) = auth(ctx)?.select_tenant(caller(ctx)?, tenant).await?;
        Ok(TenantToken { access_token, expires_in })
    }

    /// Ends the current session: its access and refresh tokens stop working at once.
    async fn log_out(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(auth(ctx)?.sign_out(caller(ctx)?).await?)
    }

    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        Ok(auth(ctx)?.revoke_session(caller(ctx)?, parse_id("id", &id)?).await?)
    }

    /// Ends every session but the current one; returns how many.
    async fn revoke_other_sessions(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(auth(ctx)?.revoke_other_sessions(caller(ctx)?).await? as i64)
    }

    /// Emails the caller a new confirmation link; false when the address is already confirmed.
    async fn resend_verification_email(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(auth(ctx)?.resend_verification(caller(ctx)?).await?)
    }

    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        auth(ctx)?.verify_email(&token).await?;
        Ok(true)
    }

    /// Emails a reset link if the address has an account; answers the same either way.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        auth(ctx)?.request_password_reset(&email).await?;
        Ok(true)
    }

    /// Sets a new password from a reset link; every session ends.
    async fn reset_password(&self, ctx: &Context<'_>, token: String, new_password: String) -> Result<bool> {
        auth(ctx)?.reset_password(&token, new_password).await?;
        Ok(true)
    }

    /// Changes the password; every other session ends.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        auth(ctx)?.change_password(caller(ctx)?, current_password, new_password).await?;
        Ok(true)
    }

    async fn create_api_key(&self, ctx: &Context<'_>, input: CreateApiKeyInput) -> Result<CreatedApiKey> {
        let db = &auth(ctx)?.db;
        let (key, secret) =
            api_keys::create(db, caller(ctx)?, &input.name, &input.scopes, input.expires_in_days).await?;
        Ok(CreatedApiKey { api_key: ApiKey(key), secret })
    }

    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        Ok(api_keys::revoke(&auth(ctx)?.db, caller(ctx)?, &id).await?)
    }

    /// Starts TOTP enrollment; confirm it with a code to turn the second factor on.
    async fn begin_two_factor_enrollment(&self, ctx: &Context<'_>) -> Result<TwoFactorEnrollment> {
        let enrollment = mfa::begin(&auth(ctx)?.db, caller(ctx)?).await?;
        Ok(TwoFactorEnrollment { secret: enrollment.secret_base32, otpauth_url: enrollment.otpauth_url })
    }

    /// Turns the second factor on; returns ten single-use recovery codes (shown once).
    async fn confirm_two_factor_enrollment(&self, ctx: &Context<'_>, code: String) -> Result<Vec<String>> {
        Ok(mfa::confirm(&auth(ctx)?.db, caller(ctx)?, &code).await?)
    }

    async fn disable_two_factor(&self, ctx: &Context<'_>, password: String, code: String) -> Result<bool> {
        mfa::disable(&auth(ctx)?.db, caller(ctx)?, password, &code).await?;
        Ok(true)
    }
}
