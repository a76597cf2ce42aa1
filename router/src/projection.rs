//! Shapes the merged subgraph data into the client's response: exactly the requested fields, in
//! the requested order, under their aliases, with `@skip`/`@include` applied and nulls propagated
//! to the nearest nullable parent as the GraphQL spec says.

use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::response::{GraphQLError, code};
use crate::schema::{SchemaIndex, TypeKind, TypeRef};

/// A non-null violation below made this value null; its error is already recorded.
struct Propagated;

/// `Parent.field`, for the error of a non-null violation (formatted only then).
struct Label<'a> {
    parent: &'a str,
    field: &'a str,
}

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.parent, self.field)
    }
}

pub struct Projection<'a> {
    pub schema: &'a SchemaIndex,
    pub variables: &'a Map<String, Value>,
    /// Errors so far (from subgraphs); non-null violations they explain get no second error.
    pub errors: &'a mut Vec<GraphQLError>,
    pub failed_paths: &'a [Vec<Value>],
}

impl Projection<'_> {
    /// The response `data` for `selection` on the root type: an object, or null when a non-null
    /// root field is null.
    pub fn project(&mut self, root_type: &str, data: &Value, selection: &SelectionSet) -> Value {
        let empty = Map::new();
        let object = data.as_object().unwrap_or(&empty);
        self.object(root_type, object, &[selection], &mut Vec::new()).unwrap_or(Value::Null)
    }

    fn object(
        &mut self,
        runtime_type: &str,
        object: &Map<String, Value>,
        sets: &[&SelectionSet],
        path: &mut Vec<Value>,
    ) -> Result<Value, Propagated> {
        let mut fields: IndexMap<&str, Vec<&FieldSelection>> = IndexMap::new();
        for set in sets {
            self.collect_fields(runtime_type, set, &mut fields);
        }
        let mut out = Map::with_capacity(fields.len());
        for (key, nodes) in fields {
            path.push(Value::String(key.to_owned()));
            let value = self.field(runtime_type, object, key, &nodes, path);
            path.pop();
            out.insert(key.to_owned(), value?);
        }
        Ok(Value::Object(out))
    }

    fn field(
        &mut self,
        parent: &str,
        object: &Map<String, Value>,
        key: &str,
        nodes: &[&FieldSelection],
        path: &mut Vec<Value>,
    ) -> Result<Value, Propagated> {
        let name = nodes[0].name.as_str();
        if name == "__typename" {
            return Ok(Value::String(parent.to_owned()));
        }
        let Some(def) = self.schema.field(parent, name) else { return Ok(Value::Null) };
        let raw = object.get(key).unwrap_or(&Value::Null);
        let sets: Vec<&SelectionSet> = nodes.iter().map(|n| &n.selections).collect();
        self.complete(&def.ty, raw, &sets, path, &Label { parent, field: name })
    }

    fn complete(
        &mut self,
        ty: &TypeRef,
        value: &Value,
        sets: &[&SelectionSet],
        path: &mut Vec<Value>,
        label: &Label<'_>,
    ) -> Result<Value, Propagated> {
        match ty {
            TypeRef::NonNull(inner) => match self.complete_nullable(inner, value, sets, path, label) {
                Ok(Value::Null) => {
                    self.non_null_violation(path, label);
                    Err(Propagated)
                }
                other => other,
            },
            _ => self.complete_nullable(ty, value, sets, path, label).or(Ok(Value::Null)),
        }
    }

    /// Completes a value whose own type is not non-null; `Err` when a non-null child failed.
    fn complete_nullable(
        &mut self,
        ty: &TypeRef,
        value: &Value,
        sets: &[&SelectionSet],
        path: &mut Vec<Value>,
        label: &Label<'_>,
    ) -> Result<Value, Propagated> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        match ty {
            TypeRef::NonNull(_) => self.complete(ty, value, sets, path, label),
            TypeRef::List(inner) => {
                let Value::Array(items) = value else { return Ok(Value::Null) };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(Value::from(i));
                    let completed = self.complete(inner, item, sets, path, label);
                    path.pop();
                    out.push(completed?);
                }
                Ok(Value::Array(out))
            }
            TypeRef::Named(name) => self.complete_named(name, value, sets, path),
        }
    }

    fn complete_named(
        &mut self,
        name: &str,
        value: &Value,
        sets: &[&SelectionSet],
        path: &mut Vec<Value>,
    ) -> Result<Value, Propagated> {
        let Some(def) = self.schema.get(name) else { return Ok(value.clone()) };
        match def.kind {
            TypeKind::Scalar | TypeKind::InputObject => Ok(value.clone()),
            TypeKind::Enum => {
                let known = def.enum_values.iter().any(|v| Some(v.name.as_str()) == value.as_str());
                if !known {
                    let message = format!("Enum \"{name}\" cannot represent value: {value}");
                    self.errors.push(
                        GraphQLError::new(message, code::INTERNAL_SERVER_ERROR).with_path(path.clone()),
                    );
                    return Ok(Value::Null);
                }
                Ok(value.clone())
            }
            TypeKind::Object => {
                let Value::Object(object) = value else { return Ok(Value::Null) };
                self.object(name, object, sets, path)
            }
            TypeKind::Interface | TypeKind::Union => {
                let Value::Object(object) = value else { return Ok(Value::Null) };
                match object.get("__typename").and_then(Value::as_str) {
                    None => self.object(name, object, sets, path),
                    // A type the public schema does not have (`@inaccessible`) is never shown: the
                    // value is null, as if the subgraph had not resolved it.
                    Some(runtime) if !self.schema.matches(runtime, name) => Ok(Value::Null),
                    Some(runtime) => {
                        let runtime = runtime.to_owned();
                        self.object(&runtime, object, sets, path)
                    }
                }
            }
        }
    }

    fn non_null_violation(&mut self, path: &[Value], label: &Label<'_>) {
        // An error at this path, above it (a failed fetch) or below it (a subgraph already
        // propagated a null up to here) explains the null.
        let explained = self
            .errors
            .iter()
            .filter_map(|e| e.path.as_deref())
            .chain(self.failed_paths.iter().map(Vec::as_slice))
            .any(|p| path.starts_with(p) || p.starts_with(path));
        if !explained {
            let message = format!("Cannot return null for non-nullable field {label}.");
            self.errors
                .push(GraphQLError::new(message, code::INTERNAL_SERVER_ERROR).with_path(path.to_vec()));
        }
    }

    fn collect_fields<'s>(
        &self,
        runtime_type: &str,
        set: &'s SelectionSet,
        out: &mut IndexMap<&'s str, Vec<&'s FieldSelection>>,
    ) {
        for item in &set.items {
            match item {
                SelectionItem::Field(field) => {
                    if field.omit_from_response
                        || !self.included(field.skip_if.as_deref(), field.include_if.as_deref())
                    {
                        continue;
                    }
                    let key = field.alias.as_deref().unwrap_or(&field.name);
                    out.entry(key).or_default().push(field);
                }
                SelectionItem::InlineFragment(fragment) => {
                    let included = self.included(fragment.skip_if.as_deref(), fragment.include_if.as_deref());
                    if included && self.schema.matches(runtime_type, &fragment.type_condition) {
                        self.collect_fields(runtime_type, &fragment.selections, out);
                    }
                }
                SelectionItem::FragmentSpread(_) => {}
            }
        }
    }

    fn included(&self, skip_if: Option<&str>, include_if: Option<&str>) -> bool {
        let is_true = |name: &str| self.variables.get(name) == Some(&Value::Bool(true));
        !skip_if.is_some_and(is_true) && include_if.is_none_or(is_true)
    }
}
