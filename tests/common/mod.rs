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

/// The walking skeleton's scenario: two users sign up, one creates an organization and adds the
/// other, and the cross-subgraph query `organization { members { user { displayName } } }` runs
/// through the router.
pub async fn organization_scenario(router: &GraphQLClient) {
    let (_, ada_token, _) = sign_up(router, "ada@example.com", "Ada").await;
    let (bob, bob_token, _) = sign_up(router, "bob@example.com", "Bob").await;
    let ada = bearer(router, &ada_token);

    let create_org = "mutation { createOrganization(input: { name: \"Acme Corp\" }) { id slug } }";
    let org = ada.data(create_org, json!({})).await["createOrganization"].clone();
    assert_eq!(org["slug"], "acme-corp");
    let add = "mutation($org: ID!, $user: ID!) {
        addOrganizationMember(input: { organizationId: $org, userId: $user, role: MEMBER }) { role user { displayName } }
    }";
    let added = ada.data(add, json!({ "org": org["id"], "user": bob })).await;
    assert_eq!(added["addOrganizationMember"], json!({ "role": "MEMBER", "user": { "displayName": "Bob" } }));

    // Ada's session now acts in Acme: the new access token carries it as `tid`.
    let select = "mutation($o: ID!) { selectTenant(organizationId: $o) { accessToken } }";
    let tenant_token =
        ada.data(select, json!({ "o": org["id"] })).await["selectTenant"]["accessToken"].clone();
    let ada = bearer(router, tenant_token.as_str().expect("token"));
    let query = "query($id: ID!) { organization(id: $id) { name members { role user { displayName } } } }";
    let data = ada.data(query, json!({ "id": org["id"] })).await;
    assert_eq!(
        data,
        json!({ "organization": { "name": "Acme Corp", "members": [
            { "role": "OWNER", "user": { "displayName": "Ada" } },
            { "role": "MEMBER", "user": { "displayName": "Bob" } },
        ] } })
    );

    // And the other way round: users → tenants → users, as Bob.
    let query = "{ me { displayName organizations { slug members { user { displayName } } } } }";
    let data = bearer(router, &bob_token).data(query, json!({})).await;
    assert_eq!(
        data["me"],
        json!({ "displayName": "Bob", "organizations": [{ "slug": "acme-corp", "members": [
            { "user": { "displayName": "Ada" } }, { "user": { "displayName": "Bob" } },
        ] }] })
    );
    // Without a token, nothing but the public mutations.
    let (_, body) = router.send(query, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
}

/// The identity scenario of the auth issue, through the router: sign up → verify the email (read
/// from the outbox in `data_dir`) → log in → `me` → refresh → log out → the old token is refused.
pub async fn identity_scenario(router: &GraphQLClient, data_dir: &std::path::Path) {
    let (_, _, _) = sign_up(router, "grace@example.com", "Grace").await;
    let mails = pyairtable_kit::testing::outbox(&data_dir.join("outbox"));
    let mail = mails.iter().find(|m| m.to.contains("grace@example.com")).expect("a verification email");
    let at = mail.text.find("token=").expect("a link") + "token=".len();
    let link = mail.text[at..].split_whitespace().next().expect("token");
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
