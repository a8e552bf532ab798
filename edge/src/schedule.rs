//! The client's coming visits: received from the hub over the link, cached
//! in `state/schedule.json` so the kiosk still knows the next call after a
//! restart while the hub is unreachable, and described on the kiosk as
//! "Next call today at 14:00, nurse Anna" in the client's language.
//!
//! Local times are computed with the IANA time zone the hub names, from the
//! tz database bundled into the agent (not the host's), so they are right
//! across daylight-saving changes whatever the terminal's own clock zone is.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use etahoiva_proto::{Schedule, ScheduledVisit};
use jiff::civil::Weekday;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::Timestamp;

use crate::kiosk::text;

/// Name of the cache file in the agent's state directory.
pub const SCHEDULE_FILE: &str = "schedule.json";
/// The zone used when the hub names one the bundled database does not know.
pub const FALLBACK_TIME_ZONE: &str = "Europe/Helsinki";
/// A schedule frame is at most 64 KiB; a cache file far beyond that is not ours.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Statuses of visits that are over, whatever their window says.
const FINISHED_STATUSES: &[&str] = &["done", "completed", "missed", "cancelled", "canceled"];

/// Where the schedule is cached in `state_dir`.
pub fn schedule_file(state_dir: &Path) -> PathBuf {
    state_dir.join(SCHEDULE_FILE)
}

/// Writes the schedule to the cache atomically (temporary file, fsync,
/// rename, fsync of the directory): after a crash the file holds either the
/// previous schedule or this one.
pub fn save(state_dir: &Path, schedule: &Schedule) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(schedule).map_err(std::io::Error::other)?;
    crate::agent::write_atomically(&schedule_file(state_dir), &bytes)
}

/// What [`load`] found in the cache.
#[derive(Debug, PartialEq)]
pub enum CachedSchedule {
    /// No schedule was cached yet.
    Missing,
    Loaded(Schedule),
    /// The file was damaged and has been renamed to `set_aside`.
    Corrupt {
        set_aside: PathBuf,
        reason: String,
    },
    /// The file exists but cannot be read (permissions, I/O); left in place.
    Unreadable(String),
}

impl CachedSchedule {
    pub fn into_schedule(self) -> Option<Schedule> {
        match self {
            CachedSchedule::Loaded(s) => Some(s),
            _ => None,
        }
    }
}

/// Reads the cached schedule. A damaged file is renamed to
/// `schedule.json.corrupt` with a warning (the hub sends a fresh schedule
/// on the next connection); this never panics.
pub fn load(state_dir: &Path) -> CachedSchedule {
    let path = schedule_file(state_dir);
    let too_large = match std::fs::metadata(&path) {
        Ok(meta) => meta.len() > MAX_FILE_BYTES,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return CachedSchedule::Missing,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the cached schedule");
            return CachedSchedule::Unreadable(e.to_string());
        }
    };
    let parsed = if too_large {
        Err(format!("larger than {MAX_FILE_BYTES} bytes"))
    } else {
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Schedule>(&bytes).map_err(|e| e.to_string()),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the cached schedule");
                return CachedSchedule::Unreadable(e.to_string());
            }
        }
    };
    match parsed {
        Ok(schedule) => CachedSchedule::Loaded(schedule),
        Err(reason) => {
            let set_aside = path.with_extension("json.corrupt");
            match std::fs::rename(&path, &set_aside) {
                Ok(()) => tracing::warn!(path = %set_aside.display(), %reason,
                    "the cached schedule is damaged; it was set aside and the hub's next schedule replaces it"),
                Err(e) => tracing::warn!(path = %path.display(), %reason, error = %e,
                    "the cached schedule is damaged and cannot be set aside; it is ignored"),
            }
            CachedSchedule::Corrupt { set_aside, reason }
        }
    }
}

fn bundled_zones() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// The IANA time zone `name` from the bundled tz database, if it knows it.
pub fn lookup_time_zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() {
        return None;
    }
    bundled_zones().get(name).ok()
}

fn fallback_time_zone() -> TimeZone {
    lookup_time_zone(FALLBACK_TIME_ZONE).unwrap_or_else(|| {
        // Only a build without the bundled database gets here.
        tracing::error!("the bundled time zone database lacks {FALLBACK_TIME_ZONE}; using UTC+2");
        TimeZone::fixed(jiff::tz::offset(2))
    })
}

/// A schedule with its time zone resolved, as the kiosk shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSchedule {
    schedule: Schedule,
    zone: TimeZone,
    fallback: bool,
}

impl ClientSchedule {
    /// Resolves the schedule's time zone; an unknown one falls back to
    /// [`FALLBACK_TIME_ZONE`] with a warning.
    pub fn new(schedule: Schedule) -> ClientSchedule {
        let (zone, fallback) = match lookup_time_zone(&schedule.time_zone) {
            Some(zone) => (zone, false),
            None => {
                let named: String = schedule.time_zone.chars().take(64).collect();
                tracing::warn!(time_zone = ?named,
                    "the schedule names an unknown time zone; showing times in {FALLBACK_TIME_ZONE}");
                (fallback_time_zone(), true)
            }
        };
        ClientSchedule {
            schedule,
            zone,
            fallback,
        }
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The zone times are shown in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The schedule's zone was unknown and [`FALLBACK_TIME_ZONE`] is used.
    pub fn uses_fallback_zone(&self) -> bool {
        self.fallback
    }

    /// The next coming visit at `now_ms` (see [`next_visit`]).
    pub fn next_visit(&self, now_ms: i64) -> Option<&ScheduledVisit> {
        next_visit(&self.schedule.visits, now_ms)
    }

    /// The kiosk's line about the next call at `now_ms` in `lang`, or `None`
    /// when no call is coming.
    pub fn next_call_text(&self, lang: &str, now_ms: i64) -> Option<String> {
        let visit = self.next_visit(now_ms)?;
        describe_next_call(lang, visit, &self.zone, now_ms)
    }
}

/// Whether a visit with this status is over.
pub fn is_finished(status: &str) -> bool {
    FINISHED_STATUSES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(status.trim()))
}

/// The next coming call: of the visits whose window has not ended at
/// `now_ms` and whose status is not a finished one, the one that starts
/// first (the earlier in the list on a tie).
pub fn next_visit(visits: &[ScheduledVisit], now_ms: i64) -> Option<&ScheduledVisit> {
    visits
        .iter()
        .filter(|v| v.window_end > now_ms && !is_finished(&v.status))
        .min_by_key(|v| v.starts_at)
}

/// Replaces each `%{name}` in `template` once, in one pass, so a value
/// that itself contains `%{…}` is left as it is.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn weekday_key(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "kiosk.weekday_1",
        Weekday::Tuesday => "kiosk.weekday_2",
        Weekday::Wednesday => "kiosk.weekday_3",
        Weekday::Thursday => "kiosk.weekday_4",
        Weekday::Friday => "kiosk.weekday_5",
        Weekday::Saturday => "kiosk.weekday_6",
        Weekday::Sunday => "kiosk.weekday_7",
    }
}

/// The locale keys this module uses (each must exist in fi, sv and en).
pub const TEXT_KEYS: &[&str] = &[
    "kiosk.next_call",
    "kiosk.next_call_nurse",
    "kiosk.call_today",
    "kiosk.call_tomorrow",
    "kiosk.call_on_day",
    "kiosk.time_of_day",
    "kiosk.day_of_month",
    "kiosk.weekday_1",
    "kiosk.weekday_2",
    "kiosk.weekday_3",
    "kiosk.weekday_4",
    "kiosk.weekday_5",
    "kiosk.weekday_6",
    "kiosk.weekday_7",
    "kiosk.month_1",
    "kiosk.month_2",
    "kiosk.month_3",
    "kiosk.month_4",
    "kiosk.month_5",
    "kiosk.month_6",
    "kiosk.month_7",
    "kiosk.month_8",
    "kiosk.month_9",
    "kiosk.month_10",
    "kiosk.month_11",
    "kiosk.month_12",
];

/// "Next call today at 14:00, nurse Anna" for `visit` in `lang`, with local
/// times in `zone`; "tomorrow", or the weekday and date for later days;
/// without a nurse name only the time. `None` if a time is out of range.
pub fn describe_next_call(
    lang: &str,
    visit: &ScheduledVisit,
    zone: &TimeZone,
    now_ms: i64,
) -> Option<String> {
    let starts = Timestamp::from_millisecond(visit.starts_at)
        .ok()?
        .to_zoned(zone.clone());
    let today = Timestamp::from_millisecond(now_ms)
        .ok()?
        .to_zoned(zone.clone())
        .date();
    let hour = starts.hour().to_string();
    let minute = format!("{:02}", starts.minute());
    let time = fill(
        &text(lang, "kiosk.time_of_day"),
        &[("hour", &hour), ("minute", &minute)],
    );
    let day = starts.date();
    let when = if day == today {
        fill(&text(lang, "kiosk.call_today"), &[("time", &time)])
    } else if today.tomorrow().ok() == Some(day) {
        fill(&text(lang, "kiosk.call_tomorrow"), &[("time", &time)])
    } else {
        let month_name = text(lang, &format!("kiosk.month_{}", day.month()));
        let date = fill(
            &text(lang, "kiosk.day_of_month"),
            &[
                ("day", &day.day().to_string()),
                ("month", &day.month().to_string()),
                ("month_name", &month_name),
            ],
        );
        fill(
            &text(lang, "kiosk.call_on_day"),
            &[
                ("weekday", &text(lang, weekday_key(day.weekday()))),
                ("date", &date),
                ("time", &time),
            ],
        )
    };
    let nurse = visit
        .nurse_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    Some(match nurse {
        Some(nurse) => fill(
            &text(lang, "kiosk.next_call_nurse"),
            &[("when", &when), ("nurse", nurse)],
        ),
        None => fill(&text(lang, "kiosk.next_call"), &[("when", &when)]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of a UTC instant written as RFC 3339.
    fn ms(utc: &str) -> i64 {
        utc.parse::<Timestamp>()
            .expect("timestamp")
            .as_millisecond()
    }

    fn visit(id: &str, starts: &str, minutes: i64, nurse: Option<&str>) -> ScheduledVisit {
        let starts_at = ms(starts);
        ScheduledVisit {
            id: id.into(),
            starts_at,
            window_start: starts_at - 15 * 60_000,
            window_end: starts_at + minutes * 60_000,
            length_min: 15,
            purpose: "Lääkkeet".into(),
            nurse_name: nurse.map(String::from),
            status: "planned".into(),
        }
    }

    fn schedule(zone: &str, visits: Vec<ScheduledVisit>) -> Schedule {
        Schedule {
            time_zone: zone.into(),
            generated_at: 1,
            visits,
        }
    }

    fn helsinki() -> TimeZone {
        lookup_time_zone("Europe/Helsinki").expect("bundled Helsinki")
    }

    #[test]
    fn the_next_visit_is_the_first_whose_window_is_open_and_not_finished() {
        // Helsinki is UTC+2 in November.
        let now = ms("2026-11-24T10:00:00Z");
        let mut ended = visit("ended", "2026-11-24T08:00:00Z", 30, Some("Eeva"));
        ended.status = "no_answer".into();
        let mut done = visit("done", "2026-11-24T09:50:00Z", 30, Some("Eeva"));
        done.status = "done".into();
        let mut cancelled = visit("cancelled", "2026-11-24T10:30:00Z", 30, None);
        cancelled.status = "Cancelled".into();
        // Started before now, window still open: this is the one.
        let open = visit("open", "2026-11-24T09:55:00Z", 20, Some("Anna"));
        let later = visit("later", "2026-11-24T12:00:00Z", 30, Some("Liisa"));
        let visits = vec![later.clone(), ended.clone(), done, cancelled, open.clone()];
        assert_eq!(
            next_visit(&visits, now).map(|v| v.id.as_str()),
            Some("open")
        );
        // Once its window has ended it drops off and the later one comes next.
        assert_eq!(
            next_visit(&visits, open.window_end).map(|v| v.id.as_str()),
            Some("later")
        );
        assert_eq!(next_visit(&visits, later.window_end), None);
        assert_eq!(next_visit(&[], now), None);
        // A visit that is still being tried (no answer yet) stays.
        let mut retry = open;
        retry.status = "no_answer".into();
        assert_eq!(
            next_visit(std::slice::from_ref(&retry), now).map(|v| v.id.as_str()),
            Some("open")
        );
        assert!(is_finished("missed") && is_finished(" done "));
        assert!(!is_finished("in_progress") && !is_finished("calling"));
    }

    #[test]
    fn today_tomorrow_and_later_in_each_language() {
        let zone = helsinki();
        // Tuesday 24 November 2026, 09:00 in Helsinki.
        let now = ms("2026-11-24T07:00:00Z");
        let today = visit("a", "2026-11-24T12:00:00Z", 30, Some("Anna"));
        let tomorrow = visit("b", "2026-11-25T06:00:00Z", 30, Some("Anna"));
        let wednesday_next_week = visit("c", "2026-12-02T06:00:00Z", 30, Some("Anna"));
        let thursday = visit("d", "2026-11-26T06:05:00Z", 30, Some("Anna"));
        let cases = [
            (
                "fi",
                [
                    "Seuraava puhelu tänään klo 14.00, hoitaja Anna",
                    "Seuraava puhelu huomenna klo 8.00, hoitaja Anna",
                    "Seuraava puhelu to 26.11. klo 8.05, hoitaja Anna",
                    "Seuraava puhelu ke 2.12. klo 8.00, hoitaja Anna",
                ],
            ),
            (
                "sv",
                [
                    "Nästa samtal i dag kl. 14.00, skötare Anna",
                    "Nästa samtal i morgon kl. 8.00, skötare Anna",
                    "Nästa samtal torsdag 26 november kl. 8.05, skötare Anna",
                    "Nästa samtal onsdag 2 december kl. 8.00, skötare Anna",
                ],
            ),
            (
                "en",
                [
                    "Next call today at 14:00, nurse Anna",
                    "Next call tomorrow at 8:00, nurse Anna",
                    "Next call on Thursday 26 November at 8:05, nurse Anna",
                    "Next call on Wednesday 2 December at 8:00, nurse Anna",
                ],
            ),
        ];
        for (lang, expected) in cases {
            for (visit, want) in [&today, &tomorrow, &thursday, &wednesday_next_week]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(
                    describe_next_call(lang, visit, &zone, now).as_deref(),
                    Some(want),
                    "{lang}"
                );
            }
        }
    }

    #[test]
    fn without_a_nurse_name_only_the_time_is_said() {
        let zone = helsinki();
        let now = ms("2026-11-24T07:00:00Z");
        for nurse in [None, Some(""), Some("   ")] {
            let v = visit("a", "2026-11-24T12:00:00Z", 30, nurse);
            assert_eq!(
                describe_next_call("fi", &v, &zone, now).as_deref(),
                Some("Seuraava puhelu tänään klo 14.00")
            );
            assert_eq!(
                describe_next_call("sv", &v, &zone, now).as_deref(),
                Some("Nästa samtal i dag kl. 14.00")
            );
            assert_eq!(
                describe_next_call("en", &v, &zone, now).as_deref(),
                Some("Next call today at 14:00")
            );
        }
        // A name that looks like a placeholder is shown as written.
        let odd = visit("a", "2026-11-24T12:00:00Z", 30, Some("%{time}"));
        assert_eq!(
            describe_next_call("en", &odd, &zone, now).as_deref(),
            Some("Next call today at 14:00, nurse %{time}")
        );
    }

    #[test]
    fn local_times_follow_the_spring_forward_in_helsinki() {
        // 2026-03-29 03:00 EET jumps to 04:00 EEST (01:00 UTC).
        let zone = helsinki();
        let evening_before = ms("2026-03-28T18:00:00Z"); // Saturday 20:00 EET
        let morning = visit("a", "2026-03-29T07:00:00Z", 30, Some("Anna"));
        assert_eq!(
            describe_next_call("fi", &morning, &zone, evening_before).as_deref(),
            Some("Seuraava puhelu huomenna klo 10.00, hoitaja Anna")
        );
        let early = ms("2026-03-29T00:30:00Z"); // Sunday 02:30 EET
        let before_jump = visit("b", "2026-03-29T00:45:00Z", 30, None);
        let after_jump = visit("c", "2026-03-29T01:15:00Z", 30, None);
        assert_eq!(
            describe_next_call("en", &before_jump, &zone, early).as_deref(),
            Some("Next call today at 2:45")
        );
        assert_eq!(
            describe_next_call("en", &after_jump, &zone, early).as_deref(),
            Some("Next call today at 4:15")
        );
        // Just after midnight on the short day, a call 23 hours later is
        // already on Monday: tomorrow, not today.
        let past_midnight = ms("2026-03-28T22:30:00Z"); // Sunday 00:30 EET
        let monday = visit("d", "2026-03-29T21:45:00Z", 30, None); // Monday 00:45 EEST
        assert_eq!(
            describe_next_call("sv", &monday, &zone, past_midnight).as_deref(),
            Some("Nästa samtal i morgon kl. 0.45")
        );
    }

    #[test]
    fn local_times_follow_the_autumn_change_in_helsinki() {
        // 2026-10-25 04:00 EEST falls back to 03:00 EET (01:00 UTC).
        let zone = helsinki();
        let saturday = ms("2026-10-24T17:00:00Z"); // Saturday 20:00 EEST
        let sunday_morning = visit("a", "2026-10-25T08:00:00Z", 30, Some("Anna"));
        assert_eq!(
            describe_next_call("fi", &sunday_morning, &zone, saturday).as_deref(),
            Some("Seuraava puhelu huomenna klo 10.00, hoitaja Anna")
        );
        // The repeated hour: 03:30 happens twice and both are shown as 3.30.
        let night = ms("2026-10-24T23:00:00Z"); // Sunday 02:00 EEST
        let first = visit("b", "2026-10-25T00:30:00Z", 30, None);
        let second = visit("c", "2026-10-25T01:30:00Z", 30, None);
        for v in [&first, &second] {
            assert_eq!(
                describe_next_call("fi", v, &zone, night).as_deref(),
                Some("Seuraava puhelu tänään klo 3.30")
            );
        }
        // Late on Saturday, a call 25 hours later is on Monday: weekday and date.
        let late = ms("2026-10-24T20:30:00Z"); // Saturday 23:30 EEST
        let monday = visit("d", "2026-10-25T22:30:00Z", 30, Some("Anna")); // Monday 00:30 EET
        assert_eq!(
            describe_next_call("fi", &monday, &zone, late).as_deref(),
            Some("Seuraava puhelu ma 26.10. klo 0.30, hoitaja Anna")
        );
        assert_eq!(
            describe_next_call("en", &monday, &zone, late).as_deref(),
            Some("Next call on Monday 26 October at 0:30, nurse Anna")
        );
    }

    #[test]
    fn the_schedules_zone_is_used_and_an_unknown_one_falls_back_to_helsinki() {
        let now = ms("2026-11-24T07:00:00Z");
        let v = visit("a", "2026-11-24T12:00:00Z", 30, None);
        let stockholm = ClientSchedule::new(schedule("Europe/Stockholm", vec![v.clone()]));
        assert!(!stockholm.uses_fallback_zone());
        assert_eq!(
            stockholm.next_call_text("sv", now).as_deref(),
            Some("Nästa samtal i dag kl. 13.00")
        );
        for bad in ["Mars/Olympus_Mons", "", "../../etc/passwd"] {
            let unknown = ClientSchedule::new(schedule(bad, vec![v.clone()]));
            assert!(unknown.uses_fallback_zone(), "{bad:?}");
            assert_eq!(unknown.time_zone(), &helsinki());
            assert_eq!(
                unknown.next_call_text("fi", now).as_deref(),
                Some("Seuraava puhelu tänään klo 14.00")
            );
        }
        // Nothing coming: no line.
        assert_eq!(stockholm.next_call_text("fi", v.window_end), None);
    }

    #[test]
    fn fill_replaces_each_placeholder_once() {
        assert_eq!(
            fill("%{a}-%{b}-%{a}", &[("a", "1"), ("b", "%{a}")]),
            "1-%{a}-1"
        );
        assert_eq!(fill("%{unknown} %{", &[]), "%{unknown} %{");
    }

    #[test]
    fn the_cache_round_trips_and_is_replaced_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()), CachedSchedule::Missing);
        let first = schedule(
            "Europe/Helsinki",
            vec![visit("a", "2026-11-24T12:00:00Z", 30, Some("Anna"))],
        );
        save(dir.path(), &first).expect("save");
        assert_eq!(load(dir.path()), CachedSchedule::Loaded(first));
        let second = schedule("Europe/Mariehamn", vec![]);
        save(dir.path(), &second).expect("save");
        assert_eq!(load(dir.path()).into_schedule(), Some(second));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(SCHEDULE_FILE)]);
    }

    #[test]
    fn a_damaged_cache_is_set_aside_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = schedule_file(dir.path());
        for damaged in [
            &b"{\"time_zone\": \"Europe/Helsinki\", \"generated_at\": 1, \"vis"[..],
            b"",
            b"[1, 2, 3]",
            b"\xff\xfe not json",
        ] {
            std::fs::write(&path, damaged).expect("write");
            match load(dir.path()) {
                CachedSchedule::Corrupt { set_aside, .. } => {
                    assert_eq!(set_aside, dir.path().join("schedule.json.corrupt"));
                    assert_eq!(std::fs::read(&set_aside).expect("kept"), damaged);
                }
                other => panic!("expected a corrupt cache, got {other:?}"),
            }
            assert!(!path.exists(), "the damaged file is moved away");
            assert_eq!(load(dir.path()), CachedSchedule::Missing);
        }
        // A new schedule is cached normally afterwards.
        let fresh = schedule("Europe/Helsinki", vec![]);
        save(dir.path(), &fresh).expect("save");
        assert_eq!(load(dir.path()), CachedSchedule::Loaded(fresh));
    }
}
