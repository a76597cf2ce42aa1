//! The webhooks subgraph: endpoints per organization, signed at-least-once delivery of the
//! organization's domain events (Standard Webhooks), an attempt log, test-sends and replays.
//!
//! Events reach endpoints in two steps, each crash-safe: a kit event consumer stores a message
//! per matching endpoint ([`fanout`]), then delivery workers lease due messages from a SQL queue
//! with `FOR UPDATE SKIP LOCKED` and attempt them ([`worker`]). Receivers check signatures with
//! [`verify`].

mod catalog;
mod delivery;
mod fanout;
mod input;
mod schema;
mod service;
pub mod signature;
pub mod ssrf;
mod store;
mod subscription;
mod worker;

use std::sync::Arc;

use pyairtable_kit::{Kit, Subgraph, authz};

pub use catalog::{ENDPOINT_DISABLED as ENDPOINT_DISABLED_EVENT, EVENT_TYPES};
pub use schema::{Mutation, Query, WebhooksSchema};
pub use signature::{VerifyError, verify};
pub use subscription::Subscription;

/// The subgraph's name in the supergraph.
pub const NAME: &str = "webhooks";
/// Error code: replaying to a disabled endpoint.
pub const ENDPOINT_DISABLED: &str = "ENDPOINT_DISABLED";

/// The subgraph, with its data sources from `kit`; starts the fan-out consumer and the delivery
/// workers on the kit's lifecycle. Panics when the HTTP client cannot be built (at start).
pub fn subgraph(kit: &Kit) -> Subgraph {
    let sender = match delivery::Sender::new(kit.config.webhooks_allow_loopback, kit.bus.clone()) {
        Ok(sender) => sender,
        Err(err) => panic!("the webhooks subgraph cannot start: {err:#}"),
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let service = service::Webhooks::new(kit.db.clone(), kit.authorizer(), sender.clone(), wake.clone());
    let schema =
        schema::builder().data(service).data(authz::loader(kit.authorizer())).data(kit.bus.clone()).finish();
    fanout::consumer().spawn(kit);
    worker::spawn(kit.db.clone(), sender, wake, &kit.lifecycle, kit.config.db_max_connections);
    Subgraph::new(NAME, sdl(), Arc::new(schema))
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
