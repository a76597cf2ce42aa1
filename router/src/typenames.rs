//! Makes every subgraph fetch of a plan ask for `__typename` in every selection set below its
//! root. The planner adds it only where its own plan needs it, but a supergraph with
//! `@inaccessible` object types behind accessible interfaces or unions needs the runtime type of
//! every abstract value: projection shows such a value as null, never its fields.

use hive_router_query_planner::ast::document::Document;
use hive_router_query_planner::ast::operation::SubgraphFetchOperation;
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use hive_router_query_planner::planner::plan_nodes::{FetchNode, PlanNode, QueryPlan};

/// Adds `__typename` to every nested selection set of every fetch in `plan`.
pub fn everywhere(plan: &mut QueryPlan) {
    if let Some(node) = plan.node.as_mut() {
        node_typenames(node);
    }
}

fn node_typenames(node: &mut PlanNode) {
    match node {
        PlanNode::Fetch(fetch) => fetch_typenames(fetch),
        PlanNode::BatchFetch(batch) => batch.operation = with_typenames(&batch.operation),
        PlanNode::Flatten(flatten) => node_typenames(&mut flatten.node),
        PlanNode::Sequence(sequence) => sequence.nodes.iter_mut().for_each(node_typenames),
        PlanNode::Parallel(parallel) => parallel.nodes.iter_mut().for_each(node_typenames),
        PlanNode::Condition(condition) => {
            condition
                .if_clause
                .iter_mut()
                .chain(condition.else_clause.iter_mut())
                .for_each(|n| node_typenames(n));
        }
        PlanNode::Subscription(subscription) => fetch_typenames(&mut subscription.primary),
        PlanNode::Defer(defer) => {
            defer.primary.node.iter_mut().for_each(|n| node_typenames(n));
            defer.deferred.iter_mut().filter_map(|d| d.node.as_mut()).for_each(|n| node_typenames(n));
        }
    }
}

fn fetch_typenames(fetch: &mut FetchNode) {
    fetch.operation = with_typenames(&fetch.operation);
}

fn with_typenames(operation: &SubgraphFetchOperation) -> SubgraphFetchOperation {
    let mut document: Document = operation.document.clone();
    for item in &mut document.operation.selection_set.items {
        nested(item);
    }
    for fragment in &mut document.fragments {
        add(&mut fragment.selection_set);
    }
    SubgraphFetchOperation::from_anonymous_operation(document)
}

/// Adds `__typename` to `set` (when missing) and to every selection set below it.
fn add(set: &mut SelectionSet) {
    let has = set
        .items
        .iter()
        .any(|i| matches!(i, SelectionItem::Field(f) if f.name == "__typename" && f.alias.is_none()));
    if !has {
        set.items.insert(0, SelectionItem::Field(FieldSelection::new_typename()));
    }
    set.items.iter_mut().for_each(nested);
}

fn nested(item: &mut SelectionItem) {
    match item {
        SelectionItem::Field(field) if !field.selections.items.is_empty() => add(&mut field.selections),
        SelectionItem::InlineFragment(fragment) => fragment.selections.items.iter_mut().for_each(nested),
        SelectionItem::Field(_) | SelectionItem::FragmentSpread(_) => {}
    }
}
