//! `Kit::start` against the real PostgreSQL and Redis, and what it says when they are wrong.

use pyairtable_kit::testing::{redis_url, spawn_app, test_database};
use pyairtable_kit::{Config, Kit};

fn config(vars: &[(&str, &str)]) -> Config {
    Config::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).expect("valid config")
}

async fn readyz(kit: &Kit) -> (u16, String) {
    let server = spawn_app(pyairtable_kit::http::ops_routes(kit.ready_check())).await;
    let response = reqwest::get(format!("http://{}/readyz", server.addr)).await.expect("answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn the_kit_connects_postgresql_and_redis_and_reports_ready() {
    let db = test_database().await;
    let redis = redis_url();
    let kit = Kit::start(config(&[("DATABASE_URL", db.url()), ("REDIS_URL", &redis)])).await.expect("starts");
    assert!(kit.redis.is_some(), "REDIS_URL gives a Redis connection");
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_schema in ('users', 'tenants')",
    )
    .fetch_one(&kit.db)
    .await
    .expect("query");
    assert!(tables >= 3, "migrations applied at start ({tables} tables)");
    assert_eq!(readyz(&kit).await, (200, "ready".to_owned()));

    // A database that stops answering makes the process unready (503), not dead.
    kit.db.close().await;
    let (status, body) = readyz(&kit).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("postgresql"), "{body}");

    // So does the shutdown, from its first moment.
    kit.shutdown().await;
    let (status, body) = readyz(&kit).await;
    assert_eq!((status, body.as_str()), (503, "not ready: shutting down"));
}

#[tokio::test]
async fn unreachable_or_malformed_backends_are_named() {
    let db = test_database().await;
    let cases = [
        (vec![("DATABASE_URL", db.url()), ("REDIS_URL", "redis://127.0.0.1:1")], "REDIS_URL"),
        (vec![("DATABASE_URL", db.url()), ("REDIS_URL", "http://not-redis")], "REDIS_URL"),
        (vec![("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres")], "127.0.0.1:1"),
    ];
    for (vars, needle) in cases {
        let err = match Kit::start(config(&vars)).await {
            Ok(_) => panic!("{vars:?} started"),
            Err(err) => format!("{err:#}"),
        };
        assert!(err.contains(needle), "{vars:?}: {needle:?} not in {err}");
    }
}

#[tokio::test]
async fn migrations_can_be_left_to_the_migrate_command() {
    let db = test_database().await;
    // test_database() has migrated already; starting without migrating still works and reads them.
    let kit = Kit::start(config(&[("DATABASE_URL", db.url()), ("PYAIRTABLE_MIGRATE", "false")]))
        .await
        .expect("starts");
    // The services' pool acts as the app role, which may not read the migrations table.
    let owner = sqlx::PgPool::connect(db.url()).await.expect("owner connection");
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&owner)
        .await
        .expect("migrations table");
    assert_eq!(applied as usize, pyairtable_kit::db::MIGRATOR.iter().count());
    kit.shutdown().await;

    // A release whose migrations have not run yet waits for them instead of serving.
    sqlx::query("delete from _sqlx_migrations where version = (select max(version) from _sqlx_migrations)")
        .execute(&owner)
        .await
        .expect("forget the last migration");
    let refused = Kit::start(config(&[("DATABASE_URL", db.url()), ("PYAIRTABLE_MIGRATE", "false")])).await;
    let err = format!("{:#}", refused.err().expect("refuses to start"));
    assert!(err.contains("1 migration(s) pending") && err.contains("pyairtable migrate"), "{err}");
}
