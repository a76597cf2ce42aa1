//! The PostgreSQL checks of `pyairtable doctor`: the server answers, the migrations this binary
//! carries are applied (and no other), and the role services act as exists and may be taken.

use sqlx::PgPool;

use crate::config::Config;
use crate::db::{self, APP_ROLE, MIGRATOR};
use crate::doctor::{Check, Status, bounded};

/// `postgresql`, then (when it answers) `migrations` and `app role`.
pub(crate) async fn postgresql(config: &Config) -> Vec<Check> {
    let Some(url) = &config.database_url else {
        return vec![private_cluster(config)];
    };
    let options = match db::parse_url(url) {
        Ok(options) => options,
        Err(err) => return vec![Check::new("postgresql", Status::Fail, err.to_string())],
    };
    let place = db::describe(&options);
    let connected = tokio::time::timeout(crate::doctor::TIMEOUT, db::connect(options, 1)).await;
    let pool = match connected {
        Ok(Ok(pool)) => pool,
        Ok(Err(err)) => return vec![Check::new("postgresql", Status::Fail, format!("{err:#}"))],
        Err(_) => {
            return vec![Check::new(
                "postgresql",
                Status::Fail,
                format!("{place} did not answer within 5 s"),
            )];
        }
    };
    let checks = vec![
        bounded("postgresql", &place, version(&pool, &place)).await,
        bounded("migrations", &place, migrations(&pool)).await,
        bounded("app role", &place, app_role(&pool)).await,
    ];
    pool.close().await;
    checks
}

fn private_cluster(config: &Config) -> Check {
    let cluster = config.data_dir.join("pg");
    match crate::pg::find_bindir() {
        Ok(bindir) => Check::new(
            "postgresql",
            Status::Ok,
            format!(
                "DATABASE_URL unset: a private cluster under {} (binaries in {})",
                cluster.display(),
                bindir.display()
            ),
        ),
        Err(err) => Check::new("postgresql", Status::Fail, format!("DATABASE_URL unset and {err}")),
    }
}

async fn version(pool: &PgPool, place: &str) -> Check {
    let row: Result<(String, i32), _> = sqlx::query_as(
        "select current_setting('server_version'), current_setting('server_version_num')::int",
    )
    .fetch_one(pool)
    .await;
    match row {
        Ok((version, number)) if number < 150_000 => Check::new(
            "postgresql",
            Status::Warn,
            format!("{place} answers, but PostgreSQL {version} is older than 15"),
        ),
        Ok((version, _)) => {
            Check::new("postgresql", Status::Ok, format!("{place} answers (PostgreSQL {version})"))
        }
        Err(err) => Check::new("postgresql", Status::Fail, format!("{place}: {err}")),
    }
}

/// Compares `_sqlx_migrations` with the migrations built into this binary.
async fn migrations(pool: &PgPool) -> Check {
    let applied: Result<Vec<(i64, bool, Vec<u8>)>, _> =
        sqlx::query_as("select version, success, checksum from _sqlx_migrations order by version")
            .fetch_all(pool)
            .await;
    let applied = match applied {
        Ok(rows) => rows,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
        Err(err) => return Check::new("migrations", Status::Fail, err.to_string()),
    };
    let known: Vec<_> = MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).collect();
    let mut problems = Vec::new();
    let failed: Vec<String> = applied.iter().filter(|(_, ok, _)| !ok).map(|(v, ..)| v.to_string()).collect();
    if !failed.is_empty() {
        problems.push(format!("failed half-way: {}", failed.join(", ")));
    }
    let changed: Vec<String> = known
        .iter()
        .filter(|m| applied.iter().any(|(v, _, sum)| *v == m.version && sum.as_slice() != &*m.checksum))
        .map(|m| format!("{}_{}", m.version, m.description))
        .collect();
    if !changed.is_empty() {
        problems.push(format!("changed since applied: {}", changed.join(", ")));
    }
    let unknown: Vec<String> = applied
        .iter()
        .filter(|(v, ..)| !known.iter().any(|m| m.version == *v))
        .map(|(v, ..)| v.to_string())
        .collect();
    if !unknown.is_empty() {
        problems.push(format!("applied by a newer pyairtable: {}", unknown.join(", ")));
    }
    let pending: Vec<String> = known
        .iter()
        .filter(|m| !applied.iter().any(|(v, ..)| *v == m.version))
        .map(|m| format!("{}_{}", m.version, m.description))
        .collect();
    if !pending.is_empty() {
        problems.push(format!(
            "{} pending ({}): run `pyairtable migrate`",
            pending.len(),
            pending.join(", ")
        ));
    }
    if problems.is_empty() {
        Check::new("migrations", Status::Ok, format!("all {} applied", known.len()))
    } else {
        Check::new("migrations", Status::Fail, problems.join("; "))
    }
}

async fn app_role(pool: &PgPool) -> Check {
    let row: Result<(bool, bool, String), _> = sqlx::query_as(
        "select exists(select 1 from pg_roles where rolname = $1), \
         coalesce(pg_has_role(current_user, (select oid from pg_roles where rolname = $1), 'member'), false), \
         current_user::text",
    )
    .bind(APP_ROLE)
    .fetch_one(pool)
    .await;
    match row {
        Ok((true, true, user)) => {
            Check::new("app role", Status::Ok, format!("{APP_ROLE} exists and {user} may act as it"))
        }
        Ok((true, false, user)) => Check::new(
            "app role",
            Status::Fail,
            format!("{user} is not a member of {APP_ROLE}: grant {APP_ROLE} to {user}"),
        ),
        Ok((false, ..)) => Check::new(
            "app role",
            Status::Fail,
            format!("{APP_ROLE} does not exist: run `pyairtable migrate`"),
        ),
        Err(err) => Check::new("app role", Status::Fail, err.to_string()),
    }
}
