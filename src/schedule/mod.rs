//! Remote care visits: care plans, recurrence in civil time, visit
//! generation, assignment to nurses and the visit lifecycle.
//!
//! `recurrence`, `lifecycle` and `planner` are pure (no I/O, no clock);
//! `generate`, `assign` and `ticker` connect them to the store, and
//! `notify` tells consoles and terminals what changed.

pub mod assign;
pub mod calendar;
pub mod calls;
pub mod generate;
pub mod lifecycle;
pub mod notify;
pub mod planner;
pub mod recurrence;
pub mod ticker;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Recurrence(#[from] recurrence::RecurrenceError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Transition(#[from] lifecycle::InvalidTransition),
    #[error("the visit was changed by someone else; reload and try again")]
    Concurrent,
    #[error("call refused: {0}")]
    CallRefused(crate::calls::rights::Refusal),
}

/// Milliseconds since the epoch of a jiff timestamp.
pub fn ms(ts: jiff::Timestamp) -> i64 {
    ts.as_millisecond()
}

/// A jiff timestamp from milliseconds since the epoch (clamped to jiff's range).
pub fn ts(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// The instants `[start, end)` of a civil date in a zone.
pub fn day_range(date: jiff::civil::Date, tz: &jiff::tz::TimeZone) -> (i64, i64) {
    let start = tz
        .to_ambiguous_zoned(date.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(0);
    let end = date
        .tomorrow()
        .ok()
        .and_then(|d| {
            tz.to_ambiguous_zoned(d.to_datetime(jiff::civil::Time::midnight()))
                .compatible()
                .ok()
        })
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(start + 86_400_000);
    (start, end)
}
