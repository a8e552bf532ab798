//! The alert lifecycle as a pure function: what a staff action does to an
//! alert, and what an expired timer does.
//!
//! raised -> routed -> acknowledged -> en route -> on site -> resolved,
//! or cancelled from any open state. Guards against operator error: an alarm
//! whose client was not reached by voice or video is closed only after a
//! dispatch or with a reason; an unclear situation dispatches at the top
//! priority.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Priority, Status};

/// The outcome of a voice or video contact with the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Contact {
    /// The client was reached and the situation is clear.
    Reached,
    /// Nobody answered.
    NotReached,
    /// Somebody answered but the situation is unclear.
    Unclear,
}

impl Contact {
    pub const ALL: [Contact; 3] = [Contact::Reached, Contact::NotReached, Contact::Unclear];

    pub fn as_str(self) -> &'static str {
        match self {
            Contact::Reached => "reached",
            Contact::NotReached => "not_reached",
            Contact::Unclear => "unclear",
        }
    }

    pub fn parse(s: &str) -> Option<Contact> {
        Contact::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How an alert was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    HelpedRemotely,
    HelpedOnSite,
    Ambulance,
    FalseAlarm,
    NoNeed,
    ConnectionRestored,
    Other,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::HelpedRemotely,
        Outcome::HelpedOnSite,
        Outcome::Ambulance,
        Outcome::FalseAlarm,
        Outcome::NoNeed,
        Outcome::ConnectionRestored,
        Outcome::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::HelpedRemotely => "helped_remotely",
            Outcome::HelpedOnSite => "helped_on_site",
            Outcome::Ambulance => "ambulance",
            Outcome::FalseAlarm => "false_alarm",
            Outcome::NoNeed => "no_need",
            Outcome::ConnectionRestored => "connection_restored",
            Outcome::Other => "other",
        }
    }
}

/// What a member of staff does to an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Take the alert: it stops ringing for the others and its escalation stops.
    Acknowledge,
    /// The result of calling the client by voice or video.
    Answer {
        contact: Contact,
        #[serde(default)]
        note: Option<String>,
    },
    /// Send a patrol team to the home (by default the one on duty for the client's area).
    Dispatch {
        #[serde(default)]
        team_id: Option<String>,
        #[serde(default)]
        note: Option<String>,
    },
    EnRoute,
    /// Arrived at the home; the time is the measured response time.
    OnSite,
    Resolve {
        outcome: Outcome,
        #[serde(default)]
        note: Option<String>,
        /// Why the alert may be closed although the client was not reached
        /// and nobody went to the home.
        #[serde(default)]
        reason: Option<String>,
    },
    Cancel {
        reason: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Answer { .. } => "answer",
            Action::Dispatch { .. } => "dispatch",
            Action::EnRoute => "en_route",
            Action::OnSite => "on_site",
            Action::Resolve { .. } => "resolve",
            Action::Cancel { .. } => "cancel",
        }
    }
}

/// The facts of an alert the lifecycle decides on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub status: Status,
    pub priority: Priority,
    pub contact: Option<Contact>,
    pub claimed_by: Option<String>,
    pub claimed_by_name: Option<String>,
    pub answered: bool,
    pub acknowledged: bool,
    pub dispatched: bool,
    pub on_site: bool,
}

/// What an action changes. `None` fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// `Some(None)` releases the claim (a dispatch goes to a new team).
    pub claimed_by: Option<Option<String>>,
    pub contact: Option<Contact>,
    /// Record the time to answer now (first answer or acknowledgement).
    pub answered: bool,
    pub acknowledged: bool,
    /// Send to a patrol team: the engine picks the team and restarts the timer.
    pub dispatch: Option<Option<String>>,
    pub en_route: bool,
    pub on_site: bool,
    pub close: Option<Close>,
    /// Words for the timeline.
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    pub outcome: Option<Outcome>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("the alert is already {0}")]
    Closed(&'static str),
    #[error("{action} is not possible while the alert is {status}")]
    NotNow {
        action: &'static str,
        status: &'static str,
    },
    #[error("{0} has already taken this alert")]
    ClaimedByOther(String),
    #[error("the client was not reached by voice or video and nobody was sent to the home: dispatch a patrol or give the reason for closing")]
    ReasonRequired,
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} is too long (at most 2000 characters)")]
    TooLong(&'static str),
}

impl ActionError {
    /// The request field the error is about, for 422 answers.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ActionError::ReasonRequired => Some("reason"),
            ActionError::Empty(f) | ActionError::TooLong(f) => Some(f),
            _ => None,
        }
    }

    /// True for refusals of the state (409) rather than of the input (422).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            ActionError::Closed(_) | ActionError::NotNow { .. } | ActionError::ClaimedByOther(_)
        )
    }
}

const MAX_TEXT: usize = 2000;

fn text(value: &Option<String>, field: &'static str) -> Result<Option<String>, ActionError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > MAX_TEXT => Err(ActionError::TooLong(field)),
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// What `action` by `actor` does to an alert with these facts. `Ok(None)`
/// when it changes nothing (the same person acknowledging twice).
pub fn apply(facts: &Facts, actor: &str, action: &Action) -> Result<Option<Step>, ActionError> {
    let status = facts.status;
    if !status.is_open() {
        return Err(ActionError::Closed(status.as_str()));
    }
    let not_now = || ActionError::NotNow {
        action: action.name(),
        status: status.as_str(),
    };
    let claimed_by_other = facts.claimed_by.as_deref().is_some_and(|c| c != actor);
    let other = || {
        ActionError::ClaimedByOther(
            facts
                .claimed_by_name
                .clone()
                .or_else(|| facts.claimed_by.clone())
                .unwrap_or_default(),
        )
    };
    let mut step = Step {
        answered: !facts.answered,
        acknowledged: !facts.acknowledged,
        ..Step::default()
    };
    match action {
        Action::Acknowledge => {
            if !status.is_unacknowledged() {
                if claimed_by_other {
                    return Err(other());
                }
                return Ok(None);
            }
            step.status = Some(Status::Acknowledged);
            step.claimed_by = Some(Some(actor.to_string()));
        }
        Action::Answer { contact, note } => {
            if !matches!(
                status,
                Status::Raised | Status::Routed | Status::Acknowledged
            ) {
                return Err(not_now());
            }
            if claimed_by_other && status == Status::Acknowledged {
                return Err(other());
            }
            step.contact = Some(*contact);
            step.detail = text(note, "note")?.unwrap_or_default();
            if *contact == Contact::Unclear {
                // An unclear situation is never left to judgement: a patrol goes, at once.
                step.priority = Some(Priority::Critical);
                step.dispatch = Some(None);
                step.status = Some(Status::Routed);
                step.claimed_by = Some(None);
            } else {
                step.status = Some(Status::Acknowledged);
                step.claimed_by = Some(Some(actor.to_string()));
            }
        }
        Action::Dispatch { team_id, note } => {
            if !matches!(
                status,
                Status::Raised | Status::Routed | Status::Acknowledged
            ) {
                return Err(not_now());
            }
            if claimed_by_other && status == Status::Acknowledged {
                return Err(other());
            }
            step.detail = text(note, "note")?.unwrap_or_default();
            step.dispatch = Some(team_id.clone());
            step.status = Some(Status::Routed);
            step.claimed_by = Some(None);
            // The dispatcher answered; the patrol still has to acknowledge.
            step.acknowledged = false;
        }
        Action::EnRoute => {
            if !matches!(status, Status::Routed | Status::Acknowledged) {
                return Err(not_now());
            }
            if claimed_by_other {
                return Err(other());
            }
            step.status = Some(Status::EnRoute);
            step.claimed_by = Some(Some(actor.to_string()));
            step.en_route = true;
        }
        Action::OnSite => {
            if !matches!(
                status,
                Status::Routed | Status::Acknowledged | Status::EnRoute
            ) {
                return Err(not_now());
            }
            if claimed_by_other {
                return Err(other());
            }
            step.status = Some(Status::OnSite);
            step.claimed_by = Some(Some(actor.to_string()));
            step.on_site = true;
        }
        Action::Resolve {
            outcome,
            note,
            reason,
        } => {
            let note = text(note, "note")?;
            let reason = text(reason, "reason")?;
            let reached = facts.contact == Some(Contact::Reached);
            if !reached && !facts.dispatched && !facts.on_site && reason.is_none() {
                return Err(ActionError::ReasonRequired);
            }
            step.status = Some(Status::Resolved);
            if facts.claimed_by.is_none() {
                step.claimed_by = Some(Some(actor.to_string()));
            }
            step.detail = reason.clone().unwrap_or_default();
            step.close = Some(Close {
                outcome: Some(*outcome),
                note: join(note, reason),
            });
        }
        Action::Cancel { reason } => {
            let reason =
                text(&Some(reason.clone()), "reason")?.ok_or(ActionError::Empty("reason"))?;
            step.status = Some(Status::Cancelled);
            step.detail = reason.clone();
            step.close = Some(Close {
                outcome: None,
                note: Some(reason),
            });
        }
    }
    Ok(Some(step))
}

fn join(note: Option<String>, reason: Option<String>) -> Option<String> {
    match (note, reason) {
        (Some(n), Some(r)) => Some(format!("{n}\n{r}")),
        (n, r) => n.or(r),
    }
}

/// What an expired timer does to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Not yet routed (a missed visit, a restart between storing and routing): route it.
    Route,
    /// Nobody acknowledged: to the next step of the chain (1 = next team,
    /// 2 = supervisors; past 2 a reminder to everybody who has it).
    Escalate { level: i32 },
    /// Taken but no progress for too long: the supervisors are told.
    Stalled,
    /// Nothing to do (on site or closed): the timer is cleared.
    Clear,
}

/// The step an expired timer takes.
pub fn on_timer(status: Status, level: i32) -> Timer {
    match status {
        Status::Raised => Timer::Route,
        Status::Routed => Timer::Escalate {
            level: (level + 1).min(2),
        },
        Status::Acknowledged | Status::EnRoute => Timer::Stalled,
        Status::OnSite | Status::Resolved | Status::Cancelled => Timer::Clear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: Status) -> Facts {
        Facts {
            status,
            priority: Priority::High,
            contact: None,
            claimed_by: None,
            claimed_by_name: None,
            answered: false,
            acknowledged: false,
            dispatched: false,
            on_site: false,
        }
    }

    #[test]
    fn acknowledge_claims_and_records_the_answer_time_once() {
        let step = apply(&facts(Status::Routed), "u1", &Action::Acknowledge)
            .unwrap()
            .unwrap();
        assert_eq!(step.status, Some(Status::Acknowledged));
        assert_eq!(step.claimed_by, Some(Some("u1".into())));
        assert!(step.answered && step.acknowledged);

        let mut taken = facts(Status::Acknowledged);
        taken.claimed_by = Some("u1".into());
        taken.claimed_by_name = Some("Pekka".into());
        taken.answered = true;
        taken.acknowledged = true;
        assert_eq!(apply(&taken, "u1", &Action::Acknowledge), Ok(None));
        assert_eq!(
            apply(&taken, "u2", &Action::Acknowledge),
            Err(ActionError::ClaimedByOther("Pekka".into()))
        );
    }

    #[test]
    fn unreached_client_needs_a_dispatch_or_a_reason() {
        let resolve = |reason: Option<&str>| Action::Resolve {
            outcome: Outcome::NoNeed,
            note: None,
            reason: reason.map(str::to_string),
        };
        let mut f = facts(Status::Acknowledged);
        f.contact = Some(Contact::NotReached);
        assert_eq!(
            apply(&f, "u1", &resolve(None)),
            Err(ActionError::ReasonRequired)
        );
        assert_eq!(
            apply(&f, "u1", &resolve(Some("  "))),
            Err(ActionError::ReasonRequired)
        );
        let ok = apply(&f, "u1", &resolve(Some("relative is with her")))
            .unwrap()
            .unwrap();
        assert_eq!(ok.status, Some(Status::Resolved));

        // Never answered at all: the same guard.
        assert_eq!(
            apply(&facts(Status::Routed), "u1", &resolve(None)),
            Err(ActionError::ReasonRequired)
        );
        // Reached by video: may close.
        f.contact = Some(Contact::Reached);
        assert!(apply(&f, "u1", &resolve(None)).is_ok());
        // A patrol went: may close.
        let mut g = facts(Status::OnSite);
        g.dispatched = true;
        g.on_site = true;
        assert!(apply(&g, "u1", &resolve(None)).is_ok());
    }

    #[test]
    fn unclear_answer_dispatches_at_top_priority() {
        let step = apply(
            &facts(Status::Routed),
            "nurse",
            &Action::Answer {
                contact: Contact::Unclear,
                note: Some("heard a fall, no answer after".into()),
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(step.priority, Some(Priority::Critical));
        assert_eq!(step.dispatch, Some(None));
        assert_eq!(step.status, Some(Status::Routed));
        assert_eq!(step.claimed_by, Some(None));
        assert!(
            step.answered,
            "the nurse's answer counts as the answer time"
        );
    }

    #[test]
    fn closed_alerts_refuse_every_action() {
        for status in [Status::Resolved, Status::Cancelled] {
            for action in [
                Action::Acknowledge,
                Action::EnRoute,
                Action::OnSite,
                Action::Cancel { reason: "x".into() },
            ] {
                assert!(matches!(
                    apply(&facts(status), "u", &action),
                    Err(ActionError::Closed(_))
                ));
            }
        }
    }

    #[test]
    fn patrol_steps_follow_the_order_and_the_claim() {
        let mut f = facts(Status::Acknowledged);
        f.claimed_by = Some("p1".into());
        f.acknowledged = true;
        f.answered = true;
        assert!(matches!(
            apply(&f, "p2", &Action::EnRoute),
            Err(ActionError::ClaimedByOther(_))
        ));
        let s = apply(&f, "p1", &Action::EnRoute).unwrap().unwrap();
        assert_eq!(s.status, Some(Status::EnRoute));
        assert!(s.en_route && !s.answered);
        f.status = Status::OnSite;
        assert!(matches!(
            apply(&f, "p1", &Action::EnRoute),
            Err(ActionError::NotNow { .. })
        ));
        // A patrol member tapping "on site" first takes the alert with it.
        let s = apply(&facts(Status::Routed), "p3", &Action::OnSite)
            .unwrap()
            .unwrap();
        assert_eq!(s.claimed_by, Some(Some("p3".into())));
        assert!(s.on_site && s.acknowledged && s.answered);
    }

    #[test]
    fn cancel_needs_a_reason() {
        assert_eq!(
            apply(
                &facts(Status::Routed),
                "u",
                &Action::Cancel { reason: " ".into() }
            ),
            Err(ActionError::Empty("reason"))
        );
    }

    #[test]
    fn timers_route_escalate_and_watch_stalls() {
        assert_eq!(on_timer(Status::Raised, 0), Timer::Route);
        assert_eq!(on_timer(Status::Routed, 0), Timer::Escalate { level: 1 });
        assert_eq!(on_timer(Status::Routed, 1), Timer::Escalate { level: 2 });
        assert_eq!(on_timer(Status::Routed, 2), Timer::Escalate { level: 2 });
        assert_eq!(on_timer(Status::EnRoute, 0), Timer::Stalled);
        assert_eq!(on_timer(Status::OnSite, 0), Timer::Clear);
    }

    #[test]
    fn actions_parse_from_json_and_refuse_unknown_values() {
        let a: Action =
            serde_json::from_str(r#"{"action":"resolve","outcome":"helped_on_site","note":"ok"}"#)
                .unwrap();
        assert_eq!(a.name(), "resolve");
        assert!(
            serde_json::from_str::<Action>(r#"{"action":"resolve","outcome":"maybe"}"#).is_err()
        );
        assert!(serde_json::from_str::<Action>(r#"{"action":"cancel"}"#).is_err());
        assert!(serde_json::from_str::<Action>(r#"{"action":"fly"}"#).is_err());
    }
}
