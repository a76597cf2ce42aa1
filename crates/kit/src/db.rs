//! The PostgreSQL pool and the migrations of every subgraph (one timeline, one schema per subgraph).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::{ConfigError, Secret};

/// Every migration of every subgraph, in one timeline.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Parses `DATABASE_URL`, naming the variable when it is not a PostgreSQL URL.
pub fn parse_url(url: &Secret) -> Result<PgConnectOptions, ConfigError> {
    let raw = url.expose();
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return Err(ConfigError::new("DATABASE_URL", "not a PostgreSQL URL (postgres://...)"));
    }
    PgConnectOptions::from_str(raw)
        .map_err(|e| ConfigError::new("DATABASE_URL", format!("not a PostgreSQL URL: {e}")))
}

/// Where `options` points, without credentials (for messages and logs).
pub fn describe(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(dir) => format!("socket {}/{}", dir.display(), options.get_database().unwrap_or("")),
        None => {
            format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or(""))
        }
    }
}

/// Opens a pool; fails fast with a message naming the server when it does not answer.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> anyhow::Result<PgPool> {
    let place = describe(&options);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {place}"))
}

/// Applies pending migrations (concurrent callers are serialised by sqlx's advisory lock).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("applying migrations")?;
    Ok(())
}
