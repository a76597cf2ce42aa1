//! The users subgraph: user profiles. `User` is an entity keyed by `id` that other subgraphs
//! reference by key only.

pub mod events;
mod schema;
mod service;
mod store;

use std::sync::Arc;

use pyairtable_kit::subgraph::dataloader;
use pyairtable_kit::{Kit, Subgraph};

pub use events::consumer;
pub use schema::{Mutation, Query, UsersSchema};

/// The subgraph's name in the supergraph.
pub const NAME: &str = "users";

/// The subgraph, with its data sources from `kit`.
pub fn subgraph(kit: &Kit) -> Subgraph {
    let service = service::Users::new(kit.db.clone());
    let loader = dataloader(store::UserLoader(kit.db.clone()));
    let schema = schema::builder()
        .data(service)
        .data(loader)
        .data(pyairtable_kit::authz::loader(kit.authorizer()))
        .finish();
    events::consumer().spawn(kit);
    Subgraph::new(NAME, sdl(), Arc::new(schema))
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
