//! inventory: `Product.inStock`, and `Product.shippingEstimate`, which `@requires` the price and
//! weight owned by products (the gateway sends them in the representation).

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

use crate::data::{PRODUCTS, ProductRow, index_of};

pub struct Product {
    row: &'static ProductRow,
    /// From the representation (`@external`, required by `shippingEstimate`).
    price: Option<i64>,
    weight: Option<i64>,
}

#[Object]
impl Product {
    async fn upc(&self) -> &'static str {
        self.row.upc
    }

    #[graphql(external)]
    async fn price(&self) -> Option<i64> {
        self.price
    }

    #[graphql(external)]
    async fn weight(&self) -> Option<i64> {
        self.weight
    }

    async fn in_stock(&self) -> Option<bool> {
        Some(self.row.in_stock)
    }

    // Free above a price of 1000, else half the weight.
    #[graphql(requires = "price weight")]
    async fn shipping_estimate(&self) -> Option<i64> {
        match (self.price?, self.weight) {
            (price, _) if price > 1000 => Some(0),
            (_, weight) => weight.map(|w| w / 2),
        }
    }
}

pub struct Query;

#[Object]
impl Query {
    #[graphql(entity)]
    async fn find_product_by_upc(
        &self,
        #[graphql(key)] upc: String,
        price: Option<i64>,
        weight: Option<i64>,
    ) -> Option<Product> {
        index_of(&upc, PRODUCTS.len()).map(|i| Product { row: &PRODUCTS[i], price, weight })
    }
}

pub fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()
}
