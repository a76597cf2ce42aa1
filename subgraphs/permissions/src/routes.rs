//! The internal HTTP face of the engine, for subgraphs running as their own services
//! ([`HttpAuthorizer`](pyairtable_kit::authz::HttpAuthorizer)); a valid internal identity header
//! is required.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use pyairtable_kit::IdentityKey;
use pyairtable_kit::authz::{
    Authorizer, DecideAnswer, DecideRequest, OrganizationsAnswer, OrganizationsRequest, paths,
};
use pyairtable_kit::identity::signed_internally;

use crate::engine::Engine;

/// At most this many checks per call (a page of a hundred items, each checked a few ways).
const MAX_CHECKS: usize = 1000;

#[derive(Clone)]
struct RouteState {
    engine: Arc<Engine>,
    key: Option<IdentityKey>,
}

pub fn routes(engine: Arc<Engine>, key: Option<IdentityKey>) -> Router {
    Router::new()
        .route(paths::DECIDE, post(decide))
        .route(paths::ORGANIZATIONS, post(organizations))
        .route(paths::SYNC, post(sync))
        .with_state(RouteState { engine, key })
}

async fn decide(
    State(state): State<RouteState>,
    headers: HeaderMap,
    Json(request): Json<DecideRequest>,
) -> Response {
    if !signed_internally(state.key.as_ref(), &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if request.checks.len() > MAX_CHECKS {
        return (StatusCode::PAYLOAD_TOO_LARGE, format!("at most {MAX_CHECKS} checks per call"))
            .into_response();
    }
    match state.engine.decide(request.subject, &request.checks).await {
        Ok(decisions) => Json(DecideAnswer { decisions }).into_response(),
        Err(err) => {
            tracing::error!(%err, "deciding");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn organizations(
    State(state): State<RouteState>,
    headers: HeaderMap,
    Json(request): Json<OrganizationsRequest>,
) -> Response {
    if !signed_internally(state.key.as_ref(), &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match state.engine.organizations_of(request.subject).await {
        Ok(organizations) => Json(OrganizationsAnswer { organizations }).into_response(),
        Err(err) => {
            tracing::error!(%err, "listing organizations");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn sync(State(state): State<RouteState>, headers: HeaderMap) -> Response {
    if !signed_internally(state.key.as_ref(), &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match state.engine.sync().await {
        Ok(()) => Json(serde_json::json!({})).into_response(),
        Err(err) => {
            tracing::error!(%err, "applying binding events");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
