//! The right to open a camera in a home, as one pure decision: who calls,
//! for what (a scheduled visit, an active alarm), the client's consent and
//! policy, the clock. Every decision, a refusal too, is audited by the caller
//! of [`decide`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::alerts::Status;
use crate::store::Role;
use etahoiva_proto::CallKind;

/// What a client allows the staff handling one of their alarms to do with
/// the camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmVideo {
    /// No video on alarms; the alarm is handled by voice or on site.
    Never,
    /// The terminal rings; the client accepts.
    Ring,
    /// The handler's call opens at once (for clients who may not be able to
    /// reach the screen, by their or their guardian's consent).
    OpenAtOnce,
}

impl AlarmVideo {
    pub const ALL: [AlarmVideo; 3] = [AlarmVideo::Never, AlarmVideo::Ring, AlarmVideo::OpenAtOnce];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmVideo::Never => "never",
            AlarmVideo::Ring => "ring",
            AlarmVideo::OpenAtOnce => "open_at_once",
        }
    }

    pub fn parse(s: &str) -> Option<AlarmVideo> {
        AlarmVideo::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Who calls.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub id: &'a str,
    pub roles: &'a [Role],
    /// Teams the caller belongs to.
    pub teams: &'a [String],
}

/// The facts of the alarm a call is for.
#[derive(Clone, Copy, Debug)]
pub struct AlarmFacts<'a> {
    pub status: Status,
    pub team_id: Option<&'a str>,
    pub escalated_team_id: Option<&'a str>,
    pub claimed_by: Option<&'a str>,
    pub answered_by: Option<&'a str>,
}

/// The facts of the scheduled visit a call is for.
#[derive(Clone, Copy, Debug)]
pub struct VisitFacts<'a> {
    pub nurse_id: Option<&'a str>,
    pub window_start: i64,
    pub window_end: i64,
    /// Completed, missed or cancelled.
    pub closed: bool,
}

/// Why a camera was opened or rung.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    AssignedInWindow,
    AssignedOutsideWindow,
    NoConsent,
    /// A nurse the visit is not assigned to (covering, or a colleague).
    OtherNurse,
    AlarmHandler,
    AlarmHandlerPolicyRing,
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only care staff may call a home")]
    NoClinicalRole,
    #[error("the visit is closed")]
    VisitClosed,
    #[error("the alarm is handled by somebody else")]
    AlarmNotHandledByCaller,
    #[error("the alarm is closed")]
    AlarmClosed,
    #[error("the client's policy allows no video on alarms")]
    AlarmVideoNever,
    #[error("the client's terminal is not connected")]
    TerminalOffline,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NoClinicalRole => "no_clinical_role",
            Refusal::VisitClosed => "visit_closed",
            Refusal::AlarmNotHandledByCaller => "alarm_not_handled_by_caller",
            Refusal::AlarmClosed => "alarm_closed",
            Refusal::AlarmVideoNever => "alarm_video_never",
            Refusal::TerminalOffline => "terminal_offline",
        }
    }
}

/// What happens to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The camera opens without the client's touch.
    AutoAnswer {
        kind: CallKind,
        grant: Grant,
    },
    /// The terminal rings; the client accepts or declines.
    Ring {
        kind: CallKind,
        grant: Grant,
    },
    Refuse(Refusal),
}

impl Decision {
    pub fn auto_answer(self) -> bool {
        matches!(self, Decision::AutoAnswer { .. })
    }
}

fn clinical(roles: &[Role]) -> bool {
    roles
        .iter()
        .any(|r| matches!(r, Role::Nurse | Role::Patrol | Role::Supervisor))
}

/// A call for an active alarm: only the person handling it (who took or
/// answered it, or a member of a team it is routed or escalated to), and
/// then as the client's policy says. An alarm call outranks every other
/// call on the terminal.
pub fn decide_alarm(
    caller: Caller<'_>,
    alarm: AlarmFacts<'_>,
    policy: AlarmVideo,
    terminal_online: bool,
) -> Decision {
    if !clinical(caller.roles) {
        return Decision::Refuse(Refusal::NoClinicalRole);
    }
    if !terminal_online {
        return Decision::Refuse(Refusal::TerminalOffline);
    }
    if !alarm.status.is_open() {
        return Decision::Refuse(Refusal::AlarmClosed);
    }
    let handles = match alarm.claimed_by {
        // Once somebody has taken it, it is theirs alone.
        Some(holder) => holder == caller.id,
        None => {
            alarm.answered_by == Some(caller.id)
                || [alarm.team_id, alarm.escalated_team_id]
                    .into_iter()
                    .flatten()
                    .any(|t| caller.teams.iter().any(|m| m == t))
        }
    };
    if !handles {
        return Decision::Refuse(Refusal::AlarmNotHandledByCaller);
    }
    match policy {
        AlarmVideo::Never => Decision::Refuse(Refusal::AlarmVideoNever),
        AlarmVideo::Ring => Decision::Ring {
            kind: CallKind::Alarm,
            grant: Grant::AlarmHandlerPolicyRing,
        },
        AlarmVideo::OpenAtOnce => Decision::AutoAnswer {
            kind: CallKind::Alarm,
            grant: Grant::AlarmHandler,
        },
    }
}

/// A call for a scheduled visit: the assigned nurse opens the camera by
/// itself only with the client's consent and inside the visit's window
/// (widened by `margin_ms`); any other nurse's call, or one without
/// consent or outside the window, rings and the client must accept.
/// Anyone without a care role is refused.
pub fn decide_visit(
    caller: Caller<'_>,
    visit: VisitFacts<'_>,
    consent: bool,
    now: i64,
    margin_ms: i64,
) -> Decision {
    if !clinical(caller.roles) {
        return Decision::Refuse(Refusal::NoClinicalRole);
    }
    if visit.closed {
        return Decision::Refuse(Refusal::VisitClosed);
    }
    let kind = CallKind::ScheduledCare;
    if visit.nurse_id != Some(caller.id) {
        return Decision::Ring {
            kind,
            grant: Grant::OtherNurse,
        };
    }
    let in_window = now >= visit.window_start - margin_ms && now < visit.window_end + margin_ms;
    match (consent, in_window) {
        (true, true) => Decision::AutoAnswer {
            kind,
            grant: Grant::AssignedInWindow,
        },
        (true, false) => Decision::Ring {
            kind,
            grant: Grant::AssignedOutsideWindow,
        },
        (false, _) => Decision::Ring {
            kind,
            grant: Grant::NoConsent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PATROL: &[Role] = &[Role::Patrol];

    fn alarm(status: Status, claimed: Option<&'static str>) -> AlarmFacts<'static> {
        AlarmFacts {
            status,
            team_id: Some("lesti"),
            escalated_team_id: Some("perho"),
            claimed_by: claimed,
            answered_by: None,
        }
    }

    #[test]
    fn alarm_calls_follow_the_handler_and_the_policy() {
        let teams = vec!["lesti".to_string()];
        let pekka = Caller {
            id: "pekka",
            roles: PATROL,
            teams: &teams,
        };
        let a = alarm(Status::Routed, None);
        assert_eq!(
            decide_alarm(pekka, a, AlarmVideo::OpenAtOnce, true),
            Decision::AutoAnswer {
                kind: CallKind::Alarm,
                grant: Grant::AlarmHandler
            }
        );
        assert!(matches!(
            decide_alarm(pekka, a, AlarmVideo::Ring, true),
            Decision::Ring {
                kind: CallKind::Alarm,
                ..
            }
        ));
        assert_eq!(
            decide_alarm(pekka, a, AlarmVideo::Never, true),
            Decision::Refuse(Refusal::AlarmVideoNever)
        );
        // Taken by someone else: not Pekka's any more, team or not.
        assert_eq!(
            decide_alarm(
                pekka,
                alarm(Status::Acknowledged, Some("liisa")),
                AlarmVideo::OpenAtOnce,
                true
            ),
            Decision::Refuse(Refusal::AlarmNotHandledByCaller)
        );
        assert_eq!(
            decide_alarm(
                pekka,
                alarm(Status::Resolved, Some("pekka")),
                AlarmVideo::OpenAtOnce,
                true
            ),
            Decision::Refuse(Refusal::AlarmClosed)
        );
        assert_eq!(
            decide_alarm(pekka, a, AlarmVideo::OpenAtOnce, false),
            Decision::Refuse(Refusal::TerminalOffline)
        );
        let other_team = vec!["kala".to_string()];
        let stranger = Caller {
            id: "x",
            roles: PATROL,
            teams: &other_team,
        };
        assert_eq!(
            decide_alarm(stranger, a, AlarmVideo::OpenAtOnce, true),
            Decision::Refuse(Refusal::AlarmNotHandledByCaller)
        );
        let admin = Caller {
            id: "pekka",
            roles: &[Role::Admin],
            teams: &teams,
        };
        assert_eq!(
            decide_alarm(admin, a, AlarmVideo::OpenAtOnce, true),
            Decision::Refuse(Refusal::NoClinicalRole)
        );
    }

    #[test]
    fn visit_calls_open_by_themselves_only_with_every_right() {
        let none: Vec<String> = Vec::new();
        let anna = Caller {
            id: "anna",
            roles: &[Role::Nurse],
            teams: &none,
        };
        let v = VisitFacts {
            nurse_id: Some("anna"),
            window_start: 1_000,
            window_end: 2_000,
            closed: false,
        };
        assert!(decide_visit(anna, v, true, 1_500, 0).auto_answer());
        assert!(
            decide_visit(anna, v, true, 900, 100).auto_answer(),
            "margin"
        );
        assert!(matches!(
            decide_visit(anna, v, true, 2_500, 0),
            Decision::Ring {
                grant: Grant::AssignedOutsideWindow,
                ..
            }
        ));
        assert!(matches!(
            decide_visit(anna, v, false, 1_500, 0),
            Decision::Ring {
                grant: Grant::NoConsent,
                ..
            }
        ));
        let bea = Caller {
            id: "bea",
            roles: &[Role::Nurse],
            teams: &none,
        };
        assert!(matches!(
            decide_visit(bea, v, true, 1_500, 0),
            Decision::Ring {
                grant: Grant::OtherNurse,
                ..
            }
        ));
        let admin = Caller {
            id: "anna",
            roles: &[Role::Admin],
            teams: &none,
        };
        assert_eq!(
            decide_visit(admin, v, true, 1_500, 0),
            Decision::Refuse(Refusal::NoClinicalRole)
        );
        let closed = VisitFacts { closed: true, ..v };
        assert_eq!(
            decide_visit(anna, closed, true, 1_500, 0),
            Decision::Refuse(Refusal::VisitClosed)
        );
    }

    proptest! {
        /// The camera opens by itself only for the alarm's handler under an
        /// open-at-once policy, or for the assigned nurse of an open visit
        /// with consent inside the window.
        #[test]
        fn auto_answer_needs_every_right(
            caller in 0usize..3,
            claimed in proptest::option::of(0usize..3),
            open in any::<bool>(),
            policy in 0usize..3,
            online in any::<bool>(),
            consent in any::<bool>(),
            now in 0i64..3_000,
            margin in 0i64..500,
            in_team in any::<bool>(),
        ) {
            let ids = ["a", "b", "c"];
            let teams = if in_team { vec!["lesti".to_string()] } else { Vec::new() };
            let c = Caller { id: ids[caller], roles: &[Role::Nurse], teams: &teams };
            let status = if open { Status::Routed } else { Status::Resolved };
            let facts = AlarmFacts {
                status,
                team_id: Some("lesti"),
                escalated_team_id: None,
                claimed_by: claimed.map(|i| ids[i]),
                answered_by: None,
            };
            let d = decide_alarm(c, facts, AlarmVideo::ALL[policy], online);
            if d.auto_answer() {
                prop_assert!(open && online && AlarmVideo::ALL[policy] == AlarmVideo::OpenAtOnce);
                prop_assert!(claimed.map(|i| ids[i] == ids[caller]).unwrap_or(in_team));
            }
            let v = VisitFacts { nurse_id: claimed.map(|i| ids[i]), window_start: 1_000, window_end: 2_000, closed: !open };
            let d = decide_visit(c, v, consent, now, margin);
            if d.auto_answer() {
                prop_assert!(open && consent && v.nurse_id == Some(ids[caller]));
                prop_assert!(now >= 1_000 - margin && now < 2_000 + margin);
            }
        }
    }
}
