//! `pyairtable doctor` against real PostgreSQL, Redis, an SMTP server and the permissions service,
//! then against broken ones: each problem is one line, and the exit code says something failed.
//! The object store is checked against a real S3-compatible server (moto's, from PyPI).

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use common::{Process, run_capture};
use pyairtable_kit::testing::{TEST_INTERNAL_SECRET, free_port, redis_url, smtp_server, test_database};

/// The line of `report` for `check`, e.g. "ok    redis: ...".
fn line<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(&format!("{check}: "))))
        .unwrap_or_else(|| panic!("no {check} line in:\n{report}"))
}

fn status<'a>(report: &'a str, check: &str) -> &'a str {
    line(report, check).split_whitespace().next().unwrap_or_default()
}

#[tokio::test]
async fn a_healthy_installation_passes_every_check() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mail = tempfile::tempdir().expect("mail dir");
    let (_smtp, smtp_port) = smtp_server("accept", mail.path()).await;
    let dir = data_dir.path().display().to_string();
    let redis = redis_url();
    let mut env = HashMap::from([
        ("DATABASE_URL".to_owned(), db.url().to_owned()),
        ("PYAIRTABLE_DATA_DIR".to_owned(), dir.clone()),
        ("PYAIRTABLE_INTERNAL_SECRET".to_owned(), TEST_INTERNAL_SECRET.to_owned()),
        ("PYAIRTABLE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("PYAIRTABLE_LOG".to_owned(), "warn".to_owned()),
    ]);
    let permissions = Process::start(&["subgraph", "permissions"], &env, data_dir.path()).await;
    env.insert("PYAIRTABLE_PERMISSIONS_URL".into(), permissions.base_url.clone());
    env.insert("REDIS_URL".into(), redis);
    env.insert("SMTP_URL".into(), format!("smtp://127.0.0.1:{smtp_port}"));
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let (code, report, stderr) = run_capture(&["doctor"], &vars).await;
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    let checks = ["config", "postgresql", "migrations", "app role", "redis", "storage", "object store"];
    for check in checks.into_iter().chain(["smtp", "permissions"]) {
        assert_eq!(status(&report, check), "ok", "{report}");
    }
    assert!(line(&report, "object store").contains("local folder"), "{report}");
    assert!(line(&report, "migrations").contains("all "), "{report}");
    assert!(line(&report, "smtp").contains("no mail sent"), "{report}");
    assert_eq!(std::fs::read_dir(mail.path()).expect("mail dir").count(), 0, "doctor sends no mail");
    assert!(permissions.terminate().await.success());
}

#[tokio::test]
async fn each_broken_part_is_named_on_its_own_line() {
    let db = test_database().await;
    // One migration forgotten, one edited after it was applied.
    sqlx::query("delete from _sqlx_migrations where version = (select max(version) from _sqlx_migrations)")
        .execute(&db.pool)
        .await
        .expect("forget a migration");
    sqlx::query("update _sqlx_migrations set checksum = '\\x00' where version = (select min(version) from _sqlx_migrations)")
        .execute(&db.pool)
        .await
        .expect("alter a checksum");
    let not_a_dir = tempfile::NamedTempFile::new().expect("a file where the data dir should be");
    let (redis, smtp, permissions) = (free_port(), free_port(), free_port());
    let redis = format!("redis://:secret-password@127.0.0.1:{redis}");
    let smtp = format!("smtp://127.0.0.1:{smtp}");
    let permissions = format!("http://127.0.0.1:{permissions}");
    let dir = not_a_dir.path().display().to_string();
    let env = [
        ("DATABASE_URL", db.url()),
        ("REDIS_URL", redis.as_str()),
        ("SMTP_URL", smtp.as_str()),
        ("PYAIRTABLE_PERMISSIONS_URL", permissions.as_str()),
        ("PYAIRTABLE_DATA_DIR", dir.as_str()),
    ];
    let (code, report, _) = run_capture(&["doctor"], &env).await;
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(status(&report, "config"), "warn", "no internal secret: {report}");
    assert_eq!(status(&report, "postgresql"), "ok", "{report}");
    let migrations = line(&report, "migrations");
    assert!(migrations.starts_with("FAIL") && migrations.contains("1 pending"), "{report}");
    assert!(migrations.contains("changed since applied"), "{report}");
    for check in ["redis", "storage", "object store", "smtp", "permissions"] {
        assert_eq!(status(&report, check), "FAIL", "{check}: {report}");
    }
    assert!(!report.contains("secret-password"), "passwords stay out of the report: {report}");

    let (code, report, _) =
        run_capture(&["doctor"], &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/x")]).await;
    assert_eq!(code, Some(1));
    assert!(line(&report, "postgresql").starts_with("FAIL") && report.contains("127.0.0.1:1"), "{report}");

    let (code, report, _) = run_capture(&["doctor"], &[("PYAIRTABLE_LISTN", "0.0.0.0:1")]).await;
    assert_eq!(code, Some(1));
    assert!(line(&report, "config").contains("did you mean PYAIRTABLE_LISTEN?"), "{report}");
}

/// A moto S3 server on a free port (`auth`: it knows no access key, so it refuses every
/// signed request); killed when dropped. Creates `bucket` when given.
async fn moto(auth: bool, bucket: Option<&str>) -> (tokio::process::Child, String) {
    let port = free_port();
    let child = tokio::process::Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", if auth { "0" } else { "inf" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{endpoint}/moto-api/")).send().await {
            if let Some(bucket) = bucket {
                let created = http.put(format!("{endpoint}/{bucket}")).send().await.expect("create");
                assert!(created.status().is_success(), "creating the bucket: {}", created.status());
            }
            assert!(response.status().is_success(), "moto answers: {}", response.status());
            return (child, endpoint);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("moto's S3 server did not start within 20 s (python3 -m pip install 'moto[server]')");
}

/// The `object store` line of `pyairtable doctor` for `store` on the S3 server at `endpoint`.
async fn object_store_line(store: &str, endpoint: &str) -> String {
    let data_dir = tempfile::tempdir().expect("data dir");
    let dir = data_dir.path().display().to_string();
    let env = [
        ("PYAIRTABLE_DATA_DIR", dir.as_str()),
        ("PYAIRTABLE_OBJECT_STORE_URL", store),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    let (_, report, _) = run_capture(&["doctor"], &env).await;
    assert!(line(&report, "storage").contains("is writable"), "{report}");
    line(&report, "object store").to_owned()
}

#[tokio::test]
async fn the_s3_store_is_probed_and_each_failure_is_named() {
    let (_moto, endpoint) = moto(false, Some("doctor-bucket")).await;
    let ok = object_store_line("s3://doctor-bucket/some/prefix", &endpoint).await;
    assert!(ok.starts_with("ok") && ok.contains("s3://doctor-bucket at http://127.0.0.1"), "{ok}");
    assert!(ok.contains("probe object was written and deleted"), "{ok}");
    let listed = reqwest::get(format!("{endpoint}/doctor-bucket?list-type=2")).await.expect("list");
    assert!(!listed.text().await.expect("xml").contains("<Key>"), "the probe is gone");

    let missing = object_store_line("s3://no-such-bucket", &endpoint).await;
    assert!(
        missing.starts_with("FAIL") && missing.contains("\"no-such-bucket\" does not exist"),
        "{missing}"
    );

    let (_strict, strict) = moto(true, None).await;
    let refused = object_store_line("s3://doctor-bucket", &strict).await;
    assert!(refused.starts_with("FAIL"), "{refused}");
    assert!(refused.contains("refused the credentials (InvalidAccessKeyId)"), "{refused}");
    assert!(!refused.contains("testing"), "no secret in the report: {refused}");

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let unreachable = object_store_line("s3://doctor-bucket", &nobody).await;
    assert!(unreachable.starts_with("FAIL") && unreachable.contains("is unreachable"), "{unreachable}");
}
