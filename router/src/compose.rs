//! Composition: subgraph SDLs to an Apollo Federation v2 supergraph.
//!
//! Composition rules and their diagnostics come from `graphql-composition` (Grafbase). Its rendering
//! differs from Apollo's in two ways that other gateways (and our planner) depend on, so the
//! rendered document is normalised to Apollo's shape: root operation types carry one
//! `@join__type(graph:)` per subgraph that contributes fields to them, and the `@link` machinery
//! (`link__Purpose`, `link__Import`, `@link`) is declared.

use std::collections::BTreeSet;

use graphql_tools::parser::Pos;
use graphql_tools::parser::schema::{
    Definition, Directive, Document, ObjectType, TypeDefinition, Value, parse_schema,
};

/// One subgraph to compose.
pub struct SubgraphSdl<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub sdl: &'a str,
}

/// Why composition failed: every diagnostic, one per line.
#[derive(Debug, thiserror::Error)]
#[error("composition failed:\n{0}")]
pub struct ComposeError(pub String);

const LINK_DEFINITIONS: &str = r#"
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

scalar link__Import

enum link__Purpose {
  """
  `SECURITY` features provide metadata necessary to securely resolve fields.
  """
  SECURITY

  """
  `EXECUTION` features provide metadata necessary for operation execution.
  """
  EXECUTION
}
"#;

/// Composes subgraphs (sorted by name, so the output does not depend on argument order).
pub fn compose(subgraphs: &[SubgraphSdl<'_>]) -> Result<String, ComposeError> {
    let mut sorted: Vec<&SubgraphSdl<'_>> = subgraphs.iter().collect();
    sorted.sort_by_key(|s| s.name);
    let mut ingested = graphql_composition::Subgraphs::default();
    for subgraph in sorted {
        ingested
            .ingest_str(subgraph.sdl, subgraph.name, Some(subgraph.url))
            .map_err(|e| ComposeError(format!("subgraph {}: {e}", subgraph.name)))?;
    }
    let graph = graphql_composition::compose(&mut ingested)
        .into_result()
        .map_err(|diagnostics| ComposeError(diagnostics.iter_errors().collect::<Vec<_>>().join("\n")))?;
    let rendered = graphql_composition::render_federated_sdl(&graph)
        .map_err(|e| ComposeError(format!("rendering the supergraph: {e}")))?;
    to_apollo_shape(&rendered)
}

fn to_apollo_shape(rendered: &str) -> Result<String, ComposeError> {
    let mut document = parse_schema::<String>(rendered)
        .map_err(|e| ComposeError(format!("the composed supergraph does not parse: {e}")))?
        .into_static();
    let roots = root_type_names(&document);
    for definition in &mut document.definitions {
        if let Definition::TypeDefinition(TypeDefinition::Object(object)) = definition
            && roots.contains(&object.name)
        {
            add_root_join_types(object);
        }
    }
    let has_link = document
        .definitions
        .iter()
        .any(|d| matches!(d, Definition::DirectiveDefinition(def) if def.name == "link"));
    let mut out = document.to_string();
    if !has_link {
        out.push_str(LINK_DEFINITIONS);
    }
    Ok(out)
}

fn root_type_names(document: &Document<'static, String>) -> BTreeSet<String> {
    let mut roots = BTreeSet::new();
    for definition in &document.definitions {
        if let Definition::SchemaDefinition(schema) = definition {
            roots.extend(schema.query.iter().chain(&schema.mutation).chain(&schema.subscription).cloned());
        }
    }
    if roots.is_empty() {
        roots.extend(["Query", "Mutation", "Subscription"].map(str::to_owned));
    }
    roots
}

/// Adds `@join__type(graph: G)` for every graph named by the fields' `@join__field(graph: G)`.
fn add_root_join_types(object: &mut ObjectType<'static, String>) {
    let already: BTreeSet<String> = object.directives.iter().filter_map(graph_argument).collect();
    let graphs: BTreeSet<String> = object
        .fields
        .iter()
        .flat_map(|f| f.directives.iter().filter(|d| d.name == "join__field"))
        .filter_map(graph_argument)
        .filter(|g| !already.contains(g))
        .collect();
    for graph in graphs {
        object.directives.push(Directive {
            position: Pos::default(),
            name: "join__type".into(),
            arguments: vec![("graph".into(), Value::Enum(graph))],
        });
    }
}

fn graph_argument(directive: &Directive<'static, String>) -> Option<String> {
    if !directive.name.starts_with("join__") {
        return None;
    }
    directive.arguments.iter().find_map(|(name, value)| match (name.as_str(), value) {
        ("graph", Value::Enum(graph)) => Some(graph.clone()),
        _ => None,
    })
}
