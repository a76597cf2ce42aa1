//! Helpers of the end-to-end tests: start the system (in this process or as child processes) and
//! speak GraphQL to it.

#![allow(dead_code)] // each test binary uses its own subset

pub mod compose;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use pyairtable_kit::testing::GraphQLClient;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub mod matrix;
pub mod notifications;
pub mod socket;
pub mod topology;
pub mod webhooks;
pub mod websocket;

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
        self.send_sigterm();
        self.wait().await
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        let pid = self.child.id().expect("running child");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid fits"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
    }

    /// The exit status, waiting at most a minute.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("exits within a minute of SIGTERM")
            .expect("exit status")
    }

    /// SIGTERM; once it has exited cleanly, everything it wrote to stderr.
    pub async fn stop_and_read(mut self) -> String {
        self.send_sigterm();
        let status = self.wait().await;
        let log = self.stderr().await;
        assert!(status.success(), "exit status {status}:\n{log}");
        log
    }

    /// Everything the process wrote to stderr (once it has exited).
    pub async fn stderr(self) -> String {
        self.stderr.await.unwrap_or_default()
    }

    /// Waits until nothing accepts connections on the process's port any more (it stopped
    /// listening); panics after a minute.
    pub async fn wait_until_refusing(&self) {
        let addr = self.base_url.trim_start_matches("http://").to_owned();
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{addr} still accepts connections a minute after SIGTERM");
    }
}

/// Runs `pyairtable ARGS` to completion with exactly `env`; returns (exit code, stderr).
pub async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (code, _, stderr) = run_capture(args, env).await;
    (code, stderr)
}

/// Runs `pyairtable ARGS` to completion with exactly `env`; returns (exit code, stdout, stderr).
pub async fn run_capture(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output).await.expect("exits").expect("runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Signs up through the router; returns (user id, access token, refresh token).
pub async fn sign_up(router: &GraphQLClient, email: &str, name: &str) -> (Value, String, String) {
    let sign_up = "mutation($email: String!, $name: String!) {
        signUp(input: { email: $email, password: \"correct horse battery staple\", displayName: $name }) {
            user { id } tokens { accessToken refreshToken } } }";
    let data = router.data(sign_up, json!({ "email": email, "name": name })).await["signUp"].clone();
    let token = |k: &str| data["tokens"][k].as_str().expect("token").to_owned();
    (data["user"]["id"].clone(), token("accessToken"), token("refreshToken"))
}

/// The same client, calling with a bearer token.
pub fn bearer(router: &GraphQLClient, token: &str) -> GraphQLClient {
    router.clone().with_header("authorization", &format!("Bearer {token}"))
}

/// The link token of the newest mail to `to` in the outbox of `data_dir`, waiting until that is
/// one this test binary has not been handed yet: invitations are mailed in the background by
/// the notifications subgraph, after the mutation has answered.
pub async fn mailed_token(data_dir: &std::path::Path, to: &str) -> String {
    mailed_link_token(data_dir, to, "token=").await
}

/// The token of the newest invitation mailed to `to` not handed out yet, waiting for it.
pub async fn invitation_token(data_dir: &std::path::Path, to: &str) -> String {
    mailed_link_token(data_dir, to, "accept-invitation?token=").await
}

async fn mailed_link_token(data_dir: &std::path::Path, to: &str, marker: &str) -> String {
    static HANDED_OUT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..200 {
        let mails = pyairtable_kit::testing::outbox(&data_dir.join("outbox"));
        let tokens = mails.iter().rev().filter(|m| m.to.eq_ignore_ascii_case(to)).filter_map(|m| {
            let at = m.text.find(marker)? + marker.len();
            m.text[at..].split_whitespace().next().map(str::to_owned)
        });
        let newest = tokens.into_iter().next();
        if let Some(token) = newest.filter(|t| hand_out(&HANDED_OUT, t)) {
            return token;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no new mail with a link to {to}")
}

/// Records `token` as handed out; false when it already was.
fn hand_out(handed_out: &std::sync::Mutex<Vec<String>>, token: &str) -> bool {
    let mut handed_out = handed_out.lock().expect("lock");
    if handed_out.iter().any(|t| t == token) {
        return false;
    }
    handed_out.push(token.to_owned());
    true
}

/// The error code of a GraphQL answer.
pub async fn code(client: &GraphQLClient, query: &str, variables: Value) -> String {
    let (_, body) = client.send(query, variables).await;
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("an error: {body}")).to_owned()
}

/// The organization flow through the router: create an organization, invite by email (read from
/// the outbox), accept as a newly signed-up user, share a workspace, see it across subgraphs;
/// remove the member, and the next request is refused.
pub async fn organization_scenario(router: &GraphQLClient, data_dir: &std::path::Path) {
    let (ada_id, ada_token, _) = sign_up(router, "ada@example.com", "Ada").await;
    let ada = bearer(router, &ada_token);
    let create = "mutation { createOrganization(input: { name: \"Acme Corp\" }) {
        id slug members(first: 10) { totalCount edges { node { role user { displayName } } } } } }";
    let org = ada.data(create, json!({})).await["createOrganization"].clone();
    assert_eq!(org["slug"], "acme-corp");
    assert_eq!(
        org["members"],
        json!({ "totalCount": 1, "edges": [{ "node": { "role": "OWNER", "user": { "displayName": "Ada" } } }] })
    );
    let org_id = org["id"].clone();

    let invite = "mutation($o: ID!, $e: String!, $r: OrganizationRole!) {
        inviteMember(input: { organizationId: $o, email: $e, role: $r }) { id email role status } }";
    let invited = ada.data(invite, json!({ "o": org_id, "e": "Bob@Example.com", "r": "MEMBER" })).await;
    assert_eq!(invited["inviteMember"]["status"], "PENDING");
    assert_eq!(invited["inviteMember"]["email"], "bob@example.com");
    let token = invitation_token(data_dir, "bob@example.com").await;

    // Bob signs up afterwards; before accepting he sees nothing of Acme.
    let (bob_id, bob_token, _) = sign_up(router, "bob@example.com", "Bob").await;
    let bob = bearer(router, &bob_token);
    let read_org = "query($id: ID!) { organization(id: $id) { name
        members(first: 10) { edges { node { role user { displayName } } } } } }";
    assert_eq!(bob.data(read_org, json!({ "id": org_id })).await["organization"], Value::Null);
    let ada_profile = "query($id: ID!) { user(id: $id) { displayName } }";
    assert_eq!(bob.data(ada_profile, json!({ "id": ada_id })).await["user"], Value::Null);

    let accept = "mutation($t: String!) { acceptInvitation(token: $t) { id name } }";
    let accepted = bob.data(accept, json!({ "t": token })).await;
    assert_eq!(accepted["acceptInvitation"]["name"], "Acme Corp");
    assert_eq!(code(&bob, accept, json!({ "t": token })).await, "BAD_USER_INPUT", "an invitation works once");
    assert_eq!(
        bob.data(read_org, json!({ "id": org_id })).await["organization"],
        json!({ "name": "Acme Corp", "members": { "edges": [
            { "node": { "role": "OWNER", "user": { "displayName": "Ada" } } },
            { "node": { "role": "MEMBER", "user": { "displayName": "Bob" } } },
        ] } })
    );
    assert_eq!(bob.data(ada_profile, json!({ "id": ada_id })).await["user"]["displayName"], "Ada");

    // A workspace: Bob, a plain member, does not see it until he is given a role on it.
    let create_ws =
        "mutation($o: ID!) { createWorkspace(organizationId: $o, name: \"Roadmap\") { id name } }";
    let ws = ada.data(create_ws, json!({ "o": org_id })).await["createWorkspace"].clone();
    let read_ws = "query($id: ID!) { workspace(id: $id) { name organization { name }
        collaborators(first: 10) { totalCount edges { node { role directRole user { displayName } } } } } }";
    assert_eq!(bob.data(read_ws, json!({ "id": ws["id"] })).await["workspace"], Value::Null);
    let grant = "mutation($u: ID!, $w: ID!) {
        grantWorkspaceRole(input: { userId: $u, workspaceId: $w, role: EDITOR }) { role } }";
    let granted = ada.data(grant, json!({ "u": bob_id, "w": ws["id"] })).await;
    assert_eq!(granted["grantWorkspaceRole"]["role"], "EDITOR");
    let seen = bob.data(read_ws, json!({ "id": ws["id"] })).await["workspace"].clone();
    assert_eq!(seen["organization"]["name"], "Acme Corp");
    assert_eq!(
        seen["collaborators"],
        json!({ "totalCount": 2, "edges": [
            { "node": { "role": "OWNER", "directRole": "OWNER", "user": { "displayName": "Ada" } } },
            { "node": { "role": "EDITOR", "directRole": "EDITOR", "user": { "displayName": "Bob" } } },
        ] })
    );
    let mine =
        "query($w: ID!) { myPermissions(resource: { type: WORKSPACE, id: $w }) { workspaceRole actions } }";
    let perms = bob.data(mine, json!({ "w": ws["id"] })).await["myPermissions"].clone();
    assert_eq!(perms["workspaceRole"], "EDITOR");
    let actions: Vec<&str> =
        perms["actions"].as_array().expect("actions").iter().filter_map(Value::as_str).collect();
    assert!(actions.contains(&"edit") && !actions.contains(&"delete"), "{actions:?}");
    let delete_ws = "mutation($w: ID!) { deleteWorkspace(workspaceId: $w) }";
    assert_eq!(code(&bob, delete_ws, json!({ "w": ws["id"] })).await, "FORBIDDEN");
    assert_eq!(
        code(&bob, invite, json!({ "o": org_id, "e": "eve@example.com", "r": "ADMIN" })).await,
        "FORBIDDEN"
    );

    // users → permissions → tenants → workspaces, as Bob.
    let tree = "{ me { displayName organizations(first: 5) { edges { node { slug
        workspaces(first: 5) { edges { node { name } } } } } } workspaces { totalCount } } }";
    assert_eq!(
        bob.data(tree, json!({})).await["me"],
        json!({ "displayName": "Bob", "organizations": { "edges": [{ "node": { "slug": "acme-corp",
            "workspaces": { "edges": [{ "node": { "name": "Roadmap" } }] } } }] },
            "workspaces": { "totalCount": 1 } })
    );

    // The last owner stays; removing Bob takes effect on his next request.
    let leave = "mutation($o: ID!) { leaveOrganization(organizationId: $o) }";
    assert_eq!(code(&ada, leave, json!({ "o": org_id })).await, "CONFLICT");
    let remove = "mutation($o: ID!, $u: ID!) { removeMember(input: { organizationId: $o, userId: $u }) }";
    assert_eq!(ada.data(remove, json!({ "o": org_id, "u": bob_id })).await["removeMember"], true);
    assert_eq!(bob.data(read_org, json!({ "id": org_id })).await["organization"], Value::Null);
    assert_eq!(bob.data(read_ws, json!({ "id": ws["id"] })).await["workspace"], Value::Null);
    assert_eq!(code(&bob, mine, json!({ "w": ws["id"] })).await, "NOT_FOUND");
    assert_eq!(bob.data(ada_profile, json!({ "id": ada_id })).await["user"], Value::Null);

    // Without a token, nothing but the public mutations.
    let (_, body) = router.send(tree, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
}

/// The identity scenario of the auth issue, through the router: sign up → verify the email (read
/// from the outbox in `data_dir`) → log in → `me` → refresh → log out → the old token is refused.
pub async fn identity_scenario(router: &GraphQLClient, data_dir: &std::path::Path) {
    let (_, _, _) = sign_up(router, "grace@example.com", "Grace").await;
    let link = mailed_token(data_dir, "grace@example.com").await;
    let verified =
        router.data("mutation($t: String!) { verifyEmail(token: $t) }", json!({ "t": link })).await;
    assert_eq!(verified["verifyEmail"], true);

    let log_in = "mutation { logIn(input: { email: \"grace@example.com\", password: \"correct horse battery staple\" }) {
        tokens { accessToken refreshToken } } }";
    let tokens = router.data(log_in, json!({})).await["logIn"]["tokens"].clone();
    let access = tokens["accessToken"].as_str().expect("access").to_owned();
    let me = bearer(router, &access);
    let data = me.data("{ me { displayName emailVerified } }", json!({})).await;
    assert_eq!(data["me"], json!({ "displayName": "Grace", "emailVerified": true }));

    let refresh = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";
    let refreshed =
        router.data(refresh, json!({ "t": tokens["refreshToken"] })).await["refreshSession"].clone();
    let access = refreshed["accessToken"].as_str().expect("access").to_owned();
    let me = bearer(router, &access);
    assert_eq!(me.data("{ me { displayName } }", json!({})).await["me"]["displayName"], "Grace");

    // A personal access token works as a bearer token too (revoked, it stops within the 30 s the
    // router caches key answers).
    let create =
        "mutation { createApiKey(input: { name: \"script\", scopes: [\"read\"] }) { secret apiKey { id } } }";
    let key = me.data(create, json!({})).await["createApiKey"].clone();
    let pat = bearer(router, key["secret"].as_str().expect("secret"));
    assert_eq!(pat.data("{ me { displayName } }", json!({})).await["me"]["displayName"], "Grace");
    let revoke = "mutation($id: ID!) { revokeApiKey(id: $id) }";
    assert_eq!(me.data(revoke, json!({ "id": key["apiKey"]["id"] })).await["revokeApiKey"], true);

    assert_eq!(me.data("mutation { logOut }", json!({})).await["logOut"], true);
    let (status, body) = me.send("{ me { displayName } }", json!({})).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (401, &json!("UNAUTHENTICATED")),
        "{body}"
    );
    let (_, body) = router.send(refresh, json!({ "t": refreshed["refreshToken"] })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    let (status, _) = bearer(router, "not.a.jwt").send("{ __typename }", json!({})).await;
    assert_eq!(status, 401);
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
