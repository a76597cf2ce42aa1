//! Per-operation metrics with bounded label cardinality: the first [`MAX_NAMES`] operation names
//! seen get their own label, later ones count as `other`, anonymous operations as `unnamed`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// Distinct operation names labelled per process.
pub const MAX_NAMES: usize = 200;

/// The operation names this process labels.
#[derive(Default)]
pub struct OperationNames(Mutex<HashSet<String>>);

impl OperationNames {
    /// The label of an operation named `name` (a name from a parsed document, never free text).
    pub fn label(&self, name: Option<&str>) -> String {
        let Some(name) = name else { return "unnamed".into() };
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(name) {
            return name.to_owned();
        }
        if seen.len() < MAX_NAMES {
            seen.insert(name.to_owned());
            return name.to_owned();
        }
        "other".into()
    }
}

/// Records one operation: `router_operations_total` and `router_operation_duration_seconds`.
pub fn operation(name: String, kind: &'static str, outcome: &'static str, elapsed: Duration) {
    let labels = [("operation", name), ("kind", kind.to_owned()), ("outcome", outcome.to_owned())];
    metrics::counter!("router_operations_total", &labels).increment(1);
    metrics::histogram!("router_operation_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

/// Records a request refused at the edge: `router_refusals_total{reason}`.
pub fn refusal(reason: &'static str) {
    metrics::counter!("router_refusals_total", "reason" => reason).increment(1);
}
