//! Bad configuration stops the process at start with a message naming the variable.

mod common;

use common::run_to_exit;

/// Arguments, environment, and texts the error must contain.
type Case = (&'static [&'static str], &'static [(&'static str, &'static str)], &'static [&'static str]);

#[tokio::test]
async fn bad_variables_are_named_and_exit_with_code_2() {
    let cases: [Case; 6] = [
        (
            &["serve"],
            &[("PYAIRTABLE_LOG_FORMAT", "yaml")],
            &["PYAIRTABLE_LOG_FORMAT", "\"yaml\"", "json or pretty"],
        ),
        (
            &["serve"],
            &[("PYAIRTABLE_LISTN", "127.0.0.1:1")],
            &["PYAIRTABLE_LISTN", "did you mean PYAIRTABLE_LISTEN?"],
        ),
        (&["serve"], &[("PYAIRTABLE_LISTEN", "everywhere")], &["PYAIRTABLE_LISTEN", "everywhere"]),
        (&["serve"], &[("DATABASE_URL", "mysql://db/x")], &["DATABASE_URL", "not a PostgreSQL URL"]),
        (&["subgraph", "users"], &[], &["PYAIRTABLE_INTERNAL_SECRET", "required"]),
        (
            &["router"],
            &[("PYAIRTABLE_INTERNAL_SECRET", "short")],
            &["PYAIRTABLE_INTERNAL_SECRET", "too short"],
        ),
    ];
    for (args, env, expected) in cases {
        let (code, stderr) = run_to_exit(args, env).await;
        assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{args:?} {env:?}: {text:?} not in {stderr}");
        }
    }
}

#[tokio::test]
async fn unknown_subgraphs_and_unreachable_services_are_explained() {
    let secret = ("PYAIRTABLE_INTERNAL_SECRET", "0123456789abcdef0123456789abcdef");
    let (code, stderr) = run_to_exit(&["subgraph", "billing"], &[secret]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("unknown subgraph \"billing\"") && stderr.contains("users"), "{stderr}");

    let (code, stderr) = run_to_exit(&["router"], &[secret]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--subgraph"), "{stderr}");

    let db = ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    let (code, stderr) = run_to_exit(&["migrate"], &[db]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot connect to PostgreSQL at 127.0.0.1:1/none"), "{stderr}");
    assert!(!stderr.contains("nobody@"), "credentials must not be printed: {stderr}");
}
