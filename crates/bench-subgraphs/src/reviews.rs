//! reviews: the `Review` entity, `Product.reviews`, `User.reviews`, and `Review.author`, which
//! `@provides` the author's username.

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema};

use crate::data::{PRODUCTS, REVIEWS, ReviewRow, USERS, index_of, reviews_by_user, reviews_of};

pub struct Review(&'static ReviewRow);

#[Object]
impl Review {
    async fn id(&self) -> ID {
        ID::from(self.0.id)
    }

    async fn body(&self) -> Option<&'static str> {
        Some(self.0.body)
    }

    async fn product(&self) -> Option<Product> {
        Some(Product { index: self.0.product })
    }

    // Every review's author is the first user, as in The Guild's benchmark.
    #[graphql(provides = "username")]
    async fn author(&self) -> Option<User> {
        Some(User { id: ID::from(USERS[0].id), username: Some(USERS[0].username) })
    }
}

fn list(reviews: &'static [ReviewRow]) -> Option<Vec<Option<Review>>> {
    Some(reviews.iter().map(|r| Some(Review(r))).collect())
}

pub struct User {
    id: ID,
    /// Known only where this subgraph provides it (`Review.author`).
    username: Option<&'static str>,
}

#[Object]
impl User {
    async fn id(&self) -> &ID {
        &self.id
    }

    #[graphql(external)]
    async fn username(&self) -> Option<&'static str> {
        self.username
    }

    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        list(reviews_by_user())
    }
}

pub struct Product {
    index: usize,
}

#[Object]
impl Product {
    async fn upc(&self) -> &'static str {
        PRODUCTS[self.index].upc
    }

    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        list(reviews_of(self.index))
    }
}

pub struct Query;

#[Object]
impl Query {
    #[graphql(entity)]
    async fn find_review_by_id(&self, id: ID) -> Option<Review> {
        index_of(&id, REVIEWS.len()).map(|i| Review(&REVIEWS[i]))
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User { id, username: None }
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        index_of(&upc, PRODUCTS.len()).map(|index| Product { index })
    }
}

pub fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()
}
