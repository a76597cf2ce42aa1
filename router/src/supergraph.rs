//! A loaded supergraph: the planner, the public schema, and the subgraphs it names.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use graphql_tools::parser::schema::{Definition, TypeDefinition, Value, parse_schema};
use graphql_tools::static_graphql::schema::Document;
use hive_router_query_planner::ast::operation::OperationDefinition;
use hive_router_query_planner::graph::{PERCENTAGE_SCALE_FACTOR, PlannerOverrideContext};
use hive_router_query_planner::planner::plan_nodes::QueryPlan;
use hive_router_query_planner::planner::{Planner, QueryPlannerOptions};
use hive_router_query_planner::utils::cancellation::CancellationToken;

use crate::schema::SchemaIndex;

/// Why a supergraph document was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid supergraph: {0}")]
pub struct SupergraphError(pub String);

/// A subgraph named by the supergraph's `join__Graph` enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubgraphInfo {
    pub name: String,
    pub url: Option<String>,
}

/// A supergraph ready to plan against.
pub struct Supergraph {
    pub planner: Planner,
    pub schema: SchemaIndex,
    /// The public schema (no federation internals), for validation.
    pub api_document: Arc<Document>,
    pub subgraphs: Vec<SubgraphInfo>,
    /// Changes whenever the supergraph does; part of every plan cache key.
    pub version: u64,
    /// Some `@inaccessible` object type implements a public interface or belongs to a public
    /// union: fetches then always ask for `__typename`, so that its values are never shown.
    pub hidden_implementations: bool,
    /// `@cost` and `@listSize`, for the router's cost limits.
    pub cost: crate::limits::cost::CostDirectives,
}

impl Supergraph {
    /// Parses and checks a Federation v2 supergraph SDL.
    pub fn parse(sdl: &str) -> Result<Self, SupergraphError> {
        let document = parse_schema::<String>(sdl)
            .map_err(|e| SupergraphError(format!("does not parse: {e}")))?
            .into_static();
        check_shape(&document)?;
        let subgraphs = subgraphs(&document);
        // The planner asserts on shapes it does not expect; a bad document must be an error here,
        // not a crash of the router.
        let planner = catch_unwind(AssertUnwindSafe(|| {
            Planner::new_from_supergraph(&document, QueryPlannerOptions::default())
        }))
        .map_err(|_| SupergraphError("the query planner rejected it".into()))?
        .map_err(|e| SupergraphError(e.to_string()))?;
        let api_document = planner.consumer_schema.document.clone();
        let schema = SchemaIndex::new(&api_document);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        sdl.hash(&mut hasher);
        let hidden_implementations = hidden_implementations(&document, &schema);
        let cost = crate::limits::cost::CostDirectives::from_supergraph(&document);
        Ok(Self {
            planner,
            schema,
            api_document,
            subgraphs,
            version: hasher.finish(),
            hidden_implementations,
            cost,
        })
    }

    /// Plans a normalized operation. The planner asserts on what it does not expect: a panic
    /// there fails this operation only.
    pub fn plan(
        &self,
        operation: &OperationDefinition,
        overrides: PlannerOverrideContext,
    ) -> Result<QueryPlan, String> {
        let planned = catch_unwind(AssertUnwindSafe(|| {
            self.planner.plan_from_normalized_operation(operation, overrides, &CancellationToken::new())
        }));
        let mut plan = match planned {
            Ok(plan) => plan.map_err(|e| e.to_string())?,
            Err(_) => return Err("the query planner panicked".into()),
        };
        if self.hidden_implementations {
            crate::typenames::everywhere(&mut plan);
        }
        Ok(plan)
    }
}

/// Whether an object type missing from the public schema is one of the possible types of a
/// public interface or union.
fn hidden_implementations(document: &Document, schema: &SchemaIndex) -> bool {
    document.definitions.iter().any(|d| match d {
        Definition::TypeDefinition(TypeDefinition::Object(o)) => {
            schema.get(&o.name).is_none() && o.implements_interfaces.iter().any(|i| schema.get(i).is_some())
        }
        Definition::TypeDefinition(TypeDefinition::Union(u)) => {
            schema.get(&u.name).is_some() && u.types.iter().any(|t| schema.get(t).is_none())
        }
        _ => false,
    })
}

impl Supergraph {
    /// The progressive overrides (`@override(label:)`) for one request: the custom labels this
    /// router turns on, and a fresh draw for the percentage labels. The number tells which
    /// percentage labels the draw turned on: requests with the same number share plans.
    pub fn override_context(&self, labels: &HashSet<String>) -> (PlannerOverrideContext, u64) {
        let overrides = &self.planner.supergraph.progressive_overrides;
        let flags: HashSet<String> = overrides.flags.intersection(labels).cloned().collect();
        if overrides.percentages.is_empty() {
            return (PlannerOverrideContext::new(flags, 0), 0);
        }
        let draw = rand::random_range(0..100 * PERCENTAGE_SCALE_FACTOR);
        let on = overrides.percentages.iter().filter(|p| draw < **p).count() as u64;
        (PlannerOverrideContext::new(flags, draw), on)
    }
}

/// What the planner assumes without checking.
fn check_shape(document: &Document) -> Result<(), SupergraphError> {
    let has_type = |name: &str| {
        document.definitions.iter().any(|d| match d {
            Definition::TypeDefinition(TypeDefinition::Object(o)) => o.name == name,
            _ => false,
        })
    };
    let query = document
        .definitions
        .iter()
        .find_map(|d| match d {
            Definition::SchemaDefinition(s) => s.query.clone(),
            _ => None,
        })
        .unwrap_or_else(|| "Query".to_owned());
    if !has_type(&query) {
        return Err(SupergraphError(format!("no query root type {query:?}")));
    }
    let has_graphs = document
        .definitions
        .iter()
        .any(|d| matches!(d, Definition::TypeDefinition(TypeDefinition::Enum(e)) if e.name == "join__Graph"));
    if !has_graphs {
        return Err(SupergraphError("no join__Graph enum: not a federation supergraph".into()));
    }
    Ok(())
}

fn subgraphs(document: &Document) -> Vec<SubgraphInfo> {
    let graph_enum = document.definitions.iter().find_map(|d| match d {
        Definition::TypeDefinition(TypeDefinition::Enum(e)) if e.name == "join__Graph" => Some(e),
        _ => None,
    });
    let Some(graph_enum) = graph_enum else { return Vec::new() };
    graph_enum
        .values
        .iter()
        .filter_map(|value| {
            let directive = value.directives.iter().find(|d| d.name == "join__graph")?;
            let argument = |name: &str| {
                directive.arguments.iter().find_map(|(n, v)| match v {
                    Value::String(s) if n == name => Some(s.clone()),
                    _ => None,
                })
            };
            Some(SubgraphInfo { name: argument("name")?, url: argument("url") })
        })
        .collect()
}
