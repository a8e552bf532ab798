//! Where the client's alarms are, as the hub reports them
//! (`HubToEdge::AlarmStatus`), so the kiosk can say "help is on the way".
//!
//! [`AlarmBoard`] is a pure state machine (no I/O; the caller passes the
//! terminal's clock). It keeps the last few alarms of this terminal and
//! decides which one the kiosk shows:
//!
//! * A status for an alarm already known moves it only forwards: one whose
//!   hub time `at` is older than the one shown is ignored; at the same `at`
//!   only a later step is taken. Closing (`resolved`, `cancelled`) is
//!   final: an open step for a closed alarm is ignored.
//! * An open alarm is shown before any closed one; of several open ones,
//!   the one with the latest step. An open alarm not heard of for
//!   [`OPEN_SHOWN_MS`] is no longer shown (the hub reports every step, and
//!   the client should not read "help is on the way" for days).
//! * A closed alarm is shown for [`CLOSED_SHOWN_MS`] after the terminal
//!   heard of its closing; then the kiosk goes back to its normal screen.
//!
//! The board is saved in `state/alarm.json` after every change, so a
//! restarted terminal still shows the alarm's progress.

use std::path::{Path, PathBuf};

use etahoiva_proto::AlarmProgress;
use serde::{Deserialize, Serialize};

use crate::kiosk::text;

/// Name of the file in the agent's state directory.
pub const ALARM_FILE: &str = "alarm.json";
/// How long a resolved or cancelled alarm stays on the kiosk.
pub const CLOSED_SHOWN_MS: i64 = 2 * 60_000;
/// How long an open alarm stays on the kiosk without news from the hub.
pub const OPEN_SHOWN_MS: i64 = 12 * 3_600_000;
/// How many alarms are remembered (so late, stale statuses are recognised).
const REMEMBERED: usize = 16;
/// Alert ids are the hub's UUIDs; anything far longer is not one.
const MAX_ID_BYTES: usize = 128;
/// Event keys kept per alarm.
const MAX_EVENT_KEYS: usize = 32;

/// Where the board is saved in `state_dir`.
pub fn alarm_file(state_dir: &Path) -> PathBuf {
    state_dir.join(ALARM_FILE)
}

/// The locale keys of the alarm texts (each must exist in fi, sv and en).
pub const TEXT_KEYS: &[&str] = &[
    "kiosk.alarm_received",
    "kiosk.alarm_acknowledged",
    "kiosk.alarm_en_route",
    "kiosk.alarm_on_site",
    "kiosk.alarm_resolved",
    "kiosk.alarm_cancelled",
];

/// How far the handling has come, in the order the client lives it.
/// `None` for a step this build does not know (it is not shown).
fn rank(progress: AlarmProgress) -> Option<u8> {
    Some(match progress {
        AlarmProgress::Received => 0,
        AlarmProgress::Acknowledged => 1,
        AlarmProgress::EnRoute => 2,
        AlarmProgress::OnSite => 3,
        AlarmProgress::Resolved | AlarmProgress::Cancelled => 4,
        _ => return None,
    })
}

/// The alarm is over (resolved or cancelled).
pub fn is_closed(progress: AlarmProgress) -> bool {
    matches!(progress, AlarmProgress::Resolved | AlarmProgress::Cancelled)
}

/// What the kiosk says about an alarm at `progress`, in `lang`.
pub fn describe(lang: &str, progress: AlarmProgress) -> Option<String> {
    let key = match progress {
        AlarmProgress::Received => "kiosk.alarm_received",
        AlarmProgress::Acknowledged => "kiosk.alarm_acknowledged",
        AlarmProgress::EnRoute => "kiosk.alarm_en_route",
        AlarmProgress::OnSite => "kiosk.alarm_on_site",
        AlarmProgress::Resolved => "kiosk.alarm_resolved",
        AlarmProgress::Cancelled => "kiosk.alarm_cancelled",
        _ => return None,
    };
    Some(text(lang, key))
}

/// A status from the hub (the fields of `HubToEdge::AlarmStatus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmStatus {
    pub alert_id: String,
    pub event_keys: Vec<String>,
    pub progress: AlarmProgress,
    /// Hub clock of the step, milliseconds since the Unix epoch.
    pub at: i64,
}

/// One alarm of this terminal as last reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub alert_id: String,
    /// The terminal's events merged into it (the help press among them).
    pub event_keys: Vec<String>,
    pub progress: AlarmProgress,
    /// Hub clock of the step.
    pub at: i64,
    /// Terminal clock when the step was heard of.
    pub seen_at: i64,
}

impl Alarm {
    pub fn is_closed(&self) -> bool {
        is_closed(self.progress)
    }

    fn order(&self) -> (i64, u8) {
        (self.at, rank(self.progress).unwrap_or(0))
    }
}

/// What became of a status given to [`AlarmBoard::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A new alarm.
    New,
    /// A known alarm moved to the new step.
    Advanced,
    /// Older than (or the same as) what the board holds; nothing changed.
    Stale,
    /// Not usable (empty or overlong id, a step this build does not know).
    Invalid,
}

impl Applied {
    pub fn changed(self) -> bool {
        matches!(self, Applied::New | Applied::Advanced)
    }
}

/// The alarms of this terminal the kiosk may show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmBoard {
    alarms: Vec<Alarm>,
}

impl AlarmBoard {
    /// Takes a status heard at `now_ms` on the terminal's clock.
    pub fn apply(&mut self, status: AlarmStatus, now_ms: i64) -> Applied {
        if status.alert_id.is_empty()
            || status.alert_id.len() > MAX_ID_BYTES
            || rank(status.progress).is_none()
        {
            return Applied::Invalid;
        }
        let keys = status
            .event_keys
            .into_iter()
            .filter(|k| !k.is_empty() && k.len() <= MAX_ID_BYTES);
        let next = Alarm {
            alert_id: status.alert_id,
            event_keys: Vec::new(),
            progress: status.progress,
            at: status.at,
            seen_at: now_ms,
        };
        if let Some(known) = self.alarms.iter_mut().find(|a| a.alert_id == next.alert_id) {
            if known.is_closed() && !next.is_closed() {
                return Applied::Stale;
            }
            if next.order() <= known.order() {
                return Applied::Stale;
            }
            known.progress = next.progress;
            known.at = next.at;
            known.seen_at = next.seen_at;
            merge_keys(&mut known.event_keys, keys);
            return Applied::Advanced;
        }
        let mut alarm = next;
        merge_keys(&mut alarm.event_keys, keys);
        self.alarms.push(alarm);
        self.forget_oldest();
        Applied::New
    }

    /// Keeps the board bounded: the oldest closed alarms go first.
    fn forget_oldest(&mut self) {
        while self.alarms.len() > REMEMBERED {
            let oldest = self
                .alarms
                .iter()
                .enumerate()
                .min_by_key(|(_, a)| (!a.is_closed(), a.order()))
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    self.alarms.remove(i);
                }
                None => break,
            }
        }
    }

    /// The alarm the kiosk shows at `now_ms`, if any.
    pub fn shown(&self, now_ms: i64) -> Option<&Alarm> {
        let open = self
            .alarms
            .iter()
            .filter(|a| !a.is_closed() && now_ms - a.seen_at < OPEN_SHOWN_MS)
            .max_by_key(|a| a.order());
        open.or_else(|| {
            self.alarms
                .iter()
                // A clock that jumped back does not keep a closed alarm up.
                .filter(|a| a.is_closed() && (0..CLOSED_SHOWN_MS).contains(&(now_ms - a.seen_at)))
                .max_by_key(|a| a.order())
        })
    }

    /// The alarm with this id, if remembered.
    pub fn get(&self, alert_id: &str) -> Option<&Alarm> {
        self.alarms.iter().find(|a| a.alert_id == alert_id)
    }

    pub fn is_empty(&self) -> bool {
        self.alarms.is_empty()
    }
}

fn merge_keys(keys: &mut Vec<String>, new: impl Iterator<Item = String>) {
    for key in new {
        if keys.len() >= MAX_EVENT_KEYS {
            break;
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, progress: AlarmProgress, at: i64) -> AlarmStatus {
        AlarmStatus {
            alert_id: id.into(),
            event_keys: vec![format!("key-{id}")],
            progress,
            at,
        }
    }

    fn shown(board: &AlarmBoard, now: i64) -> Option<(&str, AlarmProgress)> {
        board.shown(now).map(|a| (a.alert_id.as_str(), a.progress))
    }

    #[test]
    fn an_alarm_moves_forwards_through_its_steps() {
        let mut board = AlarmBoard::default();
        assert_eq!(shown(&board, 0), None);
        assert_eq!(
            board.apply(status("a", AlarmProgress::Received, 100), 1_000),
            Applied::New
        );
        assert_eq!(shown(&board, 1_000), Some(("a", AlarmProgress::Received)));
        for (progress, at) in [
            (AlarmProgress::Acknowledged, 200),
            (AlarmProgress::EnRoute, 300),
            (AlarmProgress::OnSite, 400),
        ] {
            assert_eq!(
                board.apply(status("a", progress, at), 2_000),
                Applied::Advanced
            );
            assert_eq!(shown(&board, 2_000), Some(("a", progress)));
        }
        assert_eq!(
            board.get("a").map(|a| a.event_keys.clone()),
            Some(vec!["key-a".to_string()])
        );
    }

    #[test]
    fn an_older_status_does_not_move_the_display_backwards() {
        let mut board = AlarmBoard::default();
        board.apply(status("a", AlarmProgress::EnRoute, 300), 1_000);
        // Delivered late, after the newer step.
        assert_eq!(
            board.apply(status("a", AlarmProgress::Acknowledged, 200), 1_100),
            Applied::Stale
        );
        assert_eq!(
            board.apply(status("a", AlarmProgress::Received, 100), 1_100),
            Applied::Stale
        );
        // The same status again (a resend after a reconnect) changes nothing.
        assert_eq!(
            board.apply(status("a", AlarmProgress::EnRoute, 300), 1_200),
            Applied::Stale
        );
        assert_eq!(board.get("a").map(|a| a.seen_at), Some(1_000));
        // At the same hub time only a later step is taken.
        assert_eq!(
            board.apply(status("a", AlarmProgress::Acknowledged, 300), 1_300),
            Applied::Stale
        );
        assert_eq!(
            board.apply(status("a", AlarmProgress::OnSite, 300), 1_300),
            Applied::Advanced
        );
        assert_eq!(shown(&board, 1_300), Some(("a", AlarmProgress::OnSite)));
        // A newer step from the hub is taken as it comes (the hub may send
        // the alarm to another team).
        assert_eq!(
            board.apply(status("a", AlarmProgress::Acknowledged, 500), 1_400),
            Applied::Advanced
        );
        assert_eq!(
            shown(&board, 1_400),
            Some(("a", AlarmProgress::Acknowledged))
        );
    }

    #[test]
    fn closing_is_final_and_shown_for_a_while() {
        let mut board = AlarmBoard::default();
        board.apply(status("a", AlarmProgress::OnSite, 300), 1_000);
        assert_eq!(
            board.apply(status("a", AlarmProgress::Resolved, 400), 10_000),
            Applied::Advanced
        );
        // A late open step with a newer hub time does not reopen it.
        assert_eq!(
            board.apply(status("a", AlarmProgress::EnRoute, 500), 10_100),
            Applied::Stale
        );
        assert_eq!(shown(&board, 10_000), Some(("a", AlarmProgress::Resolved)));
        assert_eq!(
            shown(&board, 10_000 + CLOSED_SHOWN_MS - 1),
            Some(("a", AlarmProgress::Resolved))
        );
        assert_eq!(shown(&board, 10_000 + CLOSED_SHOWN_MS), None);
        // A terminal clock that jumped back does not keep it up.
        assert_eq!(shown(&board, 9_000), None);
        // Cancelled likewise.
        board.apply(status("b", AlarmProgress::Received, 600), 20_000);
        board.apply(status("b", AlarmProgress::Cancelled, 700), 21_000);
        assert_eq!(shown(&board, 21_000), Some(("b", AlarmProgress::Cancelled)));
        assert_eq!(shown(&board, 21_000 + CLOSED_SHOWN_MS), None);
    }

    #[test]
    fn an_open_alarm_is_shown_before_a_closed_one() {
        let mut board = AlarmBoard::default();
        board.apply(status("a", AlarmProgress::Received, 100), 1_000);
        board.apply(status("b", AlarmProgress::Received, 200), 1_000);
        // Of two open alarms, the one with the latest step.
        assert_eq!(shown(&board, 1_000), Some(("b", AlarmProgress::Received)));
        board.apply(status("a", AlarmProgress::EnRoute, 300), 1_100);
        assert_eq!(shown(&board, 1_100), Some(("a", AlarmProgress::EnRoute)));
        // b is resolved later, but a is still open: a stays on.
        board.apply(status("b", AlarmProgress::Resolved, 400), 1_200);
        assert_eq!(shown(&board, 1_200), Some(("a", AlarmProgress::EnRoute)));
        board.apply(status("a", AlarmProgress::Resolved, 500), 1_300);
        assert_eq!(shown(&board, 1_300), Some(("a", AlarmProgress::Resolved)));
    }

    #[test]
    fn an_open_alarm_without_news_fades_after_hours() {
        let mut board = AlarmBoard::default();
        board.apply(status("a", AlarmProgress::EnRoute, 100), 1_000);
        assert!(board.shown(1_000 + OPEN_SHOWN_MS - 1).is_some());
        assert_eq!(shown(&board, 1_000 + OPEN_SHOWN_MS), None);
        // News brings it back.
        let later = 1_000 + OPEN_SHOWN_MS + 5;
        board.apply(status("a", AlarmProgress::OnSite, 200), later);
        assert_eq!(shown(&board, later), Some(("a", AlarmProgress::OnSite)));
    }

    #[test]
    fn bad_statuses_are_refused_and_the_board_stays_bounded() {
        let mut board = AlarmBoard::default();
        assert_eq!(
            board.apply(status("", AlarmProgress::Received, 1), 1),
            Applied::Invalid
        );
        let long = "x".repeat(MAX_ID_BYTES + 1);
        assert_eq!(
            board.apply(status(&long, AlarmProgress::Received, 1), 1),
            Applied::Invalid
        );
        assert!(board.is_empty());
        // One open alarm and many closed ones: the closed ones are forgotten first.
        board.apply(status("open", AlarmProgress::Received, 0), 1);
        for i in 0..(REMEMBERED as i64 + 5) {
            let id = format!("closed-{i}");
            board.apply(status(&id, AlarmProgress::Received, i + 1), 1);
            board.apply(status(&id, AlarmProgress::Resolved, i + 2), 1);
        }
        assert_eq!(board.alarms.len(), REMEMBERED);
        assert!(board.get("open").is_some());
        assert!(board.get("closed-0").is_none());
        assert!(board
            .get(&format!("closed-{}", REMEMBERED as i64 + 4))
            .is_some());
        // Event keys: bounded, no repeats, no junk.
        let mut many = status("keys", AlarmProgress::Received, 1);
        many.event_keys = (0..100).map(|i| format!("k{}", i % 40)).collect();
        many.event_keys.push(String::new());
        board.apply(many, 1);
        let keys = &board.get("keys").expect("kept").event_keys;
        assert_eq!(keys.len(), MAX_EVENT_KEYS);
        assert_eq!(keys[0], "k0");
    }

    #[test]
    fn the_board_round_trips_through_json() {
        let mut board = AlarmBoard::default();
        board.apply(status("a", AlarmProgress::EnRoute, 300), 1_000);
        let text = serde_json::to_string(&board).expect("json");
        assert!(text.contains(r#""progress":"en_route""#), "{text}");
        let back: AlarmBoard = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, board);
    }

    #[test]
    fn every_step_is_said_plainly_in_every_language() {
        let cases = [
            (
                "fi",
                [
                    "Hälytys on vastaanotettu. Apua hälytetään.",
                    "Hoitaja on nähnyt hälytyksesi.",
                    "Apu on tulossa.",
                    "Auttaja on perillä.",
                    "Hälytys on hoidettu.",
                    "Hälytys on peruttu.",
                ],
            ),
            (
                "sv",
                [
                    "Ditt larm har tagits emot. Hjälp kallas.",
                    "Vårdaren har sett ditt larm.",
                    "Hjälpen är på väg.",
                    "Hjälpen är framme.",
                    "Larmet är klart.",
                    "Larmet har avbrutits.",
                ],
            ),
            (
                "en",
                [
                    "Your alarm has been received. Help is being called.",
                    "A nurse has seen your alarm.",
                    "Help is on the way.",
                    "Your helper has arrived.",
                    "Your alarm has been dealt with.",
                    "Your alarm has been cancelled.",
                ],
            ),
        ];
        let steps = [
            AlarmProgress::Received,
            AlarmProgress::Acknowledged,
            AlarmProgress::EnRoute,
            AlarmProgress::OnSite,
            AlarmProgress::Resolved,
            AlarmProgress::Cancelled,
        ];
        for (lang, texts) in cases {
            for (step, want) in steps.iter().zip(texts) {
                assert_eq!(
                    describe(lang, *step).as_deref(),
                    Some(want),
                    "{lang} {step:?}"
                );
            }
        }
    }
}
