//! Answers `__schema` and `__type` from the public schema. The resolver produces raw data keyed by
//! response keys, like a subgraph would; projection then shapes it like any other data.

use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use serde_json::{Map, Value};

use crate::schema::{DirectiveDef, EnumValueDef, FieldDef, InputValueDef, SchemaIndex, TypeDef, TypeRef};
use crate::value::plan_value_to_json;

pub struct Introspection<'a> {
    pub schema: &'a SchemaIndex,
    pub variables: &'a Map<String, Value>,
}

/// A type as introspection sees it: named, or a wrapper.
enum TypeView<'a> {
    Named(&'a TypeDef),
    List(&'a TypeRef),
    NonNull(&'a TypeRef),
}

impl<'a> Introspection<'a> {
    /// Resolves the root introspection fields of `selection` (other root fields are ignored).
    pub fn resolve(&self, selection: &SelectionSet) -> Map<String, Value> {
        let mut out = Map::new();
        self.object("Query", selection, &mut out, &|field| match field.name.as_str() {
            "__schema" => Some(self.schema_object(&field.selections)),
            "__type" => Some(
                self.string_argument(field, "name")
                    .and_then(|name| self.schema.get(&name))
                    .map_or(Value::Null, |t| self.type_object(&TypeView::Named(t), &field.selections)),
            ),
            _ => None,
        });
        out
    }

    /// Walks `selection` for an object of type `typename`, filling `out` by response key.
    fn object(
        &self,
        typename: &str,
        selection: &SelectionSet,
        out: &mut Map<String, Value>,
        field_value: &dyn Fn(&FieldSelection) -> Option<Value>,
    ) {
        for item in &selection.items {
            match item {
                SelectionItem::Field(field) => {
                    let value = if field.name == "__typename" {
                        Some(Value::String(typename.to_owned()))
                    } else {
                        field_value(field)
                    };
                    if let Some(value) = value {
                        let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
                        match out.get_mut(&key) {
                            Some(existing) => crate::value::deep_merge(existing, value),
                            None => {
                                out.insert(key, value);
                            }
                        }
                    }
                }
                SelectionItem::InlineFragment(fragment) if fragment.type_condition == typename => {
                    self.object(typename, &fragment.selections, out, field_value);
                }
                _ => {}
            }
        }
    }

    fn build(
        &self,
        typename: &str,
        selection: &SelectionSet,
        field_value: &dyn Fn(&FieldSelection) -> Option<Value>,
    ) -> Value {
        let mut out = Map::new();
        self.object(typename, selection, &mut out, field_value);
        Value::Object(out)
    }

    fn schema_object(&self, selection: &SelectionSet) -> Value {
        let s = self.schema;
        let named = |name: Option<&str>, field: &FieldSelection| {
            name.and_then(|n| s.get(n))
                .map_or(Value::Null, |t| self.type_object(&TypeView::Named(t), &field.selections))
        };
        self.build("__Schema", selection, &|field| {
            Some(match field.name.as_str() {
                "description" => opt(s.description.as_deref()),
                "types" => Value::Array(
                    s.types
                        .values()
                        .map(|t| self.type_object(&TypeView::Named(t), &field.selections))
                        .collect(),
                ),
                "queryType" => named(Some(&s.query_type), field),
                "mutationType" => named(s.mutation_type.as_deref(), field),
                "subscriptionType" => named(s.subscription_type.as_deref(), field),
                "directives" => Value::Array(
                    s.directives.iter().map(|d| self.directive_object(d, &field.selections)).collect(),
                ),
                _ => return None,
            })
        })
    }

    fn type_object(&self, view: &TypeView<'_>, selection: &SelectionSet) -> Value {
        self.build("__Type", selection, &|field| Some(self.type_field(view, field)))
    }

    fn type_field(&self, view: &TypeView<'_>, field: &FieldSelection) -> Value {
        let sels = &field.selections;
        let include_deprecated = self.bool_argument(field, "includeDeprecated");
        let t = match view {
            TypeView::Named(t) => t,
            TypeView::List(inner) | TypeView::NonNull(inner) => {
                return match field.name.as_str() {
                    "kind" => Value::String(
                        if matches!(view, TypeView::List(_)) { "LIST" } else { "NON_NULL" }.into(),
                    ),
                    "ofType" => self.type_ref_object(inner, sels),
                    _ => Value::Null,
                };
            }
        };
        use crate::schema::TypeKind as K;
        let has_fields = matches!(t.kind, K::Object | K::Interface);
        match field.name.as_str() {
            "kind" => Value::String(t.kind.as_str().into()),
            "name" => Value::String(t.name.clone()),
            "description" => opt(t.description.as_deref()),
            "specifiedByURL" => opt(t.specified_by.as_deref()),
            "isOneOf" => {
                if t.kind == K::InputObject {
                    Value::Bool(t.one_of)
                } else {
                    Value::Null
                }
            }
            "fields" if has_fields => Value::Array(
                t.fields
                    .values()
                    // `__schema`, `__type` (the planner's schema lists them on the query type)
                    // are meta-fields, never part of a type's fields.
                    .filter(|f| !f.name.starts_with("__"))
                    .filter(|f| include_deprecated || f.deprecation.is_none())
                    .map(|f| self.field_object(f, sels))
                    .collect(),
            ),
            "interfaces" if has_fields => Value::Array(self.named_types(&t.interfaces, sels)),
            "possibleTypes" if matches!(t.kind, K::Interface | K::Union) => {
                Value::Array(self.named_types(&t.possible_types, sels))
            }
            "enumValues" if t.kind == K::Enum => Value::Array(
                t.enum_values
                    .iter()
                    .filter(|v| include_deprecated || v.deprecation.is_none())
                    .map(|v| self.enum_value_object(v, sels))
                    .collect(),
            ),
            "inputFields" if t.kind == K::InputObject => Value::Array(
                t.input_fields
                    .iter()
                    .filter(|v| include_deprecated || v.deprecation.is_none())
                    .map(|v| self.input_value_object(v, sels))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }

    fn named_types(&self, names: &[String], selection: &SelectionSet) -> Vec<Value> {
        names
            .iter()
            .filter_map(|n| self.schema.get(n))
            .map(|t| self.type_object(&TypeView::Named(t), selection))
            .collect()
    }

    fn type_ref_object(&self, ty: &TypeRef, selection: &SelectionSet) -> Value {
        match ty {
            TypeRef::Named(name) => self
                .schema
                .get(name)
                .map_or(Value::Null, |t| self.type_object(&TypeView::Named(t), selection)),
            TypeRef::List(inner) => self.type_object(&TypeView::List(inner), selection),
            TypeRef::NonNull(inner) => self.type_object(&TypeView::NonNull(inner), selection),
        }
    }

    fn field_object(&self, f: &FieldDef, selection: &SelectionSet) -> Value {
        self.build("__Field", selection, &|field| {
            Some(match field.name.as_str() {
                "name" => Value::String(f.name.clone()),
                "description" => opt(f.description.as_deref()),
                "args" => self.arguments(&f.args, field),
                "type" => self.type_ref_object(&f.ty, &field.selections),
                "isDeprecated" => Value::Bool(f.deprecation.is_some()),
                "deprecationReason" => opt(f.deprecation.as_deref()),
                _ => return None,
            })
        })
    }

    fn arguments(&self, args: &[InputValueDef], field: &FieldSelection) -> Value {
        let include_deprecated = self.bool_argument(field, "includeDeprecated");
        Value::Array(
            args.iter()
                .filter(|a| include_deprecated || a.deprecation.is_none())
                .map(|a| self.input_value_object(a, &field.selections))
                .collect(),
        )
    }

    fn input_value_object(&self, v: &InputValueDef, selection: &SelectionSet) -> Value {
        self.build("__InputValue", selection, &|field| {
            Some(match field.name.as_str() {
                "name" => Value::String(v.name.clone()),
                "description" => opt(v.description.as_deref()),
                "type" => self.type_ref_object(&v.ty, &field.selections),
                "defaultValue" => opt(v.default_value.as_ref().map(|(literal, _)| literal.as_str())),
                "isDeprecated" => Value::Bool(v.deprecation.is_some()),
                "deprecationReason" => opt(v.deprecation.as_deref()),
                _ => return None,
            })
        })
    }

    fn enum_value_object(&self, v: &EnumValueDef, selection: &SelectionSet) -> Value {
        self.build("__EnumValue", selection, &|field| {
            Some(match field.name.as_str() {
                "name" => Value::String(v.name.clone()),
                "description" => opt(v.description.as_deref()),
                "isDeprecated" => Value::Bool(v.deprecation.is_some()),
                "deprecationReason" => opt(v.deprecation.as_deref()),
                _ => return None,
            })
        })
    }

    fn directive_object(&self, d: &DirectiveDef, selection: &SelectionSet) -> Value {
        self.build("__Directive", selection, &|field| {
            Some(match field.name.as_str() {
                "name" => Value::String(d.name.clone()),
                "description" => opt(d.description.as_deref()),
                "locations" => Value::Array(d.locations.iter().map(|l| Value::String(l.clone())).collect()),
                "args" => self.arguments(&d.args, field),
                "isRepeatable" => Value::Bool(d.repeatable),
                _ => return None,
            })
        })
    }

    fn argument(&self, field: &FieldSelection, name: &str) -> Option<Value> {
        let value = field.arguments.as_ref()?.get_argument(name)?;
        Some(plan_value_to_json(value, self.variables))
    }

    fn string_argument(&self, field: &FieldSelection, name: &str) -> Option<String> {
        self.argument(field, name).and_then(|v| v.as_str().map(str::to_owned))
    }

    fn bool_argument(&self, field: &FieldSelection, name: &str) -> bool {
        self.argument(field, name).and_then(|v| v.as_bool()).unwrap_or(false)
    }
}

fn opt(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |v| Value::String(v.to_owned()))
}
