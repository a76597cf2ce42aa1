//! Relay cursor connections (`first/after/last/before`, `pageInfo`, `totalCount`) with a hard
//! maximum page size, on keyset pagination by a time-ordered id (UUIDv7), batched across parents.
//!
//! A list field parses its arguments with [`PageArgs::parse`], loads one page per parent with
//! [`window_sql`] (one statement whatever the number of parents), and answers with [`connection`].

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{OutputType, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use uuid::Uuid;

use crate::error::{Error, Result};

/// The page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: usize = 20;
/// No page is larger, whatever the client asks.
pub const MAX_PAGE: usize = 100;

/// A validated page request. Pages are ordered by id (creation order for UUIDv7 ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageArgs {
    /// Only ids strictly greater than this.
    pub after: Option<Uuid>,
    /// Only ids strictly smaller than this.
    pub before: Option<Uuid>,
    /// The page size asked for.
    pub limit: usize,
    /// `last`: the page ends at `before` (or at the end), not starts at `after`.
    pub backward: bool,
}

impl PageArgs {
    /// Reads `first/after/last/before`; refuses negative or too large sizes, both `first` and
    /// `last`, and cursors this server did not make.
    pub fn parse(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Self> {
        let size = |field: &str, value: i32| -> Result<usize> {
            usize::try_from(value)
                .ok()
                .filter(|v| *v <= MAX_PAGE)
                .ok_or_else(|| Error::bad_input(field, format!("{field} must be between 0 and {MAX_PAGE}")))
        };
        let (limit, backward) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(Error::bad_input("last", "give first or last, not both"));
            }
            (Some(first), None) => (size("first", first)?, false),
            (None, Some(last)) => (size("last", last)?, true),
            (None, None) => (DEFAULT_PAGE, false),
        };
        let after = after.as_deref().map(|c| decode_cursor("after", c)).transpose()?;
        let before = before.as_deref().map(|c| decode_cursor("before", c)).transpose()?;
        Ok(Self { after, before, limit, backward })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX).saturating_add(1)
    }

    /// The page of a whole list held in memory, sorted by `id` ascending (lists filtered by
    /// authorization after loading, where SQL cannot page).
    pub fn slice<T>(&self, items: Vec<T>, id: impl Fn(&T) -> Uuid) -> Page<T> {
        let within = items.into_iter().filter(|item| {
            self.after.is_none_or(|a| id(item) > a) && self.before.is_none_or(|b| id(item) < b)
        });
        let fetch = usize::try_from(self.fetch()).unwrap_or(usize::MAX);
        let rows: Vec<T> =
            if self.backward { within.rev().take(fetch).collect() } else { within.take(fetch).collect() };
        self.page(rows)
    }

    /// Cuts rows fetched by [`window_sql`] for one parent (in its order: ascending, or
    /// descending when backward) into the page, in ascending order.
    pub fn page<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        if self.backward {
            rows.reverse();
            Page { items: rows, has_previous: more, has_next: self.before.is_some() }
        } else {
            Page { items: rows, has_previous: self.after.is_some(), has_next: more }
        }
    }
}

/// One page of one parent's list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_previous: bool,
    pub has_next: bool,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self { items: Vec::new(), has_previous: false, has_next: false }
    }
}

/// An opaque cursor for an id.
pub fn encode_cursor(id: Uuid) -> String {
    B64.encode(id.as_bytes())
}

fn decode_cursor(field: &str, cursor: &str) -> Result<Uuid> {
    B64.decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| Error::bad_input(field, format!("{field} is not a cursor of this list")))
}

/// One statement that pages many parents' lists at once. `source` is a `select` whose columns
/// include `id` (the order) and `parent` (whose list the row is in), and whose own parameters
/// are numbered from `$1`; `first_param` is the number of the first parameter after them.
/// Bind, in order: `args.after`, `args.before`, `args.fetch()`. Rows come back by parent, in page
/// order (descending when `args.backward`), at most `args.fetch()` per parent.
pub fn window_sql(source: &str, args: &PageArgs, first_param: usize) -> String {
    let (after, before, fetch) = (first_param, first_param + 1, first_param + 2);
    let direction = if args.backward { "desc" } else { "asc" };
    format!(
        "select * from (select s.*, row_number() over (partition by s.parent order by s.id {direction}) as rn \
         from ({source}) s where (${after}::uuid is null or s.id > ${after}) \
         and (${before}::uuid is null or s.id < ${before})) w \
         where w.rn <= ${fetch} order by w.parent, w.rn"
    )
}

/// `totalCount` of every connection.
#[derive(SimpleObject, Debug, Clone, Copy, Default)]
#[graphql(shareable)]
pub struct Totals {
    /// All items of the list, on every page.
    pub total_count: i64,
}

/// A connection answered from a page.
pub type PageConnection<N> = Connection<String, N, Totals, EmptyFields>;

/// Builds the connection of `page`, with `total` as `totalCount`.
pub fn connection<T, N: OutputType>(
    page: Page<T>,
    total: i64,
    id: impl Fn(&T) -> Uuid,
    node: impl Fn(T) -> N,
) -> PageConnection<N> {
    let mut connection =
        Connection::with_additional_fields(page.has_previous, page.has_next, Totals { total_count: total });
    connection.edges =
        page.items.into_iter().map(|item| Edge::new(encode_cursor(id(&item)), node(item))).collect();
    connection
}

/// Whether the field being resolved selects `totalCount` (so a count is worth a statement).
pub fn wants_total(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_bounded_and_cursors_checked() {
        assert_eq!(PageArgs::parse(None, None, None, None).expect("default").limit, DEFAULT_PAGE);
        assert!(PageArgs::parse(Some(101), None, None, None).is_err());
        assert!(PageArgs::parse(Some(-1), None, None, None).is_err());
        assert!(PageArgs::parse(Some(1), None, Some(1), None).is_err());
        assert!(PageArgs::parse(Some(1), Some("not a cursor".into()), None, None).is_err());
        let id = Uuid::now_v7();
        let args = PageArgs::parse(None, None, Some(5), Some(encode_cursor(id))).expect("last/before");
        assert_eq!((args.before, args.limit, args.backward), (Some(id), 5, true));
    }

    #[test]
    fn lists_in_memory_page_like_lists_in_sql() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let args = PageArgs::parse(Some(2), Some(encode_cursor(ids[0])), None, None).expect("first/after");
        let page = args.slice(ids.clone(), |id| *id);
        assert_eq!((page.items, page.has_previous, page.has_next), (ids[1..3].to_vec(), true, true));
        let args = PageArgs::parse(None, None, Some(2), Some(encode_cursor(ids[4]))).expect("last/before");
        let page = args.slice(ids.clone(), |id| *id);
        assert_eq!((page.items, page.has_previous, page.has_next), (ids[2..4].to_vec(), true, true));
        let everything =
            PageArgs::parse(Some(10), None, None, None).expect("first").slice(ids.clone(), |id| *id);
        assert_eq!((everything.items, everything.has_previous, everything.has_next), (ids, false, false));
    }

    #[test]
    fn pages_know_their_neighbours() {
        let forward = PageArgs { after: None, before: None, limit: 2, backward: false };
        let page = forward.page(vec![1, 2, 3]);
        assert_eq!((page.items, page.has_previous, page.has_next), (vec![1, 2], false, true));
        let backward = PageArgs { after: None, before: None, limit: 2, backward: true };
        let page = backward.page(vec![3, 2, 1]);
        assert_eq!((page.items, page.has_previous, page.has_next), (vec![2, 3], true, false));
    }
}
