//! The permissions subgraph: the one owner of role bindings, and the one place where access
//! rules live (`policy.polar`, evaluated with oso). Every other subgraph asks it for decisions
//! through the kit's [`Authorizer`](pyairtable_kit::authz::Authorizer).

mod cache;
mod engine;
pub mod events;
mod policy;
mod routes;
mod schema;
mod service;
mod store;

use std::sync::Arc;

use pyairtable_kit::authz::{self, Authorizer};
use pyairtable_kit::subgraph::dataloader;
use pyairtable_kit::{IdentityKey, Kit, Subgraph};

pub use engine::Engine;
pub use policy::POLICY;
pub use schema::{Mutation, PermissionsSchema, Query};

/// The subgraph's name in the supergraph.
pub const NAME: &str = "permissions";

/// The subgraph, with its data sources from `kit`. It hands the kit its engine, so subgraphs
/// built after it in the same process decide in process.
pub fn subgraph(kit: &Kit) -> Subgraph {
    let policy = match policy::Policy::load() {
        Ok(policy) => policy,
        // The policy is compiled in and loaded by the unit tests: failing here is a broken build.
        Err(err) => panic!("the built-in policy does not load: {err:#}"),
    };
    let engine = Engine::new(kit.db.clone(), policy, kit.redis.clone());
    kit.set_authorizer(engine.clone());
    let service = service::Permissions::new(kit.db.clone(), engine.clone());
    let schema = schema::builder()
        .data(service.clone())
        .data(engine.clone())
        .data(authz::loader(engine.clone() as Arc<dyn Authorizer>))
        .data(dataloader(schema::PageLoader(service.clone())))
        .data(dataloader(schema::CountLoader(service.clone())))
        .data(dataloader(schema::WorkspaceTenantLoader(service.clone())))
        .data(dataloader(schema::CollaboratorsLoader(service)))
        .data(dataloader(schema::StandingLoader(engine.clone())))
        .finish();
    events::consumer().spawn(kit);
    let key = kit.config.internal_secret.as_ref().map(IdentityKey::new);
    Subgraph::new(NAME, sdl(), Arc::new(schema)).with_routes(routes::routes(engine, key))
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
