//! One-click unsubscribe: every non-critical email to an account carries a link with a signed
//! token (user, workflow, channel; HMAC-SHA256 under a key kept in `notifications.signing_key`,
//! shared by replicas). `GET` (or a mail client's one-click `POST`) on it turns that workflow off
//! on that channel for that user; no session is needed.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use pyairtable_kit::db::{Scope, scoped};
use sha2::Sha256;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::deliveries::DeliveryRow;
use crate::store;
use crate::workflows::workflow;

/// Signs and checks unsubscribe links.
#[derive(Clone)]
pub struct Unsubscribe {
    db: PgPool,
    key: Arc<OnceCell<[u8; 32]>>,
    base_url: String,
}

impl Unsubscribe {
    pub fn new(db: PgPool, base_url: &str) -> Self {
        Self { db, key: Arc::default(), base_url: base_url.trim_end_matches('/').to_owned() }
    }

    async fn key(&self) -> pyairtable_kit::Result<[u8; 32]> {
        Ok(*self.key.get_or_try_init(|| signing_key(&self.db)).await?)
    }

    /// The link for a delivery: email to an account, of a workflow that is not critical.
    pub async fn link(&self, delivery: &DeliveryRow) -> pyairtable_kit::Result<Option<String>> {
        let critical = workflow(&delivery.workflow).is_none_or(|w| w.critical);
        let Some(user) = delivery.user_id.filter(|_| !critical && delivery.channel == "email") else {
            return Ok(None);
        };
        let claim = format!("{user}|{}|{}", delivery.workflow, delivery.channel);
        let token = format!("{}.{}", B64.encode(&claim), B64.encode(mac(&self.key().await?, &claim)));
        Ok(Some(format!("{}/notifications/unsubscribe/{token}", self.base_url)))
    }

    /// The (user, workflow, channel) a token names, if it is ours.
    async fn verify(&self, token: &str) -> Option<(Uuid, String, String)> {
        let (claim, signature) = token.split_once('.')?;
        let claim = String::from_utf8(B64.decode(claim).ok()?).ok()?;
        let signature = B64.decode(signature).ok()?;
        let mut check = Hmac::<Sha256>::new_from_slice(&self.key().await.ok()?).ok()?;
        check.update(claim.as_bytes());
        check.verify_slice(&signature).ok()?;
        let mut parts = claim.splitn(3, '|');
        let user = parts.next()?.parse().ok()?;
        Some((user, parts.next()?.to_owned(), parts.next()?.to_owned()))
    }
}

fn mac(key: &[u8; 32], claim: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(claim.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

async fn signing_key(db: &PgPool) -> pyairtable_kit::Result<[u8; 32]> {
    let fresh: [u8; 32] = rand::random();
    sqlx::query("insert into notifications.signing_key (id, key) values (1, $1) on conflict do nothing")
        .bind(&fresh[..])
        .execute(db)
        .await?;
    let key: Vec<u8> =
        sqlx::query_scalar("select key from notifications.signing_key where id = 1").fetch_one(db).await?;
    key.try_into()
        .map_err(|_| pyairtable_kit::Error::internal(std::io::Error::other("signing key is not 32 bytes")))
}

async fn opt_out(db: &PgPool, user: Uuid, workflow: &str, channel: &str) -> pyairtable_kit::Result<()> {
    let mut tx = scoped(db, &Scope::user(user)).await?;
    store::set_preference(&mut tx, user, workflow, channel, false).await?;
    tx.commit().await?;
    Ok(())
}

/// `GET`/`POST /notifications/unsubscribe/{token}`.
pub fn routes(unsubscribe: Unsubscribe) -> Router {
    Router::new()
        .route("/notifications/unsubscribe/{token}", get(unsubscribe_once).post(unsubscribe_once))
        .with_state(unsubscribe)
}

async fn unsubscribe_once(State(unsubscribe): State<Unsubscribe>, Path(token): Path<String>) -> Response {
    let Some((user, workflow, channel)) = unsubscribe.verify(&token).await else {
        return (StatusCode::NOT_FOUND, Html("This unsubscribe link is not valid.")).into_response();
    };
    match opt_out(&unsubscribe.db, user, &workflow, &channel).await {
        Ok(()) => {
            Html("You are unsubscribed: these emails will not be sent to you any more.").into_response()
        }
        Err(err) => {
            tracing::error!(%err, "unsubscribing");
            (StatusCode::INTERNAL_SERVER_ERROR, Html("Something went wrong; try the link again later."))
                .into_response()
        }
    }
}
