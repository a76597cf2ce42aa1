//! The files subgraph: files in workspaces, stored with object_store (a local folder by default,
//! S3 or any S3-compatible server when configured). `File` is an entity; this subgraph adds
//! `Workspace.files`, `Organization.fileStorage` and `User.avatar`.

mod codes;
mod detect;
mod events;
mod intake;
mod loaders;
mod multipart;
mod presign;
mod routes;
mod schema;
mod service;
mod storage;
mod store;
mod token;
mod worker;

use std::sync::Arc;

use pyairtable_kit::subgraph::dataloader;
use pyairtable_kit::{Kit, Subgraph, authz};

pub use codes::*;
pub use schema::{FilesSchema, Mutation, Query};

/// The subgraph's name in the supergraph.
pub const NAME: &str = "files";

/// The subgraph, with its data sources from `kit`; its signed-URL endpoints are public routes.
/// Panics when the object store cannot be set up (a configuration error found at start).
pub fn subgraph(kit: &Kit) -> Subgraph {
    let files = match service_of(kit) {
        Ok(files) => files,
        Err(err) => panic!("the files subgraph cannot start: {err:#}"),
    };
    let schema = schema::builder()
        .data(files.clone())
        .data(authz::loader(kit.authorizer()))
        .data(dataloader(loaders::TenantLoader(files.clone())))
        .data(dataloader(loaders::PageLoader(files.clone())))
        .data(dataloader(loaders::CountLoader(files.clone())))
        .finish();
    events::consumer().spawn(kit);
    worker::spawn(files.clone(), &kit.lifecycle);
    let service = multipart::FilesService { schema, max_file_size: kit.config.files.multipart_max_size };
    Subgraph::new(NAME, sdl(), Arc::new(service)).with_public_routes(routes::routes(files))
}

/// The files service on `kit`'s connections (no background work started).
fn service_of(kit: &Kit) -> anyhow::Result<service::Files> {
    let storage = storage::Storage::from_config(&kit.config.files.store)?;
    let base = kit.config.files.url.clone().unwrap_or_else(|| kit.config.public_url.clone());
    Ok(service::Files::new(kit.db.clone(), kit.authorizer(), storage, kit.config.files.clone(), base))
}

/// Runs the sweep once as of `at` (tests, operators): removes the objects of deleted files and of
/// uploads abandoned by then; returns how many files it dealt with.
pub async fn sweep(kit: &Kit, at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<usize> {
    let files = service_of(kit)?;
    Ok(worker::sweep(&files, at).await?)
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
