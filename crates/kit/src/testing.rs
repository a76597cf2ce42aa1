//! Test helpers: a fresh, migrated database per test on real PostgreSQL.
//!
//! The server is `PYAIRTABLE_TEST_DATABASE_URL` when set; otherwise a private cluster that the helper
//! starts itself (shared by every test process of the machine, under the temp dir, left running for
//! the next run). Nothing is skipped: when neither works, the test fails and says why.

use std::str::FromStr;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::db;

/// The variable naming the PostgreSQL server tests create their databases on.
pub const TEST_DATABASE_URL: &str = "PYAIRTABLE_TEST_DATABASE_URL";
/// The variable naming the Redis server tests use (default `redis://127.0.0.1:6379`).
pub const TEST_REDIS_URL: &str = "PYAIRTABLE_TEST_REDIS_URL";

/// A database created for one test (clones name the same database).
#[derive(Clone)]
pub struct TestDatabase {
    pub pool: PgPool,
    pub name: String,
    url: String,
}

impl TestDatabase {
    /// A URL for this database, for child processes (`DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Creates a new database with every migration applied.
pub async fn test_database() -> TestDatabase {
    let (server_url, admin) = server().await;
    let name = format!("pt_{}_{}", chrono::Utc::now().timestamp(), uuid::Uuid::new_v4().simple());
    let admin_pool = db::connect(admin.clone(), 1).await.expect("connect to the test PostgreSQL server");
    drop_stale_databases(&admin_pool).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
        .execute(&admin_pool)
        .await
        .expect("create the test database");
    admin_pool.close().await;
    let pool = db::connect(admin.database(&name), 5).await.expect("connect to the test database");
    db::migrate(&pool).await.expect("migrate the test database");
    TestDatabase { pool, url: with_database(&server_url, &name), name }
}

/// The Redis URL tests use.
pub fn redis_url() -> String {
    std::env::var(TEST_REDIS_URL).unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The server's URL and admin connection options.
async fn server() -> (String, PgConnectOptions) {
    if let Ok(url) = std::env::var(TEST_DATABASE_URL) {
        let options = PgConnectOptions::from_str(&url)
            .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} is not a PostgreSQL URL: {e}"));
        return (url, options);
    }
    private_server().await
}

/// The server tests use when `PYAIRTABLE_TEST_DATABASE_URL` is unset: one private cluster per
/// user in the temporary directory, started by the first test that needs it and shared by every
/// test process after it (it keeps running, with durability off, for the next run).
pub async fn private_server() -> (String, PgConnectOptions) {
    let uid = nix::unistd::Uid::effective();
    let dir = std::env::temp_dir().join(format!("pyairtable-test-pg-{uid}"));
    let options = crate::pg::start_shared(&dir)
        .await
        .unwrap_or_else(|e| panic!("no {TEST_DATABASE_URL} and the private test cluster did not start: {e}"));
    let socket = options.get_socket().map(|p| p.display().to_string()).unwrap_or_default();
    let url = format!("postgres://{}@localhost/postgres?host={socket}", options.get_username());
    (url, options)
}

/// Replaces the database of `url` with `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Databases of earlier runs, more than a day old, are dropped (best effort: one may be in use).
async fn drop_stale_databases(admin: &PgPool) {
    let cutoff = chrono::Utc::now().timestamp() - 86_400;
    let names: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where datname like 'pt\\_%'")
            .fetch_all(admin)
            .await
            .unwrap_or_default();
    for name in names {
        let stamp = name.split('_').nth(1).and_then(|s| s.parse::<i64>().ok());
        if stamp.is_some_and(|s| s < cutoff) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("drop database if exists \"{name}\"")))
                .execute(admin)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(with_database("postgres://u:p@h:5432/postgres", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_database("postgres://postgres@localhost/postgres?host=/tmp/s", "x"),
            "postgres://postgres@localhost/x?host=/tmp/s"
        );
    }
}

/// A server running on a random local port for the length of a test.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    lifecycle: crate::Lifecycle,
}

impl TestServer {
    /// `http://127.0.0.1:PORT/graphql`
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.lifecycle.stop(crate::StopReason::GoingAway);
    }
}

/// Serves `app` on 127.0.0.1, on a port the system picks.
pub async fn spawn_app(app: axum::Router) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    let lifecycle = crate::Lifecycle::new(std::time::Duration::from_secs(5));
    let serving = lifecycle.clone();
    tokio::spawn(async move { crate::http::serve(listener, app, &serving).await });
    TestServer { addr, lifecycle }
}

/// A GraphQL-over-HTTP client for tests.
#[derive(Clone)]
pub struct GraphQLClient {
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
}

impl GraphQLClient {
    pub fn new(url: impl Into<String>) -> Self {
        Self { http: reqwest::Client::new(), url: url.into(), headers: Vec::new() }
    }

    /// The same client, sending `name: value` on every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends an operation; returns the HTTP status and the JSON body.
    pub async fn send(&self, query: &str, variables: serde_json::Value) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/graphql-response+json")
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("a JSON body");
        (status, body)
    }

    /// Sends an operation that must succeed; returns its `data`.
    pub async fn data(&self, query: &str, variables: serde_json::Value) -> serde_json::Value {
        let (status, body) = self.send(query, variables).await;
        assert!(status == 200 && body.get("errors").is_none(), "{query}\n→ HTTP {status}: {body:#}");
        body["data"].clone()
    }

    /// Sends an operation that must fail; returns its first error's `extensions.code`.
    pub async fn error_code(&self, query: &str, variables: serde_json::Value) -> String {
        let (_, body) = self.send(query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{query}\n→ no error code in {body:#}"))
            .to_owned()
    }
}

/// A subgraph served on its own on a random port, over a fresh database, as in production.
pub struct SubgraphHarness {
    pub server: TestServer,
    pub db: TestDatabase,
    pub key: crate::IdentityKey,
    pub kit: std::sync::Arc<crate::Kit>,
    /// `kit.config.data_dir`, removed with the harness.
    _data_dir: tempfile::TempDir,
}

/// The internal secret test harnesses share with the services they start.
pub const TEST_INTERNAL_SECRET: &str = "test-internal-secret-test-internal-secret";

impl SubgraphHarness {
    /// Builds the subgraph with `build` and serves it.
    pub async fn start(build: fn(&crate::Kit) -> crate::Subgraph) -> Self {
        Self::start_after(&[], build).await
    }

    /// Builds `before` on the same kit first (as `serve` does: the permissions subgraph hands the
    /// kit its engine, so the subgraph under test decides in process), then serves `build`.
    pub async fn start_after(
        before: &[fn(&crate::Kit) -> crate::Subgraph],
        build: fn(&crate::Kit) -> crate::Subgraph,
    ) -> Self {
        Self::start_on(test_database().await, &[], before, build).await
    }

    /// As [`SubgraphHarness::start_after`], on `db` (several harnesses may share one database,
    /// as replicas do) with `extra` variables (`REDIS_URL`, ...).
    pub async fn start_on(
        db: TestDatabase,
        extra: &[(&str, &str)],
        before: &[fn(&crate::Kit) -> crate::Subgraph],
        build: fn(&crate::Kit) -> crate::Subgraph,
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("a data dir");
        let mut vars = vec![
            ("DATABASE_URL".to_owned(), db.url().to_owned()),
            ("PYAIRTABLE_DATA_DIR".to_owned(), data_dir.path().display().to_string()),
            ("PYAIRTABLE_INTERNAL_SECRET".to_owned(), TEST_INTERNAL_SECRET.to_owned()),
        ];
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = crate::Config::from_vars(vars).expect("test configuration");
        let kit = std::sync::Arc::new(crate::Kit::start(config).await.expect("kit starts"));
        let key = crate::IdentityKey::new(&crate::Secret::new(TEST_INTERNAL_SECRET));
        for dependency in before {
            dependency(&kit);
        }
        let subgraph = build(&kit);
        let server = spawn_app(crate::subgraph::http_app(&subgraph, key.clone(), kit.ready_check())).await;
        Self { server, db, key, kit, _data_dir: data_dir }
    }

    /// Publishes an event as another subgraph would, then has the authorizer apply what it
    /// changes (as subgraphs do after committing such an event).
    pub async fn publish(&self, topic: &str, payload: serde_json::Value) {
        let mut tx = self.kit.db.begin().await.expect("begin");
        crate::events::publish(&mut tx, topic, &payload).await.expect("publish");
        tx.commit().await.expect("commit");
        self.kit.authorizer().sync().await.expect("the authorizer applies it");
    }

    /// A client that calls as `caller`, with the router's signed identity header.
    pub fn client(&self, caller: &crate::Caller) -> GraphQLClient {
        let header = self.key.sign(caller, chrono::Utc::now().timestamp());
        GraphQLClient::new(self.server.graphql_url()).with_header(crate::identity::IDENTITY_HEADER, &header)
    }
}

/// A message the outbox mailer wrote, read back.
#[derive(Debug, Clone)]
pub struct SentEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The messages in an outbox folder, oldest first (an absent folder holds none).
pub fn outbox(dir: &std::path::Path) -> Vec<SentEmail> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let raw = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let message = mail_parser::MessageParser::default()
                .parse(&raw)
                .unwrap_or_else(|| panic!("{} is not a message", path.display()));
            let to = message
                .to()
                .and_then(|to| to.first())
                .and_then(|addr| addr.address())
                .unwrap_or_default()
                .to_owned();
            SentEmail {
                to,
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                html: message.body_html(0).map(|t| t.into_owned()).filter(|_| message.html_body_count() > 0),
            }
        })
        .collect()
}

/// A free local port (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A real SMTP server (Python's aiosmtpd, `tests/support/smtp_server.py`) on a free port:
/// `accept` writes each message to `out` as `<n>.eml`, `refuse` refuses every recipient. Killed
/// when the child is dropped.
pub async fn smtp_server(mode: &str, out: &std::path::Path) -> (tokio::process::Child, u16) {
    use tokio::io::AsyncBufReadExt;
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
    let mut child = tokio::process::Command::new("python3")
        .args([script, &port.to_string(), mode, &out.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line()).await;
    let line =
        ready.expect("the SMTP server starts (is aiosmtpd installed? .ci/run installs it)").expect("reads");
    assert_eq!(line.as_deref(), Some("ready"), "the SMTP server did not start (pip install aiosmtpd)");
    (child, port)
}
