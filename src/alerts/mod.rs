//! Alarms and the alerts they become: from a help button, a wristband, a
//! sensor, a missed visit or a silent terminal to the nurse or the night
//! patrol who acts on it.
//!
//! `lifecycle`, `routing` and `supervision` are pure (no I/O, no clock);
//! `engine` stores alarms in batches, routes them, runs the escalation
//! timers and tells consoles, patrol phones and terminals what changed.

pub mod engine;
pub mod lifecycle;
pub mod report;
pub mod routing;
pub mod supervision;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::StoreError;

/// What raised an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    HelpButton,
    Wristband,
    Sensor,
    MissedVisit,
    TerminalSilent,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::HelpButton,
        Kind::Wristband,
        Kind::Sensor,
        Kind::MissedVisit,
        Kind::TerminalSilent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::HelpButton => "help_button",
            Kind::Wristband => "wristband",
            Kind::Sensor => "sensor",
            Kind::MissedVisit => "missed_visit",
            Kind::TerminalSilent => "terminal_silent",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// An alarm a person raised (or a sensor raised for them): counted in
    /// the answer-time shares.
    pub fn is_alarm(self) -> bool {
        matches!(self, Kind::HelpButton | Kind::Wristband | Kind::Sensor)
    }

    /// The terminal event kind that raises this alert, if any.
    pub fn of_event(kind: &etahoiva_proto::EventKind) -> Option<Kind> {
        match kind {
            etahoiva_proto::EventKind::HelpButton => Some(Kind::HelpButton),
            etahoiva_proto::EventKind::Wristband => Some(Kind::Wristband),
            etahoiva_proto::EventKind::Sensor => Some(Kind::Sensor),
            _ => None,
        }
    }
}

/// How urgent an alert is; `Ord` is the urgency.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Normal,
    High,
    Critical,
}

impl Priority {
    /// From the most urgent.
    pub const ALL: [Priority; 3] = [Priority::Critical, Priority::High, Priority::Normal];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The priority of an alarm from a terminal event: a fall, smoke or fire
    /// sensor is critical, any other call for help high.
    pub fn of_event(kind: Kind, detail: &serde_json::Value) -> Priority {
        if kind == Kind::Sensor {
            let text = detail.to_string().to_ascii_lowercase();
            if ["fall", "smoke", "fire", "kaatu", "savu", "palo"]
                .iter()
                .any(|w| text.contains(w))
            {
                return Priority::Critical;
            }
        }
        Priority::High
    }
}

/// Where an alert is in its handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored, not yet sent to anybody.
    Raised,
    /// Sent to a team; nobody has taken it yet.
    Routed,
    /// Somebody took it.
    Acknowledged,
    /// A patrol is on its way.
    EnRoute,
    /// The patrol is at the home.
    OnSite,
    Resolved,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Raised,
        Status::Routed,
        Status::Acknowledged,
        Status::EnRoute,
        Status::OnSite,
        Status::Resolved,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Raised => "raised",
            Status::Routed => "routed",
            Status::Acknowledged => "acknowledged",
            Status::EnRoute => "en_route",
            Status::OnSite => "on_site",
            Status::Resolved => "resolved",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Cancelled)
    }

    /// Nobody has taken it yet: it rings and its escalation timer runs.
    pub fn is_unacknowledged(self) -> bool {
        matches!(self, Status::Raised | Status::Routed)
    }

    /// What the client at the terminal is told.
    pub fn progress(self) -> etahoiva_proto::AlarmProgress {
        use etahoiva_proto::AlarmProgress as P;
        match self {
            Status::Raised | Status::Routed => P::Received,
            Status::Acknowledged => P::Acknowledged,
            Status::EnRoute => P::EnRoute,
            Status::OnSite => P::OnSite,
            Status::Resolved => P::Resolved,
            Status::Cancelled => P::Cancelled,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Action(#[from] lifecycle::ActionError),
    #[error("{0}")]
    NoTeam(String),
    #[error("the alert was changed by someone else at the same moment; reload and try again")]
    Concurrent,
    #[error("the alarm service is shutting down; the terminal keeps the alarm and sends it again")]
    ShuttingDown,
}
