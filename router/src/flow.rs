//! The edge around one operation: admission (rate limits per IP, caller, tenant), persisted
//! queries and trusted documents, token and shape limits, the anonymous allow-list, cost, and
//! the per-operation budgets; then execution, with the propagated headers; then metrics.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::BoxStream;
use pyairtable_kit::Caller;
use pyairtable_kit::config::Environment;
use serde_json::{Map, Value};

use crate::gateway::Active;
use crate::headers::{self, Propagated};
use crate::limits::{self, cost::Estimate};
use crate::persisted::code::PERSISTED_QUERY_NOT_IN_LIST;
use crate::pipeline::{GraphQLRequest, Outcome, Pipeline, Prepared};
use crate::ratelimit::RateStatus;
use crate::response::{GraphQLError, Response, code};
use crate::schema::OperationType;
use crate::supergraph::Supergraph;
use crate::{guard, metrics, variables};

/// Where a request comes from, besides its caller.
pub struct RequestContext<'a> {
    pub request_id: &'a str,
    /// Sent over HTTP GET (queries only).
    pub get: bool,
    /// The API key the caller authenticated with (each key has its own budget).
    pub api_key: Option<&'a str>,
    /// Client headers forwarded to subgraphs.
    pub propagated: Propagated,
    /// Answered as a stream (WebSocket, Server-Sent Events): subscriptions may run, also over GET.
    pub stream: bool,
}

/// An operation that passed every check, ready to run.
pub(crate) struct Ready {
    pub(crate) active: Arc<Active>,
    pub(crate) prepared: Arc<Prepared>,
    pub(crate) variables: Map<String, Value>,
}

/// The responses of an operation run as a stream: every event of a subscription, or the one
/// response of a query or mutation.
pub type ResponseStream = BoxStream<'static, Response>;

/// What became of a request, and the rate-limit verdicts for its headers.
pub struct Answer {
    pub outcome: Outcome,
    pub rate: RateStatus,
}

/// What metrics say about an operation.
struct Trace {
    name: Option<String>,
    kind: &'static str,
    refusal: Option<&'static str>,
}

fn request_error(error: impl Into<Box<GraphQLError>>) -> Outcome {
    Outcome::RequestError(Response::request_error(vec![*error.into()]))
}

impl Pipeline {
    /// Runs one request.
    pub async fn execute(
        &self,
        request: GraphQLRequest,
        caller: &Caller,
        context: RequestContext<'_>,
    ) -> Answer {
        let started = Instant::now();
        let (mut rate, mut trace) = self.admitted(caller, &context).await;
        let outcome = if rate.allowed() {
            self.run(request, caller, &context, &mut trace, &mut rate).await
        } else {
            rate_limited(&rate)
        };
        self.record(label(&outcome), &trace, started);
        Answer { outcome, rate }
    }

    /// Starts one operation whose responses are streamed (WebSocket, Server-Sent Events): the
    /// same checks as [`Pipeline::execute`], then a subscription's events, or the one response of
    /// a query or mutation. A refusal is the answer an HTTP request would get.
    pub async fn start(
        self: &Arc<Self>,
        request: GraphQLRequest,
        caller: &Caller,
        context: RequestContext<'_>,
    ) -> Result<ResponseStream, Answer> {
        let started = Instant::now();
        let (mut rate, mut trace) = self.admitted(caller, &context).await;
        let ready = if rate.allowed() {
            self.check(request, caller, &context, &mut trace, &mut rate).await
        } else {
            Err(rate_limited(&rate))
        };
        let ready = match ready {
            Ok(ready) => ready,
            Err(outcome) => {
                self.record(label(&outcome), &trace, started);
                return Err(Answer { outcome, rate });
            }
        };
        let propagated = context.propagated.clone();
        let response = if ready.prepared.kind == OperationType::Subscription {
            match crate::subscription::open(self, ready, caller, context.request_id, propagated).await {
                Ok(events) => {
                    self.record("ok", &trace, started);
                    return Ok(events);
                }
                Err(response) => response,
            }
        } else {
            let Ready { active, prepared, variables } = ready;
            let execution = self.execute_prepared(&active, &prepared, &variables, caller, context.request_id);
            headers::forwarding(propagated, execution).await
        };
        self.record(if response.errors.is_empty() { "ok" } else { "field_errors" }, &trace, started);
        Ok(futures::stream::once(async { response }).boxed())
    }

    /// The admission verdict, and the trace that records a refusal by it.
    async fn admitted(&self, caller: &Caller, context: &RequestContext<'_>) -> (RateStatus, Trace) {
        let rate = self.admit(caller, context.api_key).await;
        let refusal = (!rate.allowed()).then_some("rate_limit");
        (rate, Trace { name: None, kind: "unknown", refusal })
    }

    fn record(&self, result: &'static str, trace: &Trace, started: Instant) {
        if let Some(reason) = trace.refusal {
            metrics::refusal(reason);
        }
        metrics::operation(self.names.label(trace.name.as_deref()), trace.kind, result, started.elapsed());
    }

    /// Charges a request to the budgets every request draws on (per IP, caller and tenant).
    pub(crate) async fn admit(&self, caller: &Caller, api_key: Option<&str>) -> RateStatus {
        let caller_key = guard::caller_partition(caller, api_key);
        self.limiter.check(&guard::admission(&self.options.edge.rate_limits, caller, caller_key)).await
    }

    async fn run(
        &self,
        request: GraphQLRequest,
        caller: &Caller,
        context: &RequestContext<'_>,
        trace: &mut Trace,
        rate: &mut RateStatus,
    ) -> Outcome {
        let ready = match self.check(request, caller, context, trace, rate).await {
            Ok(ready) => ready,
            Err(outcome) => return outcome,
        };
        if ready.prepared.kind == OperationType::Subscription {
            trace.refusal = Some("subscription_over_http");
            let message = "subscriptions are served over a WebSocket on /graphql (graphql-transport-ws or \
                           graphql-ws) or as Server-Sent Events (Accept: text/event-stream)";
            return request_error(GraphQLError::new(message, code::BAD_REQUEST));
        }
        let Ready { active, prepared, variables } = ready;
        let execution = self.execute_prepared(&active, &prepared, &variables, caller, context.request_id);
        Outcome::Executed(headers::forwarding(context.propagated.clone(), execution).await)
    }

    /// Every check before execution; the operation ready to run, or why it may not.
    async fn check(
        &self,
        request: GraphQLRequest,
        caller: &Caller,
        context: &RequestContext<'_>,
        trace: &mut Trace,
        rate: &mut RateStatus,
    ) -> Result<Ready, Outcome> {
        let edge = &self.options.edge;
        let extensions = request.extensions.as_ref();
        let resolved =
            match self.persisted.resolve(request.query, extensions, request.document_id.as_deref()).await {
                Ok(resolved) => resolved,
                Err(error) => {
                    trace.refusal =
                        (error.code() == Some(PERSISTED_QUERY_NOT_IN_LIST)).then_some("trusted_documents");
                    return Err(request_error(error));
                }
            };
        let escape = edge.environment == Environment::Development;
        if !resolved.trusted && !escape {
            trace.refusal = Some("trusted_documents");
            return Err(request_error(not_in_list()));
        }
        if let Err(error) = limits::check_tokens(&resolved.query, &edge.limits) {
            trace.refusal = error.code().map(limits::reason);
            return Err(request_error(error));
        }
        // The whole request runs on the supergraph current now, whatever reloads happen meanwhile.
        let active = self.gateway.current();
        let prepared = match self.prepare(&active, &resolved.query, request.operation_name.as_deref()) {
            Ok(prepared) => prepared,
            Err(errors) => {
                trace.refusal =
                    errors.first().and_then(GraphQLError::code).map(limits::reason).filter(|r| *r != "other");
                return Err(Outcome::RequestError(Response::request_error(errors.as_ref().clone())));
            }
        };
        (trace.name, trace.kind) = (prepared.name.clone(), prepared.kind.as_str());
        if !resolved.trusted && !prepared.introspection_only {
            trace.refusal = Some("trusted_documents");
            return Err(request_error(not_in_list()));
        }
        if let Some(hash) = &resolved.register {
            self.persisted.register(hash, &resolved.query).await;
        }
        if let Some(refused) = self.refuse(&prepared, caller, context, trace) {
            return Err(refused);
        }
        let provided = request.variables.unwrap_or_default();
        let variables =
            match variables::coerce(&active.supergraph.schema, &prepared.variable_definitions, &provided) {
                Ok(variables) => variables,
                Err(errors) => return Err(Outcome::RequestError(Response::request_error(errors))),
            };
        let cost = match self.cost(&active.supergraph, &prepared, &variables) {
            Ok(cost) => cost,
            Err(error) => {
                trace.refusal = error.code().map(limits::reason).filter(|r| *r != "other");
                return Err(request_error(error));
            }
        };
        // The anonymous mutations (sign-up, log-in, refresh, reset, verification) have a budget
        // of their own, whoever calls them.
        let mut public = Vec::new();
        if let Some(authenticator) =
            self.authenticator.as_ref().filter(|_| prepared.kind == OperationType::Mutation)
        {
            let set = &authenticator.public.mutations;
            guard::public_fields(&prepared.operation.selection_set.items, &|f| set.contains(f), &mut public);
        }
        let budgets = guard::operation(&edge.rate_limits, caller, cost, &public, &variables);
        rate.extend(self.limiter.check(&budgets).await);
        if !rate.allowed() {
            trace.refusal = Some("rate_limit");
            return Err(rate_limited(rate));
        }
        Ok(Ready { active, prepared, variables })
    }

    /// GET for a mutation, the anonymous allow-list, disabled introspection.
    fn refuse(
        &self,
        prepared: &Prepared,
        caller: &Caller,
        context: &RequestContext<'_>,
        trace: &mut Trace,
    ) -> Option<Outcome> {
        let streamed_subscription = context.stream && prepared.kind == OperationType::Subscription;
        if context.get && prepared.kind != OperationType::Query && !streamed_subscription {
            trace.refusal = Some("method_not_allowed");
            let message = format!("{} operations must be sent with POST", prepared.kind.as_str());
            let error = GraphQLError::new(message, code::BAD_REQUEST);
            return Some(Outcome::MethodNotAllowed(Response::request_error(vec![error])));
        }
        if let Some(field) = self.forbidden_to_anonymous(prepared, caller) {
            trace.refusal = Some("unauthenticated");
            let error = GraphQLError::new(format!("sign in to use `{field}`"), code::UNAUTHENTICATED);
            return Some(Outcome::Unauthenticated(Response::request_error(vec![error])));
        }
        if prepared.introspection && !self.options.edge.introspection {
            trace.refusal = Some("introspection");
            let error = GraphQLError::new("introspection is disabled", code::GRAPHQL_VALIDATION_FAILED);
            return Some(request_error(error));
        }
        None
    }

    /// The operation's estimated cost, refused over the maximum.
    fn cost(
        &self,
        supergraph: &Supergraph,
        prepared: &Prepared,
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<u64, Box<GraphQLError>> {
        let limits = &self.options.edge.limits;
        let schema = &supergraph.schema;
        let estimate =
            Estimate { schema, directives: &supergraph.cost, variables, list_size: limits.list_size.into() };
        let root = schema.root_type(prepared.kind).unwrap_or("Query");
        let mutation = prepared.kind == OperationType::Mutation;
        let cost = estimate.operation(root, mutation, &prepared.operation.selection_set)?;
        if cost > limits.max_cost {
            return Err(Box::new(limits::refused(
                limits::code::COST_LIMIT_EXCEEDED,
                "estimated cost",
                cost,
                limits.max_cost,
            )));
        }
        Ok(cost)
    }
}

/// The `result` label of the operation metrics.
fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Executed(r) if r.errors.is_empty() => "ok",
        Outcome::Executed(_) => "field_errors",
        Outcome::RequestError(_) => "request_error",
        Outcome::MethodNotAllowed(_) => "method_not_allowed",
        Outcome::Unauthenticated(_) => "unauthenticated",
        Outcome::RateLimited(_) => "rate_limited",
    }
}

fn not_in_list() -> GraphQLError {
    GraphQLError::new("only trusted documents may run on this router", PERSISTED_QUERY_NOT_IN_LIST)
}

fn rate_limited(rate: &RateStatus) -> Outcome {
    Outcome::RateLimited(rate_limited_body(rate))
}

/// The body refusing a request over its budget.
pub(crate) fn rate_limited_body(rate: &RateStatus) -> Response {
    let error = rate
        .error()
        .unwrap_or_else(|| GraphQLError::new("rate limit exceeded", crate::ratelimit::RATE_LIMITED));
    Response::request_error(vec![error])
}
