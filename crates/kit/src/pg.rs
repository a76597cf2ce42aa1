//! A private PostgreSQL cluster run from the machine's PostgreSQL binaries, for zero-configuration
//! use (`pyairtable serve` with no `DATABASE_URL`) and for tests on machines without a server.
//!
//! Layout of the cluster directory (`./data/pg` by default):
//! - the cluster itself (`PG_VERSION`, `postmaster.pid`, ...), made by `initdb` on first start;
//! - `run/`: the Unix socket (no TCP port is opened), mode 0700;
//! - `postgres.log`: the server's output.
//!
//! PostgreSQL refuses to run as root; when this process is root, the server runs as the `postgres`
//! user and the cluster directory belongs to it.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::process::{Child, Command};

/// The port number only names the socket file: the server listens on no TCP address.
const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes on Linux (104 on macOS): keep socket paths well under.
const MAX_SOCKET_PATH: usize = 100;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the private cluster could not be found, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error(
        "no PostgreSQL server binaries found (looked for `initdb` and `postgres` in: {searched}). \
         Install PostgreSQL 13 or newer (Debian/Ubuntu: `apt install postgresql`; Fedora: \
         `dnf install postgresql-server`; macOS: `brew install postgresql`), or set DATABASE_URL \
         to use a server you already run"
    )]
    NotInstalled { searched: String },
    #[error(
        "this process runs as root and PostgreSQL refuses to run as root, but there is no `postgres` \
         user to run it as; run pyairtable as another user, or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error(
        "the PostgreSQL server runs as user `postgres` (it refuses to run as root) and cannot enter \
         {dir} (mode {mode:o}); set PYAIRTABLE_DATA_DIR to a directory outside it (for example \
         /var/lib/pyairtable), or run pyairtable as another user"
    )]
    Unreachable { dir: PathBuf, mode: u32 },
    #[error(
        "the PostgreSQL cluster in {dir} is in use by another process (server pid {pid}); is another \
         pyairtable running with the same data directory? Stop it, or set PYAIRTABLE_DATA_DIR"
    )]
    InUse { dir: PathBuf, pid: i32 },
    #[error(
        "{dir} exists but is not a PostgreSQL cluster (no PG_VERSION); move it away or choose another PYAIRTABLE_DATA_DIR"
    )]
    NotACluster { dir: PathBuf },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{program} failed ({status}):\n{output}")]
    Command { program: String, status: String, output: String },
    #[error("PostgreSQL did not start within {seconds} s; the end of {log}:\n{tail}")]
    DidNotStart { seconds: u64, log: PathBuf, tail: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedPgError {
    let what = what.into();
    move |source| EmbeddedPgError::Io { what, source }
}

/// Where PostgreSQL's server binaries are looked for.
#[derive(Debug, Clone)]
pub struct BinSearch {
    /// `pg_config`, asked for `--bindir`.
    pub pg_config: PathBuf,
    /// Folders holding one folder per major version, each with a `bin/` (Debian's layout).
    pub versioned_roots: Vec<PathBuf>,
    /// Folders tried as they are.
    pub fixed: Vec<PathBuf>,
    /// A `PATH`-style list, searched last.
    pub path: Option<OsString>,
}

impl Default for BinSearch {
    fn default() -> Self {
        Self {
            pg_config: "pg_config".into(),
            versioned_roots: vec!["/usr/lib/postgresql".into(), "/usr/pgsql".into()],
            fixed: vec![
                "/usr/local/pgsql/bin".into(),
                "/opt/homebrew/opt/postgresql/bin".into(),
                "/usr/local/opt/postgresql/bin".into(),
            ],
            path: std::env::var_os("PATH"),
        }
    }
}

impl BinSearch {
    /// The first folder holding both `initdb` and `postgres`.
    pub fn find(&self) -> Result<PathBuf, EmbeddedPgError> {
        let mut searched = Vec::new();
        let mut candidates = Vec::new();
        if let Ok(out) = std::process::Command::new(&self.pg_config).arg("--bindir").output()
            && out.status.success()
        {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        } else {
            searched.push(format!("`{} --bindir`", self.pg_config.display()));
        }
        for root in &self.versioned_roots {
            let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(root)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let version = name.split('.').map(str::parse).collect::<Result<Vec<u32>, _>>().ok()?;
                    Some((version, entry.path().join("bin")))
                })
                .collect();
            versions.sort();
            if versions.is_empty() {
                searched.push(format!("{}/*/bin", root.display()));
            }
            candidates.extend(versions.into_iter().rev().map(|(_, bin)| bin));
        }
        candidates.extend(self.fixed.iter().cloned());
        if let Some(path) = &self.path {
            candidates.extend(std::env::split_paths(path));
        }
        for dir in candidates {
            if is_executable(&dir.join("initdb")) && is_executable(&dir.join("postgres")) {
                return Ok(dir);
            }
            searched.push(dir.display().to_string());
        }
        searched.dedup();
        Err(EmbeddedPgError::NotInstalled { searched: searched.join(", ") })
    }
}

/// The folder of the machine's PostgreSQL server binaries.
pub fn find_bindir() -> Result<PathBuf, EmbeddedPgError> {
    BinSearch::default().find()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The user the server runs as: `None` means this process's own user.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>, EmbeddedPgError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(RunAs { uid: user.uid.as_raw(), gid: user.gid.as_raw() })),
        _ => Err(EmbeddedPgError::NoPostgresUser),
    }
}

/// Every ancestor of `dir` must be enterable by the user the server runs as.
fn check_reachable(dir: &Path, user: RunAs) -> Result<(), EmbeddedPgError> {
    let groups = nix::unistd::User::from_uid(user.uid.into())
        .ok()
        .flatten()
        .and_then(|u| {
            let name = std::ffi::CString::new(u.name).ok()?;
            nix::unistd::getgrouplist(&name, user.gid.into()).ok()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.as_raw())
        .chain([user.gid])
        .collect::<Vec<_>>();
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(ancestor) else { continue };
        let mode = meta.mode();
        let can_enter = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if groups.contains(&meta.gid()) {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can_enter {
            return Err(EmbeddedPgError::Unreachable { dir: ancestor.to_path_buf(), mode: mode & 0o7777 });
        }
    }
    Ok(())
}

/// The cluster's paths and the binaries that run it.
#[derive(Debug, Clone)]
struct Cluster {
    dir: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    bindir: PathBuf,
    run_as: Option<RunAs>,
}

impl Cluster {
    fn new(data_dir: &Path) -> Result<Self, EmbeddedPgError> {
        let bindir = find_bindir()?;
        let run_as = run_as()?;
        fs::create_dir_all(data_dir).map_err(io_err(format!("creating {}", data_dir.display())))?;
        let dir = data_dir.canonicalize().map_err(io_err(format!("resolving {}", data_dir.display())))?;
        if let Some(user) = run_as {
            check_reachable(&dir, user)?;
        }
        let socket_dir = socket_dir_for(&dir);
        let log = dir.join("postgres.log");
        Ok(Self { dir, socket_dir, log, bindir, run_as })
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bindir.join(program));
        if let Some(user) = self.run_as {
            command.uid(user.uid).gid(user.gid);
        }
        // Away from the terminal's process group: Ctrl-C reaches pyairtable, which stops the
        // server once its own connections are drained.
        command.process_group(0).stdin(Stdio::null()).env("LC_ALL", "C").env_remove("PGDATA");
        command
    }

    fn own(&self, path: &Path) -> Result<(), EmbeddedPgError> {
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .map_err(io_err(format!("giving {} to the postgres user", path.display())))?;
        }
        Ok(())
    }

    /// Runs `initdb` unless the cluster exists.
    async fn init(&self) -> Result<(), EmbeddedPgError> {
        if self.dir.join("PG_VERSION").exists() {
            return Ok(());
        }
        let leftovers = fs::read_dir(&self.dir)
            .map_err(io_err(format!("reading {}", self.dir.display())))?
            .flatten()
            .any(|e| !matches!(e.file_name().to_str(), Some("run" | "postgres.log")));
        if leftovers {
            return Err(EmbeddedPgError::NotACluster { dir: self.dir.clone() });
        }
        // initdb wants an empty folder.
        for name in ["run", "postgres.log"] {
            let path = self.dir.join(name);
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
        self.own(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), "creating a private PostgreSQL cluster");
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.dir)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions"])
            .output()
            .await
            .map_err(io_err("running initdb"))?;
        if !out.status.success() {
            return Err(EmbeddedPgError::Command {
                program: "initdb".into(),
                status: out.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(())
    }

    fn prepare_socket_dir(&self) -> Result<(), EmbeddedPgError> {
        let what = || format!("creating the socket folder {}", self.socket_dir.display());
        fs::create_dir_all(&self.socket_dir).map_err(io_err(what()))?;
        fs::set_permissions(&self.socket_dir, fs::Permissions::from_mode(0o700)).map_err(io_err(what()))?;
        self.own(&self.socket_dir)
    }

    fn server_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["-D".into(), self.dir.clone().into(), "-k".into()];
        args.push(self.socket_dir.clone().into());
        for setting in [
            "listen_addresses=",
            "unix_socket_permissions=0700",
            "max_connections=200",
            "log_min_messages=warning",
        ] {
            args.extend(["-c".into(), setting.into()]);
        }
        args.extend(["-p".into(), PORT.to_string().into()]);
        args
    }

    fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new().socket(&self.socket_dir).port(PORT).username("postgres").database("postgres")
    }

    /// The pid in `postmaster.pid` when that process is alive.
    fn running_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.dir.join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        let zombie = proc_stat(pid).is_some_and(|(state, _)| state == 'Z');
        let alive = kill(Pid::from_raw(pid), None).is_ok() && !zombie;
        let is_postgres = fs::read_to_string(format!("/proc/{pid}/comm"))
            .map_or(!Path::new("/proc/self").exists(), |comm| comm.trim().starts_with("postgres"));
        (alive && is_postgres).then_some(pid)
    }

    /// Stops a server left behind by a process that died, with `pg_ctl stop`.
    async fn stop_detached(&self) -> Result<(), EmbeddedPgError> {
        let out = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "fast", "-w", "-t", "30"])
            .output()
            .await
            .map_err(io_err("running pg_ctl stop"))?;
        if !out.status.success() && self.running_pid().is_some() {
            return Err(EmbeddedPgError::Command {
                program: "pg_ctl stop".into(),
                status: out.status.to_string(),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(())
    }

    fn log_file(&self) -> Result<fs::File, EmbeddedPgError> {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io_err(format!("opening {}", self.log.display())))
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until the server accepts connections; `exited` reports a server that died.
    async fn wait_ready(
        &self,
        mut exited: impl FnMut() -> Option<ExitStatus>,
    ) -> Result<(), EmbeddedPgError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.connect_options().connect().await.is_ok() {
                return Ok(());
            }
            if let Some(status) = exited() {
                return Err(EmbeddedPgError::Command {
                    program: "postgres".into(),
                    status: status.to_string(),
                    output: self.log_tail(),
                });
            }
            if Instant::now() > deadline {
                return Err(EmbeddedPgError::DidNotStart {
                    seconds: START_TIMEOUT.as_secs(),
                    log: self.log.clone(),
                    tail: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `<cluster>/run`, or a folder in the temporary directory named after the cluster when that path
/// would be too long for a Unix socket.
fn socket_dir_for(dir: &Path) -> PathBuf {
    let inside = dir.join("run");
    let socket_len = inside.as_os_str().len() + format!("/.s.PGSQL.{PORT}").len();
    if socket_len <= MAX_SOCKET_PATH {
        return inside;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("pyairtable-pg-{short}"))
}

/// A PostgreSQL server this process started and stops.
pub struct EmbeddedPostgres {
    cluster: Cluster,
    child: Option<Child>,
}

impl EmbeddedPostgres {
    /// Starts the cluster in `data_dir`, creating it on first use. A server left running by a
    /// pyairtable that died (its parent is gone) is stopped first; one that belongs to a live
    /// process is an [`EmbeddedPgError::InUse`] error.
    pub async fn start(data_dir: &Path) -> Result<Self, EmbeddedPgError> {
        let cluster = Cluster::new(data_dir)?;
        cluster.init().await?;
        if let Some(pid) = cluster.running_pid() {
            if !is_orphan(pid) {
                return Err(EmbeddedPgError::InUse { dir: cluster.dir.clone(), pid });
            }
            tracing::warn!(pid, "stopping a PostgreSQL server left behind by an earlier run");
            cluster.stop_detached().await?;
        }
        cluster.prepare_socket_dir()?;
        let log = cluster.log_file()?;
        let log_err = log.try_clone().map_err(io_err("opening the log"))?;
        let mut child = cluster
            .command("postgres")
            .args(cluster.server_args())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io_err("starting postgres"))?;
        if let Err(err) = cluster.wait_ready(|| child.try_wait().ok().flatten()).await {
            let _ = child.start_kill();
            return Err(err);
        }
        tracing::info!(dir = %cluster.dir.display(), socket = %cluster.socket_dir.display(), "private PostgreSQL cluster started");
        Ok(Self { cluster, child: Some(child) })
    }

    /// How to connect (Unix socket, user `postgres`, database `postgres`).
    pub fn connect_options(&self) -> PgConnectOptions {
        self.cluster.connect_options()
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Stops the server: a fast shutdown (SIGINT), then an immediate one (SIGQUIT) after 30 s.
    pub async fn stop(mut self) -> Result<(), EmbeddedPgError> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let Some(pid) = child.id() else { return Ok(()) };
        let pid = Pid::from_raw(pid as i32);
        let _ = kill(pid, Signal::SIGINT);
        if tokio::time::timeout(STOP_TIMEOUT, child.wait()).await.is_err() {
            tracing::warn!("PostgreSQL did not stop within 30 s; sending SIGQUIT");
            let _ = kill(pid, Signal::SIGQUIT);
            child.wait().await.map_err(io_err("waiting for postgres to exit"))?;
        }
        tracing::info!("private PostgreSQL cluster stopped");
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    /// Best effort when [`EmbeddedPostgres::stop`] was not awaited: ask for a fast shutdown.
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
        }
    }
}

/// Whether the process `pid` lost its parent (it was re-parented to init).
fn is_orphan(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(_, ppid)| ppid == 1)
}

/// A process's state letter and parent pid, from `/proc/<pid>/stat` (Linux).
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces, so read after the last ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Starts (or joins) a cluster shared by every process that names `data_dir`, left running
/// detached for the next one: the tests' server on machines without `PYAIRTABLE_TEST_DATABASE_URL`.
/// Durability is off (`fsync=off`): it holds only throw-away test databases.
pub async fn start_shared(data_dir: &Path) -> Result<PgConnectOptions, EmbeddedPgError> {
    let lock_path = data_dir.with_extension("lock");
    let lock = tokio::task::spawn_blocking(move || -> Result<fs::File, EmbeddedPgError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(format!("opening {}", lock_path.display())))?;
        file.lock().map_err(io_err(format!("locking {}", lock_path.display())))?;
        Ok(file)
    })
    .await
    .map_err(|e| EmbeddedPgError::Io { what: "locking".into(), source: io::Error::other(e) })??;
    let cluster = Cluster::new(data_dir)?;
    if cluster.running_pid().is_none() {
        cluster.init().await?;
        cluster.prepare_socket_dir()?;
        let options: Vec<String> = cluster
            .server_args()
            .iter()
            .skip(2) // -D <dir>: given to pg_ctl itself
            .map(|a| shell_quote(&a.to_string_lossy()))
            .chain(["-c fsync=off -c synchronous_commit=off -c full_page_writes=off".into()])
            .collect();
        let out = cluster
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&cluster.dir)
            .arg("-l")
            .arg(&cluster.log)
            .arg("-o")
            .arg(options.join(" "))
            .args(["-w", "-t", "60"])
            .output()
            .await
            .map_err(io_err("running pg_ctl start"))?;
        if !out.status.success() {
            return Err(EmbeddedPgError::Command {
                program: "pg_ctl start".into(),
                status: out.status.to_string(),
                output: format!("{}\n{}", String::from_utf8_lossy(&out.stderr), cluster.log_tail()),
            });
        }
    }
    cluster.wait_ready(|| None).await?;
    drop(lock);
    Ok(cluster.connect_options())
}

/// Stops a cluster started by [`start_shared`], if it runs.
pub async fn stop_shared(data_dir: &Path) -> Result<(), EmbeddedPgError> {
    let cluster = Cluster::new(data_dir)?;
    if cluster.running_pid().is_some() { cluster.stop_detached().await } else { Ok(()) }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-=".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_get_a_short_socket_folder() {
        let short = socket_dir_for(Path::new("/srv/data/pg"));
        assert_eq!(short, Path::new("/srv/data/pg/run"));
        let long = PathBuf::from(format!("/srv/{}/pg", "x".repeat(120)));
        let dir = socket_dir_for(&long);
        assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
        assert_eq!(dir, socket_dir_for(&long), "the same cluster gets the same folder");
    }

    #[test]
    fn shell_quoting_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("listen_addresses="), "listen_addresses=");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn orphan_detection_reads_the_parent() {
        assert!(!is_orphan(std::process::id() as i32), "the test runner has a parent");
    }
}
