//! The data tree an execution builds from subgraph answers: JSON, with objects kept as short
//! vectors of (key, value) in arrival order. GraphQL objects have a handful of fields, so finding
//! a key by comparing a few short strings beats hashing it (serde_json's map hashes every key
//! with SipHash and keeps an index table per object); parsing allocates one vector per object.

use std::fmt;

use compact_str::CompactString;
use rustc_hash::FxHashMap;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};

/// Keys and strings of the tree: up to 24 bytes kept inline (no allocation), like most GraphQL
/// names, ids and short texts.
pub type Str = CompactString;

/// A JSON value of the data tree.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Tree {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Str),
    Array(Vec<Tree>),
    Object(Object),
}

/// A JSON object: its members in order, each key once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object(Vec<(Str, Tree)>);

/// Above this many members, duplicate keys are found with a hash map rather than by comparing.
const LINEAR_DEDUPE: usize = 16;

impl Object {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    pub fn get(&self, key: &str) -> Option<&Tree> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Tree> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`: in place when the key is there, else at the end.
    pub fn insert(&mut self, key: impl Into<Str> + AsRef<str>, value: Tree) {
        match self.get_mut(key.as_ref()) {
            Some(existing) => *existing = value,
            None => self.0.push((key.into(), value)),
        }
    }

    /// Removes `key`, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Tree> {
        let position = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(position).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Str, &Tree)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Str> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Members pushed without a check: a later duplicate replaces the first's value in its
    /// place, as serde_json's map does.
    fn from_members(mut members: Vec<(Str, Tree)>) -> Self {
        if members.len() > LINEAR_DEDUPE {
            let mut first: FxHashMap<Str, usize> = FxHashMap::default();
            let mut out: Vec<(Str, Tree)> = Vec::with_capacity(members.len());
            for (key, value) in members {
                match first.get(&key) {
                    Some(&i) => out[i].1 = value,
                    None => {
                        first.insert(key.clone(), out.len());
                        out.push((key, value));
                    }
                }
            }
            return Self(out);
        }
        let mut i = 1;
        while i < members.len() {
            let (before, rest) = members.split_at_mut(i);
            match before.iter_mut().find(|(k, _)| *k == rest[0].0) {
                Some(existing) => {
                    existing.1 = std::mem::take(&mut rest[0].1);
                    members.remove(i);
                }
                None => i += 1,
            }
        }
        Self(members)
    }
}

/// Deep-merges `source` into `target`: objects member by member, lists item by item; a null
/// source changes nothing, and any other value replaces the target. A later fetch thus refines
/// what an earlier one wrote: the concrete `__typename` an entity fetch resolves replaces the
/// interface name an `@interfaceObject` subgraph answered with.
pub fn deep_merge(target: &mut Tree, source: Tree) {
    match (target, source) {
        (_, Tree::Null) => {}
        (Tree::Object(t), Tree::Object(s)) => {
            for (key, value) in s.0 {
                match t.get_mut(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => t.0.push((key, value)),
                }
            }
        }
        (Tree::Array(t), Tree::Array(s)) => {
            for (existing, value) in t.iter_mut().zip(s) {
                deep_merge(existing, value);
            }
        }
        (target, source) => *target = source,
    }
}

/// Writes `value` as JSON text: strings that need no escaping are copied as they are (the
/// common case), anything else goes through serde_json.
pub fn write_json(out: &mut Vec<u8>, value: &Tree) {
    let written = match value {
        Tree::String(s) => {
            write_json_str(out, s);
            Ok(())
        }
        other => serde_json::to_writer(&mut *out, other),
    };
    if written.is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Writes `s` as a JSON string; the same bytes serde_json writes.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"null");
    }
}

impl IntoIterator for Object {
    type Item = (Str, Tree);
    type IntoIter = std::vec::IntoIter<(Str, Tree)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Tree {
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Self::Object(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Self::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Tree> {
        self.as_object().and_then(|o| o.get(key))
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Tree> {
        match self {
            Self::Object(o) => o.get_mut(key),
            _ => None,
        }
    }

    /// The value, leaving null in its place.
    pub fn take(&mut self) -> Tree {
        std::mem::take(self)
    }

    /// Parses JSON text.
    pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(bytes)
    }

    /// As a `serde_json` value.
    pub fn into_value(self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(b),
            Self::Number(n) => Value::Number(n),
            Self::String(s) => Value::String(s.into_string()),
            Self::Array(items) => Value::Array(items.into_iter().map(Tree::into_value).collect()),
            Self::Object(o) => {
                Value::Object(o.0.into_iter().map(|(k, v)| (k.into_string(), v.into_value())).collect())
            }
        }
    }
}

impl From<Value> for Tree {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) => Self::Number(n),
            Value::String(s) => Self::String(s.into()),
            Value::Array(items) => Self::Array(items.into_iter().map(Tree::from).collect()),
            Value::Object(map) => {
                Self::Object(Object(map.into_iter().map(|(k, v)| (k.into(), Tree::from(v))).collect()))
            }
        }
    }
}

impl From<Object> for Tree {
    fn from(object: Object) -> Self {
        Self::Object(object)
    }
}

impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Number(n) => n.serialize(serializer),
            Self::String(s) => serializer.serialize_str(s),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(object) => object.serialize(serializer),
        }
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key.as_str(), value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Number::from_f64(v).map_or(Tree::Null, Tree::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::String(Str::new(v)))
    }

    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::String(v.into()))
    }

    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tree, D::Error> {
        Deserialize::deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            members.push((key, map.next_value::<Tree>()?));
        }
        Ok(Tree::Object(Object::from_members(members)))
    }
}

/// Reads an object key without allocating when it fits inline.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Str, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str, E> {
        Ok(Str::new(v))
    }

    fn visit_string<E>(self, v: String) -> Result<Str, E> {
        Ok(v.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_writes_what_serde_json_does() {
        let text = r#"{"a":1,"b":[true,null,"x",-2,1.5],"c":{"d":{}},"a":2}"#;
        let tree = Tree::from_slice(text.as_bytes()).expect("parses");
        let value: Value = serde_json::from_str(text).expect("parses");
        assert_eq!(serde_json::to_string(&tree).expect("writes"), value.to_string());
        assert_eq!(tree.clone().into_value(), value);
        assert_eq!(Tree::from(value), tree);
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value_in_large_objects_too() {
        let mut members: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        members.push("\"k3\":\"last\"".into());
        let text = format!("{{{}}}", members.join(","));
        let tree = Tree::from_slice(text.as_bytes()).expect("parses");
        let value: Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(serde_json::to_string(&tree).expect("writes"), value.to_string());
        assert_eq!(tree.get("k3"), Some(&Tree::String("last".into())));
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in ["plain", "", "quote \" in", "back\\slash", "new\nline", "\u{1}", "é ü 日本 / <>"] {
            let mut out = Vec::new();
            write_json(&mut out, &Tree::String(s.into()));
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                serde_json::to_string(s).expect("writes"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn merge_combines_objects_and_lists() {
        let mut a = Tree::from(json!({"u": {"id": "1", "posts": [{"id": 1}, {"id": 2}]}, "n": null}));
        deep_merge(
            &mut a,
            Tree::from(json!({"u": {"name": "Ada", "posts": [{"t": "a"}, {"t": "b"}]}, "n": 3})),
        );
        let expected = json!({"u": {"id": "1", "posts": [{"id": 1, "t": "a"}, {"id": 2, "t": "b"}], "name": "Ada"}, "n": 3});
        assert_eq!(a.into_value(), expected);
    }

    #[test]
    fn insert_replaces_in_place_and_remove_keeps_order() {
        let mut object = Object::new();
        object.insert("a", Tree::from(json!(1)));
        object.insert("b", Tree::from(json!(2)));
        object.insert("a", Tree::from(json!(3)));
        assert_eq!(serde_json::to_string(&object).expect("writes"), r#"{"a":3,"b":2}"#);
        assert_eq!(object.remove("a"), Some(Tree::from(json!(3))));
        assert_eq!(object.keys().collect::<Vec<_>>(), ["b"]);
    }
}
