//! Cost analysis (IBM's GraphQL cost directives, as Apollo's demand control reads them):
//! `@cost(weight:)` on fields and types, `@listSize(assumedSize:, slicingArguments:, sizedFields:,
//! requireOneSlicingArgument:)` on list fields, read from the supergraph. Our subgraphs cannot
//! declare them (async-graphql has no such directives), so without them: an object field costs 1,
//! a leaf 0, a mutation root field 10; a list multiplies what it holds by its `first`/`last`
//! argument, else by an assumed size; a field taking `first`/`last` that returns a Relay
//! connection sizes the connection's `edges` and `nodes` the same way.

use std::collections::HashMap;

use graphql_tools::static_graphql::schema::{Definition, Directive, Document, Field, TypeDefinition, Value};
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use hive_router_query_planner::ast::value::Value as ArgValue;
use serde_json::{Map, Value as Json};

use crate::response::{GraphQLError, code};
use crate::schema::{SchemaIndex, TypeRef};

const DEFAULT_SLICING: [&str; 2] = ["first", "last"];
const DEFAULT_SIZED: [&str; 2] = ["edges", "nodes"];
const MUTATION_WEIGHT: f64 = 10.0;

#[derive(Debug, Clone, Default)]
struct ListSize {
    assumed: Option<u64>,
    slicing: Vec<String>,
    sized_fields: Vec<String>,
    require_one: bool,
}

#[derive(Debug, Clone, Default)]
struct FieldCost {
    weight: Option<f64>,
    list_size: Option<ListSize>,
}

/// The cost directives of a supergraph, by type and by field.
#[derive(Debug, Default)]
pub struct CostDirectives {
    fields: HashMap<(String, String), FieldCost>,
    types: HashMap<String, f64>,
}

fn is_named(directive: &Directive, name: &str) -> bool {
    let d = directive.name.as_str();
    d == name || d.strip_suffix(name).is_some_and(|p| p == "federation__" || p == "cost__")
}

fn argument<'a>(directive: &'a Directive, name: &str) -> Option<&'a Value> {
    directive.arguments.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Int(n) => n.as_i64().map(|n| n as f64),
        Value::Float(f) => Some(*f),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| if let Value::String(s) = v { Some(s.clone()) } else { None })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn weight(directives: &[Directive]) -> Option<f64> {
    directives.iter().find(|d| is_named(d, "cost")).and_then(|d| argument(d, "weight")).and_then(number)
}

fn field_cost(field: &Field) -> FieldCost {
    let list_size = field.directives.iter().find(|d| is_named(d, "listSize")).map(|d| ListSize {
        assumed: argument(d, "assumedSize").and_then(number).map(|n| n.max(0.0) as u64),
        slicing: strings(argument(d, "slicingArguments")),
        sized_fields: strings(argument(d, "sizedFields")),
        require_one: !matches!(argument(d, "requireOneSlicingArgument"), Some(Value::Boolean(false))),
    });
    FieldCost { weight: weight(&field.directives), list_size }
}

impl CostDirectives {
    /// Reads `@cost` and `@listSize` from a supergraph (imported, or as `federation__*`).
    pub fn from_supergraph(document: &Document) -> Self {
        let mut this = Self::default();
        for definition in &document.definitions {
            let Definition::TypeDefinition(ty) = definition else { continue };
            let (name, directives, fields) = match ty {
                TypeDefinition::Object(o) => (&o.name, &o.directives, o.fields.as_slice()),
                TypeDefinition::Interface(i) => (&i.name, &i.directives, i.fields.as_slice()),
                TypeDefinition::Scalar(s) => (&s.name, &s.directives, [].as_slice()),
                TypeDefinition::Enum(e) => (&e.name, &e.directives, [].as_slice()),
                _ => continue,
            };
            if let Some(w) = weight(directives) {
                this.types.insert(name.clone(), w);
            }
            for field in fields {
                let cost = field_cost(field);
                if cost.weight.is_some() || cost.list_size.is_some() {
                    this.fields.insert((name.clone(), field.name.clone()), cost);
                }
            }
        }
        this
    }
}

/// Estimates an operation's cost with its variables.
pub struct Estimate<'a> {
    pub schema: &'a SchemaIndex,
    pub directives: &'a CostDirectives,
    pub variables: &'a Map<String, Json>,
    pub list_size: u64,
}

fn is_list(ty: &TypeRef) -> bool {
    match ty {
        TypeRef::Named(_) => false,
        TypeRef::List(_) => true,
        TypeRef::NonNull(inner) => is_list(inner),
    }
}

impl Estimate<'_> {
    /// The cost of the operation rooted at `root` (the root type's name).
    pub fn operation(
        &self,
        root: &str,
        mutation: bool,
        selection: &SelectionSet,
    ) -> Result<u64, Box<GraphQLError>> {
        let cost = self.selection(root, selection, None, mutation)?;
        Ok(if cost >= u64::MAX as f64 { u64::MAX } else { cost.ceil().max(0.0) as u64 })
    }

    fn selection(
        &self,
        parent: &str,
        selection: &SelectionSet,
        sized: Option<(&[String], f64)>,
        root_mutation: bool,
    ) -> Result<f64, Box<GraphQLError>> {
        let mut total = 0.0;
        for item in &selection.items {
            total += match item {
                SelectionItem::Field(field) => self.field(parent, field, sized, root_mutation)?,
                SelectionItem::InlineFragment(f) => {
                    self.selection(&f.type_condition, &f.selections, sized, root_mutation)?
                }
                SelectionItem::FragmentSpread(_) => 0.0,
            };
        }
        Ok(total)
    }

    fn field(
        &self,
        parent: &str,
        field: &FieldSelection,
        sized: Option<(&[String], f64)>,
        root_mutation: bool,
    ) -> Result<f64, Box<GraphQLError>> {
        let Some(definition) =
            self.schema.field(parent, &field.name).filter(|_| !field.name.starts_with("__"))
        else {
            return Ok(0.0);
        };
        let named = definition.ty.named();
        let directive = self.directives.fields.get(&(parent.to_owned(), field.name.clone()));
        let weight = directive
            .and_then(|d| d.weight)
            .or_else(|| self.directives.types.get(named).copied())
            .unwrap_or(match (root_mutation, self.schema.is_composite(named)) {
                (true, _) => MUTATION_WEIGHT,
                (false, true) => 1.0,
                (false, false) => 0.0,
            });
        let list_size = directive.and_then(|d| d.list_size.clone());
        let slicing: Vec<String> = match &list_size {
            Some(l) if !l.slicing.is_empty() => l.slicing.clone(),
            Some(_) => Vec::new(),
            None => DEFAULT_SLICING
                .iter()
                .filter(|a| definition.args.iter().any(|d| d.name == **a))
                .map(|a| (*a).to_owned())
                .collect(),
        };
        let given: Vec<f64> = slicing.iter().filter_map(|a| self.int_argument(field, a)).collect();
        if let Some(l) =
            list_size.as_ref().filter(|l| l.require_one && !l.slicing.is_empty() && given.len() != 1)
        {
            let message = format!("{parent}.{} needs exactly one of: {}", field.name, l.slicing.join(", "));
            return Err(Box::new(GraphQLError::new(message, code::GRAPHQL_VALIDATION_FAILED)));
        }
        let size = given
            .iter()
            .copied()
            .reduce(f64::max)
            .or_else(|| list_size.as_ref().and_then(|l| l.assumed).map(|n| n as f64))
            .unwrap_or(self.list_size as f64);
        let list = is_list(&definition.ty);
        let multiplier = match sized {
            Some((fields, parent_size)) if fields.contains(&field.name) => parent_size,
            _ if list => size,
            _ => 1.0,
        };
        let sized_fields: Vec<String> = match &list_size {
            Some(l) if !l.sized_fields.is_empty() => l.sized_fields.clone(),
            _ if !list && !slicing.is_empty() => DEFAULT_SIZED.map(String::from).to_vec(),
            _ => Vec::new(),
        };
        let child_sizing = (!sized_fields.is_empty()).then_some((sized_fields.as_slice(), size));
        let children = self.selection(named, &field.selections, child_sizing, false)?;
        Ok(multiplier * (weight + children))
    }

    fn int_argument(&self, field: &FieldSelection, name: &str) -> Option<f64> {
        let value = field.arguments.as_ref()?.get_argument(name)?;
        let n = match value {
            ArgValue::Int(n) => *n as f64,
            ArgValue::Variable(v) => self.variables.get(v)?.as_f64()?,
            _ => return None,
        };
        Some(n.max(0.0))
    }
}
