//! CSRF prevention, as Apollo Server's `csrfPrevention`.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use crate::metrics;
use crate::pipeline::Pipeline;
use crate::reply::{Reply, media_essence};
use crate::response::GraphQLError;

/// Content types a browser sends cross-origin without a preflight.
const SIMPLE_CONTENT_TYPES: [&str; 3] =
    ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"];

/// CSRF prevention (as Apollo Server's `csrfPrevention`): a request a browser could send
/// cross-origin without a preflight (GET, or POST with no or a "simple" content type) must carry
/// a header that forces one; otherwise a page on any site could make a signed-in browser run
/// operations (cookies) or read side effects.
pub fn csrf(pipeline: &Pipeline, headers: &HeaderMap, reply: &Reply<'_>) -> Option<Response> {
    if !pipeline.options().edge.csrf_prevention {
        return None;
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(media_essence);
    if content_type.is_some_and(|ct| !ct.is_empty() && !SIMPLE_CONTENT_TYPES.contains(&ct.as_str())) {
        return None;
    }
    let preflighted = ["apollo-require-preflight", "x-apollo-operation-name"]
        .iter()
        .any(|name| headers.get(*name).is_some_and(|v| !v.is_empty()));
    if preflighted {
        return None;
    }
    metrics::refusal("csrf");
    let message = "this request has been blocked as a potential cross-site request forgery (CSRF): send it with \
                   `Content-Type: application/json`, or with a non-empty `apollo-require-preflight` or \
                   `x-apollo-operation-name` header";
    Some(reply.error(StatusCode::BAD_REQUEST, GraphQLError::new(message, CSRF_PREVENTED)))
}

/// The error code of a request refused by CSRF prevention.
pub const CSRF_PREVENTED: &str = "CSRF_PREVENTED";
