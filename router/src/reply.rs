//! Writing GraphQL responses: the media type the client accepts, the request id in every error,
//! the rate-limit headers.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::response::{GraphQLError, Response as GraphQLResponse, code};

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
pub const JSON: &str = "application/json";

/// How to answer one HTTP request.
pub struct Reply<'a> {
    pub media: &'static str,
    pub request_id: &'a str,
}

impl Reply<'_> {
    /// Marks every error with `extensions.requestId`, the id the logs carry.
    pub fn tag(&self, body: GraphQLResponse) -> GraphQLResponse {
        tag(body, self.request_id)
    }

    pub fn error(&self, status: StatusCode, error: GraphQLError) -> Response {
        self.graphql(status, &self.tag(GraphQLResponse::request_error(vec![error])))
    }

    pub fn bad_request(&self, message: &str) -> Response {
        self.error(StatusCode::BAD_REQUEST, GraphQLError::new(message, code::BAD_REQUEST))
    }

    /// A GraphQL response body, its `data` copied in as execution wrote it.
    pub fn graphql(&self, status: StatusCode, body: &GraphQLResponse) -> Response {
        self.bytes(status, body.to_json())
    }

    /// Several GraphQL responses, as one JSON list (a batch).
    pub fn graphql_batch(&self, status: StatusCode, bodies: &[GraphQLResponse]) -> Response {
        let mut bytes = vec![b'['];
        for (i, body) in bodies.iter().enumerate() {
            if i > 0 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(&body.to_json());
        }
        bytes.push(b']');
        self.bytes(status, bytes)
    }

    fn bytes(&self, status: StatusCode, bytes: Vec<u8>) -> Response {
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static(self.media))], bytes).into_response()
    }

    pub(crate) fn exchange(&self, exchange: crate::http::Exchange) -> Response {
        let mut response = self.graphql(exchange.status, &self.tag(exchange.body));
        exchange.rate.write_headers(response.headers_mut());
        if exchange.allow_post {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// `application/graphql-response+json` when the client accepts it, else `application/json`.
pub fn response_media(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.split(',').any(|part| part.trim().starts_with(GRAPHQL_RESPONSE_JSON)) {
        GRAPHQL_RESPONSE_JSON
    } else {
        JSON
    }
}

/// A media type without its parameters, lower case.
pub fn media_essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

pub fn is_json(headers: &HeaderMap) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = media_essence(content_type);
    essence == JSON || essence == GRAPHQL_RESPONSE_JSON
}

/// Marks every error of `body` with `extensions.requestId`, the id the logs carry.
pub(crate) fn tag(mut body: GraphQLResponse, request_id: &str) -> GraphQLResponse {
    for error in &mut body.errors {
        error.extensions.insert("requestId".into(), request_id.into());
    }
    body
}
