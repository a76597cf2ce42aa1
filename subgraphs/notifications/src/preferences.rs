//! Preferences: the one precedence that decides whether a user gets a workflow on a channel,
//! used by the consumer when it queues deliveries and by `notificationPreferences` to show them.
//! A critical workflow is always on; otherwise the user's choice for the workflow on the
//! channel wins, then their choice for every workflow on the channel (workflow `*`), then the
//! workflow's default (on, for each of its channels).

use async_graphql::{Enum, SimpleObject};

use crate::workflows::{ChannelKind, WORKFLOWS, Workflow};

/// The workflow key of a choice that applies to every workflow.
pub const ALL_WORKFLOWS: &str = "*";

/// What decides an effective preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "NotificationPreferenceSource")]
pub enum Source {
    /// No choice was made: the workflow's default.
    Default,
    /// The user's choice for this workflow on this channel.
    Workflow,
    /// The user's choice for every workflow on this channel (the global opt-out or opt-in).
    Global,
    /// A critical notification (a password reset): always on, whatever the choices.
    Critical,
}

/// A user's choices that bear on one workflow on one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Choices {
    /// Their choice for the workflow itself.
    pub workflow: Option<bool>,
    /// Their choice for every workflow (`*`).
    pub global: Option<bool>,
}

/// Whether the workflow goes out on the channel, and why.
pub fn resolve(critical: bool, choices: Choices) -> (bool, Source) {
    match (critical, choices.workflow, choices.global) {
        (true, _, _) => (true, Source::Critical),
        (false, Some(on), _) => (on, Source::Workflow),
        (false, None, Some(on)) => (on, Source::Global),
        (false, None, None) => (true, Source::Default),
    }
}

/// One of the signed-in user's notification settings: a workflow on one of its channels, or
/// (`workflow` null) a channel for every workflow. Each can be set with
/// `setNotificationPreference` (same `workflow` and `channel`).
#[derive(Debug, Clone, PartialEq, Eq, SimpleObject)]
#[graphql(name = "NotificationPreference")]
pub struct Preference {
    /// The workflow (its event type: `member.invited`, ...); null: every workflow, the global
    /// choice for the channel.
    pub workflow: Option<String>,
    /// What the workflow is, for people (English); null for the global choices.
    pub title: Option<String>,
    /// Critical workflows ignore every choice: always enabled.
    pub critical: bool,
    pub channel: ChannelKind,
    /// Whether it goes out on the channel (the global entries: the choice for every workflow,
    /// which a workflow's own choice overrides).
    pub enabled: bool,
    /// What decided `enabled`.
    pub source: Source,
}

/// Every workflow on each of its channels, then every channel for all workflows, as `choices`
/// (the user's rows: workflow, channel, enabled) make them. Choices for a channel a workflow
/// does not use, or for an unknown workflow, have no effect and are not shown.
pub fn table(choices: &[(String, String, bool)]) -> Vec<Preference> {
    let choice = |workflow: &str, channel: ChannelKind| {
        choices.iter().find(|(w, c, _)| w == workflow && c == channel.as_str()).map(|(_, _, on)| *on)
    };
    let of_workflow = |flow: &'static Workflow, channel: ChannelKind| {
        let mine = Choices { workflow: choice(flow.key, channel), global: choice(ALL_WORKFLOWS, channel) };
        let (enabled, source) = resolve(flow.critical, mine);
        let (workflow, title) = (Some(flow.key.to_owned()), Some(flow.title.to_owned()));
        Preference { workflow, title, critical: flow.critical, channel, enabled, source }
    };
    let global = |channel: ChannelKind| {
        let (enabled, source) =
            resolve(false, Choices { workflow: None, global: choice(ALL_WORKFLOWS, channel) });
        Preference { workflow: None, title: None, critical: false, channel, enabled, source }
    };
    let per_workflow =
        WORKFLOWS.iter().flat_map(|flow| flow.channels.iter().map(move |&c| of_workflow(flow, c)));
    per_workflow.chain(ChannelKind::ALL.into_iter().map(global)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_choice_beats_the_global_one_which_beats_the_default_and_critical_beats_all() {
        let c = |workflow, global| Choices { workflow, global };
        assert_eq!(resolve(false, c(None, None)), (true, Source::Default));
        assert_eq!(resolve(false, c(None, Some(false))), (false, Source::Global));
        assert_eq!(resolve(false, c(Some(true), Some(false))), (true, Source::Workflow));
        assert_eq!(resolve(false, c(Some(false), None)), (false, Source::Workflow));
        assert_eq!(resolve(true, c(Some(false), Some(false))), (true, Source::Critical));
    }
}
