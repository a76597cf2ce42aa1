//! The event types endpoints may receive: the domain events other subgraphs publish to the
//! outbox (`kit.events`) about a tenant, and this subgraph's own operational event.

/// The operational event published when the platform disables an endpoint.
pub const ENDPOINT_DISABLED: &str = "webhook.endpoint_disabled";
/// The type of messages made by `sendTestWebhook`.
pub const TEST: &str = "webhook.test";

/// Every event type, with what it means (the `webhookEventTypes` query).
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("organization.created", "an organization was created"),
    ("organization.renamed", "an organization was renamed"),
    ("organization.deleted", "an organization was deleted (restorable during its grace period)"),
    ("organization.restored", "a deleted organization was restored"),
    ("member.invited", "someone was invited to the organization"),
    ("invitation.accepted", "an invitation was accepted"),
    ("invitation.revoked", "an invitation was revoked"),
    ("member.joined", "a member joined the organization"),
    ("member.removed", "a member was removed from the organization"),
    ("role.changed", "a member's role changed"),
    ("role.revoked", "a role binding was revoked"),
    ("workspace.created", "a workspace was created"),
    ("workspace.renamed", "a workspace was renamed"),
    ("workspace.archived", "a workspace was archived"),
    ("workspace.restored", "an archived workspace was restored"),
    ("workspace.deleted", "a workspace was deleted"),
    ("file.uploaded", "a file upload completed"),
    ("file.deleted", "a file was deleted"),
    (ENDPOINT_DISABLED, "the platform disabled a webhook endpoint (410 Gone, or sustained failure)"),
];

/// A purged organization (its webhooks rows are removed; not delivered: nothing is left to).
pub const PURGED: &str = "organization.purged";

/// The topics the fan-out consumer reads: the catalog's types, and [`PURGED`].
pub const TOPICS: &[&str] = &[
    "organization.created",
    "organization.renamed",
    "organization.deleted",
    "organization.restored",
    "member.invited",
    "invitation.accepted",
    "invitation.revoked",
    "member.joined",
    "member.removed",
    "role.changed",
    "role.revoked",
    "workspace.created",
    "workspace.renamed",
    "workspace.archived",
    "workspace.restored",
    "workspace.deleted",
    "file.uploaded",
    "file.deleted",
    ENDPOINT_DISABLED,
    PURGED,
];

/// Whether `name` is a type of the catalog.
pub fn known(name: &str) -> bool {
    EVENT_TYPES.iter().any(|(known, _)| *known == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_reads_exactly_the_catalog() {
        let names: Vec<&str> = EVENT_TYPES.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, TOPICS[..TOPICS.len() - 1]);
        assert!(known("workspace.created") && !known("user.registered") && !known(TEST));
    }
}
