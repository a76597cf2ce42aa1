//! What a subgraph crate hands to the process that runs it: its name, its SDL and an executor; and
//! the HTTP service that exposes one subgraph on its own (production topology).

use std::sync::Arc;

use async_graphql::{ObjectType, Schema, SubscriptionType};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};

use crate::authority::Authority;
use crate::error::code;
use crate::http::{ReadyCheck, RequestId, instrument, ops_routes};
use crate::identity::{IDENTITY_HEADER, IdentityError, IdentityKey};

/// A request-scoped DataLoader whose batches run in the span of the request that started them
/// (so their SQL is logged and counted with the request id).
pub fn dataloader<L: Send + Sync + 'static>(loader: L) -> async_graphql::dataloader::DataLoader<L> {
    use tracing::Instrument;
    async_graphql::dataloader::DataLoader::new(loader, |batch| tokio::spawn(batch.in_current_span()))
}

/// Executes GraphQL requests of one subgraph. Object-safe, so the router can hold subgraphs of
/// different schema types side by side.
#[async_trait::async_trait]
pub trait SubgraphService: Send + Sync + 'static {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response;
}

#[async_trait::async_trait]
impl<Q, M, S> SubgraphService for Schema<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        Schema::execute(self, request).await
    }
}

/// One subgraph, ready to be served on its own or mounted in the one-process supergraph.
#[derive(Clone)]
pub struct Subgraph {
    /// Its name in the supergraph (`users`, `tenants`, ...).
    pub name: &'static str,
    /// Its federation SDL (what `_service { sdl }` answers).
    pub sdl: String,
    pub service: Arc<dyn SubgraphService>,
    /// HTTP routes besides `/graphql` that its own service serves (they check identity themselves).
    pub routes: Option<Router>,
    /// The auth subgraph's answers to the router, when this is the auth subgraph.
    pub authority: Option<Arc<dyn Authority>>,
}

impl Subgraph {
    pub fn new(name: &'static str, sdl: String, service: Arc<dyn SubgraphService>) -> Self {
        Self { name, sdl, service, routes: None, authority: None }
    }

    pub fn with_routes(mut self, routes: Router) -> Self {
        self.routes = Some(routes);
        self
    }

    pub fn with_authority(mut self, authority: Arc<dyn Authority>) -> Self {
        self.authority = Some(authority);
        self
    }
}

#[derive(Clone)]
struct AppState {
    service: Arc<dyn SubgraphService>,
    key: IdentityKey,
}

/// The HTTP service of one subgraph: `POST /graphql` (identity from the router's signed header only),
/// plus `/healthz`, `/readyz` and `/metrics`.
pub fn http_app(subgraph: &Subgraph, key: IdentityKey, ready: ReadyCheck) -> Router {
    let state = AppState { service: subgraph.service.clone(), key };
    let mut app = Router::new().route("/graphql", post(graphql)).with_state(state).merge(ops_routes(ready));
    if let Some(routes) = &subgraph.routes {
        app = app.merge(routes.clone());
    }
    instrument(app, subgraph.name)
}

async fn graphql(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let now = chrono::Utc::now().timestamp();
    let verified = headers
        .get(IDENTITY_HEADER)
        .ok_or(IdentityError::Missing)
        .and_then(|v| v.to_str().map_err(|_| IdentityError::Malformed))
        .and_then(|v| state.key.verify(v, now));
    let caller = match verified {
        Ok(caller) => caller,
        Err(err) => {
            tracing::warn!(%err, "refused a request without a valid router identity");
            return unauthenticated(&err);
        }
    };
    let request = request.into_inner().data(caller).data(request_id);
    GraphQLResponse::from(state.service.execute(request).await).into_response()
}

fn unauthenticated(err: &IdentityError) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": format!("requests must come through the router: {err}"),
            "extensions": { "code": code::UNAUTHENTICATED },
        }]
    });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// The federation SDL of `schema`, as `_service { sdl }` answers and as composition reads it.
pub fn federation_sdl<Q, M, S>(schema: &Schema<Q, M, S>) -> String
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    schema.sdl_with_options(async_graphql::SDLExportOptions::new().federation().compose_directive())
}
