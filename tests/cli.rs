//! The one-shot commands: `migrate` and `rotate-keys`, against a real database.

mod common;

use common::run_to_exit;
use pyairtable_kit::testing::test_database;

#[tokio::test]
async fn migrate_and_rotate_keys_do_their_job_and_exit() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let dir = data_dir.path().display().to_string();
    let env = [("DATABASE_URL", db.url()), ("PYAIRTABLE_DATA_DIR", dir.as_str())];
    let (code, stderr) = run_to_exit(&["migrate"], &env).await;
    assert_eq!(code, Some(0), "{stderr}");

    let (code, stderr) = run_to_exit(&["rotate-keys"], &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    let states: Vec<String> =
        sqlx::query_scalar("select state from auth.signing_keys order by created_at, state")
            .fetch_all(&db.pool)
            .await
            .expect("keys");
    // The first use creates a current and a next key; the rotation moves them one step.
    assert_eq!(states.iter().filter(|s| *s == "previous").count(), 1, "{states:?}");
    assert_eq!(states.iter().filter(|s| *s == "current").count(), 1, "{states:?}");
    assert_eq!(states.iter().filter(|s| *s == "next").count(), 1, "{states:?}");

    let (code, stderr) =
        run_to_exit(&["rotate-keys"], &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/x")]).await;
    assert_eq!(code, Some(1), "an unreachable database fails: {stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
}

/// The grace period bounds the shutdown: a request that never completes (its body never arrives)
/// does not keep the process alive; it exits 1 and says what it cut.
#[tokio::test]
async fn the_grace_period_bounds_the_shutdown() {
    use tokio::io::AsyncWriteExt;
    let supergraph = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/supergraph.graphql");
    let env = std::collections::HashMap::from([
        ("PYAIRTABLE_INTERNAL_SECRET".to_owned(), pyairtable_kit::testing::TEST_INTERNAL_SECRET.to_owned()),
        ("PYAIRTABLE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("PYAIRTABLE_SHUTDOWN_GRACE_SECONDS".to_owned(), "1".to_owned()),
        ("PYAIRTABLE_LOG".to_owned(), "warn".to_owned()),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let mut router = common::Process::start(&["router", "--supergraph", supergraph], &env, dir.path()).await;
    let addr = router.base_url.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let head =
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
    stalled.write_all(head.as_bytes()).await.expect("a request without its body");
    let metrics = format!("{}/metrics", router.base_url);
    let mut held = false;
    for _ in 0..600 {
        let (_, text) = common::get(&metrics).await;
        // The scrape counts itself: 2 means the stalled request is in the router's hands.
        held = text.contains("http_requests_in_flight{service=\"router\"} 2");
        if held {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(held, "the stalled request never reached the router");
    router.send_sigterm();
    let status = router.wait().await;
    let log = router.stderr().await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("the grace period (1 s) ended with 1 request(s)"), "{log}");
    drop(stalled);
}
