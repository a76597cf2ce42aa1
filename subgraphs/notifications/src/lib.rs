//! The notifications subgraph: workflows keyed by event type turn events into notifications on
//! channels (email through the kit's mailer, the in-app feed, SMS and push through HTTP provider
//! adapters), as each recipient's preferences allow; a delivery log with retries; the feed and
//! its live subscription `notificationReceived`.

mod channels;
mod deliveries;
mod events;
mod preferences;
mod schema;
mod service;
mod store;
mod templates;
mod unsubscribe;
mod worker;
mod workflows;

use std::sync::Arc;

use pyairtable_kit::{Kit, Subgraph};

pub use channels::{Channel, HttpChannel, Message};
pub use schema::{Mutation, NotificationsSchema, Query, SubscriptionRoot};
pub use templates::Templates;
pub use workflows::{ChannelKind, WORKFLOWS, Workflow};

/// The subgraph's name in the supergraph.
pub const NAME: &str = "notifications";

/// The subgraph, with its consumer and delivery worker on `kit`'s lifecycle. Panics when a
/// template does not render with its workflow's sample variables, or a provider URL is unusable
/// (found at start, with the template or variable named).
pub fn subgraph(kit: &Kit) -> Subgraph {
    let templates = match Templates::load() {
        Ok(templates) => Arc::new(templates),
        Err(err) => panic!("the notifications subgraph cannot start: {err}"),
    };
    let unsubscribe = unsubscribe::Unsubscribe::new(kit.db.clone(), &kit.config.public_url);
    let feed = service::Feed::new(kit.db.clone(), templates.clone());
    let schema = schema::builder().data(feed).data(kit.bus.clone()).finish();
    events::consumer().spawn(kit);
    worker(kit, templates, unsubscribe.clone()).spawn(&kit.lifecycle);
    Subgraph::new(NAME, sdl(), Arc::new(schema)).with_public_routes(unsubscribe::routes(unsubscribe))
}

fn worker(kit: &Kit, templates: Arc<Templates>, unsubscribe: unsubscribe::Unsubscribe) -> worker::Worker {
    let config = kit.config.notifications.clone();
    let provider = |url: &Option<String>, variable: &str| {
        url.as_deref().map(|url| match HttpChannel::new(url) {
            Ok(channel) => Arc::new(channel) as Arc<dyn Channel>,
            Err(err) => panic!("{variable}: {err}"),
        })
    };
    worker::Worker {
        db: kit.db.clone(),
        bus: kit.bus.clone(),
        templates,
        email: Arc::new(channels::EmailChannel(kit.mailer.clone())),
        sms: provider(&config.sms_url, "PYAIRTABLE_NOTIFICATIONS_SMS_URL"),
        push: provider(&config.push_url, "PYAIRTABLE_NOTIFICATIONS_PUSH_URL"),
        unsubscribe,
        config,
    }
}

/// The federation SDL (no data sources needed).
pub fn sdl() -> String {
    pyairtable_kit::subgraph::federation_sdl(&schema::builder().finish())
}
