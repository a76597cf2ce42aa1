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
    pub data: Option<Data>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extensions: Map<String, Value>,
}

impl Response {
    /// A response that failed before execution.
    pub fn request_error(errors: Vec<GraphQLError>) -> Self {
        Self { errors, data: None, extensions: Map::new() }
    }

    /// The response as JSON, with `data` copied in as it was written.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.as_ref().map_or(64, |d| d.0.len() + 64));
        out.push(b'{');
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        if !self.errors.is_empty() {
            member(&mut out, "errors");
            if serde_json::to_writer(&mut out, &self.errors).is_err() {
                out.extend_from_slice(br#"[{"message":"internal server error"}]"#);
            }
        }
        if let Some(data) = &self.data {
            member(&mut out, "data");
            out.extend_from_slice(data.0.as_bytes());
        }
        if !self.extensions.is_empty() {
            member(&mut out, "extensions");
            if serde_json::to_writer(&mut out, &self.extensions).is_err() {
                out.extend_from_slice(b"{}");
            }
        }
        out.push(b'}');
        out
    }
}

/// A response's `data`, as the JSON text execution wrote (see [`crate::projection`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Data(String);

impl Data {
    /// `data: null`.
    pub fn null() -> Self {
        Self("null".to_owned())
    }

    /// JSON text the router wrote itself (valid by construction).
    pub(crate) fn from_json_text(json: String) -> Self {
        Self(json)
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Serializers other than the hot HTTP path ([`Response::to_json`]) take it as raw JSON.
        let raw =
            serde_json::value::RawValue::from_string(self.0.clone()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}
