//! docker-compose.yml, run as local processes: every PyAirtable service of the file with its
//! command, its environment and its start order (`depends_on`), so the tests exercise the wiring
//! the file ships. What differs, because there is no container network here:
//! - each service listens on 127.0.0.1:<free port> instead of 0.0.0.0:4000, and every
//!   `http://<service>:4000` in the environment points at that port;
//! - PostgreSQL, Redis and the SMTP catcher are the test's (`DATABASE_URL`, `REDIS_URL`, `SMTP_URL`);
//! - the router gets `PYAIRTABLE_SUBGRAPHS` (the checked-in supergraph names compose hosts);
//! - `${VAR}` values come from `.env.example`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::{Process, run_capture};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Where the image keeps the schema files (see the Dockerfile).
const IMAGE_SCHEMA_DIR: &str = "/usr/share/pyairtable/schema/";

/// One PyAirtable service of docker-compose.yml.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub command: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// (service, condition) for the PyAirtable services it waits for.
    pub depends_on: Vec<(String, String)>,
}

/// The PyAirtable services of docker-compose.yml (those running the pyairtable image), in an order
/// that starts every service after those it depends on.
pub fn services() -> Vec<Service> {
    let raw =
        std::fs::read_to_string(Path::new(ROOT).join("docker-compose.yml")).expect("docker-compose.yml");
    let mut doc: Value = serde_yaml_ng::from_str(&raw).expect("docker-compose.yml is YAML");
    // A merge can bring in another merge key (`<<: *subgraph`, itself `<<: *pyairtable`).
    for _ in 0..4 {
        doc.apply_merge().expect("merge keys resolve");
    }
    let vars = dotenv(&Path::new(ROOT).join(".env.example"));
    let mut all = Vec::new();
    for (name, service) in doc["services"].as_mapping().expect("services") {
        let image = interpolate(service["image"].as_str().unwrap_or_default(), &vars);
        if !image.starts_with("pyairtable:") {
            continue;
        }
        let strings = |v: &Value| -> Vec<String> {
            v.as_sequence()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|s| interpolate(s, &vars))
                .collect()
        };
        let environment = service["environment"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().expect("name").to_owned(), interpolate(&scalar(v), &vars)))
            .collect();
        let depends_on = service["depends_on"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (k.as_str().expect("name").to_owned(), v["condition"].as_str().unwrap_or("").to_owned())
            })
            .collect();
        let name = name.as_str().expect("service name").to_owned();
        all.push(Service { name, command: strings(&service["command"]), environment, depends_on });
    }
    start_order(all)
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Services after the ones they depend on (dependencies outside PyAirtable are the test's).
fn start_order(mut pending: Vec<Service>) -> Vec<Service> {
    let ours: Vec<String> = pending.iter().map(|s| s.name.clone()).collect();
    let mut ordered: Vec<Service> = Vec::new();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|s| {
                s.depends_on.iter().all(|(d, _)| !ours.contains(d) || ordered.iter().any(|o| &o.name == d))
            })
            .expect("depends_on has no cycle");
        ordered.push(pending.remove(ready));
    }
    ordered
}

/// `NAME=value` lines.
fn dotenv(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .expect(".env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Compose interpolation: `${NAME}`, `${NAME:-default}`, `${NAME:?message}`, `$$`.
fn interpolate(raw: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(end) = rest.find('}').filter(|_| rest.starts_with("${")) else {
            out.push('$');
            rest = &rest[1..];
            continue;
        };
        let expr = &rest[2..end];
        let (name, fallback) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr.split_once(":?").map_or(expr, |(name, _)| name), None),
        };
        let value = vars.get(name).filter(|v| !v.is_empty()).map(String::as_str);
        match (value, fallback) {
            (Some(value), _) => out.push_str(value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => panic!("docker-compose.yml needs {name}, which .env.example does not set"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The test's stand-ins for the infrastructure services.
pub struct Infrastructure {
    pub database_url: String,
    pub redis_url: String,
    pub smtp_url: String,
    pub data_dir: PathBuf,
}

/// The running PyAirtable services of the file.
pub struct Stack {
    pub processes: Vec<(String, Process)>,
    pub services: Vec<Service>,
}

impl Stack {
    /// Starts the file's services as it orders them: one-shot services (`migrate`) run to
    /// completion first, long-running ones are up (their `/readyz` answers) before their dependants.
    pub async fn up(infra: &Infrastructure) -> Self {
        let services = services();
        let one_shot = |name: &str| {
            services
                .iter()
                .flat_map(|s| &s.depends_on)
                .any(|(d, c)| d == name && c == "service_completed_successfully")
        };
        let mut processes: Vec<(String, Process)> = Vec::new();
        for service in &services {
            let env = environment(service, infra, &processes);
            let args = command(service);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if one_shot(&service.name) {
                let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let (code, _, stderr) = run_capture(&args, &vars).await;
                assert_eq!(code, Some(0), "{}: one-shot service failed: {stderr}", service.name);
                continue;
            }
            let process = Process::start(&args, &env, &infra.data_dir).await;
            let (status, body) = super::get(&format!("{}/readyz", process.base_url)).await;
            assert_eq!(status, 200, "{} is not ready: {body}", service.name);
            processes.push((service.name.clone(), process));
        }
        Self { processes, services }
    }

    pub fn process(&self, name: &str) -> &Process {
        &self.processes.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no service {name}")).1
    }

    /// Removes a service from the stack (to stop it by hand).
    pub fn take(&mut self, name: &str) -> Process {
        let at = self.processes.iter().position(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}"));
        self.processes.remove(at).1
    }

    /// SIGTERM to every service, dependants first; each must exit cleanly.
    pub async fn down(self) {
        for (name, process) in self.processes.into_iter().rev() {
            let status = process.terminate().await;
            assert!(status.success(), "{name}: exit status {status} on SIGTERM");
        }
    }
}

/// The service's command, with the image's paths mapped to the repository's.
fn command(service: &Service) -> Vec<String> {
    service
        .command
        .iter()
        .map(|arg| match arg.strip_prefix(IMAGE_SCHEMA_DIR) {
            Some(file) => format!("{ROOT}/schema/{file}"),
            None => arg.clone(),
        })
        .collect()
}

/// The service's environment, pointed at the test's infrastructure and at the local ports of the
/// services already started.
pub fn environment(
    service: &Service,
    infra: &Infrastructure,
    started: &[(String, Process)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = service.environment.clone().into_iter().collect();
    env.retain(|_, v| !v.is_empty());
    for (name, value) in [
        ("DATABASE_URL", &infra.database_url),
        ("REDIS_URL", &infra.redis_url),
        ("SMTP_URL", &infra.smtp_url),
    ] {
        if env.contains_key(name) {
            env.insert(name.into(), value.clone());
        }
    }
    if env.contains_key("PYAIRTABLE_LISTEN") {
        env.insert("PYAIRTABLE_LISTEN".into(), "127.0.0.1:0".into());
    }
    env.insert("PYAIRTABLE_DATA_DIR".into(), infra.data_dir.display().to_string());
    for value in env.values_mut() {
        for (name, process) in started {
            *value = value.replace(&format!("http://{name}:4000"), &process.base_url);
        }
    }
    if service.command.first().is_some_and(|c| c == "router") {
        let subgraphs: Vec<String> = started
            .iter()
            .filter(|(name, _)| service.depends_on.iter().any(|(d, _)| d == name))
            .map(|(name, process)| format!("{name}={}/graphql", process.base_url))
            .collect();
        env.insert("PYAIRTABLE_SUBGRAPHS".into(), subgraphs.join(","));
    }
    env
}
