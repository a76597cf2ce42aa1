//! GraphQL over HTTP: `POST /graphql` (JSON), `GET /graphql` (queries only), GraphiQL at `/`.
//! Responses follow the GraphQL-over-HTTP specification: `application/graphql-response+json` with
//! 4xx for requests that fail before execution when the client accepts it, else `application/json`
//! with 200 for anything that is a GraphQL response.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use pyairtable_kit::Caller;
use pyairtable_kit::http::RequestId;
use serde_json::{Map, Value};

use crate::auth::AuthError;
use crate::pipeline::{GraphQLRequest, Outcome, Pipeline};
use crate::response::{GraphQLError, Response as GraphQLResponse, code};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The router's shared state: the pipeline of the current supergraph.
pub type RouterState = Arc<Pipeline>;

/// The client's address: the peer, or, when the peer is a trusted proxy (an ingress, a load
/// balancer: `PYAIRTABLE_TRUSTED_PROXIES`), the last address it appended to `X-Forwarded-For`.
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

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
    let media = response_media(&headers);
    if !is_json(&headers) {
        let error = GraphQLError::new("send the request as application/json", code::BAD_REQUEST);
        return respond(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &GraphQLResponse::request_error(vec![error]),
        );
    }
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => serde_json::from_value::<GraphQLRequest>(Value::Object(object)),
        Ok(Value::Array(_)) => return bad_request(media, "batched requests are not supported"),
        Ok(_) => return bad_request(media, "the body must be a JSON object"),
        Err(e) => return bad_request(media, &format!("the body is not valid JSON: {e}")),
    };
    match request {
        Ok(request) => run(&pipeline, request, &request_id, (&peer, &headers), media, false).await,
        Err(e) => bad_request(media, &format!("malformed GraphQL request: {e}")),
    }
}

/// Query-string parameters of `GET /graphql`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

pub async fn get_graphql(
    State(pipeline): State<RouterState>,
    Extension(request_id): Extension<RequestId>,
    peer: Peer,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let media = response_media(&headers);
    if params.query.is_none() && accepts_html(&headers) && pipeline.options().graphiql {
        return graphiql().await;
    }
    let variables = match parse_json_param(params.variables.as_deref(), "variables") {
        Ok(v) => v,
        Err(message) => return bad_request(media, &message),
    };
    let extensions = match parse_json_param(params.extensions.as_deref(), "extensions") {
        Ok(v) => v,
        Err(message) => return bad_request(media, &message),
    };
    let request =
        GraphQLRequest { query: params.query, operation_name: params.operation_name, variables, extensions };
    run(&pipeline, request, &request_id, (&peer, &headers), media, true).await
}

fn parse_json_param(raw: Option<&str>, name: &str) -> Result<Option<Map<String, Value>>, String> {
    match raw.map(serde_json::from_str::<Value>) {
        None | Some(Ok(Value::Null)) => Ok(None),
        Some(Ok(Value::Object(map))) => Ok(Some(map)),
        Some(_) => Err(format!("`{name}` must be a JSON object")),
    }
}

async fn run(
    pipeline: &Pipeline,
    request: GraphQLRequest,
    request_id: &RequestId,
    (peer, headers): (&Peer, &HeaderMap),
    media: &'static str,
    get: bool,
) -> Response {
    let mut caller = match authenticate(pipeline, headers).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    caller.ip = client_ip(peer, headers, &pipeline.options().trusted_proxies);
    caller.user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(200).collect());
    let outcome = pipeline.execute(request, &caller, &request_id.0, get).await;
    let legacy = media == JSON;
    match outcome {
        Outcome::Executed(response) => respond(media, StatusCode::OK, &response),
        Outcome::RequestError(response) => {
            respond(media, if legacy { StatusCode::OK } else { StatusCode::BAD_REQUEST }, &response)
        }
        Outcome::Unauthenticated(response) => {
            respond(media, if legacy { StatusCode::OK } else { StatusCode::UNAUTHORIZED }, &response)
        }
        Outcome::MethodNotAllowed(response) => {
            let mut http = respond(media, StatusCode::METHOD_NOT_ALLOWED, &response);
            http.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            http
        }
    }
}

/// The caller, or the response that refuses the request: 401 for bad credentials (whatever the
/// client accepts), 503 when the auth service cannot be asked.
async fn authenticate(pipeline: &Pipeline, headers: &HeaderMap) -> Result<Caller, Response> {
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
        let mut response = respond(JSON, status, &GraphQLResponse::request_error(vec![error]));
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

fn bad_request(media: &'static str, message: &str) -> Response {
    let error = GraphQLError::new(message, code::BAD_REQUEST);
    respond(media, StatusCode::BAD_REQUEST, &GraphQLResponse::request_error(vec![error]))
}

fn respond(media: &'static str, status: StatusCode, body: &GraphQLResponse) -> Response {
    let bytes = serde_json::to_vec(body)
        .unwrap_or_else(|_| br#"{"errors":[{"message":"internal server error"}]}"#.to_vec());
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(media))], bytes).into_response()
}

/// `application/graphql-response+json` when the client accepts it, else `application/json`.
fn response_media(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.split(',').any(|part| part.trim().starts_with(GRAPHQL_RESPONSE_JSON)) {
        GRAPHQL_RESPONSE_JSON
    } else {
        JSON
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == JSON || essence == GRAPHQL_RESPONSE_JSON
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// The GraphiQL IDE (its assets load from a CDN in the browser).
pub async fn graphiql() -> Response {
    Html(GRAPHIQL_HTML).into_response()
}

const GRAPHIQL_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>PyAirtable GraphiQL</title>
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3.8.3/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script crossorigin src="https://unpkg.com/react@18.3.1/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3.8.3/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({ url: new URL('/graphql', location.href).toString() });
    ReactDOM.createRoot(document.getElementById('graphiql'))
      .render(React.createElement(GraphiQL, { fetcher, defaultEditorToolsVisibility: true }));
  </script>
</body>
</html>
"#;
