//! The PostgreSQL pool and the migrations of every subgraph (one timeline, one schema per subgraph).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

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

/// The role services act as (see the `kit_app_role` migration): no DDL, no BYPASSRLS.
pub const APP_ROLE: &str = "pyairtable_app";

/// Opens a pool as the connecting role (migrations, tests' own inspection); fails fast with a
/// message naming the server when it does not answer.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> anyhow::Result<PgPool> {
    open(PgPoolOptions::new(), options, max_connections).await
}

/// Opens the pool services use: every connection acts as [`APP_ROLE`], so row-level security
/// applies to everything they run.
pub async fn connect_app(options: PgConnectOptions, max_connections: u32) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new().after_connect(|conn, _| {
        Box::pin(async move {
            sqlx::query("set role pyairtable_app").execute(conn).await?;
            Ok(())
        })
    });
    open(pool, options, max_connections)
        .await
        .context("connecting as pyairtable_app (are the migrations applied?)")
}

async fn open(
    pool: PgPoolOptions,
    options: PgConnectOptions,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let place = describe(&options);
    pool.max_connections(max_connections)
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

/// The database's migration history against the migrations built into this binary (each entry
/// `version_description`, or the version alone when this binary does not know it).
#[derive(Debug, Default)]
pub struct MigrationHistory {
    /// Migrations this binary carries.
    pub known: usize,
    pub pending: Vec<String>,
    /// Started and not finished (`success = false`).
    pub failed: Vec<String>,
    /// Applied with another checksum than this binary's file.
    pub changed: Vec<String>,
    /// Applied, unknown to this binary (a newer release migrated: fine during a rolling upgrade).
    pub unknown: Vec<String>,
}

/// Reads `_sqlx_migrations` (as the owner: the app role may not) and compares it with [`MIGRATOR`].
pub async fn migration_history(pool: &PgPool) -> sqlx::Result<MigrationHistory> {
    let applied: Vec<(i64, bool, Vec<u8>)> =
        match sqlx::query_as("select version, success, checksum from _sqlx_migrations order by version")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
            Err(err) => return Err(err),
        };
    let known: Vec<_> = MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).collect();
    let name = |m: &&sqlx::migrate::Migration| format!("{}_{}", m.version, m.description.replace(' ', "_"));
    let applied_as = |m: &&sqlx::migrate::Migration| applied.iter().find(|(v, ..)| *v == m.version);
    Ok(MigrationHistory {
        known: known.len(),
        pending: known.iter().filter(|m| applied_as(m).is_none()).map(name).collect(),
        failed: applied.iter().filter(|(_, ok, _)| !ok).map(|(v, ..)| v.to_string()).collect(),
        changed: known
            .iter()
            .filter(|m| applied_as(m).is_some_and(|(_, _, sum)| sum.as_slice() != &*m.checksum))
            .map(name)
            .collect(),
        unknown: applied
            .iter()
            .filter(|(v, ..)| !known.iter().any(|m| m.version == *v))
            .map(|(v, ..)| v.to_string())
            .collect(),
    })
}

/// Refuses to go on when this binary's migrations are not all applied (services started with
/// `PYAIRTABLE_MIGRATE=false` wait, restarting, for `pyairtable migrate`).
pub async fn require_migrated(pool: &PgPool) -> anyhow::Result<()> {
    let history = migration_history(pool).await.context("reading the migration history")?;
    if !history.failed.is_empty() {
        anyhow::bail!("migrations failed half-way ({}): see `pyairtable doctor`", history.failed.join(", "));
    }
    if !history.pending.is_empty() {
        anyhow::bail!(
            "{} migration(s) pending ({}): run `pyairtable migrate` (PYAIRTABLE_MIGRATE is false)",
            history.pending.len(),
            history.pending.join(", ")
        );
    }
    Ok(())
}

/// Which rows a transaction may see where row-level security applies: those of `tenants`, and
/// (on tables that allow it) those about `user`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub tenants: Vec<Uuid>,
    pub user: Option<Uuid>,
}

impl Scope {
    /// One tenant.
    pub fn tenant(tenant: Uuid) -> Self {
        Self { tenants: vec![tenant], user: None }
    }

    /// Several tenants.
    pub fn tenants(tenants: impl IntoIterator<Item = Uuid>) -> Self {
        Self { tenants: tenants.into_iter().collect(), user: None }
    }

    /// Rows about one user only (and no tenant's).
    pub fn user(user: Uuid) -> Self {
        Self { tenants: Vec::new(), user: Some(user) }
    }

    pub fn with_user(mut self, user: Uuid) -> Self {
        self.user = Some(user);
        self
    }

    /// Sets this scope on `tx`, transaction-locally: it ends with the transaction, so a pooled
    /// connection never carries it into the next one.
    pub async fn apply(&self, tx: &mut PgConnection) -> crate::Result<()> {
        sqlx::query("select set_config('app.tenant_ids', $1, true), set_config('app.user_id', $2, true)")
            .bind(self.tenant_list())
            .bind(self.user_text())
            .execute(tx)
            .await?;
        Ok(())
    }

    /// The tenants as a PostgreSQL `uuid[]` literal.
    fn tenant_list(&self) -> String {
        format!("{{{}}}", self.tenants.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","))
    }

    fn user_text(&self) -> String {
        self.user.map(|u| u.to_string()).unwrap_or_default()
    }
}

/// Begins a transaction that sees only what `scope` allows. The scope is set in the same round
/// trip as `BEGIN` (ids are formatted from `Uuid`s, so the statement cannot carry anything else).
pub async fn scoped(pool: &PgPool, scope: &Scope) -> crate::Result<Transaction<'static, Postgres>> {
    let begin = format!(
        "begin; select set_config('app.tenant_ids', '{}', true), set_config('app.user_id', '{}', true)",
        scope.tenant_list(),
        scope.user_text()
    );
    Ok(pool.begin_with(sqlx::AssertSqlSafe(begin)).await?)
}
