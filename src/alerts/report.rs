//! Answer-time shares as alarm centres measure them: 97.5 % of alarms
//! answered within 60 s and 99 % within 180 s; and the measured time to
//! arrive at the home.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::alerts::ResponseTimes;

pub const TARGET_60S: f64 = 0.975;
pub const TARGET_180S: f64 = 0.99;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    /// Start and end of the period, RFC 3339.
    pub from: String,
    pub to: String,
    /// Alarms raised in the period (help button, wristband, sensor; cancelled ones excluded).
    pub alarms: usize,
    /// Of them answered or acknowledged.
    pub answered: usize,
    pub within_60s: usize,
    pub within_180s: usize,
    /// Shares of all alarms (an unanswered one counts against), 0..1; none without alarms.
    pub share_within_60s: Option<f64>,
    pub share_within_180s: Option<f64>,
    pub target_60s: f64,
    pub target_180s: f64,
    pub median_answer_secs: Option<f64>,
    pub p90_answer_secs: Option<f64>,
    /// Alarms where somebody arrived at the home, and how long it took from the alarm.
    pub on_site_count: usize,
    pub median_on_site_secs: Option<f64>,
    pub p90_on_site_secs: Option<f64>,
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

pub fn build(from: String, to: String, rows: &[ResponseTimes]) -> Report {
    let mut answer: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            r.answered_at
                .map(|a| (a - r.raised_at).max(0) as f64 / 1000.0)
        })
        .collect();
    answer.sort_by(f64::total_cmp);
    let mut on_site: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            r.on_site_at
                .map(|a| (a - r.raised_at).max(0) as f64 / 1000.0)
        })
        .collect();
    on_site.sort_by(f64::total_cmp);
    let within = |secs: f64| answer.iter().filter(|a| **a <= secs).count();
    let share = |n: usize| (!rows.is_empty()).then(|| n as f64 / rows.len() as f64);
    let (w60, w180) = (within(60.0), within(180.0));
    Report {
        from,
        to,
        alarms: rows.len(),
        answered: answer.len(),
        within_60s: w60,
        within_180s: w180,
        share_within_60s: share(w60),
        share_within_180s: share(w180),
        target_60s: TARGET_60S,
        target_180s: TARGET_180S,
        median_answer_secs: percentile(&answer, 0.5),
        p90_answer_secs: percentile(&answer, 0.9),
        on_site_count: on_site.len(),
        median_on_site_secs: percentile(&on_site, 0.5),
        p90_on_site_secs: percentile(&on_site, 0.9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(answer_secs: Option<i64>, on_site_secs: Option<i64>) -> ResponseTimes {
        ResponseTimes {
            raised_at: 1_000_000,
            answered_at: answer_secs.map(|s| 1_000_000 + s * 1000),
            on_site_at: on_site_secs.map(|s| 1_000_000 + s * 1000),
        }
    }

    #[test]
    fn shares_count_unanswered_alarms_against_the_target() {
        let rows = vec![
            row(Some(10), None),
            row(Some(60), Some(900)),
            row(Some(61), None),
            row(Some(200), Some(1500)),
            row(None, None),
        ];
        let r = build("a".into(), "b".into(), &rows);
        assert_eq!(r.alarms, 5);
        assert_eq!(r.answered, 4);
        assert_eq!(r.within_60s, 2);
        assert_eq!(r.within_180s, 3);
        assert_eq!(r.share_within_60s, Some(0.4));
        assert_eq!(r.share_within_180s, Some(0.6));
        assert_eq!(r.median_answer_secs, Some(60.0));
        assert_eq!(r.p90_answer_secs, Some(200.0));
        assert_eq!(r.on_site_count, 2);
        assert_eq!(r.median_on_site_secs, Some(900.0));
    }

    #[test]
    fn no_alarms_no_shares() {
        let r = build("a".into(), "b".into(), &[]);
        assert_eq!(r.share_within_60s, None);
        assert_eq!(r.median_answer_secs, None);
    }
}
