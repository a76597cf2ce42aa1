//! The workspaces subgraph: workspaces inside organizations. `Workspace` is an entity; this
//! subgraph contributes `Organization.workspaces` and `User.workspaces`.

mod schema;
mod service;
mod store;

use std::sync::Arc;

use pyairtable_kit::subgraph::dataloader;
use pyairtable_kit::{Kit, Subgraph, authz};

pub use schema::{Mutation, Query, WorkspacesSchema};

/// The subgraph's name in the supergraph.
pub const NAME: &str = "workspaces";

/// The subgraph, with its data sources from `kit`.
pub fn subgraph(kit: &Kit) -> Subgraph {
    let authorizer = kit.authorizer();
    let service = service::Workspaces::new(kit.db.clone(), authorizer.clone());
    let schema = schema::builder()
        .data(service.clone())
        .data(authz::loader(authorizer))
        .data(dataloader(schema::IdsLoader(service.clone())))
        .data(dataloader(schema::WorkspaceLoader(service.clone())))
        .data(dataloader(schema::EntityLoader(service)))
        .finish();
    service::consumer().spawn(kit);
    Subgraph::new(NAME, sdl(), Arc::new(schema))
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
