//! [`Kit`]: the connections a process opens once at start and shares with its subgraphs.

use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::Mutex;

use crate::authz::{Authorizer, HttpAuthorizer, Unconfigured};
use crate::config::{Config, ConfigError, Secret};
use crate::db;
use crate::http::ReadyCheck;
use crate::identity::IdentityKey;
use crate::lifecycle::{Lifecycle, StopReason};
use crate::mail::Mailer;
use crate::pg::EmbeddedPostgres;

/// The database the zero-configuration cluster keeps pyairtable's data in.
const EMBEDDED_DATABASE: &str = "pyairtable";

/// Shared connections: PostgreSQL (the configured server, or a private cluster this process runs)
/// and Redis when configured.
pub struct Kit {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: Option<redis::aio::ConnectionManager>,
    /// Live messages for subscriptions: in process, or through Redis when configured.
    pub bus: Arc<crate::bus::Bus>,
    /// Outgoing email: SMTP when configured, else the outbox folder.
    pub mailer: Arc<dyn Mailer>,
    /// The stop signal and the background tasks of this process (see [`crate::lifecycle`]).
    pub lifecycle: Lifecycle,
    /// The event consumers this process runs, for the lag gauge.
    pub(crate) consumers: Arc<StdMutex<Vec<&'static str>>>,
    embedded: Mutex<Option<EmbeddedPostgres>>,
    authorizer: OnceLock<Arc<dyn Authorizer>>,
}

impl Kit {
    /// Connects everything `config` names, starting a private PostgreSQL cluster under
    /// `<data dir>/pg` when `DATABASE_URL` is unset, and applies migrations unless disabled.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let mailer =
            crate::mail::from_config(&config).map_err(|e| ConfigError::new("SMTP_URL", e.to_string()))?;
        let (options, embedded) = match &config.database_url {
            Some(url) => (db::parse_url(url)?, None),
            None => {
                let pg = EmbeddedPostgres::start(&config.data_dir.join("pg")).await?;
                (pg.connect_options(), Some(pg))
            }
        };
        let kit = match Self::connect(config, options, embedded.is_some()).await {
            Ok((config, db, redis)) => {
                let lifecycle = Lifecycle::new(config.shutdown_grace);
                let bus = bus(&config, redis.as_ref(), &lifecycle)?;
                Self {
                    lifecycle,
                    bus,
                    config,
                    db,
                    redis,
                    mailer,
                    consumers: Arc::default(),
                    embedded: Mutex::new(embedded),
                    authorizer: OnceLock::new(),
                }
            }
            Err(err) => {
                if let Some(pg) = embedded {
                    let _ = pg.stop().await;
                }
                return Err(err);
            }
        };
        crate::gauges::spawn(&kit);
        Ok(kit)
    }

    async fn connect(
        config: Config,
        options: PgConnectOptions,
        embedded: bool,
    ) -> anyhow::Result<(Arc<Config>, PgPool, Option<redis::aio::ConnectionManager>)> {
        let options = if embedded { ensure_database(options, EMBEDDED_DATABASE).await? } else { options };
        let owner = db::connect(options.clone(), 1).await?;
        let migrated =
            if config.migrate { db::migrate(&owner).await } else { db::require_migrated(&owner).await };
        owner.close().await;
        migrated?;
        let db = db::connect_app(options, config.db_max_connections).await?;
        let redis = match &config.redis_url {
            Some(url) => Some(connect_redis(url).await?),
            None => None,
        };
        Ok((Arc::new(config), db, redis))
    }

    /// Hands the kit the permissions engine of this process (one-process mode, or the permissions
    /// service itself). Call before building the subgraphs that ask it; a second call is ignored.
    pub fn set_authorizer(&self, authorizer: Arc<dyn Authorizer>) {
        let _ = self.authorizer.set(authorizer);
    }

    /// Who decides authorization: the engine set by [`Kit::set_authorizer`], else the permissions
    /// service over HTTP (`PYAIRTABLE_PERMISSIONS_URL`, identity signed with the internal secret),
    /// else (no secret) an authorizer that refuses with an internal error.
    pub fn authorizer(&self) -> Arc<dyn Authorizer> {
        self.authorizer
            .get_or_init(|| match &self.config.internal_secret {
                Some(secret) => Arc::new(HttpAuthorizer::new(
                    &self.config.permissions_url,
                    IdentityKey::new(secret),
                    Duration::from_millis(self.config.subgraph_timeout_ms),
                )),
                None => Arc::new(Unconfigured),
            })
            .clone()
    }

    /// Readiness: not shutting down, and PostgreSQL (and Redis when configured) answer.
    pub fn ready_check(&self) -> ReadyCheck {
        let db = self.db.clone();
        let redis = self.redis.clone();
        let lifecycle = self.lifecycle.clone();
        Arc::new(move || {
            let (db, redis, stopping) = (db.clone(), redis.clone(), lifecycle.is_stopping());
            Box::pin(async move {
                if stopping {
                    return Err("shutting down".to_owned());
                }
                sqlx::query("select 1").execute(&db).await.map_err(|e| format!("postgresql: {e}"))?;
                if let Some(mut redis) = redis {
                    redis::cmd("PING")
                        .query_async::<String>(&mut redis)
                        .await
                        .map_err(|e| format!("redis: {e}"))?;
                }
                Ok(())
            })
        })
    }

    /// Stops the background tasks (if the lifecycle has not stopped yet: a command that did not
    /// serve), closes the pool and stops the private cluster, if this process runs one.
    pub async fn shutdown(&self) {
        self.lifecycle.stop(StopReason::GoingAway);
        let deadline = tokio::time::Instant::now() + self.lifecycle.grace();
        if !self.lifecycle.wait_for_tasks(deadline).await {
            tracing::warn!(
                tasks = self.lifecycle.running_tasks(),
                "background tasks cut by the grace period"
            );
        }
        self.db.close().await;
        if let Some(pg) = self.embedded.lock().await.take()
            && let Err(err) = pg.stop().await
        {
            tracing::warn!(%err, "stopping the private PostgreSQL cluster");
        }
    }
}

/// Creates `name` on the server `options` points at when missing; returns options for it.
async fn ensure_database(options: PgConnectOptions, name: &str) -> anyhow::Result<PgConnectOptions> {
    let admin = db::connect(options.clone(), 1).await?;
    let exists: bool = sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
        .bind(name)
        .fetch_one(&admin)
        .await?;
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
            .execute(&admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
    }
    admin.close().await;
    Ok(options.database(name))
}

/// Connects to Redis, naming `REDIS_URL` when it is malformed or does not answer.
/// The bus: through Redis when `REDIS_URL` is set (channels under the edge's Redis prefix), else in
/// process.
fn bus(
    config: &Config,
    redis: Option<&redis::aio::ConnectionManager>,
    lifecycle: &Lifecycle,
) -> anyhow::Result<Arc<crate::bus::Bus>> {
    let (Some(url), Some(connection)) = (&config.redis_url, redis) else {
        return Ok(Arc::new(crate::bus::Bus::in_process()));
    };
    let client = redis::Client::open(url.expose())
        .map_err(|e| ConfigError::new("REDIS_URL", format!("not a Redis URL: {e}")))?;
    let prefix = &config.edge.redis_prefix;
    Ok(Arc::new(crate::bus::Bus::redis(client, connection.clone(), prefix, lifecycle)))
}

pub async fn connect_redis(url: &Secret) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url.expose())
        .map_err(|e| ConfigError::new("REDIS_URL", format!("not a Redis URL: {e}")))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2);
    let manager = tokio::time::timeout(
        Duration::from_secs(15),
        redis::aio::ConnectionManager::new_with_config(client, config),
    )
    .await
    .map_err(|_| anyhow::anyhow!("REDIS_URL: Redis did not answer within 15 s"))?
    .context("REDIS_URL: cannot connect to Redis")?;
    Ok(manager)
}
