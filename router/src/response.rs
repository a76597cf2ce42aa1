//! GraphQL errors and responses as the router sends them.

use serde::Serialize;
use serde_json::{Map, Value};

/// Error codes the router itself produces (subgraph errors keep their own); the ones it shares
/// with subgraphs come from the kit.
pub mod code {
    pub use pyairtable_kit::error::code::{BAD_USER_INPUT, INTERNAL_SERVER_ERROR, UNAUTHENTICATED};
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const OPERATION_NOT_FOUND: &str = "OPERATION_NOT_FOUND";
    pub const SUBGRAPH_REQUEST_FAILED: &str = "SUBGRAPH_REQUEST_FAILED";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
}

/// A position in the client's document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One entry of a response's `errors`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphQLError {
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extensions: Map<String, Value>,
}

impl GraphQLError {
    /// An error with `extensions.code`.
    pub fn new(message: impl Into<String>, code: &str) -> Self {
        let mut extensions = Map::new();
        extensions.insert("code".into(), Value::String(code.into()));
        Self { message: message.into(), locations: Vec::new(), path: None, extensions }
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.locations.push(Location { line, column });
        self
    }

    pub fn with_path(mut self, path: Vec<Value>) -> Self {
        self.path = Some(path);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.into(), value.into());
        self
    }

    /// Reads an error object a subgraph returned. Its locations refer to the subgraph's document,
    /// not the client's, so they are dropped; anything unreadable becomes a generic message.
    pub fn from_subgraph(value: Value) -> Self {
        let Value::Object(mut object) = value else {
            return Self::new("subgraph returned a malformed error", code::SUBGRAPH_REQUEST_FAILED);
        };
        let message = match object.remove("message") {
            Some(Value::String(message)) => message,
            _ => "subgraph returned an error without a message".into(),
        };
        let path = match object.remove("path") {
            Some(Value::Array(path)) if path.iter().all(|s| s.is_string() || s.is_u64()) => Some(path),
            _ => None,
        };
        let extensions = match object.remove("extensions") {
            Some(Value::Object(extensions)) => extensions,
            _ => Map::new(),
        };
        Self { message, locations: Vec::new(), path, extensions }
    }

    /// The `extensions.code`, if any.
    pub fn code(&self) -> Option<&str> {
        self.extensions.get("code").and_then(Value::as_str)
    }
}

/// A GraphQL response body.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Response {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<GraphQLError>,
    /// Absent when the request failed before execution; `null` when execution nulled the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extensions: Map<String, Value>,
}

impl Response {
    /// A response that failed before execution.
    pub fn request_error(errors: Vec<GraphQLError>) -> Self {
        Self { errors, data: None, extensions: Map::new() }
    }
}
