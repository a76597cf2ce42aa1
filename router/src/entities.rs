//! Entities in the data tree: finding them along a plan path, building their representations for
//! `_entities`, and the plan's input/output rewrites.

use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::SelectionSet;
use hive_router_query_planner::planner::plan_nodes::{
    FetchNodePathSegment, FetchRewrite, FlattenNodePathSegment,
};
use serde_json::{Map, Value};

use crate::schema::SchemaIndex;

fn typename(object: &Map<String, Value>) -> Option<&str> {
    object.get("__typename").and_then(Value::as_str)
}

/// Collects the objects at `segments` below `value`, with their paths.
pub fn collect_targets<'v>(
    value: &'v Value,
    segments: &[FlattenNodePathSegment],
    path: &mut Vec<Value>,
    schema: &SchemaIndex,
    out: &mut Vec<(Vec<Value>, &'v Map<String, Value>)>,
) {
    let Some((segment, rest)) = segments.split_first() else {
        match value {
            Value::Object(object) => out.push((path.clone(), object)),
            Value::Array(items) => {
                each_item(items, path, |item, path| collect_targets(item, &[], path, schema, out))
            }
            _ => {}
        }
        return;
    };
    match (segment, value) {
        (FlattenNodePathSegment::Field(name), Value::Object(object)) => {
            if let Some(child) = object.get(name) {
                path.push(Value::String(name.clone()));
                collect_targets(child, rest, path, schema, out);
                path.pop();
            }
        }
        (FlattenNodePathSegment::List, Value::Array(items)) => {
            each_item(items, path, |item, path| collect_targets(item, rest, path, schema, out));
        }
        (FlattenNodePathSegment::TypeCondition(types), Value::Object(object)) => {
            // An object without `__typename` comes from a subgraph that cannot tell (an
            // `@interfaceObject`): the next fetch decides.
            let matches = typename(object).is_none_or(|t| types.iter().any(|c| schema.matches(t, c)));
            if matches {
                collect_targets(value, rest, path, schema, out);
            }
        }
        (_, Value::Array(items)) => {
            each_item(items, path, |item, path| collect_targets(item, segments, path, schema, out));
        }
        _ => {}
    }
}

fn each_item<'v>(items: &'v [Value], path: &mut Vec<Value>, mut f: impl FnMut(&'v Value, &mut Vec<Value>)) {
    for (i, item) in items.iter().enumerate() {
        path.push(Value::from(i));
        f(item, path);
        path.pop();
    }
}

/// The representation of `object` for an entity fetch: its `__typename` and the `requires`
/// selection of it. A selected field is read under its name, else under its response key (the
/// planner names a field it fetched under an internal alias that way), and written under its
/// response key. Fields the data lacks are left out (an earlier fetch failed: the subgraph says
/// what is missing); `None` when nothing at all is selected.
pub fn representation(
    object: &Map<String, Value>,
    requires: &SelectionSet,
    schema: &SchemaIndex,
) -> Option<Value> {
    let mut out = Map::new();
    select_into(object, requires, schema, &mut out);
    let only_typename = out.keys().all(|k| k == "__typename");
    if out.is_empty() || (only_typename && !selects_only_typename(requires)) {
        return None;
    }
    Some(Value::Object(out))
}

fn selects_only_typename(selection: &SelectionSet) -> bool {
    selection.items.iter().all(|item| match item {
        SelectionItem::Field(field) => field.name == "__typename",
        SelectionItem::InlineFragment(fragment) => selects_only_typename(&fragment.selections),
        SelectionItem::FragmentSpread(_) => true,
    })
}

fn select_into(
    object: &Map<String, Value>,
    selection: &SelectionSet,
    schema: &SchemaIndex,
    out: &mut Map<String, Value>,
) {
    if let Some(typename) = object.get("__typename") {
        out.insert("__typename".to_owned(), typename.clone());
    }
    for item in &selection.items {
        match item {
            SelectionItem::InlineFragment(fragment) => {
                let condition = &fragment.type_condition;
                let matches = typename(object)
                    .is_none_or(|t| schema.matches(t, condition) || schema.matches(condition, t));
                if matches {
                    select_into(object, &fragment.selections, schema, out);
                }
            }
            SelectionItem::Field(field) if field.name == "__typename" => {}
            SelectionItem::Field(field) => {
                let key = field.alias.as_deref().unwrap_or(&field.name);
                let Some(value) = object.get(&field.name).or_else(|| object.get(key)) else { continue };
                let selected = if field.selections.is_empty() {
                    value.clone()
                } else {
                    select_value(value, &field.selections, schema)
                };
                out.insert(key.to_owned(), selected);
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
}

fn select_value(value: &Value, selection: &SelectionSet, schema: &SchemaIndex) -> Value {
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| select_value(i, selection, schema)).collect())
        }
        Value::Object(object) => {
            let mut out = Map::new();
            select_into(object, selection, schema, &mut out);
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Applies the plan's rewrites (set `__typename`, rename a key) to `value`.
pub fn apply_rewrites(value: &mut Value, rewrites: &[FetchRewrite], schema: &SchemaIndex) {
    for rewrite in rewrites {
        match rewrite {
            FetchRewrite::ValueSetter(setter) => {
                let new = Value::String(setter.set_value_to.clone());
                rewrite_at(value, &setter.path, schema, &|parent, key| {
                    parent.insert(key.to_owned(), new.clone());
                });
            }
            FetchRewrite::KeyRenamer(renamer) => {
                rewrite_at(value, &renamer.path, schema, &|parent, key| {
                    if let Some(v) = parent.remove(key) {
                        parent.insert(renamer.rename_key_to.clone(), v);
                    }
                });
            }
        }
    }
}

/// Walks `path`; at its last key, calls `act` with the parent object and that key.
fn rewrite_at(
    value: &mut Value,
    path: &[FetchNodePathSegment],
    schema: &SchemaIndex,
    act: &dyn Fn(&mut Map<String, Value>, &str),
) {
    if let Value::Array(items) = value {
        for item in items {
            rewrite_at(item, path, schema, act);
        }
        return;
    }
    let Value::Object(object) = value else { return };
    match path {
        [] => {}
        [FetchNodePathSegment::TypenameEquals(types), rest @ ..] => {
            let matches = typename(object).is_some_and(|t| types.iter().any(|c| schema.matches(t, c)));
            if matches {
                rewrite_at(value, rest, schema, act);
            }
        }
        [FetchNodePathSegment::Key(key)] => act(object, key),
        [FetchNodePathSegment::Key(key), rest @ ..] => {
            if let Some(child) = object.get_mut(key) {
                rewrite_at(child, rest, schema, act);
            }
        }
    }
}
