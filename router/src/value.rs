//! Conversions between GraphQL literals and JSON values.

use graphql_tools::parser::schema::Text;
use hive_router_query_planner::ast::value::Value as PlanValue;
use serde_json::{Map, Value};

/// A literal of a schema or operation document (no variables expected; a variable becomes null).
pub fn const_to_json<'a, T: Text<'a>>(value: &graphql_tools::parser::query::Value<'a, T>) -> Value {
    use graphql_tools::parser::query::Value as V;
    match value {
        V::Variable(_) | V::Null => Value::Null,
        V::Int(n) => n.as_i64().map_or(Value::Null, Value::from),
        V::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        V::String(s) => Value::String(s.clone()),
        V::Boolean(b) => Value::Bool(*b),
        V::Enum(e) => Value::String(e.as_ref().to_owned()),
        V::List(items) => Value::Array(items.iter().map(const_to_json).collect()),
        V::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.as_ref().to_owned(), const_to_json(v))).collect())
        }
    }
}

/// An argument value of a normalized operation, with variables substituted.
pub fn plan_value_to_json(value: &PlanValue, variables: &Map<String, Value>) -> Value {
    match value {
        PlanValue::Variable(name) => variables.get(name).cloned().unwrap_or(Value::Null),
        PlanValue::Null => Value::Null,
        PlanValue::Int(n) => Value::from(*n),
        PlanValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        PlanValue::String(s) | PlanValue::Enum(s) => Value::String(s.clone()),
        PlanValue::Boolean(b) => Value::Bool(*b),
        PlanValue::List(items) => {
            Value::Array(items.iter().map(|v| plan_value_to_json(v, variables)).collect())
        }
        PlanValue::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), plan_value_to_json(v, variables))).collect())
        }
    }
}

/// Deep-merges `source` into `target`: objects field by field, lists item by item; a null source
/// changes nothing, and any other value replaces the target. A later fetch thus refines what an
/// earlier one wrote: the concrete `__typename` an entity fetch resolves replaces the interface
/// name an `@interfaceObject` subgraph answered with.
pub fn deep_merge(target: &mut Value, source: Value) {
    match (target, source) {
        (_, Value::Null) => {}
        (Value::Object(t), Value::Object(s)) => {
            for (key, value) in s {
                match t.get_mut(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        t.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(s)) => {
            for (existing, value) in t.iter_mut().zip(s) {
                deep_merge(existing, value);
            }
        }
        (target, source) => *target = source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_combines_objects_and_lists() {
        let mut a = json!({"u": {"id": "1", "posts": [{"id": 1}, {"id": 2}]}, "n": null});
        deep_merge(&mut a, json!({"u": {"name": "Ada", "posts": [{"t": "a"}, {"t": "b"}]}, "n": 3}));
        assert_eq!(
            a,
            json!({"u": {"id": "1", "posts": [{"id": 1, "t": "a"}, {"id": 2, "t": "b"}], "name": "Ada"}, "n": 3})
        );
    }
}
