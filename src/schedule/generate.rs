//! From care plans to visits: each rule of a client's plan expanded over a
//! rolling horizon in the client's civil time, pauses left out.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::recurrence::{parse_time, zone, Recurrence};
use super::{ts, ScheduleError};
use crate::store::{Client, NewVisit, Pause, Store, VisitRuleRecord};

/// Longest window a visit may have on either side of its time.
pub const MAX_WINDOW_MIN: u32 = 12 * 60;
/// How far from today a rule may start.
pub const MAX_YEARS_FROM_NOW: i32 = 5;
/// Longest visit.
pub const MAX_LENGTH_MIN: u32 = 240;

/// One rule of a care plan as the API takes it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitRuleInput {
    /// Keep the id of an existing rule to edit it; leave out for a new rule.
    #[serde(default)]
    pub id: Option<String>,
    /// First visit, civil time in the client's zone: `2026-11-23T08:00` (or iCalendar `20261123T080000`).
    pub dtstart: String,
    /// RFC 5545 RRULE value, e.g. `FREQ=DAILY` or `FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20270101T000000Z`.
    #[serde(default)]
    pub rrule: Option<String>,
    /// Occurrences left out (civil times in the client's zone, or UTC with `Z`).
    #[serde(default)]
    pub exdates: Vec<String>,
    /// Extra occurrences.
    #[serde(default)]
    pub rdates: Vec<String>,
    /// Minutes before the time the call may start (default 30).
    #[serde(default = "default_window")]
    pub window_before_min: u32,
    /// Minutes after the time by which the call must have ended (default 30).
    #[serde(default = "default_window")]
    pub window_after_min: u32,
    /// Length of the call in minutes (default 10).
    #[serde(default = "default_length")]
    pub length_min: u32,
    /// What the visit is for, e.g. "Aamulääkkeet".
    pub purpose: String,
    /// A skill the nurse must have, e.g. `diabetes`.
    #[serde(default)]
    pub skill: Option<String>,
    /// Language of the visit when not the client's own (`fi`, `sv`).
    #[serde(default)]
    pub language: Option<String>,
}

fn default_window() -> u32 {
    30
}

fn default_length() -> u32 {
    10
}

fn bad(msg: impl Into<String>) -> ScheduleError {
    ScheduleError::Invalid(msg.into())
}

/// Languages of clients and visits.
pub fn check_language(lang: &str) -> Result<(), ScheduleError> {
    if matches!(lang, "fi" | "sv") {
        Ok(())
    } else {
        Err(bad(format!("language must be fi or sv, not {lang:?}")))
    }
}

/// Skill names: short lowercase words.
pub fn check_skill(skill: &str) -> Result<(), ScheduleError> {
    let ok = !skill.is_empty()
        && skill.len() <= 40
        && skill
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "skill {skill:?} must be 1-40 characters of a-z, 0-9, _ or -"
        )))
    }
}

impl VisitRuleInput {
    /// Checks the rule in the client's zone and gives the record to store.
    pub fn into_record(self, client: &Client) -> Result<VisitRuleRecord, ScheduleError> {
        let tz = zone(&client.time_zone)?;
        let purpose = self.purpose.trim().to_string();
        if purpose.is_empty() || purpose.chars().count() > 200 {
            return Err(bad("purpose must be 1-200 characters"));
        }
        if self.length_min == 0 || self.length_min > MAX_LENGTH_MIN {
            return Err(bad(format!(
                "length_min must be between 1 and {MAX_LENGTH_MIN}"
            )));
        }
        if self.window_before_min > MAX_WINDOW_MIN || self.window_after_min > MAX_WINDOW_MIN {
            return Err(bad(format!(
                "window_before_min and window_after_min must be at most {MAX_WINDOW_MIN}"
            )));
        }
        if self.window_before_min + self.window_after_min < self.length_min {
            return Err(bad(
                "the window (window_before_min + window_after_min) must be at least as long as the visit",
            ));
        }
        if let Some(lang) = &self.language {
            check_language(lang)?;
        }
        if let Some(skill) = &self.skill {
            check_skill(skill)?;
        }
        let dtstart = parse_time("dtstart", &self.dtstart, &tz, false)?;
        // Rules are expanded from their start: keep it within reach.
        let today = jiff::Timestamp::now().to_zoned(tz.clone()).date();
        let years = (i32::from(dtstart.year()) - i32::from(today.year())).abs();
        if years > MAX_YEARS_FROM_NOW {
            return Err(bad(format!(
                "dtstart must be within {MAX_YEARS_FROM_NOW} years of today; start a long-running plan anew from a recent date"
            )));
        }
        let exdates = self
            .exdates
            .iter()
            .map(|d| parse_time("exdates", d, &tz, false))
            .collect::<Result<Vec<_>, _>>()?;
        let rdates = self
            .rdates
            .iter()
            .map(|d| parse_time("rdates", d, &tz, false))
            .collect::<Result<Vec<_>, _>>()?;
        if exdates.len() > 1000 || rdates.len() > 1000 {
            return Err(bad("at most 1000 exdates and 1000 rdates"));
        }
        let rrule = self
            .rrule
            .map(|r| r.trim().trim_start_matches("RRULE:").to_string())
            .filter(|r| !r.is_empty());
        let recurrence = Recurrence {
            dtstart,
            rrule: rrule.clone(),
            exdates: exdates.clone(),
            rdates: rdates.clone(),
        };
        recurrence.validate(&tz)?;
        let civil_list = |v: &[jiff::civil::DateTime]| {
            serde_json::to_string(&v.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into())
        };
        Ok(VisitRuleRecord {
            id: self.id.unwrap_or_else(crate::store::new_id),
            client_id: client.id.clone(),
            dtstart: dtstart.to_string(),
            rrule,
            exdates: civil_list(&exdates),
            rdates: civil_list(&rdates),
            window_before_min: self.window_before_min as i32,
            window_after_min: self.window_after_min as i32,
            length_min: self.length_min as i32,
            purpose,
            skill: self.skill,
            language: self.language,
        })
    }
}

/// The recurrence of a stored rule.
pub fn recurrence_of(rule: &VisitRuleRecord) -> Result<Recurrence, ScheduleError> {
    let corrupt = |what: &str| bad(format!("stored rule {} has a bad {what}", rule.id));
    let civil = |s: &str| s.parse::<jiff::civil::DateTime>();
    let list = |json: &str, what: &str| -> Result<Vec<jiff::civil::DateTime>, ScheduleError> {
        let items: Vec<String> = serde_json::from_str(json).map_err(|_| corrupt(what))?;
        items
            .iter()
            .map(|s| civil(s).map_err(|_| corrupt(what)))
            .collect()
    };
    Ok(Recurrence {
        dtstart: civil(&rule.dtstart).map_err(|_| corrupt("dtstart"))?,
        rrule: rule.rrule.clone(),
        exdates: list(&rule.exdates, "exdates")?,
        rdates: list(&rule.rdates, "rdates")?,
    })
}

/// The visits of one rule whose time falls in `[from, to)`, pauses left out.
pub fn expand_rule(
    client: &Client,
    rule: &VisitRuleRecord,
    pauses: &[&Pause],
    from: i64,
    to: i64,
) -> Result<Vec<NewVisit>, ScheduleError> {
    let tz = zone(&client.time_zone)?;
    let recurrence = recurrence_of(rule)?;
    let before = i64::from(rule.window_before_min) * 60_000;
    let after = i64::from(rule.window_after_min) * 60_000;
    let language = rule
        .language
        .clone()
        .unwrap_or_else(|| client.language.clone());
    let occurrences = recurrence.between(&tz, ts(from), ts(to))?;
    Ok(occurrences
        .into_iter()
        .filter_map(|o| {
            let at = o.at.timestamp().as_millisecond();
            if pauses.iter().any(|p| p.starts_at <= at && at < p.ends_at) {
                return None;
            }
            Some(NewVisit {
                client_id: client.id.clone(),
                rule_id: rule.id.clone(),
                occurrence: o.civil.to_string(),
                local_date: o.civil.date().to_string(),
                planned_at: at,
                window_start: at - before,
                window_end: at + after,
                length_min: rule.length_min,
                purpose: rule.purpose.clone(),
                skill: rule.skill.clone(),
                language: language.clone(),
            })
        })
        .collect())
}

/// What a generation run did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct GenerateReport {
    pub clients: usize,
    pub rules: usize,
    /// Visits the plans give in the horizon.
    pub visits: usize,
    /// Rows inserted or changed.
    pub written: u64,
    /// Visits removed because the plan no longer has them.
    pub removed: usize,
    /// Rules that could not be expanded (the rest went ahead).
    pub failed_rules: Vec<String>,
}

/// Regenerates one client's visits from `now` to the horizon: new ones
/// added, changed ones updated and dropped ones removed, as long as no call
/// was tried; visits under way or done are left alone.
#[tracing::instrument(skip(store), fields(client_id = %client_id))]
pub async fn regenerate_client(
    store: &Store,
    client_id: &str,
    now: i64,
    horizon_days: u32,
) -> Result<GenerateReport, ScheduleError> {
    let client = store.get_client(client_id).await?;
    let rules = store.plan_rules(client_id).await?;
    let pauses = store.pauses(Some(client_id)).await?;
    let pause_refs: Vec<&Pause> = pauses.iter().collect();
    let to = now + i64::from(horizon_days) * 86_400_000;
    let mut report = GenerateReport {
        clients: 1,
        rules: rules.len(),
        ..Default::default()
    };
    let mut visits = Vec::new();
    for rule in &rules {
        visits.extend(expand_rule(&client, rule, &pause_refs, now, to)?);
    }
    let keep: HashSet<(String, String)> = visits
        .iter()
        .map(|v| (v.rule_id.clone(), v.occurrence.clone()))
        .collect();
    report.visits = visits.len();
    report.written = store.upsert_visits(&visits).await?;
    report.removed = store
        .remove_stale_visits(client_id, now, &keep)
        .await?
        .len();
    Ok(report)
}

/// Generates every client's visits from `now` to the horizon.
/// A rule that cannot be expanded is reported and skipped, not fatal.
pub async fn extend_horizon(
    store: &Store,
    now: i64,
    horizon_days: u32,
) -> Result<GenerateReport, ScheduleError> {
    generate_range(store, now, now + i64::from(horizon_days) * 86_400_000).await
}

/// Where the rolling horizon was last generated to.
const GENERATED_UNTIL: &str = "visits_generated_until";

/// Moves the rolling horizon on (the hub runs this hourly): generates only
/// the part not yet generated, a day's overlap kept for safety. Plan edits
/// regenerate their client's whole horizon themselves.
pub async fn roll_horizon(
    store: &Store,
    now: i64,
    horizon_days: u32,
) -> Result<GenerateReport, ScheduleError> {
    let until = now + i64::from(horizon_days) * 86_400_000;
    let from = match store.get_meta(GENERATED_UNTIL).await? {
        Some(done) => done
            .parse::<i64>()
            .map(|d| (d - 86_400_000).clamp(now, until))
            .unwrap_or(now),
        None => now,
    };
    let report = generate_range(store, from, until).await?;
    store.set_meta(GENERATED_UNTIL, &until.to_string()).await?;
    Ok(report)
}

/// Generates every client's visits whose time falls in `[from, to)`.
#[tracing::instrument(skip(store))]
pub async fn generate_range(
    store: &Store,
    from: i64,
    to: i64,
) -> Result<GenerateReport, ScheduleError> {
    let now = from;
    let clients: HashMap<String, Client> = store.clients_by_id().await?;
    let rules = store.all_rules().await?;
    let pauses = store.pauses(None).await?;
    let mut by_client: HashMap<&str, Vec<&Pause>> = HashMap::new();
    for p in &pauses {
        by_client.entry(p.client_id.as_str()).or_default().push(p);
    }
    let mut report = GenerateReport {
        clients: clients.len(),
        rules: rules.len(),
        ..Default::default()
    };
    let mut batch = Vec::new();
    for rule in &rules {
        let Some(client) = clients.get(&rule.client_id) else {
            continue;
        };
        let pauses = by_client
            .get(client.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match expand_rule(client, rule, pauses, now, to) {
            Ok(v) => batch.extend(v),
            Err(e) => {
                tracing::warn!(rule_id = %rule.id, error = %e, "rule skipped");
                report.failed_rules.push(rule.id.clone());
            }
        }
        if batch.len() >= 20_000 {
            report.visits += batch.len();
            report.written += store.upsert_visits(&batch).await?;
            batch.clear();
        }
    }
    report.visits += batch.len();
    report.written += store.upsert_visits(&batch).await?;
    Ok(report)
}
