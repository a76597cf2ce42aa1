//! Shapes the merged subgraph data into the client's response: exactly the requested fields, in
//! the requested order, under their aliases, with `@skip`/`@include` applied and nulls propagated
//! to the nearest nullable parent as the GraphQL spec says.
//!
//! The response is written as JSON text in one walk, never built as a tree first: a non-null
//! violation truncates what was written back to the nearest nullable parent and writes `null`
//! there. The fields a selection yields on a type are collected once per request and reused for
//! every object of that type (a list of a thousand reviews collects `Review`'s fields once).

use std::rc::Rc;

use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::response::{GraphQLError, code};
use crate::schema::{FieldDef, SchemaIndex, TypeDef, TypeKind, TypeRef};
use crate::tree::{Object, Tree};

/// A non-null violation below made this value null; its error is already recorded.
struct Propagated;

/// What a completion wrote.
#[derive(PartialEq, Eq)]
enum Written {
    Null,
    Value,
}

/// One step of the path being written: a response key or a list index (made into JSON only for
/// an error).
#[derive(Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

impl Segment<'_> {
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Self::Key(key), Value::String(s)) => key == s,
            (Self::Index(i), Value::Number(n)) => n.as_u64() == u64::try_from(*i).ok(),
            _ => false,
        }
    }

    fn to_json(self) -> Value {
        match self {
            Self::Key(key) => Value::String(key.to_owned()),
            Self::Index(i) => Value::from(i),
        }
    }
}

fn to_json(path: &[Segment<'_>]) -> Vec<Value> {
    path.iter().map(|s| s.to_json()).collect()
}

/// One response key of a selection on one type, with what completing it needs.
struct Field<'a> {
    key: &'a str,
    name: &'a str,
    /// The schema's definition (none for `__typename`, or a field the type lacks).
    def: Option<&'a FieldDef>,
    /// The named type of the field, when the schema has it.
    named: Option<&'a TypeDef>,
    /// The sub-selections of every node selecting this key.
    sets: Vec<&'a SelectionSet>,
}

type Fields<'a> = Rc<[Field<'a>]>;

pub struct Projection<'a> {
    pub schema: &'a SchemaIndex,
    pub variables: &'a Map<String, Value>,
    /// Errors so far (from subgraphs); non-null violations they explain get no second error.
    pub errors: &'a mut Vec<GraphQLError>,
    pub failed_paths: &'a [Vec<Value>],
    out: Vec<u8>,
    /// The fields of (type, selection set), by their addresses; for this request's variables.
    collected: FxHashMap<(usize, usize), Fields<'a>>,
}

impl<'a> Projection<'a> {
    pub fn new(
        schema: &'a SchemaIndex,
        variables: &'a Map<String, Value>,
        errors: &'a mut Vec<GraphQLError>,
        failed_paths: &'a [Vec<Value>],
    ) -> Self {
        Self { schema, variables, errors, failed_paths, out: Vec::new(), collected: FxHashMap::default() }
    }

    /// The response `data` for `selection` on the root type, as JSON text: an object, or `null`
    /// when a non-null root field is null.
    pub fn project(mut self, root_type: &str, data: &Tree, selection: &'a SelectionSet) -> String {
        let empty = Object::new();
        let object = data.as_object().unwrap_or(&empty);
        self.out.reserve(4096);
        let root = self.schema.get(root_type);
        if self.object(root_type, root, object, &[selection], &mut Vec::new()).is_err() {
            self.out.clear();
            self.out.extend_from_slice(b"null");
        }
        // Only JSON text from serde_json and the schema's GraphQL names was written.
        String::from_utf8(self.out).unwrap_or_else(|_| "null".to_owned())
    }

    /// Writes an object of type `parent` (`canonical`: its definition in the schema).
    fn object(
        &mut self,
        parent: &str,
        canonical: Option<&'a TypeDef>,
        object: &Object,
        sets: &[&'a SelectionSet],
        path: &mut Vec<Segment<'a>>,
    ) -> Result<(), Propagated> {
        let fields = self.fields(parent, canonical, sets);
        self.out.push(b'{');
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            // Response keys are GraphQL names: nothing in them needs escaping.
            self.out.push(b'"');
            self.out.extend_from_slice(field.key.as_bytes());
            self.out.extend_from_slice(b"\":");
            path.push(Segment::Key(field.key));
            let written = self.field(parent, object, field, path);
            path.pop();
            written?;
        }
        self.out.push(b'}');
        Ok(())
    }

    fn field(
        &mut self,
        parent: &str,
        object: &Object,
        field: &Field<'a>,
        path: &mut Vec<Segment<'a>>,
    ) -> Result<(), Propagated> {
        if field.name == "__typename" {
            self.string(parent);
            return Ok(());
        }
        let Some(def) = field.def else {
            self.out.extend_from_slice(b"null");
            return Ok(());
        };
        let raw = object.get(field.key).unwrap_or(&Tree::Null);
        let label = Label { parent, field: field.name };
        self.complete(&def.ty, field.named, raw, &field.sets, path, &label).map(|_| ())
    }

    fn complete(
        &mut self,
        ty: &TypeRef,
        named: Option<&'a TypeDef>,
        value: &Tree,
        sets: &[&'a SelectionSet],
        path: &mut Vec<Segment<'a>>,
        label: &Label<'_>,
    ) -> Result<Written, Propagated> {
        let start = self.out.len();
        match ty {
            TypeRef::NonNull(inner) => match self.complete_nullable(inner, named, value, sets, path, label) {
                Ok(Written::Null) => {
                    self.out.truncate(start);
                    self.non_null_violation(path, label);
                    Err(Propagated)
                }
                other => other,
            },
            _ => match self.complete_nullable(ty, named, value, sets, path, label) {
                Ok(written) => Ok(written),
                Err(Propagated) => {
                    self.out.truncate(start);
                    self.out.extend_from_slice(b"null");
                    Ok(Written::Null)
                }
            },
        }
    }

    /// Completes a value whose own type is not non-null; `Err` when a non-null child failed.
    fn complete_nullable(
        &mut self,
        ty: &TypeRef,
        named: Option<&'a TypeDef>,
        value: &Tree,
        sets: &[&'a SelectionSet],
        path: &mut Vec<Segment<'a>>,
        label: &Label<'_>,
    ) -> Result<Written, Propagated> {
        if value.is_null() {
            return Ok(self.null());
        }
        match ty {
            TypeRef::NonNull(_) => self.complete(ty, named, value, sets, path, label),
            TypeRef::List(inner) => {
                let Tree::Array(items) = value else { return Ok(self.null()) };
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    path.push(Segment::Index(i));
                    let completed = self.complete(inner, named, item, sets, path, label);
                    path.pop();
                    completed?;
                }
                self.out.push(b']');
                Ok(Written::Value)
            }
            TypeRef::Named(name) => self.complete_named(name, named, value, sets, path),
        }
    }

    fn complete_named(
        &mut self,
        name: &str,
        def: Option<&'a TypeDef>,
        value: &Tree,
        sets: &[&'a SelectionSet],
        path: &mut Vec<Segment<'a>>,
    ) -> Result<Written, Propagated> {
        let Some(def) = def else { return Ok(self.value(value)) };
        match def.kind {
            TypeKind::Scalar | TypeKind::InputObject => Ok(self.value(value)),
            TypeKind::Enum => {
                let known = def.enum_values.iter().any(|v| Some(v.name.as_str()) == value.as_str());
                if !known {
                    let message = format!("Enum \"{name}\" cannot represent value: {value}");
                    self.errors.push(
                        GraphQLError::new(message, code::INTERNAL_SERVER_ERROR).with_path(to_json(path)),
                    );
                    return Ok(self.null());
                }
                Ok(self.value(value))
            }
            TypeKind::Object => {
                let Tree::Object(object) = value else { return Ok(self.null()) };
                self.object(name, Some(def), object, sets, path).map(|()| Written::Value)
            }
            TypeKind::Interface | TypeKind::Union => {
                let Tree::Object(object) = value else { return Ok(self.null()) };
                match object.get("__typename").and_then(Tree::as_str) {
                    None => self.object(name, Some(def), object, sets, path).map(|()| Written::Value),
                    // A type the public schema does not have (`@inaccessible`) is never shown: the
                    // value is null, as if the subgraph had not resolved it.
                    Some(runtime) if !self.schema.matches(runtime, name) => Ok(self.null()),
                    Some(runtime) => {
                        let canonical = self.schema.get(runtime);
                        self.object(runtime, canonical, object, sets, path).map(|()| Written::Value)
                    }
                }
            }
        }
    }

    fn null(&mut self) -> Written {
        self.out.extend_from_slice(b"null");
        Written::Null
    }

    /// A leaf value as it came (a custom scalar may be any JSON).
    fn value(&mut self, value: &Tree) -> Written {
        crate::tree::write_json(&mut self.out, value);
        if value.is_null() { Written::Null } else { Written::Value }
    }

    fn string(&mut self, s: &str) {
        crate::tree::write_json_str(&mut self.out, s);
    }

    fn non_null_violation(&mut self, path: &[Segment<'a>], label: &Label<'_>) {
        // An error at this path, above it (a failed fetch) or below it (a subgraph already
        // propagated a null up to here) explains the null: one path is a prefix of the other.
        let related = |p: &[Value]| path.iter().zip(p).all(|(s, v)| s.matches(v));
        let explained = self
            .errors
            .iter()
            .filter_map(|e| e.path.as_deref())
            .chain(self.failed_paths.iter().map(Vec::as_slice))
            .any(related);
        if !explained {
            let message = format!("Cannot return null for non-nullable field {label}.");
            self.errors
                .push(GraphQLError::new(message, code::INTERNAL_SERVER_ERROR).with_path(to_json(path)));
        }
    }

    /// The fields `sets` select on an object of type `parent`, collected once per request for
    /// each (type, selection set).
    fn fields(
        &mut self,
        parent: &str,
        canonical: Option<&'a TypeDef>,
        sets: &[&'a SelectionSet],
    ) -> Fields<'a> {
        let key = match (canonical, sets) {
            (Some(def), [set]) => Some((std::ptr::from_ref(def) as usize, std::ptr::from_ref(*set) as usize)),
            _ => None,
        };
        if let Some(found) = key.and_then(|key| self.collected.get(&key)) {
            return found.clone();
        }
        let mut nodes: Vec<(&'a str, Vec<&'a FieldSelection>)> = Vec::new();
        for set in sets {
            self.collect_fields(parent, set, &mut nodes);
        }
        let fields: Fields<'a> = nodes
            .into_iter()
            .map(|(key, nodes)| {
                let name = nodes[0].name.as_str();
                let def = canonical.and_then(|t| t.fields.get(name)).filter(|_| name != "__typename");
                let named = def.and_then(|d| self.schema.get(d.ty.named()));
                Field { key, name, def, named, sets: nodes.iter().map(|n| &n.selections).collect() }
            })
            .collect();
        if let Some(key) = key {
            self.collected.insert(key, fields.clone());
        }
        fields
    }

    fn collect_fields(
        &self,
        runtime_type: &str,
        set: &'a SelectionSet,
        out: &mut Vec<(&'a str, Vec<&'a FieldSelection>)>,
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
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, nodes)) => nodes.push(field),
                        None => out.push((key, vec![field])),
                    }
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
