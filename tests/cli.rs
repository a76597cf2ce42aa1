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
