//! The visit lifecycle as a pure state machine:
//! planned -> due -> calling -> in progress -> completed, or
//! calling -> no answer -> (retry) due -> ... -> missed.
//!
//! No I/O and no clock: the caller passes the time, stores the result and
//! raises the missed-visit alert when a transition says so.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a visit is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitStatus {
    /// Generated from the plan; its window has not opened.
    Planned,
    /// The window is open (or a retry is due): the nurse should call now.
    Due,
    /// The nurse is calling; the terminal rings or answers by itself.
    Calling,
    /// The call is running.
    InProgress,
    /// Nobody answered; another try follows after the retry interval.
    NoAnswer,
    Completed,
    /// No call got through inside the window: somebody must go and look.
    Missed,
    Cancelled,
}

impl VisitStatus {
    pub const ALL: [VisitStatus; 8] = [
        VisitStatus::Planned,
        VisitStatus::Due,
        VisitStatus::Calling,
        VisitStatus::InProgress,
        VisitStatus::NoAnswer,
        VisitStatus::Completed,
        VisitStatus::Missed,
        VisitStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VisitStatus::Planned => "planned",
            VisitStatus::Due => "due",
            VisitStatus::Calling => "calling",
            VisitStatus::InProgress => "in_progress",
            VisitStatus::NoAnswer => "no_answer",
            VisitStatus::Completed => "completed",
            VisitStatus::Missed => "missed",
            VisitStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<VisitStatus> {
        VisitStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Nothing more happens to the visit.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            VisitStatus::Completed | VisitStatus::Missed | VisitStatus::Cancelled
        )
    }

    /// No call has been tried yet: plan edits may replace or remove it.
    pub fn not_started(self) -> bool {
        matches!(self, VisitStatus::Planned | VisitStatus::Due)
    }
}

/// How calls are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls tried before the visit counts as missed.
    pub max_tries: u32,
    /// Wait between an unanswered call and the next try.
    pub retry_interval_ms: i64,
    /// A call still ringing after this long counts as unanswered.
    pub ring_timeout_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_tries: 3,
            retry_interval_ms: 5 * 60_000,
            ring_timeout_ms: 60_000,
        }
    }
}

/// The parts of a visit the lifecycle looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VisitState {
    pub status: VisitStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    /// When the visit entered its status.
    pub status_since: i64,
    pub window_start: i64,
    pub window_end: i64,
}

/// What happens to a visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Time passes (the hub's ticker).
    Tick,
    /// The nurse starts a call.
    Call,
    /// The client (or the terminal, by consent) answered.
    Answered,
    /// The call was not answered.
    NoAnswer,
    /// The visit is done; an outcome and a note are recorded with it.
    Complete,
    /// Taken off the plan.
    Cancel,
}

/// The new state after an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub status: VisitStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    /// The call started now (first answer).
    pub started: bool,
    /// The visit ended now.
    pub ended: bool,
    /// The visit became missed now: raise the alert.
    pub missed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} visit cannot take the action {action:?}")]
pub struct InvalidTransition {
    pub from: &'static str,
    pub action: Action,
}

impl VisitState {
    fn to(self, status: VisitStatus) -> Transition {
        Transition {
            status,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            started: false,
            ended: false,
            missed: status == VisitStatus::Missed,
        }
    }

    /// Applies `action` at `now`. `Ok(None)` means nothing changes (a tick with nothing due).
    pub fn step(
        self,
        action: Action,
        now: i64,
        policy: &RetryPolicy,
    ) -> Result<Option<Transition>, InvalidTransition> {
        use VisitStatus::*;
        let invalid = || InvalidTransition {
            from: self.status.as_str(),
            action,
        };
        let next = match (self.status, action) {
            (Planned | Due | NoAnswer, Action::Tick) if now >= self.window_end => {
                Some(self.to(Missed))
            }
            (Planned, Action::Tick) if now >= self.window_start => Some(self.to(Due)),
            (NoAnswer, Action::Tick)
                if self.attempts < policy.max_tries
                    && self.next_attempt_at.is_some_and(|at| now >= at) =>
            {
                Some(Transition {
                    next_attempt_at: None,
                    ..self.to(Due)
                })
            }
            (Calling, Action::Tick) if now >= self.status_since + policy.ring_timeout_ms => {
                Some(self.unanswered(now, policy))
            }
            (_, Action::Tick) => None,
            (Planned | Due | NoAnswer, Action::Call) => {
                if now >= self.window_end {
                    return Err(invalid());
                }
                Some(Transition {
                    attempts: self.attempts.saturating_add(1),
                    next_attempt_at: None,
                    ..self.to(Calling)
                })
            }
            (Calling, Action::Answered) => Some(Transition {
                started: true,
                ..self.to(InProgress)
            }),
            (Calling, Action::NoAnswer) => Some(self.unanswered(now, policy)),
            (InProgress, Action::Complete) => Some(Transition {
                ended: true,
                ..self.to(Completed)
            }),
            // Done in one step when the call was short: answered and finished.
            (Calling, Action::Complete) => Some(Transition {
                started: true,
                ended: true,
                ..self.to(Completed)
            }),
            (Planned | Due | NoAnswer, Action::Cancel) => Some(Transition {
                ended: true,
                ..self.to(Cancelled)
            }),
            _ => return Err(invalid()),
        };
        Ok(next)
    }

    fn unanswered(self, now: i64, policy: &RetryPolicy) -> Transition {
        let retry_at = now.saturating_add(policy.retry_interval_ms);
        if self.attempts >= policy.max_tries || retry_at >= self.window_end {
            Transition {
                next_attempt_at: None,
                ended: true,
                ..self.to(VisitStatus::Missed)
            }
        } else {
            Transition {
                next_attempt_at: Some(retry_at),
                ..self.to(VisitStatus::NoAnswer)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VisitStatus::*;

    const MIN: i64 = 60_000;

    fn visit(status: VisitStatus) -> VisitState {
        VisitState {
            status,
            attempts: 0,
            next_attempt_at: None,
            status_since: 0,
            window_start: 60 * MIN,
            window_end: 120 * MIN,
        }
    }

    fn apply(state: &mut VisitState, action: Action, now: i64) -> Option<Transition> {
        let policy = RetryPolicy::default();
        let t = state
            .step(action, now, &policy)
            .expect("valid transition")?;
        state.status = t.status;
        state.attempts = t.attempts;
        state.next_attempt_at = t.next_attempt_at;
        state.status_since = now;
        Some(t)
    }

    #[test]
    fn a_visit_that_goes_well() {
        let mut v = visit(Planned);
        assert_eq!(apply(&mut v, Action::Tick, 59 * MIN), None);
        assert_eq!(
            apply(&mut v, Action::Tick, 60 * MIN).map(|t| t.status),
            Some(Due)
        );
        let t = apply(&mut v, Action::Call, 61 * MIN).expect("calling");
        assert_eq!((t.status, t.attempts), (Calling, 1));
        let t = apply(&mut v, Action::Answered, 61 * MIN + 10_000).expect("answered");
        assert!(t.started && !t.ended);
        let t = apply(&mut v, Action::Complete, 70 * MIN).expect("done");
        assert_eq!(t.status, Completed);
        assert!(t.ended && !t.missed);
        assert!(v.status.is_final());
        // Nothing more happens to it.
        assert_eq!(apply(&mut v, Action::Tick, 500 * MIN), None);
        assert!(v
            .step(Action::Call, 70 * MIN, &RetryPolicy::default())
            .is_err());
    }

    #[test]
    fn unanswered_calls_are_retried_then_missed() {
        let mut v = visit(Due);
        for attempt in 1..=2 {
            let now = 60 * MIN + (attempt as i64 - 1) * 6 * MIN;
            apply(&mut v, Action::Call, now);
            let t = apply(&mut v, Action::NoAnswer, now + MIN).expect("no answer");
            assert_eq!(t.status, NoAnswer);
            assert_eq!(t.next_attempt_at, Some(now + MIN + 5 * MIN));
            // Not yet time for the retry.
            assert_eq!(apply(&mut v, Action::Tick, now + 2 * MIN), None);
            let t = apply(&mut v, Action::Tick, now + 6 * MIN).expect("retry due");
            assert_eq!(t.status, Due);
        }
        apply(&mut v, Action::Call, 75 * MIN);
        let t = apply(&mut v, Action::NoAnswer, 76 * MIN).expect("third try fails");
        assert_eq!((t.status, t.attempts), (Missed, 3));
        assert!(t.missed, "the missed visit raises its alert");
    }

    #[test]
    fn ringing_without_answer_times_out() {
        let mut v = visit(Due);
        apply(&mut v, Action::Call, 61 * MIN);
        assert_eq!(apply(&mut v, Action::Tick, 61 * MIN + 30_000), None);
        let t = apply(&mut v, Action::Tick, 62 * MIN).expect("ring timeout");
        assert_eq!(t.status, NoAnswer);
    }

    #[test]
    fn a_retry_that_cannot_fit_in_the_window_is_a_miss_now() {
        let mut v = visit(Due);
        apply(&mut v, Action::Call, 116 * MIN);
        let t = apply(&mut v, Action::NoAnswer, 117 * MIN).expect("missed");
        assert_eq!(t.status, Missed);
        assert!(t.missed);
    }

    #[test]
    fn an_uncalled_visit_is_missed_when_its_window_closes() {
        for status in [Planned, Due, NoAnswer] {
            let mut v = visit(status);
            let t = apply(&mut v, Action::Tick, 120 * MIN).expect("missed");
            assert!(t.missed, "{status:?}");
        }
        // A running call is not cut at the window's end.
        let mut v = visit(InProgress);
        assert_eq!(apply(&mut v, Action::Tick, 500 * MIN), None);
    }

    #[test]
    fn short_calls_complete_in_one_step_and_bad_actions_are_refused() {
        let mut v = visit(Due);
        apply(&mut v, Action::Call, 61 * MIN);
        let t = apply(&mut v, Action::Complete, 63 * MIN).expect("done");
        assert!(t.started && t.ended);
        let policy = RetryPolicy::default();
        assert!(visit(Planned).step(Action::Answered, 0, &policy).is_err());
        assert!(visit(Planned).step(Action::Complete, 0, &policy).is_err());
        assert!(visit(InProgress).step(Action::Cancel, 0, &policy).is_err());
        assert!(visit(Due).step(Action::Call, 120 * MIN, &policy).is_err());
        let t = visit(Due).step(Action::Cancel, 0, &policy).expect("ok");
        assert_eq!(t.map(|t| t.status), Some(Cancelled));
    }

    #[test]
    fn status_names_round_trip() {
        for s in VisitStatus::ALL {
            assert_eq!(VisitStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(VisitStatus::parse("teleported"), None);
    }
}
