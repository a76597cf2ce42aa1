//! The tenants subgraph: organizations and their members. Members reference `User` by key only;
//! the router fetches user fields from the users subgraph.

mod schema;
mod service;
mod store;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use pyairtable_kit::{Kit, Subgraph};

pub use schema::{Mutation, Query, TenantsSchema};

/// The subgraph's name in the supergraph.
pub const NAME: &str = "tenants";

/// The subgraph, with its data sources from `kit`.
pub fn subgraph(kit: &Kit) -> Subgraph {
    let db = kit.db.clone();
    let schema = schema::builder()
        .data(service::Tenants::new(db.clone()))
        .data(DataLoader::new(store::OrganizationLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(store::MembersLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(store::MembershipsLoader(db), tokio::spawn))
        .finish();
    Subgraph::new(NAME, sdl(), Arc::new(schema))
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
