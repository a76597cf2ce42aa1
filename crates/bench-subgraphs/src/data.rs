//! The benchmark's data: the same users, products, stock and reviews as The Guild's gateway
//! benchmark, as `static` tables (nothing is built or copied per request).

/// A user of the accounts subgraph.
pub struct UserRow {
    pub id: &'static str,
    pub name: &'static str,
    pub username: &'static str,
    pub birthday: i32,
}

const BIRTHDAY: i32 = 1_234_567_890;

pub static USERS: [UserRow; 6] = [
    UserRow { id: "1", name: "Uri Goldshtein", username: "urigo", birthday: BIRTHDAY },
    UserRow { id: "2", name: "Dotan Simha", username: "dotansimha", birthday: BIRTHDAY },
    UserRow { id: "3", name: "Kamil Kisiela", username: "kamilkisiela", birthday: BIRTHDAY },
    UserRow { id: "4", name: "Arda Tanrikulu", username: "ardatan", birthday: BIRTHDAY },
    UserRow { id: "5", name: "Gil Gardosh", username: "gilgardosh", birthday: BIRTHDAY },
    UserRow { id: "6", name: "Laurin Quast", username: "laurin", birthday: BIRTHDAY },
];

/// A product: the products subgraph owns name, price and weight; inventory owns `in_stock`.
pub struct ProductRow {
    pub upc: &'static str,
    pub name: &'static str,
    pub price: i64,
    pub weight: i64,
    pub in_stock: bool,
}

pub static PRODUCTS: [ProductRow; 9] = [
    ProductRow { upc: "1", name: "Table", price: 899, weight: 100, in_stock: true },
    ProductRow { upc: "2", name: "Couch", price: 1299, weight: 1000, in_stock: false },
    ProductRow { upc: "3", name: "Glass", price: 15, weight: 20, in_stock: false },
    ProductRow { upc: "4", name: "Chair", price: 499, weight: 100, in_stock: false },
    ProductRow { upc: "5", name: "TV", price: 1299, weight: 1000, in_stock: true },
    ProductRow { upc: "6", name: "Lamp", price: 6999, weight: 300, in_stock: true },
    ProductRow { upc: "7", name: "Grill", price: 3999, weight: 2000, in_stock: true },
    ProductRow { upc: "8", name: "Fridge", price: 100_000, weight: 6000, in_stock: false },
    ProductRow { upc: "9", name: "Sofa", price: 9999, weight: 800, in_stock: true },
];

/// A review: `product` is an index into [`PRODUCTS`].
pub struct ReviewRow {
    pub id: &'static str,
    pub body: &'static str,
    pub product: usize,
}

const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.";

const SED_UT: &str = "Sed ut perspiciatis unde omnis iste natus error sit voluptatem accusantium doloremque laudantium, totam rem aperiam, eaque ipsa quae ab illo inventore veritatis et quasi architecto beatae vitae dicta sunt explicabo. Nemo enim ipsam voluptatem quia voluptas sit aspernatur aut odit aut fugi";

const SED_QUIA: &str = "sed quia consequuntur magni dolores eos qui ratione voluptatem sequi nesciunt. Neque porro quisquam est, qui dolorem ipsum quia dolor sit amet, consectetur, adipisci velit, sed quia non numquam eius modi tempora incidunt ut labore et dolore magnam aliquam quaerat voluptatem.";

const UT_ENIM: &str = "Ut enim ad minima veniam, quis nostrum exercitationem ullam corporis suscipit laboriosam, nisi ut aliquid ex ea commodi consequatur? Quis autem";

const AT_VERO: &str = "At vero eos et accusamus et iusto odio dignissimos ducimus qui blanditiis praesentium voluptatum deleniti atque corrupti quos dolores et quas molestias excepturi sint occaecati cupiditate non provident, similique sunt in culpa qui officia deserunt mollitia animi, id est laborum et dolorum fuga. Et harum quidem rerum facilis est et expedita distinctio. Nam libero tempore, cum soluta nobis est eligendi optio cumque nihil impedit quo minus id quod maxime placeat facere possimus, omnis voluptas assumenda est, omnis dolor repellendus. Temporibus autem quibusdam et aut officiis debitis aut rerum necessitatibus saepe eveniet ut et voluptates repudiandae sint et molestiae non recusandae. Itaque earum rerum hic tenetur a sapiente delectus, ut aut reiciendis voluptatibus maiores alias consequatur aut perferendis doloribus asperiores repellat.";

pub static REVIEWS: [ReviewRow; 11] = [
    ReviewRow { id: "1", body: LOREM, product: 0 },
    ReviewRow { id: "2", body: SED_UT, product: 0 },
    ReviewRow { id: "3", body: SED_QUIA, product: 0 },
    ReviewRow { id: "4", body: UT_ENIM, product: 0 },
    ReviewRow { id: "5", body: LOREM, product: 1 },
    ReviewRow { id: "6", body: SED_UT, product: 1 },
    ReviewRow { id: "7", body: SED_QUIA, product: 1 },
    ReviewRow { id: "8", body: UT_ENIM, product: 1 },
    ReviewRow { id: "9", body: UT_ENIM, product: 2 },
    ReviewRow { id: "10", body: UT_ENIM, product: 3 },
    ReviewRow { id: "11", body: AT_VERO, product: 3 },
];

/// The reviews of each product (by index into [`PRODUCTS`]): [`REVIEWS`] is ordered by product,
/// so each product's reviews are one range of it.
const PRODUCT_REVIEWS: [(usize, usize); 9] =
    [(0, 4), (4, 8), (8, 9), (9, 11), (11, 11), (11, 11), (11, 11), (11, 11), (11, 11)];

/// The reviews of the product at `index`.
pub fn reviews_of(index: usize) -> &'static [ReviewRow] {
    match PRODUCT_REVIEWS.get(index) {
        Some(&(start, end)) => &REVIEWS[start..end],
        None => &[],
    }
}

/// Every user has written the first two reviews (as in The Guild's benchmark).
pub fn reviews_by_user() -> &'static [ReviewRow] {
    &REVIEWS[0..2]
}

/// The index of `id` in a table whose ids are "1", "2", ...: no scan, no allocation.
pub fn index_of(id: &str, len: usize) -> Option<usize> {
    let n: usize = id.parse().ok()?;
    (1..=len).contains(&n).then(|| n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positions() {
        assert!(USERS.iter().enumerate().all(|(i, u)| index_of(u.id, USERS.len()) == Some(i)));
        assert!(PRODUCTS.iter().enumerate().all(|(i, p)| index_of(p.upc, PRODUCTS.len()) == Some(i)));
        assert!(REVIEWS.iter().enumerate().all(|(i, r)| index_of(r.id, REVIEWS.len()) == Some(i)));
        assert_eq!(index_of("0", 6), None);
        assert_eq!(index_of("7", 6), None);
        assert_eq!(index_of("x", 6), None);
    }

    #[test]
    fn product_ranges_match_the_reviews() {
        for index in 0..PRODUCTS.len() {
            let expected: Vec<&str> = REVIEWS.iter().filter(|r| r.product == index).map(|r| r.id).collect();
            let got: Vec<&str> = reviews_of(index).iter().map(|r| r.id).collect();
            assert_eq!(got, expected, "product {index}");
        }
    }
}
