//! The PyAirtable federation router: loads an Apollo Federation v2 supergraph, plans operations
//! with Hive's query planner, executes the plans against subgraphs (in process or over HTTP) and
//! answers GraphQL over HTTP.

pub mod auth;
pub mod compose;
mod cors;
mod csrf;
mod entities;
mod execute;
pub mod fetch;
mod flow;
pub mod gateway;
mod graphiql;
mod guard;
pub mod headers;
mod http;
mod introspection;
pub mod limits;
mod metrics;
pub mod persisted;
mod pipeline;
mod plan_cache;
mod projection;
pub mod ratelimit;
mod reply;
pub mod response;
mod schema;
pub mod subscription;
mod suggestions;
pub mod supergraph;
pub mod transport;
pub mod tree;
mod typenames;
pub mod upload;
mod value;
mod variables;

use std::collections::HashMap;
use std::sync::Arc;

use axum::routing::get;
use pyairtable_kit::http::{ReadyCheck, instrument, ops_routes};

pub use auth::{AuthError, Authenticator, PublicOperations};
pub use fetch::SubgraphPolicy;
pub use flow::{Answer, RequestContext};
pub use gateway::{Connector, Gateway};
pub use persisted::TrustedDocuments;
pub use pipeline::{GraphQLRequest, Outcome, Pipeline, RouterOptions, SharedRedis};
pub use supergraph::{SubgraphInfo, Supergraph, SupergraphError};
pub use transport::{Http, InProcess, Transport};

/// Why the router could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Supergraph(#[from] SupergraphError),
    #[error("no transport for subgraph(s) {0:?} named by the supergraph")]
    MissingSubgraphs(Vec<String>),
}

/// The router's HTTP app on fixed transports (see [`app_with`]).
pub fn app(
    supergraph: Supergraph,
    transports: HashMap<String, Arc<dyn Transport>>,
    options: RouterOptions,
    ready: ReadyCheck,
    authenticator: Option<Arc<Authenticator>>,
) -> Result<axum::Router, RouterError> {
    let gateway = Arc::new(Gateway::new(supergraph, transports, options.subgraphs.clone())?);
    Ok(app_with(gateway, options, ready, authenticator))
}

/// The router's HTTP app: `/graphql` (GET, POST), GraphiQL at `/` when enabled, and `/healthz`
/// (also `/health`), `/readyz`, `/metrics`; with an authenticator, `/.well-known/jwks.json` too.
/// Without one (a supergraph with no auth service) every caller is anonymous and credentials are
/// refused. The gateway's supergraph can be reloaded while the app serves.
pub fn app_with(
    gateway: Arc<Gateway>,
    options: RouterOptions,
    ready: ReadyCheck,
    authenticator: Option<Arc<Authenticator>>,
) -> axum::Router {
    build_app(gateway, options, ready, authenticator, None)
}

/// [`app_with`], and multipart `POST /graphql` requests (file uploads) sent to `uploads` after
/// the same authentication and admission budgets as every request.
pub fn app_with_uploads(
    gateway: Arc<Gateway>,
    options: RouterOptions,
    ready: ReadyCheck,
    authenticator: Option<Arc<Authenticator>>,
    uploads: upload::UploadTarget,
) -> axum::Router {
    build_app(gateway, options, ready, authenticator, Some(uploads))
}

fn build_app(
    gateway: Arc<Gateway>,
    options: RouterOptions,
    ready: ReadyCheck,
    authenticator: Option<Arc<Authenticator>>,
    uploads: Option<upload::UploadTarget>,
) -> axum::Router {
    let graphiql = options.edge.graphiql;
    let cors = cors::layer(&options.edge.cors);
    let pipeline = Arc::new(Pipeline::new(gateway, options, authenticator));
    let mut routes = axum::Router::new()
        .route("/graphql", get(http::get_graphql).post(http::post_graphql))
        .route("/.well-known/jwks.json", get(http::jwks))
        .route("/health", get(|| async { "ok" }))
        .with_state(pipeline.clone());
    if graphiql {
        routes = routes.route("/", get(graphiql::graphiql));
    }
    let app = instrument(routes.layer(cors).merge(ops_routes(ready)), "router");
    match uploads {
        Some(target) => upload::with_uploads(app, target, pipeline),
        None => app,
    }
}
