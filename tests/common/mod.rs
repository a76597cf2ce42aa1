//! Helpers of the end-to-end tests: start the system (in this process or as child processes) and
//! speak GraphQL to it.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use pyairtable_kit::testing::GraphQLClient;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pyairtable");

/// A `pyairtable` child process, stopped with SIGTERM when dropped.
pub struct Process {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub stderr: tokio::task::JoinHandle<String>,
}

impl Process {
    /// Starts `pyairtable ARGS` with exactly `env` (plus PATH) in `cwd`, and waits until it
    /// prints the address it listens on.
    pub async fn start(args: &[&str], env: &HashMap<String, String>, cwd: &std::path::Path) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn pyairtable");
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut all = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        };
        let base_url = match tokio::time::timeout(Duration::from_secs(120), wait).await {
            Ok(Some(url)) => url,
            other => {
                let _ = child.start_kill();
                let log = stderr.await.unwrap_or_default();
                panic!("pyairtable {args:?} did not start ({other:?}); stderr:\n{log}");
            }
        };
        Self { child, base_url, stderr }
    }

    pub fn graphql(&self) -> GraphQLClient {
        GraphQLClient::new(format!("{}/graphql", self.base_url))
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running child");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid fits"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("exits within a minute of SIGTERM")
            .expect("exit status")
    }
}

/// Runs `pyairtable ARGS` to completion with exactly `env`; returns (exit code, stderr).
pub async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output).await.expect("exits").expect("runs");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The walking skeleton's scenario: two users, an organization with both as members, and the
/// cross-subgraph query `organization { members { user { displayName } } }` through the router.
pub async fn organization_scenario(router: &GraphQLClient) {
    let create_user = "mutation($email: String!, $name: String!) {
        createUser(input: { email: $email, displayName: $name }) { id }
    }";
    let ada = router.data(create_user, json!({ "email": "ada@example.com", "name": "Ada" })).await;
    let bob = router.data(create_user, json!({ "email": "bob@example.com", "name": "Bob" })).await;
    let (ada, bob) = (ada["createUser"]["id"].clone(), bob["createUser"]["id"].clone());

    let create_org = "mutation($owner: ID!) { createOrganization(input: { name: \"Acme Corp\", ownerId: $owner }) { id slug } }";
    let org = router.data(create_org, json!({ "owner": ada })).await["createOrganization"].clone();
    assert_eq!(org["slug"], "acme-corp");
    let add = "mutation($org: ID!, $user: ID!) {
        addOrganizationMember(input: { organizationId: $org, userId: $user, role: MEMBER }) { role user { displayName } }
    }";
    let added = router.data(add, json!({ "org": org["id"], "user": bob })).await;
    assert_eq!(added["addOrganizationMember"], json!({ "role": "MEMBER", "user": { "displayName": "Bob" } }));

    let query = "query($id: ID!) { organization(id: $id) { name members { role user { displayName } } } }";
    let data = router.data(query, json!({ "id": org["id"] })).await;
    assert_eq!(
        data,
        json!({ "organization": { "name": "Acme Corp", "members": [
            { "role": "OWNER", "user": { "displayName": "Ada" } },
            { "role": "MEMBER", "user": { "displayName": "Bob" } },
        ] } })
    );

    // And the other way round: users → tenants → users.
    let query = "query($id: ID!) { user(id: $id) { displayName organizations { slug members { user { displayName } } } } }";
    let data = router.data(query, json!({ "id": bob })).await;
    assert_eq!(
        data["user"],
        json!({ "displayName": "Bob", "organizations": [{ "slug": "acme-corp", "members": [
            { "user": { "displayName": "Ada" } }, { "user": { "displayName": "Bob" } },
        ] }] })
    );
}

/// The answer to `GET path`.
pub async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A value's `errors[0]`.
pub fn first_error(body: &Value) -> &Value {
    &body["errors"][0]
}
