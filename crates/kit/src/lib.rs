//! The shared kit of PyAirtable: what every subgraph and the router stand on.

pub mod authority;
pub mod authz;
pub mod bus;
pub mod config;
pub mod connection;
pub mod db;
pub mod doctor;
mod doctor_db;
mod doctor_store;
pub mod error;
pub mod events;
mod gauges;
pub mod http;
pub mod identity;
pub mod input;
pub mod internal;
pub mod kit;
pub mod lifecycle;
pub mod mail;
pub mod objects;
pub mod pg;
pub mod secrets;
pub mod subgraph;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod traces;

pub use config::{Config, ConfigError, Secret};
pub use error::{Error, Result};
pub use identity::{Caller, IdentityKey};
pub use kit::Kit;
pub use lifecycle::{Lifecycle, StopReason};
pub use subgraph::{Subgraph, SubgraphService};
