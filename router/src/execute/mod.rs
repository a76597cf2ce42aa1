//! Runs a query plan: fetches from subgraphs (in parallel where the plan says so) and merges their
//! answers into one data tree, with subgraph errors moved to the client's paths.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

mod entity;

use futures::future::{BoxFuture, join_all};
use hive_router_query_planner::planner::plan_nodes::{FetchNode, FlattenNodePath, PlanNode};
use hive_router_query_planner::state::supergraph_state::OperationKind;
use pyairtable_kit::Caller;
use serde_json::{Map, Value};

use crate::entities::{Step, apply_rewrites, path_json, pointer_mut, target_paths};
use crate::fetch::{Fetch, Fetcher};
use crate::response::{GraphQLError, code};
use crate::schema::SchemaIndex;
use crate::transport::SubgraphResponse;
use crate::tree::{Tree, deep_merge};

/// Everything one execution needs, and the data it builds.
pub struct Execution<'a> {
    pub fetchers: &'a HashMap<String, Arc<Fetcher>>,
    pub schema: &'a SchemaIndex,
    pub variables: &'a Map<String, Value>,
    pub caller: &'a Caller,
    pub request_id: &'a str,
    state: Mutex<State>,
}

/// The result of running a plan.
#[derive(Default)]
pub struct State {
    pub data: Tree,
    pub errors: Vec<GraphQLError>,
    /// Where a whole fetch failed: nulls under these paths are explained by an error already.
    pub failed_paths: Vec<Vec<Value>>,
}
impl<'a> Execution<'a> {
    pub fn new(
        fetchers: &'a HashMap<String, Arc<Fetcher>>,
        schema: &'a SchemaIndex,
        variables: &'a Map<String, Value>,
        caller: &'a Caller,
        request_id: &'a str,
        data: Tree,
    ) -> Self {
        let state = Mutex::new(State { data, ..State::default() });
        Self { fetchers, schema, variables, caller, request_id, state }
    }

    /// Starts from `errors` already found (a subscription event's own errors).
    pub fn with_errors(self, errors: Vec<GraphQLError>) -> Self {
        self.lock().errors = errors;
        self
    }

    /// Runs `node` and returns what it built.
    pub async fn run(self, node: Option<&PlanNode>) -> State {
        if let Some(node) = node {
            self.node(node).await;
        }
        self.state.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn node<'b>(&'b self, node: &'b PlanNode) -> BoxFuture<'b, ()> {
        Box::pin(async move {
            match node {
                PlanNode::Fetch(fetch) => self.root_fetch(fetch, None).await,
                PlanNode::Flatten(flatten) => self.flatten(flatten).await,
                PlanNode::BatchFetch(batch) => self.batch_fetch(batch).await,
                PlanNode::Sequence(sequence) => {
                    for child in &sequence.nodes {
                        self.node(child).await;
                    }
                }
                PlanNode::Parallel(parallel) => {
                    join_all(parallel.nodes.iter().map(|child| self.node(child))).await;
                }
                PlanNode::Condition(condition) => {
                    let yes = self.variables.get(&condition.condition) == Some(&Value::Bool(true));
                    let branch = if yes { &condition.if_clause } else { &condition.else_clause };
                    if let Some(branch) = branch {
                        self.node(branch).await;
                    }
                }
                PlanNode::Subscription(_) | PlanNode::Defer(_) => {
                    self.lock().errors.push(GraphQLError::new(
                        "subscriptions and @defer are not supported by this router yet",
                        code::BAD_REQUEST,
                    ));
                }
            }
        })
    }

    /// Variables a fetch uses, from the client's coerced variables.
    fn variables_for(&self, usages: Option<&std::collections::BTreeSet<String>>) -> Map<String, Value> {
        usages
            .into_iter()
            .flatten()
            .filter_map(|name| self.variables.get(name).map(|v| (name.clone(), v.clone())))
            .collect()
    }

    async fn send(
        &self,
        service: &str,
        query: &str,
        variables: Map<String, Value>,
        written: Vec<(String, String)>,
        kind: Option<&OperationKind>,
    ) -> Result<SubgraphResponse, GraphQLError> {
        let Some(fetcher) = self.fetchers.get(service) else {
            return Err(GraphQLError::new(
                format!("no route to subgraph {service:?}"),
                code::INTERNAL_SERVER_ERROR,
            ));
        };
        let idempotent = !matches!(kind, Some(OperationKind::Mutation));
        let fetch =
            Fetch { query, variables, written, caller: self.caller, request_id: self.request_id, idempotent };
        fetcher.fetch(fetch).await.map_err(|err| {
            tracing::warn!(subgraph = service, request_id = self.request_id, %err, "subgraph fetch failed");
            let message = format!("subgraph {service:?} {}", err.public_message());
            GraphQLError::new(message, code::SUBGRAPH_REQUEST_FAILED).with_extension("serviceName", service)
        })
    }

    /// A fetch from a root type, merged at the root or, when the plan re-enters a root type below
    /// it (`mutation { doSomething { query { ... } } }`), at every object found at `path`.
    async fn root_fetch(&self, fetch: &FetchNode, path: Option<&FlattenNodePath>) {
        let targets: Vec<Vec<Step<'_>>> = match path {
            None => vec![Vec::new()],
            Some(path) => {
                let mut state = self.lock();
                target_paths(&mut state.data, path.as_slice(), self.schema)
            }
        };
        if targets.is_empty() {
            return;
        }
        let variables = self.variables_for(fetch.variable_usages.as_ref());
        let query = &fetch.operation.document_str;
        let kind = fetch.operation_kind.as_ref();
        let result = self.send(&fetch.service_name, query, variables, Vec::new(), kind).await;
        let mut state = self.lock();
        match result {
            Ok(response) => {
                if let Some(mut data) = response.data {
                    if let Some(rewrites) = &fetch.output_rewrites {
                        apply_rewrites(&mut data, rewrites, self.schema);
                    }
                    let last = targets.len() - 1;
                    for (i, target) in targets.iter().enumerate() {
                        if let Some(slot) = pointer_mut(&mut state.data, target) {
                            deep_merge(slot, if i == last { data.take() } else { data.clone() });
                        }
                    }
                }
                for error in response.errors.into_iter().map(GraphQLError::from_subgraph) {
                    state.errors.extend(targets.iter().map(|target| prefixed(error.clone(), target)));
                }
            }
            Err(error) => {
                let first = targets.first().filter(|p| !p.is_empty());
                state.errors.push(match first {
                    Some(path) => error.with_path(path_json(path)),
                    None => error,
                });
                state.failed_paths.extend(targets.iter().map(|p| path_json(p)));
            }
        }
    }

    fn internal(&self, what: &str) {
        tracing::error!(what, "unexpected query plan shape");
        self.lock().errors.push(GraphQLError::new("internal server error", code::INTERNAL_SERVER_ERROR));
    }
}

/// `error` with `prefix` before its path (nothing to place when it has no path).
fn prefixed(error: GraphQLError, prefix: &[Step<'_>]) -> GraphQLError {
    match error.path {
        Some(path) if !prefix.is_empty() => {
            GraphQLError { path: Some(path_json(prefix).into_iter().chain(path).collect()), ..error }
        }
        _ => error,
    }
}
