//! What the benchmarks share: `pyairtable serve` as a child process, and a process's memory.

#![allow(dead_code)] // each benchmark uses its own subset

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

/// `pyairtable serve` (this build's binary), listening on a port of its choosing at `base`.
pub struct Server {
    pub child: tokio::process::Child,
    pub base: String,
}

/// Starts `pyairtable serve` on `db_url` and `data_dir`, with `env` on top (logs at error level),
/// and waits until it says where it listens.
pub async fn serve(db_url: &str, data_dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pyairtable"))
        .arg("serve")
        .env("DATABASE_URL", db_url)
        .env("PYAIRTABLE_LISTEN", "127.0.0.1:0")
        .env("PYAIRTABLE_DATA_DIR", data_dir)
        .env("PYAIRTABLE_LOG", "error")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("pyairtable serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    while let Some(line) = lines.next_line().await.expect("reads") {
        if let Some(base) = line.strip_prefix("listening on ") {
            return Server { base: base.trim().to_owned(), child };
        }
    }
    panic!("pyairtable serve did not start");
}

/// A memory line of `/proc/<pid>/status` in MiB (`VmRSS` now, `VmHWM` the peak); `pid` may be
/// `self`. 0 when it cannot be read.
pub fn memory_mib(pid: impl std::fmt::Display, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}
