//! The private PostgreSQL cluster, run from the machine's real PostgreSQL binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pyairtable_kit::pg::{self, BinSearch, EmbeddedPgError, EmbeddedPostgres};
use sqlx::{ConnectOptions, Connection};

/// A temporary folder the `postgres` user can enter (tempfile makes 0700 folders).
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Alive and not a zombie waiting for its (new) parent to reap it.
fn pid_alive(pid: i32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && !zombie
}

async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "postgres (pid {pid}) still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn postmaster_pid(dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

#[tokio::test]
async fn a_cluster_is_created_keeps_its_data_and_stops_cleanly() {
    let work = workdir();
    let dir = work.path().join("data/pg");

    let pg = EmbeddedPostgres::start(&dir).await.expect("first start");
    assert!(dir.join("PG_VERSION").exists(), "initdb ran");
    let pid = pg.pid().expect("server pid") as i32;
    let mut conn = pg.connect_options().connect().await.expect("connect over the socket");
    sqlx::query("create table kept (v text)").execute(&mut conn).await.expect("create");
    sqlx::query("insert into kept values ('still here')").execute(&mut conn).await.expect("insert");
    conn.close().await.expect("close");
    let tcp: Option<String> = sqlx::query_scalar("select current_setting('listen_addresses')")
        .fetch_optional(&mut { pg.connect_options().connect().await.expect("connect") })
        .await
        .expect("setting");
    assert_eq!(tcp.as_deref(), Some(""), "no TCP port is opened");
    pg.stop().await.expect("stop");
    assert!(!pid_alive(pid), "the server process is gone after stop");
    assert!(postmaster_pid(&dir).is_none(), "postmaster.pid removed by a clean shutdown");

    let pg = EmbeddedPostgres::start(&dir).await.expect("second start reuses the cluster");
    let mut conn = pg.connect_options().connect().await.expect("connect");
    let kept: String = sqlx::query_scalar("select v from kept").fetch_one(&mut conn).await.expect("select");
    assert_eq!(kept, "still here");
    conn.close().await.expect("close");
    pg.stop().await.expect("stop");
}

#[tokio::test]
async fn a_cluster_in_use_by_a_live_process_is_refused() {
    let work = workdir();
    let dir = work.path().join("pg");
    let first = EmbeddedPostgres::start(&dir).await.expect("first start");
    let err = match EmbeddedPostgres::start(&dir).await {
        Ok(_) => panic!("a second server started on the same cluster"),
        Err(err) => err,
    };
    assert!(matches!(err, EmbeddedPgError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    // The first server is untouched.
    first.connect_options().connect().await.expect("the first server still answers");
    first.stop().await.expect("stop");
}

#[tokio::test]
async fn dropping_without_stop_still_shuts_the_server_down() {
    let work = workdir();
    let dir = work.path().join("pg");
    let pg = EmbeddedPostgres::start(&dir).await.expect("start");
    let pid = pg.pid().expect("pid") as i32;
    drop(pg);
    wait_gone(pid).await;
}

#[tokio::test]
async fn a_server_left_behind_by_a_dead_process_is_reclaimed() {
    let work = workdir();
    let dir = work.path().join("pg");
    // `start_shared` leaves a detached server (its parent, pg_ctl, exits): what a pyairtable that
    // was killed with SIGKILL leaves behind.
    pg::start_shared(&dir).await.expect("detached start");
    let stale = postmaster_pid(&dir).expect("detached server pid");
    let pg = EmbeddedPostgres::start(&dir).await.expect("start over a left-behind server");
    assert!(!pid_alive(stale), "the left-behind server was stopped");
    assert_ne!(pg.pid().map(|p| p as i32), Some(stale));
    pg.connect_options().connect().await.expect("connect");
    pg.stop().await.expect("stop");
}

#[tokio::test]
async fn concurrent_shared_starts_join_one_server() {
    let work = workdir();
    let dir = work.path().join("pg");
    let (a, b) = tokio::join!(pg::start_shared(&dir), pg::start_shared(&dir));
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.get_socket(), b.get_socket());
    let pid = postmaster_pid(&dir).expect("one server");
    a.connect().await.expect("connect a");
    b.connect().await.expect("connect b");
    pg::start_shared(&dir).await.expect("a later start joins");
    assert_eq!(postmaster_pid(&dir), Some(pid), "no second server");
    pg::stop_shared(&dir).await.expect("stop");
    wait_gone(pid).await;
}

#[test]
fn missing_binaries_are_explained() {
    let search = BinSearch {
        pg_config: "/nonexistent/pg_config".into(),
        versioned_roots: vec!["/nonexistent/lib/postgresql".into()],
        fixed: vec!["/nonexistent/bin".into()],
        path: Some("/nonexistent/path".into()),
    };
    let err = search.find().expect_err("nothing to find").to_string();
    for needle in ["apt install postgresql", "brew install postgresql", "DATABASE_URL", "/nonexistent/bin"] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    let found: PathBuf = pg::find_bindir().expect("this machine has PostgreSQL");
    assert!(found.join("initdb").exists());
}

#[tokio::test]
async fn an_unreachable_data_dir_is_explained_or_works() {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let dir = work.path().join("pg");
    let result = EmbeddedPostgres::start(&dir).await;
    if nix::unistd::Uid::effective().is_root() {
        // The server runs as `postgres`, which cannot enter a root-only folder.
        let err = result.err().expect("refused").to_string();
        assert!(err.contains("PYAIRTABLE_DATA_DIR") && err.contains("700"), "{err}");
    } else {
        // Our own user owns the folder: nothing to explain.
        result.expect("start").stop().await.expect("stop");
    }
}

#[tokio::test]
async fn tests_without_a_configured_server_get_a_private_one() {
    // What `test_database()` falls back to when PYAIRTABLE_TEST_DATABASE_URL is unset.
    let (url, options) = pyairtable_kit::testing::private_server().await;
    // A database of its own: the cluster outlives test runs, and its `postgres` database with it.
    let name = format!("pt_{}_{}", chrono::Utc::now().timestamp(), uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&url).await.expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
        .execute(&admin)
        .await
        .expect("create");
    let own = url.replacen("/postgres?", &format!("/{name}?"), 1);
    let config = pyairtable_kit::Config::from_vars([("DATABASE_URL".to_owned(), own)]).expect("config");
    let kit = pyairtable_kit::Kit::start(config).await.expect("the URL it gives works as DATABASE_URL");
    let version: String = sqlx::query_scalar("show server_version").fetch_one(&kit.db).await.expect("query");
    assert!(!version.is_empty());
    kit.shutdown().await;
    let (again, _) = pyairtable_kit::testing::private_server().await;
    assert_eq!(again, url, "later callers join the same server");
    assert!(options.get_socket().is_some(), "over a Unix socket: {url}");
}
