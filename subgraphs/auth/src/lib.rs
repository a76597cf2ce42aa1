//! The auth subgraph: credentials, sessions, access and refresh tokens, API keys and the second
//! factor. The users subgraph owns profiles; sign-up tells it through the `user.registered` event.

mod api_keys;
mod authority;
mod keys;
mod limits;
mod memberships;
pub mod mfa;
mod passwords;
mod schema;
mod secrets;
mod service;
mod sessions;
mod store;

use std::sync::Arc;

use pyairtable_kit::{IdentityKey, Kit, Subgraph};

pub use authority::LocalAuthority;
pub use keys::SigningKeys;
pub use schema::{AuthSchema, Mutation, Query};
pub use service::{USER_REGISTERED, UserRegistered};

/// The subgraph's name in the supergraph.
pub const NAME: &str = "auth";

/// The current signing key is replaced after this long (tokens stay valid across rotations).
pub const ROTATE_KEYS_AFTER: chrono::Duration = chrono::Duration::days(30);

/// The subgraph, with its data sources from `kit`; it is also the router's authority.
pub fn subgraph(kit: &Kit) -> Subgraph {
    let keys = SigningKeys::new(kit.db.clone(), ROTATE_KEYS_AFTER);
    let auth = service::Auth::new(
        kit.db.clone(),
        keys,
        kit.mailer.clone(),
        kit.config.public_url.clone(),
        kit.config.access_token_ttl,
    );
    let schema = schema::builder().data(auth.clone()).finish();
    memberships::consumer().spawn(kit);
    let key = kit.config.internal_secret.as_ref().map(IdentityKey::new);
    Subgraph::new(NAME, sdl(), Arc::new(schema))
        .with_routes(authority::routes(auth.clone(), key))
        .with_authority(Arc::new(LocalAuthority(auth)))
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}

/// Rotates the access-token signing keys now (`pyairtable auth rotate-keys`).
pub async fn rotate_keys(kit: &Kit) -> pyairtable_kit::Result<()> {
    SigningKeys::new(kit.db.clone(), ROTATE_KEYS_AFTER).rotate().await
}
