//! The production topology in a test: every subgraph and the router as separate processes over
//! the machine's PostgreSQL and Redis, wired only by environment variables and --subgraph URLs.

use std::collections::HashMap;

use pyairtable_kit::testing::{TEST_INTERNAL_SECRET, redis_url};

use super::Process;

/// The variables every process of the topology gets.
pub fn env(db_url: &str, data_dir: &std::path::Path) -> HashMap<String, String> {
    HashMap::from([
        ("PYAIRTABLE_DATA_DIR".into(), data_dir.display().to_string()),
        ("DATABASE_URL".into(), db_url.into()),
        ("REDIS_URL".into(), redis_url()),
        // Rate limits and persisted queries live in the shared Redis: this run's keys are its own.
        ("PYAIRTABLE_REDIS_PREFIX".into(), format!("test:{}:", uuid::Uuid::now_v7())),
        ("PYAIRTABLE_INTERNAL_SECRET".into(), TEST_INTERNAL_SECRET.into()),
        ("PYAIRTABLE_LISTEN".into(), "127.0.0.1:0".into()),
        ("PYAIRTABLE_LOG".into(), "warn".into()),
        // The isolation matrix holds its sign-ins longer than ten minutes on a loaded machine.
        ("PYAIRTABLE_ACCESS_TOKEN_TTL_SECONDS".into(), "3600".into()),
    ])
}

/// Every subgraph as its own process, and the router over them (`router_args` before the
/// `--subgraph` flags). Permissions starts first: the others ask it for decisions.
pub struct Topology {
    pub router: Process,
    pub subgraphs: Vec<(&'static str, Process)>,
}

const NAMES: [&str; 8] =
    ["permissions", "auth", "users", "tenants", "workspaces", "files", "webhooks", "notifications"];

pub async fn topology(env: &HashMap<String, String>, router_args: &[&str]) -> Topology {
    let cwd = std::env::temp_dir();
    let mut env = env.clone();
    let mut subgraphs = Vec::new();
    for name in NAMES {
        let process = Process::start(&["subgraph", name], &env, &cwd).await;
        if name == "permissions" {
            env.insert("PYAIRTABLE_PERMISSIONS_URL".into(), process.base_url.clone());
        }
        subgraphs.push((name, process));
    }
    let flags: Vec<String> = subgraphs
        .iter()
        .flat_map(|(name, process)| ["--subgraph".to_owned(), format!("{name}={}/graphql", process.base_url)])
        .collect();
    let args: Vec<&str> = router_args.iter().copied().chain(flags.iter().map(String::as_str)).collect();
    let router = Process::start(&args, &env, &cwd).await;
    Topology { router, subgraphs }
}

impl Topology {
    pub fn subgraph(&self, name: &str) -> &Process {
        &self.subgraphs.iter().find(|(n, _)| *n == name).expect("a subgraph of the topology").1
    }

    pub async fn stop(self) {
        assert!(self.router.terminate().await.success(), "clean exit on SIGTERM");
        for (name, process) in self.subgraphs.into_iter().rev() {
            assert!(process.terminate().await.success(), "{name}: clean exit on SIGTERM");
        }
    }
}
