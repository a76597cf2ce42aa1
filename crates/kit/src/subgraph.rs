//! What a subgraph crate hands to the process that runs it: its name, its SDL and an executor; and
//! the HTTP service that exposes one subgraph on its own (production topology).

use std::sync::Arc;

use async_graphql::{Data, ObjectType, Schema, SubscriptionType};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket, rejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use futures::stream::BoxStream;

use crate::authority::Authority;
use crate::error::code;
use crate::http::{ReadyCheck, RequestId, instrument, ops_routes};
use crate::identity::{IDENTITY_HEADER, IdentityError, IdentityKey};

/// The read buffer of every GraphQL WebSocket (router and subgraphs, both ends). tungstenite
/// allocates it up front, 128 KiB by default, for each socket; subscription clients send small
/// messages (a larger one still arrives: the buffer is only where reading starts). Measured with
/// 10,000 subscribers (benches/notifications.rs): 157 KiB per connection before, 26-35 after.
pub const WS_READ_BUFFER: usize = 4 * 1024;

/// A request-scoped DataLoader whose batches run in the span of the request that started them
/// (so their SQL is logged and counted with the request id).
pub fn dataloader<L: Send + Sync + 'static>(loader: L) -> async_graphql::dataloader::DataLoader<L> {
    use tracing::Instrument;
    async_graphql::dataloader::DataLoader::new(loader, |batch| tokio::spawn(batch.in_current_span()))
}

/// A request in the GraphQL multipart request spec (file uploads), streamed as it arrives: the
/// router authenticated the caller and passes the body through untouched.
pub struct MultipartRequest {
    pub caller: crate::Caller,
    pub request_id: RequestId,
    /// The client's headers (`content-type` with its boundary, the CSRF preflight header).
    pub headers: HeaderMap,
    pub body: axum::body::Body,
}

/// Whether `headers` announce a `multipart/form-data` body.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Executes GraphQL requests of one subgraph. Object-safe, so the router can hold subgraphs of
/// different schema types side by side.
#[async_trait::async_trait]
pub trait SubgraphService: Send + Sync + 'static {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response;

    /// Executes a multipart request (file uploads). Only a subgraph that takes files accepts
    /// them; the others answer 415.
    async fn execute_multipart(&self, request: MultipartRequest) -> Response {
        drop(request);
        let body = serde_json::json!({
            "errors": [{ "message": "this subgraph takes no file uploads", "extensions": { "code": code::BAD_USER_INPUT } }]
        });
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response()
    }

    /// Executes a subscription (or a query or mutation, as a stream of one response) with the
    /// connection's data. A subgraph without subscriptions answers with one error.
    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        drop((request, session));
        let error = async_graphql::ServerError::new("this subgraph has no subscriptions", None);
        Box::pin(futures::stream::once(async move { async_graphql::Response::from_errors(vec![error]) }))
    }
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

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        self.execute_stream_with_session_data(request, session.unwrap_or_default())
    }
}

/// A type-erased subgraph as async-graphql's WebSocket protocol handler wants it.
#[derive(Clone)]
struct Erased(Arc<dyn SubgraphService>);

impl async_graphql::Executor for Erased {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        self.0.execute(request).await
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        self.0.execute_stream(request, session)
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
    /// HTTP routes clients call directly (signed URLs): served by the subgraph's own service, and
    /// by the router in one process.
    pub public_routes: Option<Router>,
    /// The auth subgraph's answers to the router, when this is the auth subgraph.
    pub authority: Option<Arc<dyn Authority>>,
}

impl Subgraph {
    pub fn new(name: &'static str, sdl: String, service: Arc<dyn SubgraphService>) -> Self {
        Self { name, sdl, service, routes: None, public_routes: None, authority: None }
    }

    pub fn with_routes(mut self, routes: Router) -> Self {
        self.routes = Some(routes);
        self
    }

    pub fn with_public_routes(mut self, routes: Router) -> Self {
        self.public_routes = Some(routes);
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

/// The HTTP service of one subgraph: `POST /graphql`, and subscriptions over a WebSocket on
/// `GET /graphql` (`graphql-transport-ws` or `graphql-ws`), identity from the router's signed
/// header only (on the upgrade request for a WebSocket), plus `/healthz`, `/readyz` and `/metrics`.
pub fn http_app(subgraph: &Subgraph, key: IdentityKey, ready: ReadyCheck) -> Router {
    let state = AppState { service: subgraph.service.clone(), key };
    let mut app = Router::new()
        .route("/graphql", get(websocket).post(graphql))
        .with_state(state)
        .merge(ops_routes(ready));
    for routes in [&subgraph.routes, &subgraph.public_routes].into_iter().flatten() {
        app = app.merge(routes.clone());
    }
    instrument(app, subgraph.name)
}

async fn graphql(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    request: axum::extract::Request,
) -> Response {
    let caller = match verify(&state, request.headers()) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if is_multipart(request.headers()) {
        let (parts, body) = request.into_parts();
        let multipart = MultipartRequest { caller, request_id, headers: parts.headers, body };
        return state.service.execute_multipart(multipart).await;
    }
    let request = match GraphQLRequest::<rejection::GraphQLRejection>::from_request(request, &()).await {
        Ok(request) => request,
        Err(rejection) => return rejection.into_response(),
    };
    let request = request.into_inner().data(caller).data(request_id);
    GraphQLResponse::from(state.service.execute(request).await).into_response()
}

/// A WebSocket for subscriptions: the router signed the caller's identity on the upgrade request,
/// and every operation on the socket runs as that caller.
async fn websocket(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    request: axum::extract::Request,
) -> Response {
    let caller = match verify(&state, request.headers()) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    let (mut parts, _body) = request.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(status) => {
            return (status, "ask for the graphql-transport-ws or graphql-ws subprotocol").into_response();
        }
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let executor = Erased(state.service.clone());
    upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let mut data = Data::default();
            data.insert(caller);
            data.insert(request_id);
            GraphQLWebSocket::new(socket, executor, protocol).with_data(data).serve()
        })
}

/// The caller the router's signed identity header names, or the 401 that refuses the request.
fn verify(state: &AppState, headers: &HeaderMap) -> Result<crate::Caller, Box<Response>> {
    let now = chrono::Utc::now().timestamp();
    headers
        .get(IDENTITY_HEADER)
        .ok_or(IdentityError::Missing)
        .and_then(|v| v.to_str().map_err(|_| IdentityError::Malformed))
        .and_then(|v| state.key.verify(v, now))
        .map_err(|err| {
            tracing::warn!(%err, "refused a request without a valid router identity");
            Box::new(unauthenticated(&err))
        })
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
