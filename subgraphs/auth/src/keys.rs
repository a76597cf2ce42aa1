//! Ed25519 keys that sign access tokens, kept in `auth.signing_keys`.
//!
//! Three keys are published in the JWKS at any time: the previous one (tokens it signed may still
//! be alive), the current one (signs), and the next one (published before it signs, so routers
//! that cached the JWKS already know it when rotation happens). Rotation moves each one step:
//! next → current → previous → retired, and makes a new next. It runs when the current key is
//! older than the rotation period, or on demand; no token is invalidated by it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pyairtable_kit::authority::AccessClaims;
use pyairtable_kit::{Error, Result};
use sqlx::PgPool;
use tokio::sync::RwLock;

/// How long the signing keys are cached in process (other replicas see a rotation within it;
/// the next key was published long before, so nothing breaks meanwhile).
const CACHE: Duration = Duration::from_secs(30);

#[derive(Clone, sqlx::FromRow)]
struct KeyRow {
    kid: String,
    private_pkcs8: Vec<u8>,
    public_key: Vec<u8>,
    state: String,
    activated_at: Option<DateTime<Utc>>,
}

struct Loaded {
    at: Instant,
    keys: Vec<KeyRow>,
}

/// The signing keys, cached.
#[derive(Clone)]
pub struct SigningKeys {
    db: PgPool,
    rotate_after: chrono::Duration,
    cache: Arc<RwLock<Option<Loaded>>>,
}

impl SigningKeys {
    pub fn new(db: PgPool, rotate_after: chrono::Duration) -> Self {
        Self { db, rotate_after, cache: Arc::new(RwLock::new(None)) }
    }

    /// Signs `claims` with the current key, rotating first when it is due.
    pub async fn sign(&self, claims: &AccessClaims) -> Result<String> {
        let keys = self.keys().await?;
        let current = match keys.iter().find(|k| k.state == "current") {
            Some(current) if !self.due(current) => current.clone(),
            _ => {
                self.rotate_if(true).await?;
                self.current_after_reload().await?
            }
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(current.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&current.private_pkcs8))
            .map_err(|e| Error::internal(anyhow::anyhow!("signing an access token: {e}")))
    }

    async fn current_after_reload(&self) -> Result<KeyRow> {
        *self.cache.write().await = None;
        let keys = self.keys().await?;
        keys.into_iter()
            .find(|k| k.state == "current")
            .ok_or_else(|| Error::internal(anyhow::anyhow!("no current signing key")))
    }

    fn due(&self, key: &KeyRow) -> bool {
        key.activated_at.is_none_or(|at| Utc::now() - at >= self.rotate_after)
    }

    /// The JWKS document: previous, current and next public keys.
    pub async fn jwks(&self) -> Result<serde_json::Value> {
        let keys = self.keys().await?;
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": B64.encode(&k.public_key),
                    "kid": k.kid, "alg": "EdDSA", "use": "sig",
                })
            })
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// Rotates now (previous retires, current becomes previous, next becomes current).
    pub async fn rotate(&self) -> Result<()> {
        self.rotate_if(false).await?;
        *self.cache.write().await = None;
        Ok(())
    }

    /// The published keys (creating the first ones when there are none).
    async fn keys(&self) -> Result<Vec<KeyRow>> {
        if let Some(loaded) = self.cache.read().await.as_ref()
            && loaded.at.elapsed() < CACHE
        {
            return Ok(loaded.keys.clone());
        }
        let mut keys = self.load().await?;
        if !keys.iter().any(|k| k.state == "current") || !keys.iter().any(|k| k.state == "next") {
            self.ensure().await?;
            keys = self.load().await?;
        }
        *self.cache.write().await = Some(Loaded { at: Instant::now(), keys: keys.clone() });
        Ok(keys)
    }

    async fn load(&self) -> Result<Vec<KeyRow>> {
        Ok(sqlx::query_as(
            "select kid, private_pkcs8, public_key, state, activated_at from auth.signing_keys
             where state in ('previous', 'current', 'next') order by created_at",
        )
        .fetch_all(&self.db)
        .await?)
    }

    /// Creates a current and a next key where missing (serialised across processes).
    async fn ensure(&self) -> Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query("select pg_advisory_xact_lock(hashtext('auth.signing_keys'))").execute(&mut *tx).await?;
        for state in ["current", "next"] {
            let exists: bool =
                sqlx::query_scalar("select exists(select 1 from auth.signing_keys where state = $1)")
                    .bind(state)
                    .fetch_one(&mut *tx)
                    .await?;
            if !exists {
                insert_new(&mut tx, state).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rotates; with `only_if_due`, only when the current key is still due once the lock is held
    /// (another process may just have rotated).
    async fn rotate_if(&self, only_if_due: bool) -> Result<()> {
        self.keys().await?;
        let mut tx = self.db.begin().await?;
        sqlx::query("select pg_advisory_xact_lock(hashtext('auth.signing_keys'))").execute(&mut *tx).await?;
        let activated: Option<DateTime<Utc>> =
            sqlx::query_scalar("select activated_at from auth.signing_keys where state = 'current'")
                .fetch_optional(&mut *tx)
                .await?
                .flatten();
        if only_if_due && activated.is_some_and(|at| Utc::now() - at < self.rotate_after) {
            return Ok(());
        }
        for (from, to) in [("previous", "retired"), ("current", "previous"), ("next", "current")] {
            sqlx::query(
                "update auth.signing_keys set state = $2,
                   activated_at = case when $2 = 'current' then now() else activated_at end,
                   retired_at = case when $2 = 'retired' then now() else retired_at end
                 where state = $1",
            )
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        }
        insert_new(&mut tx, "next").await?;
        tx.commit().await?;
        tracing::info!("access-token signing keys rotated");
        Ok(())
    }
}

async fn insert_new(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, state: &str) -> Result<()> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| Error::internal(anyhow::anyhow!("generating an Ed25519 key")))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| Error::internal(anyhow::anyhow!("reading a generated Ed25519 key")))?;
    let public = pair.public_key().as_ref().to_vec();
    let kid = B64.encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public).as_ref()[..12]);
    sqlx::query(
        "insert into auth.signing_keys (kid, private_pkcs8, public_key, state, activated_at)
         values ($1, $2, $3, $4, case when $4 = 'current' then now() end)",
    )
    .bind(kid)
    .bind(pkcs8.as_ref())
    .bind(public)
    .bind(state)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
