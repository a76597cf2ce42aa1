//! Which sessions are live, answered for every authenticated request: cached in process, and
//! dropped from the cache the moment a session is revoked, in this process and (through
//! PostgreSQL `NOTIFY`, sent in the revoking transaction) in every other auth process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyairtable_kit::Result;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

/// The channel revocations are announced on (payload: the user id).
pub const CHANNEL: &str = "pyairtable_sessions_revoked";
/// A cached "live" answer is trusted this long even if a notification were lost.
const TTL: Duration = Duration::from_secs(10);
const MAX_ENTRIES: usize = 100_000;

/// Live sessions seen lately: session → (user, when checked).
#[derive(Clone, Default)]
pub struct SessionCache {
    live: Arc<Mutex<HashMap<Uuid, (Uuid, Instant)>>>,
}

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Uuid, Instant)>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `session` exists, is unrevoked and unexpired.
    pub async fn is_live(&self, db: &PgPool, session: Uuid) -> Result<bool> {
        if self.lock().get(&session).is_some_and(|(_, at)| at.elapsed() < TTL) {
            return Ok(true);
        }
        let user: Option<Uuid> = sqlx::query_scalar(
            "select user_id from auth.sessions where id = $1 and revoked_at is null and expires_at > now()",
        )
        .bind(session)
        .fetch_optional(db)
        .await?;
        let Some(user) = user else { return Ok(false) };
        let mut live = self.lock();
        if live.len() >= MAX_ENTRIES {
            live.clear();
        }
        live.insert(session, (user, Instant::now()));
        Ok(true)
    }

    /// Forgets every session of `user` (some were just revoked).
    pub fn forget_user(&self, user: Uuid) {
        self.lock().retain(|_, (owner, _)| *owner != user);
    }

    /// Listens for revocations made by any process, for as long as the pool is open.
    pub fn listen(&self, db: PgPool) {
        let cache = self.clone();
        tokio::spawn(async move {
            while !db.is_closed() {
                if let Ok(mut listener) = PgListener::connect_with(&db).await
                    && listener.listen(CHANNEL).await.is_ok()
                {
                    // Anything revoked while not listening may be cached: start clean.
                    cache.lock().clear();
                    while let Ok(notification) = listener.recv().await {
                        match notification.payload().parse::<Uuid>() {
                            Ok(user) => cache.forget_user(user),
                            Err(_) => cache.lock().clear(),
                        }
                    }
                }
                cache.lock().clear();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}
