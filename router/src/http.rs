//! GraphQL over HTTP: `POST /graphql` (JSON), `GET /graphql` (queries only), GraphiQL at `/`.
//! Responses follow the GraphQL-over-HTTP specification: `application/graphql-response+json` with
//! 4xx for requests that fail before execution when the client accepts it, else `application/json`
//! with 200 for anything that is a GraphQL response.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use pyairtable_kit::Caller;
use pyairtable_kit::http::RequestId;
use serde_json::{Map, Value};

use crate::pipeline::{GraphQLRequest, Outcome, Pipeline};
use crate::response::{GraphQLError, Response as GraphQLResponse, code};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The router's shared state: the pipeline of the current supergraph.
pub type RouterState = Arc<Pipeline>;

pub async fn post_graphql(
    State(pipeline): State<RouterState>,
    Extension(request_id): Extension<RequestId>,
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
        Ok(request) => run(&pipeline, request, &request_id, media, false).await,
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
    run(&pipeline, request, &request_id, media, true).await
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
    media: &'static str,
    get: bool,
) -> Response {
    // Identity at the edge arrives with authentication; until then every caller is anonymous.
    let caller = Caller::anonymous();
    let outcome = pipeline.execute(request, &caller, &request_id.0, get).await;
    let legacy = media == JSON;
    match outcome {
        Outcome::Executed(response) => respond(media, StatusCode::OK, &response),
        Outcome::RequestError(response) => {
            respond(media, if legacy { StatusCode::OK } else { StatusCode::BAD_REQUEST }, &response)
        }
        Outcome::MethodNotAllowed(response) => {
            let mut http = respond(media, StatusCode::METHOD_NOT_ALLOWED, &response);
            http.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            http
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
