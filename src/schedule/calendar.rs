//! A nurse's visits as an iCalendar (RFC 5545) feed for calendar apps.
//!
//! Calendar apps often sync through third-party services, so an event
//! names the client only by first name and initial, and carries the purpose
//! and window, never the address or notes.

use icalendar::{Calendar, Component, Event, EventLike, EventStatus};

use crate::store::WorklistItem;

/// "Aili Hautala" -> "Aili H."
pub fn short_name(full: &str) -> String {
    let mut parts = full.split_whitespace();
    let first = parts.next().unwrap_or_default();
    match parts.last().and_then(|l| l.chars().next()) {
        Some(initial) => format!("{first} {initial}."),
        None => first.to_string(),
    }
}

fn utc(ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(ms)
}

/// One VEVENT per visit, at its call time (or planned time when not yet placed).
pub fn day_calendar(nurse_name: &str, items: &[WorklistItem]) -> String {
    let mut calendar = Calendar::new();
    calendar.name(&format!("Etahoiva – {nurse_name}"));
    for item in items {
        let start_ms = item.scheduled_start.unwrap_or(item.planned_at);
        let (Some(start), Some(end), Some(stamp)) = (
            utc(start_ms),
            utc(start_ms + i64::from(item.length_min) * 60_000),
            utc(item.window_start),
        ) else {
            continue;
        };
        let status = match item.status.as_str() {
            "cancelled" => EventStatus::Cancelled,
            "planned" => EventStatus::Tentative,
            _ => EventStatus::Confirmed,
        };
        let window = match (utc(item.window_start), utc(item.window_end)) {
            (Some(a), Some(b)) => format!("Window {}–{} UTC", a.format("%H:%M"), b.format("%H:%M")),
            _ => String::new(),
        };
        calendar.push(
            Event::new()
                .uid(&format!("visit-{}@etahoiva", item.id))
                .timestamp(stamp)
                .summary(&format!(
                    "{} – {}",
                    item.purpose,
                    short_name(&item.client_name)
                ))
                .description(&format!("{window}. Status: {}.", item.status))
                .starts(start)
                .ends(end)
                .status(status)
                .done(),
        );
    }
    calendar.done().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, start: i64, status: &str) -> WorklistItem {
        WorklistItem {
            id: id.into(),
            client_id: "c".into(),
            client_name: "Aili Hautala".into(),
            client_language: "fi".into(),
            purpose: "Aamulääkkeet".into(),
            planned_at: start,
            window_start: start - 1_800_000,
            window_end: start + 1_800_000,
            scheduled_start: Some(start),
            length_min: 10,
            status: status.into(),
            attempts: 0,
            next_attempt_at: None,
            nurse_id: Some("n".into()),
            pinned: false,
            outcome: None,
            note: None,
        }
    }

    #[test]
    fn feed_parses_back_with_one_event_per_visit_and_no_full_names() {
        // 2026-11-23T06:00Z = 08:00 in Helsinki.
        let start = 1_795_413_600_000;
        let text = day_calendar(
            "Anna Virtanen",
            &[
                item("v1", start, "planned"),
                item("v2", start + 3_600_000, "due"),
            ],
        );
        assert!(text.starts_with("BEGIN:VCALENDAR"), "{text}");
        let parsed: icalendar::Calendar = text.parse().expect("valid iCalendar");
        let events: Vec<_> = parsed
            .components
            .iter()
            .filter_map(|c| c.as_event())
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].get_uid(), Some("visit-v1@etahoiva"));
        assert_eq!(events[0].get_summary(), Some("Aamulääkkeet – Aili H."));
        assert!(text.contains("DTSTART:20261123T060000Z"), "{text}");
        assert!(text.contains("DTEND:20261123T061000Z"), "{text}");
        assert!(!text.contains("Hautala"), "no full names in a feed");
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("Aili Hautala"), "Aili H.");
        assert_eq!(short_name("Anna-Liisa af Forselles"), "Anna-Liisa F.");
        assert_eq!(short_name("Cher"), "Cher");
        assert_eq!(short_name(""), "");
    }
}
