//! The PostgreSQL checks of `pyairtable doctor`: the server answers, the migrations this binary
//! carries are applied (and no other), and the role services act as exists and may be taken.

use sqlx::PgPool;

use crate::config::Config;
use crate::db::{self, APP_ROLE};
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
    let history = match db::migration_history(pool).await {
        Ok(history) => history,
        Err(err) => return Check::new("migrations", Status::Fail, err.to_string()),
    };
    let mut problems = Vec::new();
    let mut list = |what: &str, items: &[String]| {
        if !items.is_empty() {
            problems.push(format!("{what}: {}", items.join(", ")));
        }
    };
    list("failed half-way", &history.failed);
    list("changed since applied", &history.changed);
    list("applied by a newer pyairtable", &history.unknown);
    if !history.pending.is_empty() {
        let pending = history.pending.join(", ");
        problems.push(format!("{} pending ({pending}): run `pyairtable migrate`", history.pending.len()));
    }
    if problems.is_empty() {
        Check::new("migrations", Status::Ok, format!("all {} applied", history.known))
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
