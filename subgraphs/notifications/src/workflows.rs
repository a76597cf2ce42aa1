//! The workflows: which event makes which notification, on which channels by default, and the
//! sample variables its templates are checked with at start.

use serde_json::{Value, json};

/// A channel a notification goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "NotificationChannel")]
pub enum ChannelKind {
    Email,
    InApp,
    Sms,
    Push,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [Self::Email, Self::InApp, Self::Sms, Self::Push];

    /// The name in SQL and in GraphQL inputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::InApp => "in_app",
            Self::Sms => "sms",
            Self::Push => "push",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// One kind of notification.
#[derive(Debug)]
pub struct Workflow {
    /// The event type that triggers it (also its name).
    pub key: &'static str,
    /// What it is, for people (shown with the preferences).
    pub title: &'static str,
    /// Critical workflows (password reset, security alerts) ignore opt-outs.
    pub critical: bool,
    /// The channels it uses unless the recipient chose otherwise.
    pub channels: &'static [ChannelKind],
    /// The variables its templates may use, with sample values (checked at start).
    pub sample: fn() -> Value,
}

use ChannelKind::{Email, InApp};

pub const WORKFLOWS: &[Workflow] = &[
    Workflow {
        key: "auth.password_reset_requested",
        title: "Password reset links",
        critical: true,
        channels: &[Email],
        sample: reset,
    },
    Workflow {
        key: "member.invited",
        title: "Invitations to an organization",
        critical: false,
        channels: &[Email, InApp],
        sample: invited,
    },
    Workflow {
        key: "member.joined",
        title: "You joined an organization",
        critical: false,
        channels: &[InApp],
        sample: membership,
    },
    Workflow {
        key: "role.changed",
        title: "Your role in an organization changed",
        critical: false,
        channels: &[InApp],
        sample: role_changed,
    },
    Workflow {
        key: "member.removed",
        title: "You were removed from an organization",
        critical: false,
        channels: &[InApp],
        sample: membership,
    },
    Workflow {
        key: "webhook.endpoint_disabled",
        title: "A webhook endpoint of your organization was disabled",
        critical: false,
        channels: &[Email, InApp],
        sample: endpoint_disabled,
    },
];

/// The workflow of an event type.
pub fn workflow(key: &str) -> Option<&'static Workflow> {
    WORKFLOWS.iter().find(|w| w.key == key)
}

fn reset() -> Value {
    json!({ "organization_name": "", "reset_url": "https://example.com/reset?token=t", "expires_minutes": 60, "unsubscribe_url": null })
}

fn invited() -> Value {
    json!({
        "organization_name": "Acme", "role": "member", "accept_url": "https://example.com/accept?token=t",
        "expires_days": 7, "unsubscribe_url": "https://example.com/unsubscribe/t",
    })
}

fn membership() -> Value {
    json!({ "organization_name": "Acme", "role": "member", "unsubscribe_url": null })
}

fn role_changed() -> Value {
    json!({ "organization_name": "Acme", "role": "admin", "previous_role": "member", "unsubscribe_url": null })
}

fn endpoint_disabled() -> Value {
    json!({
        "organization_name": "Acme", "url": "https://hooks.example.com/in", "reason": "20 failures in a row",
        "unsubscribe_url": "https://example.com/unsubscribe/t",
    })
}
