//! Limits on one operation, checked before it runs: tokens and bracket nesting (before parsing),
//! depth, aliases, root fields and expanded selections (after parsing, before validation), and
//! estimated cost (after validation, with the variables).

pub mod cost;
mod shape;
mod tokens;

use graphql_tools::static_graphql::query::{Document, SelectionSet};
use pyairtable_kit::config::QueryLimits;

use crate::response::GraphQLError;

/// The error codes of refused operations.
pub mod code {
    pub const MAX_TOKENS_EXCEEDED: &str = "MAX_TOKENS_EXCEEDED";
    pub const MAX_DEPTH_EXCEEDED: &str = "MAX_DEPTH_EXCEEDED";
    pub const MAX_ALIASES_EXCEEDED: &str = "MAX_ALIASES_EXCEEDED";
    pub const MAX_ROOT_FIELDS_EXCEEDED: &str = "MAX_ROOT_FIELDS_EXCEEDED";
    pub const MAX_BATCH_SIZE_EXCEEDED: &str = "MAX_BATCH_SIZE_EXCEEDED";
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    pub const COST_LIMIT_EXCEEDED: &str = "COST_LIMIT_EXCEEDED";
    /// More operations at once on one WebSocket than the router allows.
    pub const MAX_OPERATIONS_PER_CONNECTION: &str = "MAX_OPERATIONS_PER_CONNECTION";
}

/// Brackets may nest this deep (the parser recurses once per level).
pub const MAX_NESTING: u32 = 64;

/// An operation refused for `what` measuring `measured` over `limit`: the error names both, in
/// the message and in `extensions.measured` / `extensions.limit`.
pub fn refused(code: &str, what: &str, measured: u64, limit: u64) -> GraphQLError {
    let message = format!("the operation's {what} is {measured}, over the limit of {limit}");
    GraphQLError::new(message, code).with_extension("measured", measured).with_extension("limit", limit)
}

/// Tokens and nesting, in one scan that stops at the limits.
pub fn check_tokens(query: &str, limits: &QueryLimits) -> Result<(), Box<GraphQLError>> {
    let scan = tokens::scan(query, limits.max_tokens, MAX_NESTING);
    if scan.tokens > limits.max_tokens {
        let error = refused(
            code::MAX_TOKENS_EXCEEDED,
            "token count",
            u64::from(scan.tokens),
            limits.max_tokens.into(),
        );
        return Err(Box::new(
            error.with_message(format!("the document has more than {} tokens", limits.max_tokens)),
        ));
    }
    if scan.nesting > MAX_NESTING {
        let error =
            refused(code::MAX_DEPTH_EXCEEDED, "bracket nesting", scan.nesting.into(), MAX_NESTING.into());
        return Err(Box::new(
            error.with_message(format!("the document nests brackets more than {MAX_NESTING} deep")),
        ));
    }
    Ok(())
}

/// Depth, aliases, root fields and expanded selections of the operation's selection set.
pub fn check_shape(
    document: &Document,
    selection_set: &SelectionSet,
    limits: &QueryLimits,
) -> Result<(), Box<GraphQLError>> {
    let mut measure = shape::Measure::new(document);
    let shape = measure.shape(selection_set);
    let roots = measure.root_fields(selection_set);
    let checks = [
        (code::MAX_DEPTH_EXCEEDED, "depth", shape.depth, u64::from(limits.max_depth)),
        (code::MAX_ALIASES_EXCEEDED, "alias count", shape.aliases, u64::from(limits.max_aliases)),
        (code::MAX_ROOT_FIELDS_EXCEEDED, "root field count", roots, u64::from(limits.max_root_fields)),
        // Fragments can expand a short document enormously; it may not select more fields than
        // it could name without fragments.
        (code::QUERY_TOO_COMPLEX, "expanded field count", shape.fields, u64::from(limits.max_tokens)),
    ];
    match checks.into_iter().find(|(_, _, measured, limit)| measured > limit) {
        Some((code, what, measured, limit)) => Err(Box::new(refused(code, what, measured, limit))),
        None => Ok(()),
    }
}

/// The metrics label of a refusal, by its error code.
pub fn reason(code: &str) -> &'static str {
    match code {
        code::MAX_TOKENS_EXCEEDED => "tokens",
        code::MAX_DEPTH_EXCEEDED => "depth",
        code::MAX_ALIASES_EXCEEDED => "aliases",
        code::MAX_ROOT_FIELDS_EXCEEDED => "root_fields",
        code::MAX_BATCH_SIZE_EXCEEDED => "batch_size",
        code::QUERY_TOO_COMPLEX => "complexity",
        code::COST_LIMIT_EXCEEDED => "cost",
        _ => "other",
    }
}
