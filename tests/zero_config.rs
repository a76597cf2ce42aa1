//! `pyairtable serve` with no configuration at all: it runs its own PostgreSQL cluster under
//! `./data/pg`, serves the whole supergraph, and stops the cluster when it stops.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Process, organization_scenario};
use serde_json::json;

fn postmaster_pid(dir: &std::path::Path) -> Option<i32> {
    let text = std::fs::read_to_string(dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Alive and not a zombie waiting for its (new) parent to reap it.
fn alive(pid: i32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && !zombie
}

#[tokio::test]
async fn serve_with_no_configuration_runs_and_stops_its_own_postgresql() {
    let work = tempfile::tempdir().expect("temp dir");
    // The server may run as the `postgres` user (when tests run as root): let it in.
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Nothing but the listen address (port 0: a free one); no DATABASE_URL, no REDIS_URL.
    let env = HashMap::from([("PYAIRTABLE_LISTEN".to_owned(), "127.0.0.1:0".to_owned())]);

    let server = Process::start(&["serve"], &env, work.path()).await;
    let cluster = work.path().join("data/pg");
    assert!(cluster.join("PG_VERSION").exists(), "the cluster lives under ./data/pg");
    let pg_pid = postmaster_pid(&cluster).expect("a running server");
    assert!(alive(pg_pid));

    organization_scenario(&server.graphql(), &work.path().join("data")).await;
    let (status, body) = common::get(&format!("{}/readyz", server.base_url)).await;
    assert_eq!(status, 200, "{body}");

    let status = server.terminate().await;
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pg_pid) {
        assert!(Instant::now() < deadline, "PostgreSQL (pid {pg_pid}) outlived pyairtable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(postmaster_pid(&cluster).is_none(), "a clean shutdown removes postmaster.pid");

    // A second start finds the data of the first (and the same signing keys).
    let server = Process::start(&["serve"], &env, work.path()).await;
    let router = server.graphql();
    let log_in = "mutation { logIn(input: { email: \"ada@example.com\", password: \"correct horse battery staple\" }) {
        tokens { accessToken } } }";
    let token = router.data(log_in, json!({})).await["logIn"]["tokens"]["accessToken"].clone();
    let ada = common::bearer(&router, token.as_str().expect("token"));
    let data = ada
        .data(
            "{ organizationBySlug(slug: \"acme-corp\") { name members { edges { node { user { displayName } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data,
        json!({ "organizationBySlug": { "name": "Acme Corp", "members": { "edges": [
            { "node": { "user": { "displayName": "Ada" } } }
        ] } } })
    );
    assert!(server.terminate().await.success());
}
