//! The tenants subgraph: organizations (soft deletion with a grace period) and invitations by
//! email. Who is a member with which role belongs to the permissions subgraph.

mod schema;
mod service;
mod store;

use std::sync::Arc;

use pyairtable_kit::subgraph::dataloader;
use pyairtable_kit::{Kit, Subgraph, authz};

pub use schema::{Mutation, Query, TenantsSchema};
pub use service::{GRACE_DAYS, purge};

/// The subgraph's name in the supergraph.
pub const NAME: &str = "tenants";

/// The subgraph, with its data sources from `kit`.
pub fn subgraph(kit: &Kit) -> Subgraph {
    let authorizer = kit.authorizer();
    let service = service::Tenants::new(kit.db.clone(), authorizer.clone(), kit.config.public_url.clone());
    service.spawn_purge(&kit.lifecycle);
    let schema = schema::builder()
        .data(service.clone())
        .data(authz::loader(authorizer))
        .data(dataloader(schema::OrganizationLoader(service)))
        .finish();
    Subgraph::new(NAME, sdl(), Arc::new(schema))
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
