//! Events the users subgraph applies: `user.registered` (from auth) makes a profile.

use std::future::Future;
use std::pin::Pin;

use pyairtable_kit::Result;
use pyairtable_kit::events::{Consumer, Event};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::store;

/// The payload of `user.registered`, as auth publishes it.
#[derive(Deserialize)]
struct UserRegistered {
    user_id: Uuid,
    email: String,
    display_name: String,
}

pub fn consumer() -> Consumer {
    Consumer { name: "users.profiles", topics: &["user.registered"], handler: on_registered }
}

fn on_registered<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        let registered: UserRegistered = event.parse()?;
        store::insert_profile(db, registered.user_id, &registered.email, &registered.display_name).await
    })
}
