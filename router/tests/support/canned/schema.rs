//! What a canned subgraph knows of its own SDL: types, field types and arguments, entity keys,
//! `@requires`, and which object types an abstract type may be.

use std::collections::HashMap;

use graphql_tools::static_graphql::schema::{self as ast, Definition, Document, TypeDefinition};
use serde_json::Value;

/// A field type with its wrappers.
#[derive(Debug, Clone)]
pub enum Ty {
    Named(String),
    List(Box<Ty>),
    NonNull(Box<Ty>),
}

impl Ty {
    fn from_ast(ty: &ast::Type) -> Self {
        match ty {
            ast::Type::NamedType(name) => Self::Named(name.clone()),
            ast::Type::ListType(inner) => Self::List(Box::new(Self::from_ast(inner))),
            ast::Type::NonNullType(inner) => Self::NonNull(Box::new(Self::from_ast(inner))),
        }
    }
}

/// An argument or an input field: name, type, default.
pub type InputInfo = (String, Ty, Option<Value>);

#[derive(Debug, Default)]
pub struct FieldInfo {
    pub ty: Option<Ty>,
    pub args: Vec<InputInfo>,
    /// Top-level field names of `@requires(fields:)`.
    pub requires: Vec<String>,
}

#[derive(Debug, Default)]
pub struct TypeInfo {
    pub abstract_type: bool,
    pub fields: HashMap<String, FieldInfo>,
    pub implements: Vec<String>,
    pub members: Vec<String>,
    /// Top-level field names of each `@key(fields:)`.
    pub keys: Vec<Vec<String>>,
    /// The fields of an input object type.
    pub input_fields: Vec<InputInfo>,
}

/// A subgraph's SDL, indexed.
#[derive(Debug, Default)]
pub struct Sdl {
    pub types: HashMap<String, TypeInfo>,
}

impl Sdl {
    /// Parses a Federation v2 subgraph SDL (its `extend schema @link(...)` line is skipped: the
    /// parser does not know schema extensions, and nothing here needs the imports).
    pub fn parse(sdl: &str) -> Self {
        let text: String = sdl
            .lines()
            .filter(|l| !l.trim_start().starts_with("extend schema"))
            .collect::<Vec<_>>()
            .join("\n");
        let document: Document =
            graphql_tools::parser::parse_schema::<String>(&text).expect("corpus SDL parses").into_static();
        let mut types = HashMap::new();
        for definition in &document.definitions {
            if let Definition::TypeDefinition(ty) = definition {
                let (name, info) = type_info(ty);
                types.insert(name, info);
            }
        }
        Self { types }
    }

    /// Whether an object of type `object` is a `condition` (the same type, an interface it
    /// implements, a union it belongs to).
    pub fn is_a(&self, object: &str, condition: &str) -> bool {
        object == condition
            || self.types.get(object).is_some_and(|t| t.implements.iter().any(|i| i == condition))
            || self.types.get(condition).is_some_and(|t| t.members.iter().any(|m| m == object))
    }

    pub fn field(&self, parent: &str, name: &str) -> Option<&FieldInfo> {
        self.types.get(parent).and_then(|t| t.fields.get(name))
    }

    /// Coerces arguments as a GraphQL server does: absent ones take their default, and input
    /// objects get the defaults of the fields they leave out (their defaults coerced too).
    pub fn coerce_args(
        &self,
        inputs: &[InputInfo],
        given: &serde_json::Map<String, Value>,
    ) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for (name, ty, default) in inputs {
            if let Some(value) = given.get(name).or(default.as_ref()) {
                out.insert(name.clone(), self.coerce(ty, value));
            }
        }
        out
    }

    fn coerce(&self, ty: &Ty, value: &Value) -> Value {
        match (ty, value) {
            (Ty::NonNull(inner), _) => self.coerce(inner, value),
            (Ty::List(inner), Value::Array(items)) => {
                Value::Array(items.iter().map(|i| self.coerce(inner, i)).collect())
            }
            (Ty::List(inner), v) if !v.is_null() => Value::Array(vec![self.coerce(inner, v)]),
            (Ty::Named(name), Value::Object(fields)) => match self.types.get(name) {
                Some(t) if !t.input_fields.is_empty() => {
                    Value::Object(self.coerce_args(&t.input_fields, fields))
                }
                _ => value.clone(),
            },
            _ => value.clone(),
        }
    }
}

fn type_info(ty: &TypeDefinition) -> (String, TypeInfo) {
    let mut info = TypeInfo::default();
    let name = match ty {
        TypeDefinition::Object(o) => {
            info.fields = o.fields.iter().map(|f| (f.name.clone(), field_info(f))).collect();
            info.implements.clone_from(&o.implements_interfaces);
            info.keys = keys(&o.directives);
            o.name.clone()
        }
        TypeDefinition::Interface(i) => {
            info.abstract_type = true;
            info.fields = i.fields.iter().map(|f| (f.name.clone(), field_info(f))).collect();
            info.implements.clone_from(&i.implements_interfaces);
            info.keys = keys(&i.directives);
            i.name.clone()
        }
        TypeDefinition::Union(u) => {
            info.abstract_type = true;
            info.members.clone_from(&u.types);
            u.name.clone()
        }
        TypeDefinition::Scalar(s) => s.name.clone(),
        TypeDefinition::Enum(e) => e.name.clone(),
        TypeDefinition::InputObject(i) => {
            info.input_fields = i.fields.iter().map(input_info).collect();
            i.name.clone()
        }
    };
    (name, info)
}

fn field_info(field: &ast::Field) -> FieldInfo {
    FieldInfo {
        ty: Some(Ty::from_ast(&field.field_type)),
        args: field.arguments.iter().map(input_info).collect(),
        requires: field
            .directives
            .iter()
            .filter(|d| d.name == "requires")
            .flat_map(top_level_fields)
            .collect(),
    }
}

fn input_info(value: &ast::InputValue) -> InputInfo {
    let default = value.default_value.as_ref().map(|d| super::exec::literal(d, None));
    (value.name.clone(), Ty::from_ast(&value.value_type), default)
}

fn keys(directives: &[ast::Directive]) -> Vec<Vec<String>> {
    directives.iter().filter(|d| d.name == "key").map(top_level_fields).collect()
}

/// The top-level field names of a directive's `fields:` selection (`"id org { id }"`: id, org).
fn top_level_fields(directive: &ast::Directive) -> Vec<String> {
    let Some((_, ast::Value::String(fields))) = directive.arguments.iter().find(|(n, _)| n == "fields")
    else {
        return Vec::new();
    };
    let mut depth = 0usize;
    let mut names = Vec::new();
    let mut paren = 0usize;
    let mut type_condition = false;
    for token in fields
        .replace('{', " { ")
        .replace('}', " } ")
        .replace('(', " ( ")
        .replace(')', " ) ")
        .split_whitespace()
    {
        match token {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "(" => paren += 1,
            ")" => paren = paren.saturating_sub(1),
            "..." => {}
            "on" => type_condition = true,
            _ if type_condition => type_condition = false,
            name if depth == 0 && paren == 0 && !name.ends_with(':') => names.push(name.to_owned()),
            _ => {}
        }
    }
    names
}
