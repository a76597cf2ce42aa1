//! Entities in the data tree: finding them along a plan path, building their representations for
//! `_entities`, and the plan's input/output rewrites.

use std::collections::BTreeSet;

use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::SelectionSet;
use hive_router_query_planner::planner::plan_nodes::{
    FetchNodePathSegment, FetchRewrite, FlattenNodePathSegment,
};
use serde_json::Value;

use crate::tree::{Object, Tree, write_json};

use crate::schema::SchemaIndex;

fn typename(object: &Object) -> Option<&str> {
    object.get("__typename").and_then(Tree::as_str)
}

/// One step of a path into the data: an object key (from the plan) or a list index. Made into
/// JSON only where a path is shown (an error's `path`).
#[derive(Debug, Clone, Copy, Eq)]
pub enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

impl PartialEq for Step<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            // Keys of one plan path are the same strings: their addresses settle it mostly.
            (Self::Key(a), Self::Key(b)) => std::ptr::eq(*a, *b) || a == b,
            (Self::Index(a), Self::Index(b)) => a == b,
            _ => false,
        }
    }
}

/// A path as an error shows it.
pub fn path_json(path: &[Step<'_>]) -> Vec<Value> {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => Value::String((*key).to_owned()),
            Step::Index(i) => Value::from(*i),
        })
        .collect()
}

/// The value at `path`.
pub fn pointer_mut<'v>(mut value: &'v mut Tree, path: &[Step<'_>]) -> Option<&'v mut Tree> {
    for step in path {
        value = match (value, step) {
            (Tree::Object(map), Step::Key(key)) => map.get_mut(key)?,
            (Tree::Array(items), Step::Index(i)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// An object without `__typename` comes from a subgraph that cannot tell (an
/// `@interfaceObject`): the next fetch decides.
fn type_matches(object: &Object, types: &BTreeSet<String>, schema: &SchemaIndex) -> bool {
    typename(object).is_none_or(|t| types.iter().any(|c| schema.matches(t, c)))
}

/// Visits the objects at `segments` below `value` (the targets of a fetch), with their paths.
/// Finding a fetch's targets and merging its answers into them are this one walk, so the merge
/// meets the targets in the order they were found.
pub fn visit_targets<'p>(
    value: &mut Tree,
    segments: &'p [FlattenNodePathSegment],
    path: &mut Vec<Step<'p>>,
    schema: &SchemaIndex,
    visit: &mut dyn FnMut(&[Step<'p>], &mut Tree),
) {
    let Some((segment, rest)) = segments.split_first() else {
        match value {
            Tree::Object(_) => visit(path, value),
            Tree::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(Step::Index(i));
                    visit_targets(item, &[], path, schema, visit);
                    path.pop();
                }
            }
            _ => {}
        }
        return;
    };
    match (segment, value) {
        (FlattenNodePathSegment::Field(name), Tree::Object(object)) => {
            if let Some(child) = object.get_mut(name) {
                path.push(Step::Key(name));
                visit_targets(child, rest, path, schema, visit);
                path.pop();
            }
        }
        (FlattenNodePathSegment::TypeCondition(types), value @ Tree::Object(_))
            if value.as_object().is_some_and(|object| type_matches(object, types, schema)) =>
        {
            visit_targets(value, rest, path, schema, visit);
        }
        (segment, Tree::Array(items)) => {
            let next = if matches!(segment, FlattenNodePathSegment::List) { rest } else { segments };
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Step::Index(i));
                visit_targets(item, next, path, schema, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The paths of the targets at `segments` below `value`.
pub fn target_paths<'p>(
    value: &mut Tree,
    segments: &'p [FlattenNodePathSegment],
    schema: &SchemaIndex,
) -> Vec<Vec<Step<'p>>> {
    let mut found = Vec::new();
    visit_targets(value, segments, &mut Vec::new(), schema, &mut |at, _| found.push(at.to_vec()));
    found
}

/// The representation of `object` for an entity fetch: its `__typename` and the `requires`
/// selection of it. A selected field is read under its name, else under its response key (the
/// planner names a field it fetched under an internal alias that way), and written under its
/// response key. Fields the data lacks are left out (an earlier fetch failed: the subgraph says
/// what is missing); `None` when nothing at all is selected.
fn representation(object: &Object, requires: &SelectionSet, schema: &SchemaIndex) -> Option<Tree> {
    let mut out = Object::new();
    select_into(object, requires, schema, &mut out);
    worth_sending(out.keys().map(|k| k.as_str()), requires).then_some(Tree::Object(out))
}

/// Whether a representation with these keys selects anything: something besides `__typename`,
/// or only that when that is all `requires` asks for.
fn worth_sending<'k>(keys: impl Iterator<Item = &'k str>, requires: &SelectionSet) -> bool {
    let mut keys = keys.peekable();
    if keys.peek().is_none() {
        return false;
    }
    keys.any(|k| k != "__typename") || selects_only_typename(requires)
}

/// [`representation`] as JSON text, written straight from the data (no map is built). A
/// selection that names one key twice with different sub-selections is left to [`representation`].
pub fn representation_json(object: &Object, requires: &SelectionSet, schema: &SchemaIndex) -> Option<String> {
    let mut out = Vec::with_capacity(64);
    let mut keys = Vec::new();
    out.push(b'{');
    if write_selected(object, requires, schema, &mut out, &mut keys, 0).is_err() {
        return representation(object, requires, schema).map(|r| r.to_string());
    }
    out.push(b'}');
    if !worth_sending(keys.into_iter(), requires) {
        return None;
    }
    // Only serde_json's output and GraphQL names were written.
    String::from_utf8(out).ok()
}

/// The same key twice with different sub-selections.
struct Duplicate;

/// Writes `"key":` unless this object has the key already: `Ok(false)` then, when the value would
/// be the same (a leaf read from the same object); `Err` when it might differ.
fn write_key<'s>(
    out: &mut Vec<u8>,
    keys: &mut Vec<&'s str>,
    level: usize,
    key: &'s str,
    leaf: bool,
) -> Result<bool, Duplicate> {
    if keys[level..].contains(&key) {
        return if leaf { Ok(false) } else { Err(Duplicate) };
    }
    if keys.len() > level {
        out.push(b',');
    }
    keys.push(key);
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    Ok(true)
}

fn write_selected<'s>(
    object: &Object,
    selection: &'s SelectionSet,
    schema: &SchemaIndex,
    out: &mut Vec<u8>,
    keys: &mut Vec<&'s str>,
    level: usize,
) -> Result<(), Duplicate> {
    if let Some(typename) = object.get("__typename")
        && write_key(out, keys, level, "__typename", true)?
    {
        write_json(out, typename);
    }
    for item in &selection.items {
        match item {
            SelectionItem::InlineFragment(fragment) => {
                let condition = &fragment.type_condition;
                let matches = typename(object)
                    .is_none_or(|t| schema.matches(t, condition) || schema.matches(condition, t));
                if matches {
                    write_selected(object, &fragment.selections, schema, out, keys, level)?;
                }
            }
            SelectionItem::Field(field) if field.name == "__typename" => {}
            SelectionItem::Field(field) => {
                let key = field.alias.as_deref().unwrap_or(&field.name);
                let Some(value) = object.get(&field.name).or_else(|| object.get(key)) else { continue };
                let leaf = field.selections.is_empty();
                if !write_key(out, keys, level, key, leaf)? {
                    continue;
                }
                if leaf {
                    write_json(out, value);
                } else {
                    write_selected_value(value, &field.selections, schema, out, keys)?;
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
    Ok(())
}

fn write_selected_value<'s>(
    value: &Tree,
    selection: &'s SelectionSet,
    schema: &SchemaIndex,
    out: &mut Vec<u8>,
    keys: &mut Vec<&'s str>,
) -> Result<(), Duplicate> {
    match value {
        Tree::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_selected_value(item, selection, schema, out, keys)?;
            }
            out.push(b']');
        }
        Tree::Object(object) => {
            let level = keys.len();
            out.push(b'{');
            write_selected(object, selection, schema, out, keys, level)?;
            out.push(b'}');
            keys.truncate(level);
        }
        other => write_json(out, other),
    }
    Ok(())
}

fn selects_only_typename(selection: &SelectionSet) -> bool {
    selection.items.iter().all(|item| match item {
        SelectionItem::Field(field) => field.name == "__typename",
        SelectionItem::InlineFragment(fragment) => selects_only_typename(&fragment.selections),
        SelectionItem::FragmentSpread(_) => true,
    })
}

fn select_into(object: &Object, selection: &SelectionSet, schema: &SchemaIndex, out: &mut Object) {
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

fn select_value(value: &Tree, selection: &SelectionSet, schema: &SchemaIndex) -> Tree {
    match value {
        Tree::Array(items) => Tree::Array(items.iter().map(|i| select_value(i, selection, schema)).collect()),
        Tree::Object(object) => {
            let mut out = Object::new();
            select_into(object, selection, schema, &mut out);
            Tree::Object(out)
        }
        other => other.clone(),
    }
}

/// Applies the plan's rewrites (set `__typename`, rename a key) to `value`.
pub fn apply_rewrites(value: &mut Tree, rewrites: &[FetchRewrite], schema: &SchemaIndex) {
    for rewrite in rewrites {
        match rewrite {
            FetchRewrite::ValueSetter(setter) => {
                let new = Tree::String(setter.set_value_to.as_str().into());
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
    value: &mut Tree,
    path: &[FetchNodePathSegment],
    schema: &SchemaIndex,
    act: &dyn Fn(&mut Object, &str),
) {
    if let Tree::Array(items) = value {
        for item in items {
            rewrite_at(item, path, schema, act);
        }
        return;
    }
    let Tree::Object(object) = value else { return };
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
