//! Coercion of the request's variable values against the operation's variable definitions
//! (GraphQL spec, CoerceVariableValues).

use graphql_tools::static_graphql::query::{Type, VariableDefinition};
use serde_json::{Map, Value};

use crate::response::{GraphQLError, code};
use crate::schema::{SchemaIndex, TypeKind, TypeRef};
use crate::value::const_to_json;

/// The coerced variables, or one error per bad variable.
pub fn coerce(
    schema: &SchemaIndex,
    definitions: &[VariableDefinition],
    provided: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<GraphQLError>> {
    let mut coerced = Map::new();
    let mut errors = Vec::new();
    for definition in definitions {
        let ty = type_ref(&definition.var_type);
        let name = &definition.name;
        let error = |message: String| {
            let pos = definition.position;
            GraphQLError::new(message, code::BAD_USER_INPUT).at(pos.line, pos.column)
        };
        match provided.get(name) {
            Some(value) => match coerce_value(schema, &ty, value) {
                Ok(value) => {
                    coerced.insert(name.clone(), value);
                }
                Err(problem) => {
                    errors.push(error(format!("Variable \"${name}\" got invalid value: {problem}")))
                }
            },
            None => match &definition.default_value {
                Some(default) => {
                    coerced.insert(name.clone(), const_to_json(default));
                }
                None if matches!(ty, TypeRef::NonNull(_)) => errors
                    .push(error(format!("Variable \"${name}\" of required type \"{ty}\" was not provided."))),
                None => {}
            },
        }
    }
    if errors.is_empty() { Ok(coerced) } else { Err(errors) }
}

fn type_ref(ty: &Type) -> TypeRef {
    match ty {
        Type::NamedType(name) => TypeRef::Named(name.clone()),
        Type::ListType(inner) => TypeRef::List(Box::new(type_ref(inner))),
        Type::NonNullType(inner) => TypeRef::NonNull(Box::new(type_ref(inner))),
    }
}

/// Coerces one input value; the error says what is wrong and where (`.field`, `[index]`).
pub fn coerce_value(schema: &SchemaIndex, ty: &TypeRef, value: &Value) -> Result<Value, String> {
    match (ty, value) {
        (TypeRef::NonNull(_), Value::Null) => Err(format!("expected a non-null {ty}, found null")),
        (TypeRef::NonNull(inner), _) => coerce_value(schema, inner, value),
        (_, Value::Null) => Ok(Value::Null),
        (TypeRef::List(inner), Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| coerce_value(schema, inner, item).map_err(|e| format!("[{i}] {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        // A single value where a list is expected is a list of one.
        (TypeRef::List(inner), _) => coerce_value(schema, inner, value).map(|v| Value::Array(vec![v])),
        (TypeRef::Named(name), _) => coerce_named(schema, name, value),
    }
}

fn coerce_named(schema: &SchemaIndex, name: &str, value: &Value) -> Result<Value, String> {
    let invalid = || format!("{} is not a valid {name}", short(value));
    match name {
        "Int" => value
            .as_i64()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Value::from)
            .ok_or_else(|| format!("{} is not a valid Int (32-bit integer)", short(value))),
        "Float" => value.as_f64().map(|_| value.clone()).ok_or_else(invalid),
        "String" => value.as_str().map(|_| value.clone()).ok_or_else(invalid),
        "Boolean" => value.as_bool().map(|_| value.clone()).ok_or_else(invalid),
        "ID" => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
            _ => Err(invalid()),
        },
        _ => match schema.get(name).map(|t| t.kind) {
            Some(TypeKind::Enum) => coerce_enum(schema, name, value),
            Some(TypeKind::InputObject) => coerce_input_object(schema, name, value),
            // Custom scalars are the subgraph's to check.
            Some(TypeKind::Scalar) => Ok(value.clone()),
            _ => Err(format!("{name} is not an input type")),
        },
    }
}

fn coerce_enum(schema: &SchemaIndex, name: &str, value: &Value) -> Result<Value, String> {
    let known = schema
        .get(name)
        .is_some_and(|t| t.enum_values.iter().any(|v| Some(v.name.as_str()) == value.as_str()));
    if known { Ok(value.clone()) } else { Err(format!("{} is not a value of enum {name}", short(value))) }
}

fn coerce_input_object(schema: &SchemaIndex, name: &str, value: &Value) -> Result<Value, String> {
    let (Some(def), Value::Object(fields)) = (schema.get(name), value) else {
        return Err(format!("{} is not an object of type {name}", short(value)));
    };
    if let Some(unknown) = fields.keys().find(|k| !def.input_fields.iter().any(|f| &f.name == *k)) {
        return Err(format!("field \"{unknown}\" is not defined by type {name}"));
    }
    let mut out = Map::new();
    for field in &def.input_fields {
        match (fields.get(&field.name), &field.default_value) {
            (Some(v), _) => {
                let coerced =
                    coerce_value(schema, &field.ty, v).map_err(|e| format!(".{} {e}", field.name))?;
                out.insert(field.name.clone(), coerced);
            }
            (None, Some((_, default))) => {
                out.insert(field.name.clone(), default.clone());
            }
            (None, None) if matches!(field.ty, TypeRef::NonNull(_)) => {
                return Err(format!(
                    "field \"{}\" of required type \"{}\" was not provided",
                    field.name, field.ty
                ));
            }
            (None, None) => {}
        }
    }
    if def.one_of && (out.len() != 1 || out.values().any(Value::is_null)) {
        return Err(format!("exactly one field of oneOf type {name} must be given, and not null"));
    }
    Ok(Value::Object(out))
}

/// A value, shortened for an error message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}...", text.chars().take(57).collect::<String>()) } else { text }
}
