//! The files subgraph as the router calls it: GraphQL requests, and requests in the GraphQL
//! multipart request spec (file uploads) passed through by the router with their body streaming.

use async_graphql::http::MultipartOptions;
use async_graphql::parser::types::{OperationType, Selection};
use async_graphql_axum::GraphQLResponse;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use pyairtable_kit::SubgraphService;
use pyairtable_kit::subgraph::MultipartRequest;

use crate::codes;
use crate::schema::FilesSchema;

/// Headers a browser cannot send cross-origin without a CORS preflight (as Apollo's CSRF
/// prevention): a multipart form is otherwise a "simple" request any page could make.
const PREFLIGHT_HEADERS: [&str; 2] = ["apollo-require-preflight", "x-apollo-operation-name"];
/// Files in one multipart request.
const MAX_FILES: usize = 10;

pub struct FilesService {
    pub schema: FilesSchema,
    /// The largest file in a multipart request.
    pub max_file_size: u64,
}

#[async_trait::async_trait]
impl SubgraphService for FilesService {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        self.schema.execute(request).await
    }

    async fn execute_multipart(&self, request: MultipartRequest) -> Response {
        if !preflighted(&request.headers) {
            let message =
                "multipart requests need an `apollo-require-preflight: true` header (CSRF prevention)";
            return refuse(StatusCode::BAD_REQUEST, codes::CSRF_REQUIRED, message);
        }
        let content_type =
            request.headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let body = request.body.into_data_stream().map_err(std::io::Error::other).into_async_read();
        let options = MultipartOptions::default()
            .max_file_size(usize::try_from(self.max_file_size).unwrap_or(usize::MAX))
            .max_num_files(MAX_FILES);
        let gql = match async_graphql::http::receive_body(content_type, body, options).await {
            Ok(gql) => gql,
            Err(async_graphql::ParseRequestError::PayloadTooLarge) => {
                let message =
                    format!("files in a multipart request are limited to {} bytes", self.max_file_size);
                return refuse(StatusCode::PAYLOAD_TOO_LARGE, codes::FILE_TOO_LARGE, &message);
            }
            Err(err) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    &format!("malformed multipart request: {err}"),
                );
            }
        };
        if let Err(message) = only_mutations(&gql) {
            return refuse(StatusCode::BAD_REQUEST, "BAD_REQUEST", message);
        }
        let gql = gql.data(request.caller).data(request.request_id);
        GraphQLResponse::from(self.schema.execute(gql).await).into_response()
    }
}

fn preflighted(headers: &HeaderMap) -> bool {
    PREFLIGHT_HEADERS.iter().any(|name| headers.get(*name).is_some_and(|v| !v.is_empty()))
}

/// Multipart requests exist to upload: they may run mutations of this subgraph, not queries, not
/// the federation fields (`_entities`, `_service`) the router keeps to itself.
fn only_mutations(request: &async_graphql::Request) -> Result<(), &'static str> {
    let document =
        async_graphql::parser::parse_query(&request.query).map_err(|_| "the operation does not parse")?;
    for (_, operation) in document.operations.iter() {
        if operation.node.ty != OperationType::Mutation {
            return Err("a multipart request carries a mutation (uploadFile)");
        }
        let federation = operation.node.selection_set.node.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                field.node.name.node.starts_with("__") || field.node.name.node.starts_with('_')
            }
            _ => true,
        });
        if federation {
            return Err("a multipart request selects this subgraph's mutations by name only");
        }
    }
    Ok(())
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}
