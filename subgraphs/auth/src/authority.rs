//! The auth subgraph's answers to the router: in process ([`LocalAuthority`]) and over HTTP (the
//! routes of [`routes`]; the internal ones demand the router's signed identity header).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pyairtable_kit::authority::{ApiKeyAnswer, Authority, AuthorityError, SessionAnswer, paths};
use pyairtable_kit::{Caller, IdentityKey};
use serde::Deserialize;
use uuid::Uuid;

use crate::api_keys;
use crate::service::Auth;

/// [`Authority`] straight to the database (one process).
#[derive(Clone)]
pub struct LocalAuthority(pub Auth);

fn failed(err: pyairtable_kit::Error) -> AuthorityError {
    tracing::error!(%err, "authority");
    AuthorityError(err.to_string())
}

#[async_trait::async_trait]
impl Authority for LocalAuthority {
    async fn jwks(&self) -> Result<serde_json::Value, AuthorityError> {
        self.0.keys.jwks().await.map_err(failed)
    }

    async fn api_key(&self, token: &str) -> Result<Option<Caller>, AuthorityError> {
        api_keys::resolve(&self.0.db, token).await.map_err(failed)
    }

    async fn session_live(&self, session_id: Uuid) -> Result<bool, AuthorityError> {
        self.0.sessions.is_live(&self.0.db, session_id).await.map_err(failed)
    }
}

#[derive(Clone)]
struct RouteState {
    authority: LocalAuthority,
    key: Option<IdentityKey>,
}

/// `GET /.well-known/jwks.json` (public), and the internal API-key and session lookups, which
/// answer 401 without the router's signed identity (or when no internal secret is configured).
pub fn routes(auth: Auth, key: Option<IdentityKey>) -> Router {
    Router::new()
        .route(paths::JWKS, get(jwks))
        .route(paths::API_KEY, post(api_key))
        .route(&format!("{}/{{id}}", paths::SESSION), get(session))
        .with_state(RouteState { authority: LocalAuthority(auth), key })
}

async fn jwks(State(state): State<RouteState>) -> Response {
    match state.authority.jwks().await {
        Ok(jwks) => ([(header::CACHE_CONTROL, "public, max-age=300")], Json(jwks)).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn from_router(state: &RouteState, headers: &HeaderMap) -> bool {
    pyairtable_kit::identity::signed_internally(state.key.as_ref(), headers)
}

#[derive(Deserialize)]
struct ApiKeyQuestion {
    token: String,
}

async fn api_key(
    State(state): State<RouteState>,
    headers: HeaderMap,
    Json(q): Json<ApiKeyQuestion>,
) -> Response {
    if !from_router(&state, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match state.authority.api_key(&q.token).await {
        Ok(caller) => Json(ApiKeyAnswer { caller }).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn session(State(state): State<RouteState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !from_router(&state, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(id) = Uuid::parse_str(&id) else { return Json(SessionAnswer { live: false }).into_response() };
    match state.authority.session_live(id).await {
        Ok(live) => Json(SessionAnswer { live }).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
