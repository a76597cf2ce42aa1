//! Events the users subgraph applies: `user.registered` (from auth) makes a profile;
//! `file.deleted` (from files) takes a deleted avatar off the profiles showing it.

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

/// The part of `file.deleted` that matters here.
#[derive(Deserialize)]
struct FileDeleted {
    file_id: Uuid,
}

pub fn consumer() -> Consumer {
    Consumer { name: "users.profiles", topics: &["user.registered", "file.deleted"], handler: apply }
}

fn apply<'a>(
    db: &'a mut PgConnection,
    event: &'a Event,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        if event.topic == "file.deleted" {
            let deleted: FileDeleted = event.parse()?;
            return store::clear_avatar(db, deleted.file_id).await;
        }
        let registered: UserRegistered = event.parse()?;
        store::insert_profile(db, registered.user_id, &registered.email, &registered.display_name).await
    })
}
