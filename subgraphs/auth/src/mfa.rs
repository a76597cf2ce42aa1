//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s, one step of skew) with recovery codes.
//! A code is accepted once: the step it matched is remembered and older or equal steps refused.

use pyairtable_kit::{Caller, Error, Result};
use sqlx::PgPool;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;

use crate::passwords::{self, Verified};
use crate::secrets;
use crate::store::{self, Credentials};

const ISSUER: &str = "PyAirtable";

fn totp(secret: Vec<u8>, account: &str) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(Secret::from(secret))
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| Error::internal(anyhow::anyhow!("building a TOTP: {e}")))
}

/// A started enrollment: the secret to put in an authenticator app.
pub struct Enrollment {
    pub secret_base32: String,
    pub otpauth_url: String,
}

/// Starts (or restarts) enrollment; the factor is enabled only once a code is confirmed.
pub async fn begin(db: &PgPool, caller: &Caller) -> Result<Enrollment> {
    let user = caller.require_user()?;
    let credentials = store::account(db, user).await?;
    if credentials.totp_enabled_at.is_some() {
        return Err(Error::Conflict("two-factor authentication is already on".into()));
    }
    let secret: [u8; 20] = rand::random();
    let totp = totp(secret.to_vec(), &credentials.email)?;
    sqlx::query("update auth.credentials set totp_secret = $2, totp_last_step = null where user_id = $1")
        .bind(user)
        .bind(secret.as_slice())
        .execute(db)
        .await?;
    let otpauth_url = totp.to_url().map_err(|e| Error::internal(anyhow::anyhow!("otpauth url: {e}")))?;
    Ok(Enrollment { secret_base32: totp.secret().to_base32(), otpauth_url })
}

/// Confirms enrollment with a current code; returns ten single-use recovery codes.
pub async fn confirm(db: &PgPool, caller: &Caller, code: &str) -> Result<Vec<String>> {
    let user = caller.require_user()?;
    let credentials = store::account(db, user).await?;
    let Some(secret) = credentials.totp_secret.clone().filter(|_| credentials.totp_enabled_at.is_none())
    else {
        return Err(Error::Conflict("start two-factor enrollment first".into()));
    };
    if !accept_code(db, user, secret, &credentials.email, code).await? {
        return Err(Error::bad_input("code", "the code is wrong or expired"));
    }
    let codes = secrets::recovery_codes();
    let mut tx = db.begin().await?;
    sqlx::query("update auth.credentials set totp_enabled_at = now() where user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from auth.recovery_codes where user_id = $1").bind(user).execute(&mut *tx).await?;
    for code in &codes {
        sqlx::query("insert into auth.recovery_codes (user_id, hash) values ($1, $2)")
            .bind(user)
            .bind(secrets::hash(code))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(codes)
}

/// Turns the second factor off; needs the password and a current code (or a recovery code).
pub async fn disable(db: &PgPool, caller: &Caller, password: String, code: &str) -> Result<()> {
    let user = caller.require_user()?;
    let credentials = store::account(db, user).await?;
    if passwords::verify(password, Some(credentials.password_hash.clone())).await? == Verified::No {
        return Err(Error::bad_input("password", "the password is wrong"));
    }
    if !check_second_factor(db, &credentials, code).await? {
        return Err(Error::bad_input("code", "the code is wrong or expired"));
    }
    sqlx::query(
        "update auth.credentials set totp_secret = null, totp_enabled_at = null, totp_last_step = null where user_id = $1",
    )
    .bind(user)
    .execute(db)
    .await?;
    sqlx::query("delete from auth.recovery_codes where user_id = $1").bind(user).execute(db).await?;
    Ok(())
}

/// A TOTP code, or an unused recovery code (then spent).
pub async fn check_second_factor(db: &PgPool, credentials: &Credentials, code: &str) -> Result<bool> {
    let code = code.trim();
    if code.contains('-') {
        let spent = sqlx::query(
            "update auth.recovery_codes set used_at = now() where user_id = $1 and hash = $2 and used_at is null",
        )
        .bind(credentials.user_id)
        .bind(secrets::hash(&code.to_lowercase()))
        .execute(db)
        .await?;
        return Ok(spent.rows_affected() == 1);
    }
    let Some(secret) = credentials.totp_secret.clone() else { return Ok(false) };
    accept_code(db, credentials.user_id, secret, &credentials.email, code).await
}

/// Checks a TOTP code and records its step, refusing a step already used (replay).
async fn accept_code(db: &PgPool, user: Uuid, secret: Vec<u8>, email: &str, code: &str) -> Result<bool> {
    let Some(step) = totp(secret, email)?.check_current(code) else { return Ok(false) };
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let recorded = sqlx::query(
        "update auth.credentials set totp_last_step = $2
         where user_id = $1 and (totp_last_step is null or totp_last_step < $2)",
    )
    .bind(user)
    .bind(step)
    .execute(db)
    .await?;
    Ok(recorded.rows_affected() == 1)
}

/// The current code of a secret (tests).
pub fn current_code(secret_base32: &str) -> Option<String> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    Some(totp(secret.as_bytes().to_vec(), "x").ok()?.generate_current().to_string())
}
