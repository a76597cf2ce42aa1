//! Entity fetches: `_entities` for the objects a plan path reaches, their answers merged back
//! and their errors moved to the client's paths.

use hive_router_query_planner::ast::selection_set::SelectionSet;
use hive_router_query_planner::planner::plan_nodes::{
    BatchFetchNode, FetchRewrite, FlattenNode, FlattenNodePath, PlanNode,
};
use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use super::{Execution, State};
use crate::entities::{Step, apply_rewrites, path_json, pointer_mut, representation_json, visit_targets};
use crate::response::GraphQLError;
use crate::transport::SubgraphResponse;
use crate::tree::{Tree, deep_merge};

/// One `_entities` selection of a fetch: where its entities live in the data, what identifies
/// them, and where its answers come back.
struct EntityGroup<'p> {
    paths: Vec<&'p FlattenNodePath>,
    requires: &'p SelectionSet,
    input_rewrites: Option<&'p [FetchRewrite]>,
    output_rewrites: Option<&'p [FetchRewrite]>,
    response_key: &'p str,
    variable: &'p str,
}

/// An entity found in the data: its path, and which representation of its group stands for it.
struct Target<'p> {
    path: Vec<Step<'p>>,
    representation: usize,
}

impl Execution<'_> {
    pub(super) async fn flatten(&self, flatten: &FlattenNode) {
        let PlanNode::Fetch(fetch) = flatten.node.as_ref() else {
            return self.internal("a Flatten node without a Fetch");
        };
        let Some(requires) = &fetch.requires else {
            return self.root_fetch(fetch, Some(&flatten.path)).await;
        };
        let group = EntityGroup {
            paths: vec![&flatten.path],
            requires,
            input_rewrites: fetch.input_rewrites.as_deref(),
            output_rewrites: fetch.output_rewrites.as_deref(),
            response_key: "_entities",
            variable: "representations",
        };
        let variables = self.variables_for(fetch.variable_usages.as_ref());
        self.entity_fetch(&fetch.service_name, &fetch.operation.document_str, variables, vec![group]).await;
    }

    pub(super) async fn batch_fetch(&self, batch: &BatchFetchNode) {
        let groups = batch
            .entity_batch
            .aliases
            .iter()
            .map(|alias| EntityGroup {
                paths: alias.merge_paths.iter().collect(),
                requires: &alias.requires,
                input_rewrites: alias.input_rewrites.as_deref(),
                output_rewrites: alias.output_rewrites.as_deref(),
                response_key: &alias.alias,
                variable: &alias.representations_variable_name,
            })
            .collect();
        let variables = self.variables_for(batch.variable_usages.as_ref());
        self.entity_fetch(&batch.service_name, &batch.operation.document_str, variables, groups).await;
    }

    async fn entity_fetch(
        &self,
        service: &str,
        query: &str,
        variables: Map<String, Value>,
        groups: Vec<EntityGroup<'_>>,
    ) {
        let mut targets: Vec<Vec<Target<'_>>> = Vec::with_capacity(groups.len());
        let mut written = Vec::with_capacity(groups.len());
        {
            let mut state = self.lock();
            for group in &groups {
                let (group_targets, representations) = self.collect(&mut state.data, group);
                if !variables.contains_key(group.variable) {
                    written.push((group.variable.to_owned(), representations));
                }
                targets.push(group_targets);
            }
        }
        if targets.iter().all(Vec::is_empty) {
            return;
        }
        let result = self.send(service, query, variables, written, None).await;
        let mut state = self.lock();
        match result {
            Ok(response) => self.merge_entities(&mut state, response, &groups, &targets),
            Err(error) => {
                let first = targets.iter().flatten().next().map(|t| path_json(&t.path));
                state.errors.push(match first {
                    Some(path) => error.with_path(path),
                    None => error,
                });
                state.failed_paths.extend(targets.iter().flatten().map(|t| path_json(&t.path)));
            }
        }
    }

    /// Finds a group's entities and their (deduplicated) representations, as a JSON list. The
    /// data is walked as the merge will walk it (see [`visit_targets`]); nothing in it changes.
    fn collect<'p>(&self, data: &mut Tree, group: &EntityGroup<'p>) -> (Vec<Target<'p>>, String) {
        let mut targets = Vec::new();
        let mut list = String::from("[");
        let mut seen: FxHashMap<String, usize> = FxHashMap::default();
        let mut found = |at: &[Step<'p>], value: &mut Tree| {
            // Rewrites change a copy; without them the representation is read in place.
            let rep = match (group.input_rewrites, value.as_object()) {
                (_, None) => None,
                (None, Some(object)) => representation_json(object, group.requires, self.schema),
                (Some(rewrites), Some(_)) => {
                    let mut copy = value.clone();
                    apply_rewrites(&mut copy, rewrites, self.schema);
                    copy.as_object().and_then(|o| representation_json(o, group.requires, self.schema))
                }
            };
            let Some(rep) = rep else { return };
            let next = seen.len();
            let index = match seen.entry(rep) {
                Entry::Occupied(known) => *known.get(),
                Entry::Vacant(new) => {
                    if next > 0 {
                        list.push(',');
                    }
                    list.push_str(new.key());
                    *new.insert(next)
                }
            };
            targets.push(Target { path: at.to_vec(), representation: index });
        };
        for path in &group.paths {
            visit_targets(data, path.as_slice(), &mut Vec::new(), self.schema, &mut found);
        }
        list.push(']');
        (targets, list)
    }

    fn merge_entities(
        &self,
        state: &mut State,
        response: SubgraphResponse,
        groups: &[EntityGroup<'_>],
        targets: &[Vec<Target<'_>>],
    ) {
        let mut data = response.data.unwrap_or(Tree::Null);
        for (group, group_targets) in groups.iter().zip(targets) {
            let Some(Tree::Array(mut entities)) = data.get_mut(group.response_key).map(Tree::take) else {
                continue;
            };
            // An answer is moved into the data at its last target, copied for the others.
            let mut uses = vec![0usize; entities.len()];
            for target in group_targets {
                if let Some(n) = uses.get_mut(target.representation) {
                    *n += 1;
                }
            }
            let mut place = |target: &Target<'_>, slot: &mut Tree| {
                let index = target.representation;
                let Some(entity) = entities.get_mut(index).filter(|e| e.is_object()) else {
                    return;
                };
                uses[index] -= 1;
                let mut entity = if uses[index] == 0 { entity.take() } else { entity.clone() };
                if let Some(rewrites) = group.output_rewrites {
                    apply_rewrites(&mut entity, rewrites, self.schema);
                }
                deep_merge(slot, entity);
            };
            // One walk along the group's paths meets the targets in the order they were found.
            // Should the data have changed shape meanwhile (a parallel fetch filled a null), the
            // targets not met in order are found by their paths.
            let mut next = 0;
            for path in &group.paths {
                visit_targets(
                    &mut state.data,
                    path.as_slice(),
                    &mut Vec::new(),
                    self.schema,
                    &mut |at, slot| {
                        if let Some(target) = group_targets.get(next).filter(|t| t.path == at) {
                            place(target, slot);
                            next += 1;
                        }
                    },
                );
            }
            for target in &group_targets[next..] {
                if let Some(slot) = pointer_mut(&mut state.data, &target.path) {
                    place(target, slot);
                }
            }
        }
        for error in response.errors {
            let error = GraphQLError::from_subgraph(error);
            state.errors.extend(relocate(error, groups, targets));
        }
    }
}

/// Moves an entity error (`[_entities, i, ...rest]`) to each entity it concerns.
fn relocate(
    error: GraphQLError,
    groups: &[EntityGroup<'_>],
    targets: &[Vec<Target<'_>>],
) -> Vec<GraphQLError> {
    let located = error.path.as_ref().and_then(|path| {
        let key = path.first()?.as_str()?;
        let index = usize::try_from(path.get(1)?.as_u64()?).ok()?;
        let group = groups.iter().position(|g| g.response_key == key)?;
        Some((group, index, path[2..].to_vec()))
    });
    let Some((group, index, rest)) = located else {
        return vec![GraphQLError { path: None, ..error }];
    };
    let moved: Vec<GraphQLError> = targets[group]
        .iter()
        .filter(|t| t.representation == index)
        .map(|t| {
            let mut path = path_json(&t.path);
            path.extend(rest.iter().cloned());
            GraphQLError { path: Some(path), ..error.clone() }
        })
        .collect();
    if moved.is_empty() { vec![GraphQLError { path: None, ..error }] } else { moved }
}
