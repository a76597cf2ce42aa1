//! Trusted documents: the only operations a locked-down router runs, loaded at start from a
//! folder of `.graphql` files or a JSON manifest (Apollo's persisted query manifest, or a flat
//! `{ "<id>": "<document>" }` map as GraphQL Code Generator and Relay write it).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::sha256_hex;

/// The documents, by their id and by the SHA-256 of their text.
#[derive(Debug, Default)]
pub struct TrustedDocuments {
    by_id: HashMap<String, String>,
    hashes: HashSet<String>,
}

impl TrustedDocuments {
    /// Loads a folder (every `*.graphql` / `*.gql` file in it, by content hash) or a JSON file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let name = path.display();
        let mut this = Self::default();
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| format!("{name}: {e}"))?;
            for entry in entries {
                let file = entry.map_err(|e| format!("{name}: {e}"))?.path();
                if file.extension().is_some_and(|e| e == "graphql" || e == "gql") {
                    let body =
                        std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                    this.add(sha256_hex(&body), body);
                }
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
            let json: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
            this.read_manifest(&json).map_err(|e| format!("{name}: {e}"))?;
        }
        if this.by_id.is_empty() {
            return Err(format!("{name}: no documents found"));
        }
        Ok(this)
    }

    fn read_manifest(&mut self, json: &Value) -> Result<(), String> {
        if let Some(operations) = json.get("operations").and_then(Value::as_array) {
            for operation in operations {
                let (Some(id), Some(body)) = (
                    operation.get("id").and_then(Value::as_str),
                    operation.get("body").and_then(Value::as_str),
                ) else {
                    return Err("every operation needs a string id and body".into());
                };
                self.add(id.to_owned(), body.to_owned());
            }
            return Ok(());
        }
        let map =
            json.as_object().ok_or("expected { \"operations\": [...] } or { \"<id>\": \"<document>\" }")?;
        for (id, body) in map {
            let body = body.as_str().ok_or_else(|| format!("the document of {id:?} is not a string"))?;
            self.add(id.clone(), body.to_owned());
        }
        Ok(())
    }

    fn add(&mut self, id: String, body: String) {
        self.hashes.insert(sha256_hex(&body));
        self.by_id.insert(id.strip_prefix("sha256:").map(str::to_owned).unwrap_or(id), body);
    }

    /// The document with this id (or hash).
    pub fn get(&self, id: &str) -> Option<&str> {
        self.by_id.get(id.strip_prefix("sha256:").unwrap_or(id)).map(String::as_str)
    }

    /// Whether this exact text is a trusted document.
    pub fn contains_text(&self, query: &str) -> bool {
        self.hashes.contains(&sha256_hex(query))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
