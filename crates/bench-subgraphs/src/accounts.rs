//! accounts: the users (`me`, `user`, `users`) and the `User` entity.

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema};

use crate::data::{USERS, UserRow, index_of};

pub struct User(&'static UserRow);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID::from(self.0.id)
    }

    async fn name(&self) -> Option<&'static str> {
        Some(self.0.name)
    }

    async fn username(&self) -> Option<&'static str> {
        Some(self.0.username)
    }

    async fn birthday(&self) -> Option<i32> {
        Some(self.0.birthday)
    }
}

fn user(id: &str) -> Option<User> {
    index_of(id, USERS.len()).map(|i| User(&USERS[i]))
}

pub struct Query;

#[Object]
impl Query {
    async fn me(&self) -> Option<User> {
        Some(User(&USERS[0]))
    }

    async fn user(&self, id: ID) -> Option<User> {
        user(&id)
    }

    async fn users(&self) -> Option<Vec<Option<User>>> {
        Some(USERS.iter().map(|u| Some(User(u))).collect())
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        user(&id)
    }
}

pub fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation().finish()
}
