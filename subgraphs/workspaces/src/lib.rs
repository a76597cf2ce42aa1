//! The workspaces subgraph: workspaces inside organizations. `Workspace` is an entity; this
//! subgraph contributes `Organization.workspaces` and `User.workspaces`.

mod schema;
mod service;
mod store;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
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
        .data(DataLoader::new(schema::IdsLoader(service.clone()), tokio::spawn))
        .data(DataLoader::new(schema::WorkspaceLoader(service.clone()), tokio::spawn))
        .data(DataLoader::new(schema::EntityLoader(service), tokio::spawn))
        .finish();
    service::consumer().spawn(kit.db.clone());
    Subgraph::new(NAME, sdl(), Arc::new(schema))
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
