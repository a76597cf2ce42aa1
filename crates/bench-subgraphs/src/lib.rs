//! The four subgraphs of the gateway benchmark (`benches/gateway/`): accounts, inventory,
//! products and reviews, with the schema, data and nesting of The Guild's federation gateway
//! benchmark, written here in async-graphql. The data is `static`; resolvers only point into it.

use async_graphql::{ObjectType, Schema, SubscriptionType, registry::SDLExportOptions};
use async_graphql_axum::GraphQL;
use axum::Router;
use axum::routing::{get, post_service};

pub mod accounts;
pub mod data;
pub mod inventory;
pub mod products;
pub mod reviews;

/// The subgraphs, by name.
pub const NAMES: [&str; 4] = ["accounts", "inventory", "products", "reviews"];

/// A subgraph's federation SDL (what `_service { sdl }` answers).
pub fn sdl(name: &str) -> Option<String> {
    fn of<Q, M, S>(schema: &Schema<Q, M, S>) -> String
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        schema.sdl_with_options(SDLExportOptions::new().federation().compose_directive())
    }
    Some(match name {
        "accounts" => of(&accounts::schema()),
        "inventory" => of(&inventory::schema()),
        "products" => of(&products::schema()),
        "reviews" => of(&reviews::schema()),
        _ => return None,
    })
}

/// A subgraph's HTTP service: `POST /graphql` (and `POST /`), `GET /health`.
pub fn app(name: &str) -> Option<Router> {
    fn of<Q, M, S>(schema: Schema<Q, M, S>) -> Router
    where
        Q: ObjectType + 'static,
        M: ObjectType + 'static,
        S: SubscriptionType + 'static,
    {
        let service = GraphQL::new(schema);
        Router::new()
            .route("/graphql", post_service(service.clone()))
            .route("/", post_service(service))
            .route("/health", get(|| async { "OK" }))
    }
    Some(match name {
        "accounts" => of(accounts::schema()),
        "inventory" => of(inventory::schema()),
        "products" => of(products::schema()),
        "reviews" => of(reviews::schema()),
        _ => return None,
    })
}
