//! One GraphQL request through the router: parse, validate, plan (cached), coerce variables,
//! execute, project. The edge checks around them (rate limits, persisted queries, limits) are in
//! `flow.rs`.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use graphql_tools::static_graphql::query::{
    Definition, Document, OperationDefinition as AstOperation, VariableDefinition,
};
use graphql_tools::validation::rules::default_rules_validation_plan;
use graphql_tools::validation::validate::{ValidationPlan, validate};
use hive_router_query_planner::ast::normalization::normalize_operation;
use hive_router_query_planner::ast::operation::OperationDefinition;
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::SelectionSet;
use hive_router_query_planner::graph::PlannerOverrideContext;
use hive_router_query_planner::planner::plan_nodes::QueryPlan;
use pyairtable_kit::Caller;
use pyairtable_kit::config::{EdgeConfig, Environment};
use serde_json::{Map, Value};

use crate::auth::Authenticator;
use crate::execute::Execution;
use crate::fetch::SubgraphPolicy;
use crate::gateway::{Active, Gateway};
use crate::introspection::Introspection;
use crate::limits;
use crate::metrics::OperationNames;
use crate::persisted::{PersistedQueries, TrustedDocuments};
use crate::plan_cache::PlanCache;
use crate::projection::Projection;
use crate::ratelimit::RateLimiter;
use crate::response::{Data, GraphQLError, Response, code};
use crate::schema::OperationType;
use crate::supergraph::Supergraph;
use crate::tree::{Object, Tree};

/// How many prepared operations (parsed, validated, planned) are kept.
const PLAN_CACHE_SIZE: usize = 1024;

/// A GraphQL request, as read from HTTP.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphQLRequest {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    #[serde(default)]
    pub extensions: Option<Map<String, Value>>,
    /// A trusted document's id (GraphQL over HTTP's persisted documents), instead of `query`.
    #[serde(default)]
    pub document_id: Option<String>,
}

/// Router settings that shape responses.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Timeouts, retries, circuit breaking and deduplication of subgraph fetches.
    pub subgraphs: SubgraphPolicy,
    /// Progressive override labels (`@override(label:)`) turned on for every request.
    pub override_labels: HashSet<String>,
    /// Peers whose `X-Forwarded-For` is believed; anyone else is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The front door: environment, introspection, limits, rate limits, CORS, persisted queries.
    pub edge: EdgeConfig,
    /// Where rate limits and persisted queries are shared with other routers (else in process).
    pub redis: Option<SharedRedis>,
    /// When set, only these documents run (loaded from `edge.trusted_documents`).
    pub trusted_documents: Option<Arc<TrustedDocuments>>,
    /// WebSocket and Server-Sent Events settings, and the stop that closes them.
    pub subscriptions: crate::subscription::SubscriptionOptions,
}

impl Default for RouterOptions {
    fn default() -> Self {
        let trusted = ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect();
        Self {
            subgraphs: SubgraphPolicy::default(),
            override_labels: HashSet::new(),
            trusted_proxies: trusted,
            edge: EdgeConfig::defaults(Environment::Development),
            redis: None,
            trusted_documents: None,
            subscriptions: crate::subscription::SubscriptionOptions::default(),
        }
    }
}

/// A Redis connection (cheap to clone: one multiplexed connection).
#[derive(Clone)]
pub struct SharedRedis(pub redis::aio::ConnectionManager);

impl std::fmt::Debug for SharedRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedRedis")
    }
}

/// What became of a request, for the HTTP layer to pick a status.
pub enum Outcome {
    /// Executed (possibly with field errors).
    Executed(Response),
    /// Refused before execution (parse, validation, variables): no `data`.
    RequestError(Response),
    /// A mutation or subscription over GET.
    MethodNotAllowed(Response),
    /// An anonymous caller asked for more than the public operations.
    Unauthenticated(Response),
    /// Over a rate limit or cost budget.
    RateLimited(Response),
}

impl Outcome {
    /// The GraphQL response, whatever became of the request.
    pub fn into_response(self) -> Response {
        match self {
            Self::Executed(r)
            | Self::RequestError(r)
            | Self::MethodNotAllowed(r)
            | Self::Unauthenticated(r)
            | Self::RateLimited(r) => r,
        }
    }
}

/// An operation, parsed, validated and planned once, then reused.
pub(crate) struct Prepared {
    pub(crate) kind: OperationType,
    pub(crate) variable_definitions: Vec<VariableDefinition>,
    pub(crate) operation: OperationDefinition,
    pub(crate) introspection: bool,
    /// Only `__schema`, `__type` and `__typename` at the root.
    pub(crate) introspection_only: bool,
    /// Root field names, through inline fragments (for the anonymous allow-list).
    pub(crate) root_fields: Vec<String>,
    /// The operation's name in the document.
    pub(crate) name: Option<String>,
    pub(crate) plan: Option<QueryPlan>,
}

type Preparation = Result<Arc<Prepared>, Arc<Vec<GraphQLError>>>;

/// The router's request pipeline over the gateway's current supergraph.
pub struct Pipeline {
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) options: RouterOptions,
    validation: ValidationPlan,
    cache: PlanCache<Preparation>,
    pub(crate) authenticator: Option<Arc<Authenticator>>,
    pub(crate) limiter: RateLimiter,
    pub(crate) persisted: PersistedQueries,
    pub(crate) names: OperationNames,
}

impl Pipeline {
    pub fn new(
        gateway: Arc<Gateway>,
        options: RouterOptions,
        authenticator: Option<Arc<Authenticator>>,
    ) -> Self {
        let prefix = options.edge.redis_prefix.as_str();
        let limiter = match &options.redis {
            Some(redis) => RateLimiter::redis(redis.0.clone(), prefix),
            None => RateLimiter::in_process(),
        };
        let redis = options.redis.as_ref().map(|r| (r.0.clone(), prefix));
        let persisted = PersistedQueries::new(options.edge.apq, redis, options.trusted_documents.clone());
        Self {
            gateway,
            validation: default_rules_validation_plan(),
            cache: PlanCache::new(PLAN_CACHE_SIZE),
            authenticator,
            limiter,
            persisted,
            names: OperationNames::default(),
            options,
        }
    }

    /// Verifies credentials, when this router has an auth service.
    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.authenticator.as_deref()
    }

    pub fn options(&self) -> &RouterOptions {
        &self.options
    }

    /// The first root field an anonymous caller may not use, when the caller is anonymous and
    /// this router authenticates.
    pub(crate) fn forbidden_to_anonymous<'p>(
        &self,
        prepared: &'p Prepared,
        caller: &Caller,
    ) -> Option<&'p str> {
        let public = &self.authenticator.as_ref()?.public;
        if caller.user_id.is_some() {
            return None;
        }
        let allowed = match prepared.kind {
            OperationType::Query => &public.queries,
            OperationType::Mutation => &public.mutations,
            OperationType::Subscription => return prepared.root_fields.first().map(String::as_str),
        };
        let free = |f: &str| matches!(f, "__typename" | "__schema" | "__type");
        prepared.root_fields.iter().map(String::as_str).find(|f| !free(f) && !allowed.contains(*f))
    }

    pub(crate) async fn execute_prepared(
        &self,
        active: &Active,
        prepared: &Prepared,
        variables: &Map<String, Value>,
        caller: &Caller,
        request_id: &str,
    ) -> Response {
        let schema = &active.supergraph.schema;
        let data = if prepared.introspection {
            Tree::from(Value::Object(
                Introspection { schema, variables }.resolve(&prepared.operation.selection_set),
            ))
        } else {
            Tree::Object(Object::new())
        };
        let execution = Execution::new(&active.fetchers, schema, variables, caller, request_id, data);
        let state = execution.run(prepared.plan.as_ref().and_then(|p| p.node.as_ref())).await;
        respond(active, prepared, variables, state)
    }

    /// The prepared operation, from the cache of the active supergraph's generation when there.
    pub(crate) fn prepare(&self, active: &Active, query: &str, operation_name: Option<&str>) -> Preparation {
        let (overrides, drawn) = active.supergraph.override_context(&self.options.override_labels);
        let key = PlanCache::<Preparation>::key(query, operation_name, drawn);
        if let Some(hit) = self.cache.get(active.generation, key) {
            return hit;
        }
        let prepared =
            self.prepare_uncached(active, query, operation_name, overrides).map(Arc::new).map_err(Arc::new);
        self.cache.put(active.generation, key, prepared.clone());
        prepared
    }

    fn prepare_uncached(
        &self,
        active: &Active,
        query: &str,
        operation_name: Option<&str>,
        overrides: PlannerOverrideContext,
    ) -> Result<Prepared, Vec<GraphQLError>> {
        let document = graphql_tools::parser::parse_query::<String>(query)
            .map_err(|e| vec![GraphQLError::new(parse_message(&e.to_string()), code::GRAPHQL_PARSE_FAILED)])?
            .into_static();
        let operation = select_operation(&document, operation_name)?;
        limits::check_shape(&document, selection_set(operation), &self.options.edge.limits)
            .map_err(|e| vec![*e])?;
        let errors = validate(&active.supergraph.api_document, &document, &self.validation);
        if !errors.is_empty() {
            let errors = errors.into_iter().map(|e| validation_error(e.message, &e.locations)).collect();
            let suggestions = self.options.edge.suggestions;
            return Err(crate::suggestions::apply(errors, &active.supergraph.schema, suggestions));
        }
        let name = self::operation_name(operation).map(str::to_owned);
        let (kind, variable_definitions) = operation_kind(operation);
        if active.supergraph.schema.root_type(kind).is_none() {
            let message = format!("the schema has no {} operations", kind.as_str());
            return Err(vec![validation_error(message, &[])]);
        }
        let mut prepared =
            plan(&active.supergraph, &document, operation_name, kind, variable_definitions, overrides)?;
        prepared.name = name;
        Ok(prepared)
    }
}

/// The client's response from what an execution built: projected on the operation, with null
/// propagation and error paths.
pub(crate) fn respond(
    active: &Active,
    prepared: &Prepared,
    variables: &Map<String, Value>,
    mut state: crate::execute::State,
) -> Response {
    let schema = &active.supergraph.schema;
    let root = schema.root_type(prepared.kind).unwrap_or("Query").to_owned();
    let projection = Projection::new(schema, variables, &mut state.errors, &state.failed_paths);
    let data = projection.project(&root, &state.data, &prepared.operation.selection_set);
    Response { errors: state.errors, data: Some(Data::from_json_text(data)), extensions: Map::new() }
}

fn plan(
    supergraph: &Supergraph,
    document: &Document,
    operation_name: Option<&str>,
    kind: OperationType,
    variable_definitions: Vec<VariableDefinition>,
    overrides: PlannerOverrideContext,
) -> Result<Prepared, Vec<GraphQLError>> {
    // The planner asserts on what it does not expect; a panic there must fail this request only.
    let planned = catch_unwind(AssertUnwindSafe(|| {
        let normalized = normalize_operation(&supergraph.planner.supergraph, document, operation_name)
            .map_err(|e| e.to_string())?;
        let operation = normalized.operation;
        let downstream = without_introspection(&operation);
        let plan = if needs_subgraphs(&downstream.selection_set) {
            Some(supergraph.plan(&downstream, overrides)?)
        } else {
            None
        };
        Ok::<_, String>((operation, plan))
    }));
    let (operation, plan) = match planned {
        Ok(Ok(planned)) => planned,
        Ok(Err(message)) => {
            tracing::error!(%message, "query planning failed");
            return Err(vec![GraphQLError::new(
                "the operation could not be planned",
                code::INTERNAL_SERVER_ERROR,
            )]);
        }
        Err(_) => {
            tracing::error!("query planner panicked");
            return Err(vec![GraphQLError::new(
                "the operation could not be planned",
                code::INTERNAL_SERVER_ERROR,
            )]);
        }
    };
    let introspection = operation.selection_set.items.iter().any(is_introspection_field);
    let mut root_fields = Vec::new();
    collect_root_fields(&operation.selection_set, &mut root_fields);
    let introspection_only = root_fields.iter().all(|f| f.starts_with("__"));
    Ok(Prepared {
        kind,
        variable_definitions,
        operation,
        introspection,
        introspection_only,
        root_fields,
        name: None,
        plan,
    })
}

fn parse_message(raw: &str) -> String {
    let detail = raw.trim().trim_start_matches("query parse error:").trim();
    format!("Syntax error: {}", detail.replace('\n', " "))
}

fn validation_error(message: String, locations: &[graphql_tools::parser::Pos]) -> GraphQLError {
    locations
        .iter()
        .fold(GraphQLError::new(message, code::GRAPHQL_VALIDATION_FAILED), |e, p| e.at(p.line, p.column))
}

fn select_operation<'d>(
    document: &'d Document,
    name: Option<&str>,
) -> Result<&'d AstOperation, Vec<GraphQLError>> {
    let operations: Vec<&AstOperation> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Operation(op) => Some(op),
            Definition::Fragment(_) => None,
        })
        .collect();
    let found = match name {
        Some(name) => operations.iter().find(|op| operation_name(op) == Some(name)).copied(),
        None if operations.len() == 1 => operations.first().copied(),
        None => {
            let message = "the document has several operations; give operationName";
            return Err(vec![GraphQLError::new(message, code::OPERATION_NOT_FOUND)]);
        }
    };
    found.ok_or_else(|| {
        let message = format!("no operation named {:?} in the document", name.unwrap_or_default());
        vec![GraphQLError::new(message, code::OPERATION_NOT_FOUND)]
    })
}

fn operation_name(operation: &AstOperation) -> Option<&str> {
    match operation {
        AstOperation::Query(q) => q.name.as_deref(),
        AstOperation::Mutation(m) => m.name.as_deref(),
        AstOperation::Subscription(s) => s.name.as_deref(),
        AstOperation::SelectionSet(_) => None,
    }
}

fn selection_set(operation: &AstOperation) -> &graphql_tools::static_graphql::query::SelectionSet {
    match operation {
        AstOperation::Query(q) => &q.selection_set,
        AstOperation::Mutation(m) => &m.selection_set,
        AstOperation::Subscription(s) => &s.selection_set,
        AstOperation::SelectionSet(s) => s,
    }
}

fn operation_kind(operation: &AstOperation) -> (OperationType, Vec<VariableDefinition>) {
    match operation {
        AstOperation::Query(q) => (OperationType::Query, q.variable_definitions.clone()),
        AstOperation::Mutation(m) => (OperationType::Mutation, m.variable_definitions.clone()),
        AstOperation::Subscription(s) => (OperationType::Subscription, s.variable_definitions.clone()),
        AstOperation::SelectionSet(_) => (OperationType::Query, Vec::new()),
    }
}

fn is_introspection_field(item: &SelectionItem) -> bool {
    matches!(item, SelectionItem::Field(f) if f.name == "__schema" || f.name == "__type")
}

/// The operation without its root introspection fields (the router answers those itself).
fn without_introspection(operation: &OperationDefinition) -> OperationDefinition {
    let mut downstream = operation.clone();
    downstream.selection_set.items.retain(|item| !is_introspection_field(item));
    downstream
}

/// Field names at the root, inline fragments flattened; a fragment spread (none survive
/// normalisation) counts as a field nobody may use anonymously.
fn collect_root_fields(selection: &SelectionSet, out: &mut Vec<String>) {
    for item in &selection.items {
        match item {
            SelectionItem::Field(f) => out.push(f.name.clone()),
            SelectionItem::InlineFragment(fragment) => collect_root_fields(&fragment.selections, out),
            SelectionItem::FragmentSpread(name) => out.push(format!("...{name}")),
        }
    }
}

/// Whether anything is left for subgraphs once the router's own fields are taken out.
fn needs_subgraphs(selection: &SelectionSet) -> bool {
    selection.items.iter().any(|item| match item {
        SelectionItem::Field(f) => f.name != "__typename",
        SelectionItem::InlineFragment(fragment) => needs_subgraphs(&fragment.selections),
        SelectionItem::FragmentSpread(_) => true,
    })
}
