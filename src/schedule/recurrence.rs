//! Visit recurrence: RFC 5545 rules expanded in the client's civil time.
//!
//! A visit rule says "08:00 every day" in the client's own time zone. The
//! rule is expanded on the civil (wall-clock) time line, where DST does not
//! exist, and each occurrence is then attached to the zone with
//! `jiff`: a time in a spring-forward gap moves forward by the length of the
//! gap and a time in an autumn fold takes its first occurrence (RFC 5545
//! section 3.3.5). So a 08:00 visit stays at 08:00 local time all year and
//! no occurrence is ever dropped.
//!
//! The expansion itself (FREQ, INTERVAL, COUNT, UNTIL, BYDAY, BYHOUR,
//! BYSETPOS, ...) is done by the `rrule` crate on that zone-less time line;
//! it never sees a real time zone, so its own zone handling plays no part.

use jiff::civil::DateTime as Civil;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// Most occurrences one rule may produce in a single expansion.
pub const MAX_OCCURRENCES: usize = 10_000;
/// Most occurrences one rule may produce in one day: visits, not alarms.
pub const MAX_PER_DAY: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("unknown time zone {0:?}; use an IANA name such as Europe/Helsinki")]
    UnknownZone(String),
    #[error("invalid date-time {value:?} in {field}: {reason}")]
    BadDateTime {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid RRULE: {0}")]
    BadRule(String),
    #[error("the rule repeats more often than visits can: at most {MAX_PER_DAY} a day")]
    TooFrequent,
}

/// A visit rule's recurrence as written in the care plan: civil times in the
/// client's zone (`UNTIL`, `EXDATE` and `RDATE` may also be UTC with `Z`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    /// First occurrence, civil time (`2026-11-23T08:00`).
    pub dtstart: Civil,
    /// The RRULE value without the `RRULE:` prefix, e.g. `FREQ=DAILY;BYHOUR=8,20`;
    /// `None` for a rule of only DTSTART and RDATEs.
    pub rrule: Option<String>,
    pub exdates: Vec<Civil>,
    pub rdates: Vec<Civil>,
}

/// One occurrence: its key on the civil time line and its real instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// The civil time the rule produced (the visit's identity in its rule).
    pub civil: Civil,
    /// The instant it happens in the client's zone.
    pub at: Zoned,
}

/// Looks up an IANA time zone in the bundled database.
pub fn zone(name: &str) -> Result<TimeZone, RecurrenceError> {
    TimeZone::get(name).map_err(|_| RecurrenceError::UnknownZone(name.to_string()))
}

/// Attaches a civil time to a zone as RFC 5545 requires: gap moves forward, fold takes the first.
pub fn attach(civil: Civil, tz: &TimeZone) -> Result<Zoned, RecurrenceError> {
    tz.to_ambiguous_zoned(civil)
        .compatible()
        .map_err(|e| RecurrenceError::BadDateTime {
            field: "DTSTART",
            value: civil.to_string(),
            reason: e.to_string(),
        })
}

/// Parses a civil or UTC date-time in ISO 8601 (`2026-03-29T03:30`) or
/// iCalendar (`20260329T033000`, `...Z`) form; a UTC value is turned into
/// civil time in `tz`. A plain date means its midnight, or with
/// `end_of_day` its last second (for UNTIL).
pub fn parse_time(
    field: &'static str,
    value: &str,
    tz: &TimeZone,
    end_of_day: bool,
) -> Result<Civil, RecurrenceError> {
    let bad = |reason: String| RecurrenceError::BadDateTime {
        field,
        value: value.to_string(),
        reason,
    };
    let text = value.trim();
    let (body, utc) = match text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        Some(body) => (body, true),
        None => (text, false),
    };
    let iso = if body.len() >= 8 && body.as_bytes()[..8].iter().all(u8::is_ascii_digit) {
        // iCalendar basic form.
        let (date, time) = body.split_once(['T', 't']).unwrap_or((body, ""));
        if date.len() != 8 || !(time.is_empty() || time.len() == 6) {
            return Err(bad("expected YYYYMMDD or YYYYMMDDTHHMMSS".into()));
        }
        let mut s = format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]);
        if !time.is_empty() {
            s.push_str(&format!("T{}:{}:{}", &time[..2], &time[2..4], &time[4..]));
        }
        s
    } else {
        body.to_string()
    };
    let civil = if iso.len() == 10 {
        let date: jiff::civil::Date = iso.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
        if end_of_day {
            date.at(23, 59, 59, 0)
        } else {
            date.at(0, 0, 0, 0)
        }
    } else {
        iso.parse::<Civil>()
            .map_err(|e: jiff::Error| bad(e.to_string()))?
    };
    if utc {
        let ts = civil
            .to_zoned(TimeZone::UTC)
            .map_err(|e| bad(e.to_string()))?
            .timestamp();
        Ok(ts.to_zoned(tz.clone()).datetime())
    } else {
        Ok(civil)
    }
}

fn to_chrono(civil: Civil) -> Result<chrono::DateTime<rrule::Tz>, RecurrenceError> {
    use chrono::TimeZone as _;
    rrule::Tz::UTC
        .with_ymd_and_hms(
            i32::from(civil.year()),
            civil.month() as u32,
            civil.day() as u32,
            civil.hour() as u32,
            civil.minute() as u32,
            civil.second() as u32,
        )
        .single()
        .ok_or_else(|| RecurrenceError::BadDateTime {
            field: "DTSTART",
            value: civil.to_string(),
            reason: "out of range".into(),
        })
}

fn from_chrono(dt: &chrono::DateTime<rrule::Tz>) -> Option<Civil> {
    use chrono::{Datelike, Timelike};
    Civil::new(
        i16::try_from(dt.year()).ok()?,
        i8::try_from(dt.month()).ok()?,
        i8::try_from(dt.day()).ok()?,
        i8::try_from(dt.hour()).ok()?,
        i8::try_from(dt.minute()).ok()?,
        i8::try_from(dt.second()).ok()?,
        0,
    )
    .ok()
}

fn ical_basic(civil: Civil) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        civil.year(),
        civil.month(),
        civil.day(),
        civil.hour(),
        civil.minute(),
        civil.second()
    )
}

impl Recurrence {
    /// Checks the rule against `tz`; the same checks [`Recurrence::between`] makes.
    pub fn validate(&self, tz: &TimeZone) -> Result<(), RecurrenceError> {
        self.rule_set(tz).map(|_| ())
    }

    /// Builds the zone-less rule set: civil times carried as if they were UTC.
    fn rule_set(&self, tz: &TimeZone) -> Result<rrule::RRuleSet, RecurrenceError> {
        let start = to_chrono(self.dtstart)?;
        let mut set = rrule::RRuleSet::new(start);
        if let Some(text) = &self.rrule {
            let text = text.trim();
            let text = text.strip_prefix("RRULE:").unwrap_or(text);
            let mut parts = Vec::new();
            for part in text.split(';').filter(|p| !p.trim().is_empty()) {
                let (name, value) = part.split_once('=').ok_or_else(|| {
                    RecurrenceError::BadRule(format!("{part:?} is not NAME=VALUE"))
                })?;
                let name = name.trim().to_ascii_uppercase();
                match name.as_str() {
                    // UNTIL is moved onto the civil time line of the client's zone.
                    "UNTIL" => {
                        let until = parse_time("UNTIL", value, tz, true)?;
                        parts.push(format!("UNTIL={}Z", ical_basic(until)));
                    }
                    "FREQ" => {
                        let freq = value.trim().to_ascii_uppercase();
                        if matches!(freq.as_str(), "SECONDLY" | "MINUTELY") {
                            return Err(RecurrenceError::TooFrequent);
                        }
                        parts.push(format!("FREQ={freq}"));
                    }
                    _ => parts.push(format!("{name}={}", value.trim())),
                }
            }
            let rule: rrule::RRule<rrule::Unvalidated> = parts
                .join(";")
                .parse()
                .map_err(|e: rrule::RRuleError| RecurrenceError::BadRule(e.to_string()))?;
            let rule = rule
                .validate(start)
                .map_err(|e| RecurrenceError::BadRule(e.to_string()))?;
            if rule.get_freq() == rrule::Frequency::Hourly && rule.get_interval() < 1 {
                return Err(RecurrenceError::TooFrequent);
            }
            set = set.rrule(rule);
        }
        for ex in &self.exdates {
            set = set.exdate(to_chrono(*ex)?);
        }
        for r in &self.rdates {
            set = set.rdate(to_chrono(*r)?);
        }
        Ok(set)
    }

    /// The occurrences whose instant lies in `[from, to)`, in time order.
    ///
    /// A rule without RRULE yields DTSTART and its RDATEs. Every civil
    /// occurrence is kept: one in a DST gap is moved forward by the gap.
    pub fn between(
        &self,
        tz: &TimeZone,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Occurrence>, RecurrenceError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let set = self.rule_set(tz)?;
        // Search the civil line a day wider on each side: offsets are less than a day.
        let day = jiff::SignedDuration::from_hours(26);
        let civil_from = from
            .checked_sub(day)
            .unwrap_or(from)
            .to_zoned(tz.clone())
            .datetime();
        let civil_to = to
            .checked_add(day)
            .unwrap_or(to)
            .to_zoned(tz.clone())
            .datetime();
        let mut set = set
            .after(to_chrono(civil_from)?)
            .before(to_chrono(civil_to)?);
        if self.rrule.is_none() {
            // Only DTSTART and RDATEs: the set still yields DTSTART itself.
            set = set.rdate(to_chrono(self.dtstart)?);
        }
        let result = set.all(u16::try_from(MAX_OCCURRENCES).unwrap_or(u16::MAX));
        let mut out = Vec::with_capacity(result.dates.len());
        let mut per_day: std::collections::HashMap<jiff::civil::Date, usize> = Default::default();
        for dt in &result.dates {
            let Some(civil) = from_chrono(dt) else {
                continue;
            };
            let count = per_day.entry(civil.date()).or_default();
            *count += 1;
            if *count > MAX_PER_DAY {
                return Err(RecurrenceError::TooFrequent);
            }
            let at = attach(civil, tz)?;
            let ts = at.timestamp();
            if ts >= from && ts < to {
                out.push(Occurrence { civil, at });
            }
        }
        out.sort_by_key(|o| o.at.timestamp());
        out.dedup_by(|a, b| a.civil == b.civil);
        Ok(out)
    }

    /// The rule as iCalendar content lines with the zone named.
    pub fn to_ical(&self, tz_name: &str) -> String {
        let mut out = format!("DTSTART;TZID={tz_name}:{}", ical_basic(self.dtstart));
        if let Some(rule) = &self.rrule {
            out.push_str(&format!(
                "\nRRULE:{}",
                rule.trim().trim_start_matches("RRULE:")
            ));
        }
        if !self.exdates.is_empty() {
            let list: Vec<String> = self.exdates.iter().map(|d| ical_basic(*d)).collect();
            out.push_str(&format!("\nEXDATE;TZID={tz_name}:{}", list.join(",")));
        }
        if !self.rdates.is_empty() {
            let list: Vec<String> = self.rdates.iter().map(|d| ical_basic(*d)).collect();
            out.push_str(&format!("\nRDATE;TZID={tz_name}:{}", list.join(",")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civ(s: &str) -> Civil {
        s.parse().expect("civil time")
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn rule(dtstart: &str, rrule: &str) -> Recurrence {
        Recurrence {
            dtstart: civ(dtstart),
            rrule: Some(rrule.to_string()),
            exdates: vec![],
            rdates: vec![],
        }
    }

    fn helsinki() -> TimeZone {
        zone("Europe/Helsinki").expect("zone")
    }

    /// Occurrences as "local time (UTC offset)" strings.
    fn expand(r: &Recurrence, tz: &TimeZone, from: &str, to: &str) -> Vec<String> {
        r.between(tz, ts(from), ts(to))
            .expect("expands")
            .into_iter()
            .map(|o| o.at.strftime("%Y-%m-%dT%H:%M%:z").to_string())
            .collect()
    }

    #[test]
    fn daily_eight_oclock_stays_at_eight_across_both_dst_changes() {
        let tz = helsinki();
        let r = rule("2026-03-27T08:00", "FREQ=DAILY");
        assert_eq!(
            expand(&r, &tz, "2026-03-27T00:00Z", "2026-03-31T00:00Z"),
            [
                "2026-03-27T08:00+02:00",
                "2026-03-28T08:00+02:00",
                "2026-03-29T08:00+03:00",
                "2026-03-30T08:00+03:00",
            ]
        );
        let r = rule("2026-10-23T08:00", "FREQ=DAILY");
        assert_eq!(
            expand(&r, &tz, "2026-10-23T00:00Z", "2026-10-27T00:00Z"),
            [
                "2026-10-23T08:00+03:00",
                "2026-10-24T08:00+03:00",
                "2026-10-25T08:00+02:00",
                "2026-10-26T08:00+02:00",
            ]
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_by_the_gap() {
        // Helsinki: 03:00 -> 04:00 on 29 March 2026; 03:30 does not exist.
        let tz = helsinki();
        let r = rule("2026-03-28T03:30", "FREQ=DAILY;COUNT=3");
        assert_eq!(
            expand(&r, &tz, "2026-03-01T00:00Z", "2026-04-30T00:00Z"),
            [
                "2026-03-28T03:30+02:00",
                "2026-03-29T04:30+03:00",
                "2026-03-30T03:30+03:00",
            ]
        );
    }

    #[test]
    fn a_time_in_the_autumn_fold_takes_its_first_occurrence() {
        // Helsinki: 04:00 -> 03:00 on 25 October 2026; 03:30 happens twice.
        let tz = helsinki();
        let r = rule("2026-10-24T03:30", "FREQ=DAILY;COUNT=3");
        let got = r
            .between(&tz, ts("2026-10-01T00:00Z"), ts("2026-11-01T00:00Z"))
            .expect("expands");
        assert_eq!(got.len(), 3, "no occurrence dropped or doubled");
        assert_eq!(got[1].at.timestamp(), ts("2026-10-25T00:30Z"));
        assert_eq!(
            got[1].at.offset().seconds(),
            3 * 3600,
            "the first 03:30 (EEST)"
        );
    }

    #[test]
    fn southern_hemisphere_dst_changes() {
        // Sydney: forward 02:00 -> 03:00 on 4 Oct 2026, back 03:00 -> 02:00 on 5 Apr 2026.
        let tz = zone("Australia/Sydney").expect("zone");
        let r = rule("2026-10-03T02:30", "FREQ=DAILY;COUNT=3");
        assert_eq!(
            expand(&r, &tz, "2026-09-01T00:00Z", "2026-11-01T00:00Z"),
            [
                "2026-10-03T02:30+10:00",
                "2026-10-04T03:30+11:00",
                "2026-10-05T02:30+11:00",
            ]
        );
        let r = rule("2026-04-04T02:30", "FREQ=DAILY;COUNT=3");
        assert_eq!(
            expand(&r, &tz, "2026-03-01T00:00Z", "2026-05-01T00:00Z"),
            [
                "2026-04-04T02:30+11:00",
                "2026-04-05T02:30+11:00",
                "2026-04-06T02:30+10:00",
            ]
        );
        let r = rule("2026-04-03T09:00", "FREQ=DAILY");
        assert_eq!(
            expand(&r, &tz, "2026-04-03T00:00Z", "2026-04-06T12:00Z"),
            [
                "2026-04-04T09:00+11:00",
                "2026-04-05T09:00+10:00",
                "2026-04-06T09:00+10:00",
            ]
        );
    }

    #[test]
    fn count_until_and_exdate() {
        let tz = helsinki();
        let r = rule("2026-11-02T08:00", "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=4");
        assert_eq!(
            expand(&r, &tz, "2026-11-01T00:00Z", "2026-12-31T00:00Z"),
            [
                "2026-11-02T08:00+02:00",
                "2026-11-04T08:00+02:00",
                "2026-11-06T08:00+02:00",
                "2026-11-09T08:00+02:00",
            ]
        );
        // COUNT counts from DTSTART even when the window starts later.
        assert_eq!(
            expand(&r, &tz, "2026-11-05T00:00Z", "2026-12-31T00:00Z"),
            ["2026-11-06T08:00+02:00", "2026-11-09T08:00+02:00"]
        );
        // UNTIL in UTC (as RFC 5545 asks with a zoned DTSTART) is inclusive.
        let r = rule("2026-11-02T08:00", "FREQ=DAILY;UNTIL=20261104T060000Z");
        assert_eq!(
            expand(&r, &tz, "2026-11-01T00:00Z", "2026-12-31T00:00Z"),
            [
                "2026-11-02T08:00+02:00",
                "2026-11-03T08:00+02:00",
                "2026-11-04T08:00+02:00",
            ]
        );
        // A date-only UNTIL includes that whole day.
        let r = rule("2026-11-02T20:00", "FREQ=DAILY;UNTIL=20261103");
        assert_eq!(
            expand(&r, &tz, "2026-11-01T00:00Z", "2026-12-31T00:00Z").len(),
            2
        );
        let mut r = rule("2026-11-02T08:00", "FREQ=DAILY;COUNT=3");
        r.exdates.push(civ("2026-11-03T08:00"));
        assert_eq!(
            expand(&r, &tz, "2026-11-01T00:00Z", "2026-12-31T00:00Z"),
            ["2026-11-02T08:00+02:00", "2026-11-04T08:00+02:00"]
        );
    }

    #[test]
    fn bysetpos_byhour_and_rdate() {
        let tz = helsinki();
        // The last weekday of each month at 10:00.
        let r = rule(
            "2026-11-02T10:00",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3",
        );
        assert_eq!(
            expand(&r, &tz, "2026-11-01T00:00Z", "2027-03-01T00:00Z"),
            [
                "2026-11-30T10:00+02:00",
                "2026-12-31T10:00+02:00",
                "2027-01-29T10:00+02:00",
            ]
        );
        // Morning and evening checks, one rule.
        let r = rule(
            "2026-11-23T08:00",
            "FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0;COUNT=4",
        );
        assert_eq!(
            expand(&r, &tz, "2026-11-01T00:00Z", "2026-12-01T00:00Z"),
            [
                "2026-11-23T08:00+02:00",
                "2026-11-23T20:00+02:00",
                "2026-11-24T08:00+02:00",
                "2026-11-24T20:00+02:00",
            ]
        );
        let mut r = rule("2026-11-23T08:00", "FREQ=WEEKLY;COUNT=2");
        r.rdates.push(civ("2026-11-25T13:00"));
        assert_eq!(
            expand(&r, &tz, "2026-11-01T00:00Z", "2026-12-31T00:00Z"),
            [
                "2026-11-23T08:00+02:00",
                "2026-11-25T13:00+02:00",
                "2026-11-30T08:00+02:00",
            ]
        );
        // DTSTART alone.
        let single = Recurrence {
            dtstart: civ("2026-11-24T09:15"),
            rrule: None,
            exdates: vec![],
            rdates: vec![civ("2026-11-26T09:15")],
        };
        assert_eq!(
            expand(&single, &tz, "2026-11-01T00:00Z", "2026-12-31T00:00Z"),
            ["2026-11-24T09:15+02:00", "2026-11-26T09:15+02:00"]
        );
    }

    #[test]
    fn window_is_half_open_and_long_running_rules_count_from_dtstart() {
        let tz = helsinki();
        let r = rule("2020-01-01T08:00", "FREQ=DAILY");
        let got = expand(&r, &tz, "2026-11-23T06:00Z", "2026-11-25T06:00Z");
        assert_eq!(got, ["2026-11-23T08:00+02:00", "2026-11-24T08:00+02:00"]);
    }

    #[test]
    fn bad_rules_are_clear_errors() {
        let tz = helsinki();
        for (text, want) in [
            ("FREQ=SOMETIMES", "invalid RRULE"),
            ("FREQ=MINUTELY", "at most"),
            ("FREQ=DAILY;COUNT=x", "invalid RRULE"),
            ("DAILY", "not NAME=VALUE"),
            ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL"),
        ] {
            let err = rule("2026-11-23T08:00", text)
                .validate(&tz)
                .expect_err(text)
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let hourly = rule(
            "2026-11-23T00:00",
            "FREQ=HOURLY;INTERVAL=1;BYMINUTE=0;BYSECOND=0",
        );
        // Hourly is the most a day may hold: 24 a day is allowed.
        let hours = hourly
            .between(&tz, ts("2026-11-23T00:00Z"), ts("2026-11-25T00:00Z"))
            .map(|v| v.len());
        assert_eq!(hours, Ok(48));
        let every_half_hour = rule("2026-11-23T00:00", "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,30");
        assert_eq!(
            every_half_hour.between(&tz, ts("2026-11-23T00:00Z"), ts("2026-11-25T00:00Z")),
            Err(RecurrenceError::TooFrequent)
        );
        assert!(matches!(
            zone("Mars/Olympus"),
            Err(RecurrenceError::UnknownZone(_))
        ));
    }

    #[test]
    fn times_parse_in_iso_and_ical_forms() {
        let tz = helsinki();
        assert_eq!(
            parse_time("DTSTART", "2026-11-23T08:00", &tz, false),
            Ok(civ("2026-11-23T08:00"))
        );
        assert_eq!(
            parse_time("DTSTART", "20261123T080000", &tz, false),
            Ok(civ("2026-11-23T08:00"))
        );
        assert_eq!(
            parse_time("EXDATE", "20261123T060000Z", &tz, false),
            Ok(civ("2026-11-23T08:00"))
        );
        assert_eq!(
            parse_time("UNTIL", "2026-11-23", &tz, true),
            Ok(civ("2026-11-23T23:59:59"))
        );
        assert!(parse_time("DTSTART", "2026-13-01T00:00", &tz, false).is_err());
        assert!(parse_time("DTSTART", "", &tz, false).is_err());
        assert!(parse_time("DTSTART", "20261", &tz, false).is_err());
    }

    #[test]
    fn ical_text_names_the_zone() {
        let mut r = rule("2026-11-23T08:00", "FREQ=DAILY");
        r.exdates.push(civ("2026-11-24T08:00"));
        assert_eq!(
            r.to_ical("Europe/Helsinki"),
            "DTSTART;TZID=Europe/Helsinki:20261123T080000\nRRULE:FREQ=DAILY\nEXDATE;TZID=Europe/Helsinki:20261124T080000"
        );
    }
}
