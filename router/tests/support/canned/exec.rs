//! A small GraphQL executor over canned JSON, enough to stand in for a federation subgraph:
//! fields by name (`{"$byArgs": [{"args": {..}, "value": ..}]}` picks by arguments, `{"$error":
//! "message"}` fails the field), `__typename`, fragments, `@skip`/`@include`, null propagation as
//! the spec says, and `_entities` with the checks a real subgraph makes (a key is present,
//! `@requires` fields are sent) plus one a fake can make: the representation agrees with the
//! canned entity on every field it carries.

use std::collections::HashMap;

use graphql_tools::static_graphql::query::{
    Definition, Document, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
    TypeCondition, Value as Literal,
};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::schema::{Sdl, Ty};

/// A literal of the query, with variables substituted.
pub fn literal(value: &Literal, variables: Option<&Map<String, Value>>) -> Value {
    match value {
        Literal::Variable(name) => variables.and_then(|v| v.get(name)).cloned().unwrap_or(Value::Null),
        Literal::Int(n) => n.as_i64().map_or(Value::Null, Value::from),
        Literal::Float(f) => json!(f),
        Literal::String(s) => Value::String(s.clone()),
        Literal::Boolean(b) => Value::Bool(*b),
        Literal::Null => Value::Null,
        Literal::Enum(e) => Value::String(e.clone()),
        Literal::List(items) => Value::Array(items.iter().map(|i| literal(i, variables)).collect()),
        Literal::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), literal(v, variables))).collect())
        }
    }
}

/// A non-null position got null: the nearest nullable parent becomes null.
struct Propagate;

pub struct Exec<'a> {
    sdl: &'a Sdl,
    data: &'a Value,
    variables: &'a Map<String, Value>,
    fragments: HashMap<String, &'a FragmentDefinition>,
    errors: Vec<Value>,
}

/// Runs `query` against `data`, as a subgraph with schema `sdl` would.
pub fn execute(sdl: &Sdl, data: &Value, query: &str, variables: &Map<String, Value>) -> Value {
    let document: Document = match graphql_tools::parser::parse_query::<String>(query) {
        Ok(document) => document.into_static(),
        Err(e) => return json!({ "errors": [{ "message": format!("parse error: {e}") }] }),
    };
    let mut exec = Exec { sdl, data, variables, fragments: HashMap::new(), errors: Vec::new() };
    let mut operation = None;
    for definition in &document.definitions {
        match definition {
            Definition::Fragment(f) => {
                exec.fragments.insert(f.name.clone(), f);
            }
            Definition::Operation(op) => operation = Some(op),
        }
    }
    let (root, set) = match operation {
        Some(OperationDefinition::Query(q)) => ("Query", &q.selection_set),
        Some(OperationDefinition::Mutation(m)) => ("Mutation", &m.selection_set),
        Some(OperationDefinition::SelectionSet(s)) => ("Query", s),
        _ => return json!({ "errors": [{ "message": "no query or mutation" }] }),
    };
    let empty = Map::new();
    let root_object = data.get(root).and_then(Value::as_object).unwrap_or(&empty);
    let result = exec.object(root, root_object, &[set], &mut Vec::new()).unwrap_or(Value::Null);
    let mut response = json!({ "data": result });
    if !exec.errors.is_empty() {
        response["errors"] = Value::Array(exec.errors);
    }
    response
}

impl<'a> Exec<'a> {
    fn error(&mut self, message: String, path: &[Value]) {
        self.errors.push(json!({ "message": message, "path": path }));
    }

    fn object(
        &mut self,
        ty: &str,
        object: &Map<String, Value>,
        sets: &[&'a SelectionSet],
        path: &mut Vec<Value>,
    ) -> Result<Value, Propagate> {
        let mut fields: IndexMap<String, Vec<&'a Field>> = IndexMap::new();
        for set in sets {
            self.collect(ty, set, &mut fields);
        }
        let mut out = Map::new();
        for (key, nodes) in fields {
            path.push(Value::String(key.clone()));
            let value = self.field(ty, object, &nodes, path);
            path.pop();
            out.insert(key, value?);
        }
        Ok(Value::Object(out))
    }

    fn collect(&self, ty: &str, set: &'a SelectionSet, out: &mut IndexMap<String, Vec<&'a Field>>) {
        for selection in &set.items {
            match selection {
                Selection::Field(f) if self.included(&f.directives) => {
                    out.entry(f.alias.clone().unwrap_or_else(|| f.name.clone())).or_default().push(f);
                }
                Selection::InlineFragment(f)
                    if self.included(&f.directives)
                        && f.type_condition
                            .as_ref()
                            .is_none_or(|TypeCondition::On(c)| self.sdl.is_a(ty, c)) =>
                {
                    self.collect(ty, &f.selection_set, out);
                }
                Selection::FragmentSpread(s) if self.included(&s.directives) => {
                    if let Some(f) = self.fragments.get(&s.fragment_name) {
                        let TypeCondition::On(condition) = &f.type_condition;
                        if self.sdl.is_a(ty, condition) {
                            self.collect(ty, &f.selection_set, out);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn included(&self, directives: &[graphql_tools::static_graphql::query::Directive]) -> bool {
        directives.iter().all(|d| {
            let condition =
                d.arguments.iter().find(|(n, _)| n == "if").map(|(_, v)| literal(v, Some(self.variables)));
            match d.name.as_str() {
                "skip" => condition != Some(Value::Bool(true)),
                "include" => condition == Some(Value::Bool(true)),
                _ => true,
            }
        })
    }

    fn field(
        &mut self,
        ty: &str,
        object: &Map<String, Value>,
        nodes: &[&'a Field],
        path: &mut Vec<Value>,
    ) -> Result<Value, Propagate> {
        let field = nodes[0];
        if field.name == "__typename" {
            return Ok(object.get("__typename").cloned().unwrap_or_else(|| Value::String(ty.to_owned())));
        }
        let sets: Vec<&'a SelectionSet> = nodes.iter().map(|n| &n.selection_set).collect();
        if field.name == "_entities" {
            return Ok(self.entities(field, &sets, path));
        }
        let Some(info) = self.sdl.field(ty, &field.name) else {
            self.error(format!("no field {ty}.{}", field.name), path);
            return Ok(Value::Null);
        };
        // An argument given as a variable nobody provided is absent: its default applies.
        let given: Map<String, Value> = field
            .arguments
            .iter()
            .filter(|(_, v)| !matches!(v, Literal::Variable(name) if !self.variables.contains_key(name)))
            .map(|(name, value)| (name.clone(), literal(value, Some(self.variables))))
            .collect();
        let args = self.sdl.coerce_args(&info.args, &given);
        // A nested entity this subgraph also resolves: its other fields come from its own data.
        // The query type below the root (a mutation payload's `query` field) is the root again.
        let own = match object.get(&field.name) {
            Some(value) => Some(value),
            None if ty == "Query" => self.data.get("Query").and_then(|q| q.get(&field.name)),
            None => self.find(ty, &Value::Object(object.clone())).and_then(|row| row.get(&field.name)),
        };
        let raw = resolve(own, &args);
        let value = match raw.get("$error").and_then(Value::as_str) {
            Some(message) => {
                self.error(message.to_owned(), path);
                Value::Null
            }
            None => raw,
        };
        let ty = info.ty.clone().unwrap_or(Ty::Named("String".into()));
        self.complete(&ty, &value, &sets, path)
    }

    fn complete(
        &mut self,
        ty: &Ty,
        value: &Value,
        sets: &[&'a SelectionSet],
        path: &mut Vec<Value>,
    ) -> Result<Value, Propagate> {
        match ty {
            Ty::NonNull(inner) => match self.complete_value(inner, value, sets, path) {
                Ok(Value::Null) => {
                    let explained = self.errors.iter().any(|e| {
                        e["path"]
                            .as_array()
                            .is_some_and(|p| p.len() >= path.len() && p[..path.len()] == path[..])
                    });
                    if !explained {
                        self.error("Cannot return null for non-nullable field".into(), path);
                    }
                    Err(Propagate)
                }
                other => other,
            },
            _ => self.complete_value(ty, value, sets, path).or(Ok(Value::Null)),
        }
    }

    fn complete_value(
        &mut self,
        ty: &Ty,
        value: &Value,
        sets: &[&'a SelectionSet],
        path: &mut Vec<Value>,
    ) -> Result<Value, Propagate> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        match ty {
            Ty::NonNull(_) => self.complete(ty, value, sets, path),
            Ty::List(inner) => {
                let items = value.as_array().cloned().unwrap_or_default();
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(Value::from(i));
                    let completed = self.complete(inner, item, sets, path);
                    path.pop();
                    out.push(completed?);
                }
                Ok(Value::Array(out))
            }
            Ty::Named(name) => {
                let Some(object) = value.as_object() else { return Ok(value.clone()) };
                let abstract_type = self.sdl.types.get(name).is_some_and(|t| t.abstract_type);
                let runtime = match object.get("__typename").and_then(Value::as_str) {
                    Some(t) if abstract_type => t.to_owned(),
                    _ => name.clone(),
                };
                if self.sdl.types.get(name).is_none_or(|t| t.fields.is_empty() && !abstract_type) {
                    return Ok(value.clone()); // a custom scalar with an object value
                }
                self.object(&runtime, object, sets, path)
            }
        }
    }

    /// `_entities(representations:)`: one answer per representation, null when unknown.
    fn entities(&mut self, field: &Field, sets: &[&'a SelectionSet], path: &mut Vec<Value>) -> Value {
        let representations = field
            .arguments
            .iter()
            .find(|(n, _)| n == "representations")
            .map(|(_, v)| literal(v, Some(self.variables)))
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(representations.len());
        for (i, representation) in representations.iter().enumerate() {
            path.push(Value::from(i));
            let entity = self.entity(representation, sets, path);
            path.pop();
            out.push(entity);
        }
        Value::Array(out)
    }

    fn entity(&mut self, representation: &Value, sets: &[&'a SelectionSet], path: &mut Vec<Value>) -> Value {
        let Some(typename) = representation.get("__typename").and_then(Value::as_str) else {
            self.error("a representation without __typename".into(), path);
            return Value::Null;
        };
        let keys = self.sdl.types.get(typename).map(|t| t.keys.clone()).unwrap_or_default();
        let has_key = keys.iter().any(|key| key.iter().all(|f| representation.get(f).is_some()));
        if !has_key {
            self.error(format!("no @key of {typename} in the representation {representation}"), path);
            return Value::Null;
        }
        let mut fields: IndexMap<String, Vec<&'a Field>> = IndexMap::new();
        for set in sets {
            self.collect(typename, set, &mut fields);
        }
        for field in fields.values().map(|f| f[0]) {
            let requires =
                self.sdl.field(typename, &field.name).map(|f| f.requires.clone()).unwrap_or_default();
            if let Some(missing) = requires.iter().find(|r| representation.get(r.as_str()).is_none()) {
                self.error(format!("{typename}.{} needs @requires field {missing}", field.name), path);
                return Value::Null;
            }
        }
        let Some(row) = self.find(typename, representation) else { return Value::Null };
        let mut object = representation.as_object().cloned().unwrap_or_default();
        object.extend(row.as_object().cloned().unwrap_or_default());
        let runtime = object.get("__typename").and_then(Value::as_str).unwrap_or(typename).to_owned();
        self.object(&runtime, &object, sets, path).unwrap_or(Value::Null)
    }

    /// The canned entity a representation stands for: of its type (or of a type implementing it,
    /// or listed under an interface it implements), agreeing with every field it carries.
    fn find(&self, typename: &str, representation: &Value) -> Option<&'a Value> {
        let entities = self.data.get("entities")?.as_object()?;
        entities.iter().find_map(|(list, rows)| {
            rows.as_array()?.iter().find(|row| {
                let row_type = row.get("__typename").and_then(Value::as_str).unwrap_or(list);
                let of_type =
                    self.sdl.is_a(row_type, typename) || self.sdl.is_a(typename, list) || list == typename;
                of_type && agrees(row, representation)
            })
        })
    }
}

/// Every field of the representation (but `__typename`) is in the row with the same value.
fn agrees(row: &Value, representation: &Value) -> bool {
    let (Some(row), Some(representation)) = (row.as_object(), representation.as_object()) else {
        return false;
    };
    representation
        .iter()
        .filter(|(k, _)| *k != "__typename")
        .all(|(k, v)| row.get(k).is_some_and(|r| contains(r, v)))
}

fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .filter(|(k, _)| *k != "__typename")
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(h, w)| contains(h, w))
        }
        _ => have == want,
    }
}

/// A canned field value: the case whose arguments match, when it has cases.
fn resolve(raw: Option<&Value>, args: &Map<String, Value>) -> Value {
    let Some(raw) = raw else { return Value::Null };
    match raw.get("$byArgs").and_then(Value::as_array) {
        Some(cases) => cases
            .iter()
            .find(|case| case.get("args").and_then(Value::as_object) == Some(args))
            .and_then(|case| case.get("value"))
            .cloned()
            .unwrap_or(Value::Null),
        None => raw.clone(),
    }
}
