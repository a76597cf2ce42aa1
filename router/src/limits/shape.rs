//! The shape of the selected operation, fragments expanded: depth, aliases, root fields and
//! selections. Fragments are measured once each (memoised), so a "fragment bomb" (each fragment
//! spreading the previous one twice) is measured in linear time and refused on its expanded size.

use std::collections::HashMap;

use graphql_tools::static_graphql::query::{
    Definition, Document, FragmentDefinition, Selection, SelectionSet,
};

/// Measures of one selection set, with fragments expanded (saturating).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Deepest field nesting (a root field is depth 1).
    pub depth: u64,
    pub aliases: u64,
    /// Field selections in all.
    pub fields: u64,
}

impl Shape {
    fn add(&mut self, other: Shape) {
        self.depth = self.depth.max(other.depth);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.fields = self.fields.saturating_add(other.fields);
    }
}

/// Measures selections of one document.
pub struct Measure<'d> {
    fragments: HashMap<&'d str, &'d FragmentDefinition>,
    memo: HashMap<&'d str, Shape>,
    roots_memo: HashMap<&'d str, u64>,
    /// Fragments being measured (a cycle measures as empty; validation refuses it later).
    open: Vec<&'d str>,
}

impl<'d> Measure<'d> {
    pub fn new(document: &'d Document) -> Self {
        let fragments = document
            .definitions
            .iter()
            .filter_map(|d| match d {
                Definition::Fragment(f) => Some((f.name.as_str(), f)),
                Definition::Operation(_) => None,
            })
            .collect();
        Self { fragments, memo: HashMap::new(), roots_memo: HashMap::new(), open: Vec::new() }
    }

    /// The shape of a selection set.
    pub fn shape(&mut self, selection_set: &'d SelectionSet) -> Shape {
        let mut shape = Shape::default();
        for selection in &selection_set.items {
            match selection {
                Selection::Field(field) => {
                    let inner = self.shape(&field.selection_set);
                    shape.add(Shape {
                        depth: inner.depth.saturating_add(1),
                        aliases: inner.aliases.saturating_add(u64::from(field.alias.is_some())),
                        fields: inner.fields.saturating_add(1),
                    });
                }
                Selection::InlineFragment(fragment) => shape.add(self.shape(&fragment.selection_set)),
                Selection::FragmentSpread(spread) => shape.add(self.fragment(&spread.fragment_name)),
            }
        }
        shape
    }

    /// The number of root fields, fragments expanded.
    pub fn root_fields(&mut self, selection_set: &'d SelectionSet) -> u64 {
        let mut count = 0u64;
        for selection in &selection_set.items {
            count = count.saturating_add(match selection {
                Selection::Field(_) => 1,
                Selection::InlineFragment(fragment) => self.root_fields(&fragment.selection_set),
                Selection::FragmentSpread(spread) => self.fragment_roots(&spread.fragment_name),
            });
        }
        count
    }

    fn fragment_roots(&mut self, name: &str) -> u64 {
        let Some(&fragment) = self.fragments.get(name) else { return 0 };
        let key = fragment.name.as_str();
        if let Some(count) = self.roots_memo.get(key) {
            return *count;
        }
        if self.open.contains(&key) {
            return 0;
        }
        self.open.push(key);
        let count = self.root_fields(&fragment.selection_set);
        self.open.pop();
        self.roots_memo.insert(key, count);
        count
    }

    fn fragment(&mut self, name: &str) -> Shape {
        let Some(&fragment) = self.fragments.get(name) else { return Shape::default() };
        let key = fragment.name.as_str();
        if let Some(shape) = self.memo.get(key) {
            return *shape;
        }
        if self.open.contains(&key) {
            return Shape::default();
        }
        self.open.push(key);
        let shape = self.shape(&fragment.selection_set);
        self.open.pop();
        self.memo.insert(key, shape);
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(query: &str) -> (Shape, u64) {
        let document = graphql_tools::parser::parse_query::<String>(query).expect("parses").into_static();
        let Some(Definition::Operation(operation)) = document.definitions.first() else {
            panic!("operation")
        };
        let selection_set = match operation {
            graphql_tools::static_graphql::query::OperationDefinition::Query(q) => &q.selection_set,
            graphql_tools::static_graphql::query::OperationDefinition::SelectionSet(s) => s,
            _ => panic!("a query"),
        };
        let mut measure = Measure::new(&document);
        let shape = measure.shape(selection_set);
        (shape, measure.root_fields(selection_set))
    }

    #[test]
    fn fragments_count_where_they_are_spread() {
        let (shape, roots) = measure(
            "{ a { b { c } } x: a { ...F } ...R } fragment F on A { b { y: c z: c } } fragment R on Query { d e }",
        );
        assert_eq!(shape, Shape { depth: 3, aliases: 3, fields: 9 });
        assert_eq!(roots, 4);
    }

    #[test]
    fn fragment_bombs_and_cycles_are_measured_without_blowing_up() {
        let mut query = String::from("{ ...F40 } fragment F0 on Query { x: a }");
        for i in 1..=40 {
            query.push_str(&format!(" fragment F{i} on Query {{ ...F{p} ...F{p} }}", p = i - 1));
        }
        let (shape, roots) = measure(&query);
        assert_eq!((shape.aliases, roots), (1 << 40, 1 << 40));
        let (cyclic, _) = measure("{ ...A } fragment A on Query { a ...B } fragment B on Query { b ...A }");
        assert_eq!(cyclic.fields, 2);
    }
}
