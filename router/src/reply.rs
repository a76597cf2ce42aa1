//! Writing GraphQL responses: the media type the client accepts, the request id in every error,
//! the rate-limit headers.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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

    pub fn json(&self, status: StatusCode, body: &impl Serialize) -> Response {
        let bytes = serde_json::to_vec(body)
            .unwrap_or_else(|_| br#"{"errors":[{"message":"internal server error"}]}"#.to_vec());
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static(self.media))], bytes).into_response()
    }

    pub fn error(&self, status: StatusCode, error: GraphQLError) -> Response {
        self.json(status, &self.tag(GraphQLResponse::request_error(vec![error])))
    }

    pub fn bad_request(&self, message: &str) -> Response {
        self.error(StatusCode::BAD_REQUEST, GraphQLError::new(message, code::BAD_REQUEST))
    }

    pub(crate) fn exchange(&self, exchange: crate::http::Exchange) -> Response {
        let mut response = self.json(exchange.status, &self.tag(exchange.body));
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
