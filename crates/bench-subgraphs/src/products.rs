//! products: `topProducts` and the `Product` entity's name, price and weight.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

use crate::data::{PRODUCTS, ProductRow, index_of};

pub struct Product(&'static ProductRow);

#[Object]
impl Product {
    async fn upc(&self) -> &'static str {
        self.0.upc
    }

    async fn name(&self) -> Option<&'static str> {
        Some(self.0.name)
    }

    async fn price(&self) -> Option<i64> {
        Some(self.0.price)
    }

    async fn weight(&self) -> Option<i64> {
        Some(self.0.weight)
    }
}

pub struct Query;

#[Object]
impl Query {
    async fn top_products(&self, #[graphql(default = 5)] first: Option<i32>) -> Option<Vec<Option<Product>>> {
        let first = usize::try_from(first.unwrap_or(5)).unwrap_or(0);
        Some(PRODUCTS.iter().take(first).map(|p| Some(Product(p))).collect())
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        index_of(&upc, PRODUCTS.len()).map(|i| Product(&PRODUCTS[i]))
    }
}

pub fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()
}
