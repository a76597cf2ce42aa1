//! "Did you mean ...?" in validation errors: added for unknown fields and arguments when
//! suggestions are on (development), and removed from every message when they are off, so a
//! production router never lists field names the client did not send.

use pyairtable_kit::config::edit_distance;

use crate::response::GraphQLError;
use crate::schema::SchemaIndex;

const MAX_SUGGESTIONS: usize = 5;

/// Adds or strips suggestions in validation errors.
pub fn apply(mut errors: Vec<GraphQLError>, schema: &SchemaIndex, enabled: bool) -> Vec<GraphQLError> {
    for error in &mut errors {
        if !enabled {
            if let Some(at) = error.message.find(" Did you mean") {
                error.message.truncate(at);
            }
            continue;
        }
        let candidates = candidates(&error.message, schema);
        if let Some(hint) = hint(&candidates) {
            error.message.push_str(&hint);
        }
    }
    errors
}

/// The misspelled name and the names it may have meant, from a message we know the shape of.
fn candidates(message: &str, schema: &SchemaIndex) -> (String, Vec<String>) {
    let quoted: Vec<&str> = message.split('"').skip(1).step_by(2).collect();
    if message.starts_with("Cannot query field") && quoted.len() == 2 {
        let fields = schema.get(quoted[1]).map(|t| t.fields.keys().cloned().collect()).unwrap_or_default();
        return (quoted[0].to_owned(), fields);
    }
    if message.starts_with("Unknown argument") && quoted.len() == 2 {
        let args = quoted[1]
            .split_once('.')
            .and_then(|(ty, field)| schema.field(ty, field))
            .map(|f| f.args.iter().map(|a| a.name.clone()).collect())
            .unwrap_or_default();
        return (quoted[0].to_owned(), args);
    }
    (String::new(), Vec::new())
}

fn hint((typed, known): &(String, Vec<String>)) -> Option<String> {
    if typed.is_empty() {
        return None;
    }
    let threshold = (typed.len() / 2).max(1);
    let mut close: Vec<(usize, &String)> = known
        .iter()
        .filter(|k| !k.starts_with("__"))
        .map(|k| (edit_distance(&typed.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= threshold)
        .collect();
    close.sort();
    let names: Vec<String> = close.iter().take(MAX_SUGGESTIONS).map(|(_, k)| format!("\"{k}\"")).collect();
    match names.as_slice() {
        [] => None,
        [one] => Some(format!(" Did you mean {one}?")),
        [rest @ .., last] => Some(format!(" Did you mean {} or {last}?", rest.join(", "))),
    }
}
