//! Subscriptions: the plan's primary fetch is opened as a stream on the owning subgraph, and each
//! event runs through the rest of the plan (entity fetches to other subgraphs) and the client's
//! projection, like the response of a query. Served over WebSocket (`ws.rs`: graphql-transport-ws
//! and the legacy graphql-ws) and Server-Sent Events (`sse.rs`).

pub(crate) mod sse;
pub(crate) mod upstream;
pub(crate) mod ws;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hive_router_query_planner::planner::plan_nodes::{FetchNode, PlanNode, SequenceNode};
use pyairtable_kit::{Caller, Lifecycle};
use serde_json::{Map, Value};

use crate::entities::apply_rewrites;
use crate::execute::Execution;
use crate::fetch::Fetch;
use crate::flow::{Ready, ResponseStream};
use crate::gateway::Active;
use crate::headers::{self, Propagated};
use crate::pipeline::{Pipeline, Prepared, respond};
use crate::response::{Data, GraphQLError, Response, code};
use crate::transport::{SubgraphResponse, TransportError};

/// How the router serves long-lived operations.
#[derive(Debug, Clone)]
pub struct SubscriptionOptions {
    /// How long a WebSocket may stay open before `connection_init` (then closed with 4408).
    pub init_timeout: Duration,
    /// How often an idle client is pinged (`ping`, the legacy `ka`, an SSE comment).
    pub keepalive: Duration,
    /// Operations at once on one WebSocket.
    pub max_per_connection: usize,
    /// Messages queued for one client; when full, its subscriptions wait for it (backpressure:
    /// the subgraph's events are not read further), so a slow client holds a bounded amount.
    pub buffer: usize,
    /// A client that does not take a message within this time is disconnected.
    pub write_timeout: Duration,
    /// When set, its stop closes every WebSocket (1012 on SIGTERM, 1001 otherwise) and ends
    /// every event stream.
    pub lifecycle: Option<Lifecycle>,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        let limits = pyairtable_kit::config::WebSocketLimits::default();
        Self { lifecycle: None, ..Self::from_limits(&limits, &Lifecycle::new(Duration::ZERO)) }
    }
}

impl SubscriptionOptions {
    /// The configured limits (`PYAIRTABLE_WS_*`), closing on `lifecycle`'s stop.
    pub fn from_limits(limits: &pyairtable_kit::config::WebSocketLimits, lifecycle: &Lifecycle) -> Self {
        Self {
            init_timeout: limits.init_timeout,
            keepalive: limits.keepalive,
            max_per_connection: limits.max_operations as usize,
            buffer: limits.buffer as usize,
            write_timeout: limits.write_timeout,
            lifecycle: Some(lifecycle.clone()),
        }
    }
}

/// What one subscription needs for each of its events.
struct Events {
    active: Arc<Active>,
    prepared: Arc<Prepared>,
    variables: Map<String, Value>,
    caller: Caller,
    request_id: String,
    propagated: Propagated,
    primary: FetchNode,
    /// The plan after the primary fetch, run for every event.
    rest: Option<PlanNode>,
}

/// Opens the subscription on its subgraph; the client's responses, one per event. A failure to
/// open is the response that says why.
pub(crate) async fn open(
    pipeline: &Arc<Pipeline>,
    ready: Ready,
    caller: &Caller,
    request_id: &str,
    propagated: Propagated,
) -> Result<ResponseStream, Response> {
    let Ready { active, prepared, variables } = ready;
    let plan = prepared.plan.as_ref().and_then(|p| p.node.as_ref());
    let Some((primary, rest)) = plan.and_then(split).map(|(primary, rest)| (primary.clone(), rest)) else {
        tracing::error!(request_id, "a subscription plan without a subscription fetch");
        let error = GraphQLError::new("the subscription could not be planned", code::INTERNAL_SERVER_ERROR);
        return Err(Response::request_error(vec![error]));
    };
    let service = primary.service_name.clone();
    let Some(fetcher) = active.fetchers.get(&service).cloned() else {
        let error =
            GraphQLError::new(format!("no route to subgraph {service:?}"), code::INTERNAL_SERVER_ERROR);
        return Err(Response::request_error(vec![error]));
    };
    let primary_variables: Map<String, Value> = primary
        .variable_usages
        .iter()
        .flatten()
        .filter_map(|name| variables.get(name).map(|v| (name.clone(), v.clone())))
        .collect();
    let fetch = Fetch {
        query: &primary.operation.document_str,
        variables: primary_variables,
        written: Vec::new(),
        caller,
        request_id,
        idempotent: false,
    };
    let upstream = match headers::forwarding(propagated.clone(), fetcher.subscribe(fetch)).await {
        Ok(upstream) => upstream,
        Err(err) => {
            tracing::warn!(subgraph = %service, request_id, %err, "opening a subscription failed");
            return Err(Response {
                data: Some(Data::null()),
                ..Response::request_error(vec![failed(&service, &err)])
            });
        }
    };
    let events = Arc::new(Events {
        active,
        prepared,
        variables,
        caller: caller.clone(),
        request_id: request_id.to_owned(),
        propagated,
        primary,
        rest,
    });
    let gauge = SubscriptionGauge::enter();
    let stream = upstream.then(move |event| {
        let events = events.clone();
        let _held = &gauge;
        async move { events.resolve(event).await }
    });
    let stop = pipeline.options().subscriptions.lifecycle.clone();
    Ok(match stop {
        Some(lifecycle) => stream.take_until(async move { lifecycle.stopping().await }).boxed(),
        None => stream.boxed(),
    })
}

/// Counts a subscription in `router_subscriptions_active` until dropped.
struct SubscriptionGauge;

impl SubscriptionGauge {
    fn enter() -> Self {
        metrics::gauge!("router_subscriptions_active").increment(1.0);
        Self
    }
}

impl Drop for SubscriptionGauge {
    fn drop(&mut self) {
        metrics::gauge!("router_subscriptions_active").decrement(1.0);
    }
}

/// The subscription fetch and what follows it in the plan.
fn split(plan: &PlanNode) -> Option<(&FetchNode, Option<PlanNode>)> {
    match plan {
        PlanNode::Subscription(node) => Some((&node.primary, None)),
        PlanNode::Sequence(sequence) => {
            let (first, rest) = sequence.nodes.split_first()?;
            let PlanNode::Subscription(node) = first else { return None };
            let rest = (!rest.is_empty()).then(|| PlanNode::Sequence(SequenceNode { nodes: rest.to_vec() }));
            Some((&node.primary, rest))
        }
        _ => None,
    }
}

fn failed(service: &str, err: &TransportError) -> GraphQLError {
    let message = format!("subgraph {service:?} {}", err.public_message());
    GraphQLError::new(message, code::SUBGRAPH_REQUEST_FAILED).with_extension("serviceName", service)
}

impl Events {
    /// One event, as the client sees it: the rest of the plan run on it, then projected.
    async fn resolve(&self, event: Result<SubgraphResponse, TransportError>) -> Response {
        metrics::counter!("router_subscription_events_total").increment(1);
        let service = &self.primary.service_name;
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(subgraph = %service, request_id = %self.request_id, %err, "subscription failed");
                return Response {
                    data: Some(Data::null()),
                    ..Response::request_error(vec![failed(service, &err)])
                };
            }
        };
        let errors: Vec<GraphQLError> = event.errors.into_iter().map(GraphQLError::from_subgraph).collect();
        let Some(mut data) = event.data else {
            return Response { data: Some(Data::null()), ..Response::request_error(errors) };
        };
        let schema = &self.active.supergraph.schema;
        if let Some(rewrites) = &self.primary.output_rewrites {
            apply_rewrites(&mut data, rewrites, schema);
        }
        let execution = Execution::new(
            &self.active.fetchers,
            schema,
            &self.variables,
            &self.caller,
            &self.request_id,
            data,
        )
        .with_errors(errors);
        let state = headers::forwarding(self.propagated.clone(), execution.run(self.rest.as_ref())).await;
        respond(&self.active, &self.prepared, &self.variables, state)
    }
}
