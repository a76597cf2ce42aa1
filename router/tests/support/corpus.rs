//! The federation corpus under `tests/corpus/`: one folder per supergraph, with each subgraph's
//! SDL (`NAME.graphql`) and canned data (`NAME.json`; the string `"dead"` for a subgraph nobody
//! answers), the supergraph composed from them (`supergraph.graphql`), and `operations.txt`:
//!
//! ```text
//! ### what the operation shows
//! query { ... }
//! --- variables        (optional) JSON object
//! --- operationName    (optional) the operation to run
//! --- labels           (optional) JSON list of progressive override labels turned on
//! --- expect           the response: `data` exactly; `errors` matched entry by entry (sorted by
//!                      path), each expected key equal (`extensions` by subset)
//! --- requests         (optional) requests per subgraph: {"name": count} or, in order, ["name", ...]
//! ```

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub struct Subgraph {
    pub name: String,
    pub sdl: String,
    /// `None`: the subgraph is down.
    pub data: Option<Value>,
}

pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub subgraphs: Vec<Subgraph>,
    pub supergraph: String,
    pub operations: Vec<Operation>,
}

#[derive(Default)]
pub struct Operation {
    pub title: String,
    pub query: String,
    pub variables: Map<String, Value>,
    pub operation_name: Option<String>,
    pub labels: Vec<String>,
    pub expect: Value,
    pub requests: Option<Value>,
}

/// Every case under `root`, by name.
pub fn load_all(root: &Path) -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().map(|dir| load(dir)).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(dir: &Path) -> Case {
    let mut subgraphs = Vec::new();
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("case folder").map(|e| e.expect("entry").path()).collect();
    files.sort();
    for file in &files {
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let is_sdl = file.extension().is_some_and(|e| e == "graphql");
        if !is_sdl || name == "supergraph" {
            continue;
        }
        let data: Value = serde_json::from_str(&read(&file.with_extension("json")))
            .unwrap_or_else(|e| panic!("{}: {e}", file.with_extension("json").display()));
        let data = (data != Value::String("dead".into())).then_some(data);
        subgraphs.push(Subgraph { name, sdl: read(file), data });
    }
    Case {
        name: dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned(),
        dir: dir.to_owned(),
        subgraphs,
        supergraph: read(&dir.join("supergraph.graphql")),
        operations: parse_operations(&read(&dir.join("operations.txt"))),
    }
}

/// Reads the `### title` / `--- section` format.
pub fn parse_operations(text: &str) -> Vec<Operation> {
    let mut operations = Vec::new();
    for block in text.split("\n### ").map(|b| b.trim_start_matches("### ")) {
        if block.trim().is_empty() {
            continue;
        }
        let mut sections = block.split("\n--- ");
        let head = sections.next().unwrap_or_default();
        let (title, query) = head.split_once('\n').unwrap_or((head, ""));
        let mut operation = Operation {
            title: title.trim().to_owned(),
            query: query.trim().to_owned(),
            ..Operation::default()
        };
        for section in sections {
            let (name, body) = section.split_once('\n').unwrap_or((section, ""));
            let json = || -> Value {
                serde_json::from_str(body).unwrap_or_else(|e| panic!("{title}: --- {name}: {e}"))
            };
            match name.trim() {
                "variables" => operation.variables = json().as_object().cloned().unwrap_or_default(),
                "operationName" => operation.operation_name = Some(body.trim().to_owned()),
                "labels" => operation.labels = serde_json::from_value(json()).expect("labels"),
                "expect" => operation.expect = json(),
                "requests" => operation.requests = Some(json()),
                other => panic!("{title}: unknown section {other:?}"),
            }
        }
        operations.push(operation);
    }
    operations
}

/// Whether `actual` is the response `expected` describes; otherwise what differs.
pub fn check(expected: &Value, actual: &Value) -> Result<(), String> {
    if expected.get("data") != actual.get("data") {
        return Err(format!("data differs:\n  expected {}\n  actual   {actual}", expected["data"]));
    }
    let sorted = |v: &Value| {
        let mut errors = v.get("errors").and_then(Value::as_array).cloned().unwrap_or_default();
        errors.sort_by_key(|e| e.get("path").map(Value::to_string).unwrap_or_default());
        errors
    };
    let (want, have) = (sorted(expected), sorted(actual));
    if want.len() != have.len() || !want.iter().zip(&have).all(|(w, h)| subset(w, h)) {
        return Err(format!(
            "errors differ:\n  expected {}\n  actual   {}",
            Value::Array(want),
            actual.get("errors").unwrap_or(&Value::Null)
        ));
    }
    Ok(())
}

/// Every key of `want` is in `have` with an equal value (objects compared the same way).
fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv)))
        }
        _ => want == have,
    }
}

/// Whether the subgraph requests seen (names in order) match what the operation expects.
pub fn check_requests(expected: &Value, seen: &[String]) -> Result<(), String> {
    let matches = match expected {
        Value::Array(order) => order.iter().map(Value::as_str).eq(seen.iter().map(|s| Some(s.as_str()))),
        Value::Object(counts) => {
            counts
                .iter()
                .all(|(name, n)| seen.iter().filter(|s| *s == name).count() as u64 == n.as_u64().unwrap_or(0))
                && seen.iter().all(|s| counts.contains_key(s))
        }
        _ => false,
    };
    if matches { Ok(()) } else { Err(format!("subgraph requests: expected {expected}, saw {seen:?}")) }
}
