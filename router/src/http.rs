//! GraphQL over HTTP: `POST /graphql` (JSON), `GET /graphql` (queries only), GraphiQL at `/`.
//! Responses follow the GraphQL-over-HTTP specification: `application/graphql-response+json` with
//! 4xx for requests that fail before execution when the client accepts it, else `application/json`
//! with 200 for anything that is a GraphQL response.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pyairtable_kit::Caller;
use pyairtable_kit::http::RequestId;
use serde_json::{Map, Value};

use crate::auth::AuthError;
use crate::csrf::csrf;
use crate::flow::{Answer, RequestContext};
use crate::graphiql::graphiql;
use crate::pipeline::{GraphQLRequest, Outcome, Pipeline};
use crate::ratelimit::RateStatus;
use crate::reply::{JSON, Reply, is_json, response_media};
use crate::response::{GraphQLError, Response as GraphQLResponse, code};
use crate::subscription::{sse, ws};
use crate::{limits, metrics};

/// The router's shared state: the pipeline of the current supergraph.
pub type RouterState = Arc<Pipeline>;

/// The client's address: the peer, or, when the peer is a trusted proxy (an ingress, a load
/// balancer: `PYAIRTABLE_TRUSTED_PROXIES`), the last address it appended to `X-Forwarded-For`.
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Fills in the client's address and user agent.
pub(crate) fn identify(mut caller: Caller, pipeline: &Pipeline, peer: &Peer, headers: &HeaderMap) -> Caller {
    caller.ip = client_ip(peer, headers, &pipeline.options().trusted_proxies);
    caller.user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(200).collect());
    caller
}

fn client_ip(peer: &Peer, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> Option<String> {
    let peer = peer.as_ref().map(|Extension(ConnectInfo(addr))| addr.ip())?;
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
    let believed = forwarded.filter(|_| trusted.iter().any(|net| net.contains(&peer)));
    Some(believed.unwrap_or(peer).to_string())
}

pub async fn post_graphql(
    State(pipeline): State<RouterState>,
    Extension(request_id): Extension<RequestId>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = Reply { media: response_media(&headers), request_id: &request_id.0 };
    if let Some(refused) = csrf(&pipeline, &headers, &reply) {
        return refused;
    }
    if !is_json(&headers) {
        let error = GraphQLError::new("send the request as application/json", code::BAD_REQUEST);
        return reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, error);
    }
    let parsed = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(Value::Array(items)) => return batch(&pipeline, items, &reply, (&peer, &headers)).await,
        Ok(_) => return reply.bad_request("the body must be a JSON object"),
        Err(e) => return reply.bad_request(&format!("the body is not valid JSON: {e}")),
    };
    let request = match parsed.map(Value::Object).and_then(serde_json::from_value::<GraphQLRequest>) {
        Ok(request) => request,
        Err(e) => return reply.bad_request(&format!("malformed GraphQL request: {e}")),
    };
    let caller = match authenticate(&pipeline, &headers, &reply).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    if sse::wanted(&headers) {
        return stream(&pipeline, request, caller, &reply, (&peer, &headers), false).await;
    }
    let exchange = run(&pipeline, request, &caller, &reply, (&peer, &headers), false).await;
    reply.exchange(exchange)
}

/// Answers with Server-Sent Events.
async fn stream(
    pipeline: &RouterState,
    request: GraphQLRequest,
    caller: Caller,
    reply: &Reply<'_>,
    (peer, headers): (&Peer, &HeaderMap),
    get: bool,
) -> Response {
    let caller = identify(caller, pipeline, peer, headers);
    let api_key = bearer(headers).filter(|token| token.starts_with("pat_"));
    let propagated = crate::headers::select(headers, &pipeline.options().edge.propagate_headers);
    let context = RequestContext { request_id: reply.request_id, get, api_key, propagated, stream: true };
    sse::respond(pipeline, request, &caller, context, reply).await
}

/// A JSON array of operations: each runs on its own (concurrently; each draws on the rate
/// limits), and the answer is the array of their responses, with 200 (statuses of single
/// requests cannot be told apart in one array).
async fn batch(
    pipeline: &Pipeline,
    items: Vec<Value>,
    reply: &Reply<'_>,
    client: (&Peer, &HeaderMap),
) -> Response {
    let max = pipeline.options().edge.limits.max_batch;
    if items.is_empty() {
        return reply.bad_request("the batch is empty");
    }
    if max == 1 || items.len() > max as usize {
        metrics::refusal("batch_size");
        let error = limits::refused(
            limits::code::MAX_BATCH_SIZE_EXCEEDED,
            "batch size",
            items.len() as u64,
            max.into(),
        );
        let error = if max == 1 {
            error.with_message("batched requests are not accepted; send one operation")
        } else {
            error
        };
        return reply.error(StatusCode::BAD_REQUEST, error);
    }
    let caller = match authenticate(pipeline, client.1, reply).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let runs = items.into_iter().map(|item| {
        let caller = &caller;
        async move {
            match serde_json::from_value::<GraphQLRequest>(item) {
                Ok(request) => run(pipeline, request, caller, reply, client, false).await,
                Err(e) => Exchange::bad(format!("malformed GraphQL request: {e}")),
            }
        }
    });
    let exchanges = futures::future::join_all(runs).await;
    let rate = exchanges.iter().find(|e| !e.rate.allowed()).or(exchanges.last()).map(|e| e.rate.clone());
    let bodies: Vec<GraphQLResponse> = exchanges.into_iter().map(|e| reply.tag(e.body)).collect();
    let mut response = reply.graphql_batch(StatusCode::OK, &bodies);
    if let Some(rate) = rate {
        rate.write_headers(response.headers_mut());
    }
    response
}

/// Query-string parameters of `GET /graphql`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
    document_id: Option<String>,
}

pub async fn get_graphql(
    State(pipeline): State<RouterState>,
    Extension(request_id): Extension<RequestId>,
    peer: Peer,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    if ws::is_upgrade(&headers) {
        parts.headers.clone_from(&headers);
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        let client = ws::Client {
            caller: identify(Caller::anonymous(), &pipeline, &peer, &headers),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            request_id: request_id.0,
            propagated: crate::headers::select(&headers, &pipeline.options().edge.propagate_headers),
        };
        return ws::accept(pipeline, client, &headers, upgrade).await;
    }
    let params = match Query::<GetParams>::try_from_uri(&parts.uri) {
        Ok(Query(params)) => params,
        Err(rejection) => return rejection.into_response(),
    };
    let reply = Reply { media: response_media(&headers), request_id: &request_id.0 };
    let no_operation = params.query.is_none() && params.extensions.is_none() && params.document_id.is_none();
    if no_operation && accepts_html(&headers) && pipeline.options().edge.graphiql {
        return graphiql().await;
    }
    if let Some(refused) = csrf(&pipeline, &headers, &reply) {
        return refused;
    }
    let variables = match parse_json_param(params.variables.as_deref(), "variables") {
        Ok(v) => v,
        Err(message) => return reply.bad_request(&message),
    };
    let extensions = match parse_json_param(params.extensions.as_deref(), "extensions") {
        Ok(v) => v,
        Err(message) => return reply.bad_request(&message),
    };
    let request = GraphQLRequest {
        query: params.query,
        operation_name: params.operation_name,
        variables,
        extensions,
        document_id: params.document_id,
    };
    let caller = match authenticate(&pipeline, &headers, &reply).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    if sse::wanted(&headers) {
        return stream(&pipeline, request, caller, &reply, (&peer, &headers), true).await;
    }
    let exchange = run(&pipeline, request, &caller, &reply, (&peer, &headers), true).await;
    reply.exchange(exchange)
}

fn parse_json_param(raw: Option<&str>, name: &str) -> Result<Option<Map<String, Value>>, String> {
    match raw.map(serde_json::from_str::<Value>) {
        None | Some(Ok(Value::Null)) => Ok(None),
        Some(Ok(Value::Object(map))) => Ok(Some(map)),
        Some(_) => Err(format!("`{name}` must be a JSON object")),
    }
}

/// A response body, its status and the rate-limit verdicts.
pub(crate) struct Exchange {
    pub(crate) status: StatusCode,
    pub(crate) body: GraphQLResponse,
    pub(crate) rate: RateStatus,
    pub(crate) allow_post: bool,
}

impl Exchange {
    fn bad(message: String) -> Self {
        let body = GraphQLResponse::request_error(vec![GraphQLError::new(message, code::BAD_REQUEST)]);
        Self { status: StatusCode::BAD_REQUEST, body, rate: RateStatus::default(), allow_post: false }
    }
}

/// Admits a request the pipeline does not run itself (a multipart upload): authenticates the
/// caller (with the client's address, as for every request) and charges the admission budgets.
/// The caller, or the response that refuses the request (401, 429 with its rate-limit headers).
pub(crate) async fn admit(
    pipeline: &Pipeline,
    request_id: &str,
    (peer, headers): (&Peer, &HeaderMap),
) -> Result<Caller, Response> {
    let reply = Reply { media: response_media(headers), request_id };
    let caller = identify(authenticate(pipeline, headers, &reply).await?, pipeline, peer, headers);
    let api_key = bearer(headers).filter(|token| token.starts_with("pat_"));
    let rate = pipeline.admit(&caller, api_key).await;
    if rate.allowed() {
        return Ok(caller);
    }
    metrics::refusal("rate_limit");
    let body = crate::flow::rate_limited_body(&rate);
    Err(reply.exchange(Exchange { status: StatusCode::TOO_MANY_REQUESTS, body, rate, allow_post: false }))
}

/// Runs one operation for an authenticated caller and picks its status.
async fn run(
    pipeline: &Pipeline,
    request: GraphQLRequest,
    caller: &Caller,
    reply: &Reply<'_>,
    (peer, headers): (&Peer, &HeaderMap),
    get: bool,
) -> Exchange {
    let caller = identify(caller.clone(), pipeline, peer, headers);
    let api_key = bearer(headers).filter(|token| token.starts_with("pat_"));
    let propagated = crate::headers::select(headers, &pipeline.options().edge.propagate_headers);
    let context = RequestContext { request_id: reply.request_id, get, api_key, propagated, stream: false };
    exchange(pipeline.execute(request, &caller, context).await, reply.media == JSON)
}

/// The status of an answer: 4xx for refusals under the GraphQL-over-HTTP media type, 200 under
/// the legacy one; 405 and 429 under either.
pub(crate) fn exchange(Answer { outcome, rate }: Answer, legacy: bool) -> Exchange {
    let (status, body) = match outcome {
        Outcome::Executed(response) => (StatusCode::OK, response),
        Outcome::RequestError(response) => {
            (if legacy { StatusCode::OK } else { StatusCode::BAD_REQUEST }, response)
        }
        Outcome::Unauthenticated(response) => {
            (if legacy { StatusCode::OK } else { StatusCode::UNAUTHORIZED }, response)
        }
        Outcome::MethodNotAllowed(response) => (StatusCode::METHOD_NOT_ALLOWED, response),
        // Rate limiting is an HTTP matter: 429 whatever the media type (see README, "Limits").
        Outcome::RateLimited(response) => (StatusCode::TOO_MANY_REQUESTS, response),
    };
    let allow_post = status == StatusCode::METHOD_NOT_ALLOWED;
    Exchange { status, body, rate, allow_post }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

/// The caller, or the response that refuses the request: 401 for bad credentials (whatever the
/// client accepts), 503 when the auth service cannot be asked.
async fn authenticate(
    pipeline: &Pipeline,
    headers: &HeaderMap,
    reply: &Reply<'_>,
) -> Result<Caller, Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str().map_err(|_| AuthError::InvalidToken("the Authorization header is not text".into()))
        })
        .transpose();
    let result = match (authorization, pipeline.authenticator()) {
        (Err(err), _) => Err(err),
        (Ok(authorization), Some(authenticator)) => authenticator.authenticate(authorization).await,
        (Ok(Some(_)), None) => {
            Err(AuthError::InvalidToken("this router has no auth service to verify credentials".into()))
        }
        (Ok(None), None) => Ok(Caller::anonymous()),
    };
    result.map_err(|err| {
        tracing::info!(%err, "request refused at authentication");
        let (status, error) = match err {
            AuthError::InvalidToken(_) => (
                StatusCode::UNAUTHORIZED,
                GraphQLError::new("the credentials are invalid or expired", code::UNAUTHENTICATED),
            ),
            AuthError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                GraphQLError::new("authentication is unavailable; retry shortly", code::SERVICE_UNAVAILABLE),
            ),
        };
        let mut response = reply.error(status, error);
        if status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static("Bearer error=\"invalid_token\"");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    })
}

/// `GET /.well-known/jwks.json`: the auth service's public keys, from the router's cache.
pub async fn jwks(State(pipeline): State<RouterState>) -> Response {
    let Some(authenticator) = pipeline.authenticator() else { return StatusCode::NOT_FOUND.into_response() };
    match authenticator.jwks_document().await {
        Ok(document) => {
            ([(header::CACHE_CONTROL, "public, max-age=300")], axum::Json(document)).into_response()
        }
        Err(err) => {
            tracing::warn!(%err, "serving the JWKS");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}
