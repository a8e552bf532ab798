//! Assigning a day's visits to the nurses on shift: the stored schedule
//! turned into a planner instance, planned, and written back.

use std::collections::HashMap;
use std::time::Instant;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::lifecycle::VisitStatus;
use super::planner::{self, Busy, PlanInput, PlanNurse, PlanVisit, Unplaced};
use super::recurrence::zone;
use super::{day_range, ScheduleError};
use crate::settings::Settings;
use crate::store::{Assignment, Client, Nurse, Shift, Store, Visit};

/// How far back visits count as "the client knows this nurse".
const KNOWN_SINCE_MS: i64 = 60 * 86_400_000;

/// How well a day's plan keeps continuity of care.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Continuity {
    /// Visits of the day (not cancelled).
    pub visits: usize,
    pub assigned: usize,
    pub unassigned: usize,
    /// Visits of clients who have a named nurse.
    pub with_named_nurse: usize,
    /// Of those, the visits whose named nurse is on shift that day.
    pub named_nurse_on_shift: usize,
    /// Visits assigned to the client's named nurse.
    pub named_nurse_kept: usize,
    /// `named_nurse_kept / named_nurse_on_shift`.
    pub named_nurse_kept_share: f64,
    /// Visits assigned to the named nurse or a nurse who visited the client in the last 60 days.
    pub familiar_nurse: usize,
    pub familiar_nurse_share: f64,
    /// Mean number of different nurses a client meets in the day.
    pub nurses_per_client: f64,
    /// Mean Continuity of Care Index (Bice-Boxerman) of the day's visits over
    /// clients with at least two assigned visits: 1 = always the same nurse.
    pub coci: f64,
}

/// A visit the planner could not place, and why.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UnplacedVisit {
    pub visit_id: String,
    /// `no_eligible_nurse`, `no_room` or `window_passed`.
    pub reason: String,
}

/// What planning a day did.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AssignReport {
    pub date: String,
    /// Visits the planner was given.
    pub planned: usize,
    pub placed: usize,
    pub unplaced: Vec<UnplacedVisit>,
    /// Visits kept as they were (under way, done, pinned with a time).
    pub fixed: usize,
    pub nurses_on_shift: usize,
    /// Total and largest lateness against the visits' planned times, minutes.
    pub total_lateness_min: f64,
    pub max_lateness_min: f64,
    pub planning_ms: f64,
    pub storing_ms: f64,
    pub continuity: Continuity,
}

/// Skill and language names turned into the planner's bit sets.
#[derive(Default)]
struct Bits {
    names: HashMap<String, u32>,
}

impl Bits {
    fn bit(&mut self, name: &str) -> Option<u64> {
        let next = self.names.len() as u32;
        let index = *self.names.entry(name.to_string()).or_insert(next);
        (index < 64).then(|| 1u64 << index)
    }
}

fn language_bit(lang: &str) -> u8 {
    match lang {
        "fi" => 1,
        "sv" => 2,
        "en" => 4,
        _ => 128,
    }
}

/// Busy time a visit takes from its nurse, when it has one and a time.
fn busy_of(v: &Visit, nurse: usize) -> Option<Busy> {
    let length = i64::from(v.length_min) * 60_000;
    let status = VisitStatus::parse(&v.status)?;
    let (start, end) = match status {
        VisitStatus::Cancelled | VisitStatus::Missed => return None,
        VisitStatus::Completed => {
            let start = v.started_at.or(v.scheduled_start)?;
            (start, v.ended_at.unwrap_or(start + length).max(start))
        }
        VisitStatus::InProgress | VisitStatus::Calling => {
            let start = v.started_at.or(v.scheduled_start).unwrap_or(v.status_since);
            (start, start + length)
        }
        _ => {
            let start = v.scheduled_start?;
            (start, start + length)
        }
    };
    Some(Busy { nurse, start, end })
}

/// A day's planning problem as loaded from the store.
pub struct DayInstance {
    pub date: Date,
    pub day_start: i64,
    pub day_end: i64,
    pub nurses: Vec<Nurse>,
    pub visits: Vec<Visit>,
    /// The planner's input; visit `i` of it is `visits[to_plan[i]]`.
    pub input: PlanInput,
    pub to_plan: Vec<usize>,
    /// Busy intervals kept as they are.
    pub fixed: usize,
}

/// Loads what planning `date` needs. With `replan` every visit that has not
/// started is placed anew (pins kept); otherwise only those without a nurse
/// or a time. Calls are never placed before `not_before`.
pub async fn load_day(
    store: &Store,
    settings: &Settings,
    date: Date,
    replan: bool,
    not_before: i64,
) -> Result<DayInstance, ScheduleError> {
    let tz = zone(&settings.unit_time_zone)?;
    let (day_start, day_end) = day_range(date, &tz);
    let nurses = store.list_nurses().await?;
    let shifts = store.shifts_between(day_start, day_end).await?;
    let visits = store.visits_between(day_start, day_end).await?;
    let clients: HashMap<String, Client> = store.clients_by_id().await?;
    let known = store.known_nurses(not_before - KNOWN_SINCE_MS).await?;
    let (input, to_plan, fixed) = build_input(
        &nurses, &shifts, &visits, &clients, &known, day_start, day_end, replan, not_before,
        settings,
    );
    Ok(DayInstance {
        date,
        day_start,
        day_end,
        nurses,
        visits,
        input,
        to_plan,
        fixed,
    })
}

/// The assignment changes a plan makes, and the visits it could not place.
pub fn changes_of(
    day: &DayInstance,
    plan: &planner::Plan,
) -> (Vec<Assignment>, Vec<UnplacedVisit>, usize) {
    let mut changes = Vec::new();
    let mut unplaced = Vec::new();
    let mut placed = 0;
    for (i, result) in plan.placements.iter().enumerate() {
        let Some(v) = day.to_plan.get(i).map(|&j| &day.visits[j]) else {
            continue;
        };
        let (nurse_id, start) = match result {
            Ok(p) => {
                placed += 1;
                (day.nurses.get(p.nurse).map(|n| n.id.clone()), Some(p.start))
            }
            Err(reason) => {
                unplaced.push(UnplacedVisit {
                    visit_id: v.id.clone(),
                    reason: match reason {
                        Unplaced::NoEligibleNurse => "no_eligible_nurse",
                        Unplaced::NoRoom => "no_room",
                        Unplaced::WindowPassed => "window_passed",
                    }
                    .into(),
                });
                // A pinned visit keeps its nurse even without a time.
                (v.nurse_id.clone().filter(|_| v.pinned), None)
            }
        };
        if nurse_id != v.nurse_id || start != v.scheduled_start {
            changes.push(Assignment {
                visit_id: v.id.clone(),
                nurse_id,
                scheduled_start: start,
            });
        }
    }
    (changes, unplaced, placed)
}

/// Plans `date` and stores the result: see [`load_day`].
#[tracing::instrument(skip(store, settings))]
pub async fn assign_day(
    store: &Store,
    settings: &Settings,
    date: Date,
    replan: bool,
    not_before: i64,
) -> Result<AssignReport, ScheduleError> {
    let day = load_day(store, settings, date, replan, not_before).await?;
    let started = Instant::now();
    let (day, plan) = tokio::task::spawn_blocking(move || {
        let plan = planner::plan(&day.input);
        (day, plan)
    })
    .await
    .map_err(|e| ScheduleError::Invalid(format!("planner failed: {e}")))?;
    let planning_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (changes, unplaced, placed) = changes_of(&day, &plan);
    let started = Instant::now();
    store.apply_assignments(&changes).await?;
    let storing_ms = started.elapsed().as_secs_f64() * 1000.0;
    let nurses_on_shift = day
        .input
        .nurses
        .iter()
        .filter(|n| !n.shifts.is_empty())
        .count();
    let continuity = continuity(store, settings, date, not_before).await?;
    metrics::counter!("etahoiva_visits_assigned_total").increment(placed as u64);
    tracing::info!(
        planned = day.to_plan.len(),
        placed,
        unplaced = unplaced.len(),
        planning_ms,
        "day planned"
    );
    Ok(AssignReport {
        date: date.to_string(),
        planned: day.to_plan.len(),
        placed,
        unplaced,
        fixed: day.fixed,
        nurses_on_shift,
        total_lateness_min: plan.stats.total_lateness_ms as f64 / 60_000.0,
        max_lateness_min: plan.stats.max_lateness_ms as f64 / 60_000.0,
        planning_ms,
        storing_ms,
        continuity,
    })
}

/// The planner's instance: which visits to plan (indexes into `visits`) and
/// how many stay fixed.
#[allow(clippy::too_many_arguments)]
fn build_input(
    nurses: &[Nurse],
    shifts: &[Shift],
    visits: &[Visit],
    clients: &HashMap<String, Client>,
    known: &HashMap<String, Vec<String>>,
    day_start: i64,
    day_end: i64,
    replan: bool,
    not_before: i64,
    settings: &Settings,
) -> (PlanInput, Vec<usize>, usize) {
    let index: HashMap<&str, usize> = nurses
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut skills = Bits::default();
    let mut plan_nurses: Vec<PlanNurse> = nurses
        .iter()
        .map(|n| PlanNurse {
            languages: n.languages.iter().fold(0, |acc, l| acc | language_bit(l)),
            skills: n
                .skills
                .iter()
                .fold(0, |acc, s| acc | skills.bit(s).unwrap_or(0)),
            shifts: Vec::new(),
        })
        .collect();
    for s in shifts {
        if let Some(&i) = index.get(s.nurse_id.as_str()) {
            let end = s.effective_end();
            if end > s.starts_at {
                plan_nurses[i].shifts.push((s.starts_at, end));
            }
        }
    }
    let mut plan_visits = Vec::new();
    let mut to_plan = Vec::new();
    let mut fixed = Vec::new();
    for (j, v) in visits.iter().enumerate() {
        let status = VisitStatus::parse(&v.status);
        let of_the_day = v.planned_at >= day_start && v.planned_at < day_end;
        let open = status.is_some_and(VisitStatus::not_started);
        let needs_plan = of_the_day
            && open
            && v.window_end > not_before
            && (replan || v.nurse_id.is_none() || v.scheduled_start.is_none());
        if !needs_plan {
            if let Some(b) = v
                .nurse_id
                .as_deref()
                .and_then(|n| index.get(n))
                .and_then(|&i| busy_of(v, i))
            {
                fixed.push(b);
            }
            continue;
        }
        let client = clients.get(&v.client_id);
        let named = client
            .and_then(|c| c.named_nurse_id.as_deref())
            .and_then(|n| index.get(n).copied());
        let known_nurses = known
            .get(&v.client_id)
            .map(|ids| {
                ids.iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .filter(|n| Some(*n) != named)
                    .take(5)
                    .collect()
            })
            .unwrap_or_default();
        let pinned = if v.pinned {
            v.nurse_id.as_deref().and_then(|n| index.get(n).copied())
        } else {
            None
        };
        let skill = match v.skill.as_deref() {
            // A skill no nurse has gets a bit nobody holds: the visit is reported, not dropped.
            Some(s) => skills.bit(s).unwrap_or(1 << 63),
            None => 0,
        };
        plan_visits.push(PlanVisit {
            window_start: v.window_start,
            window_end: v.window_end,
            target: v.planned_at,
            length: i64::from(v.length_min) * 60_000,
            language: language_bit(&v.language),
            skills: skill,
            named_nurse: named,
            known_nurses,
            pinned,
        });
        to_plan.push(j);
    }
    let fixed_count = fixed.len();
    (
        PlanInput {
            nurses: plan_nurses,
            visits: plan_visits,
            fixed,
            turnaround: (settings.call_turnaround_secs as i64).saturating_mul(1000),
            not_before,
        },
        to_plan,
        fixed_count,
    )
}

/// Continuity of the stored assignment of `date`.
pub async fn continuity(
    store: &Store,
    settings: &Settings,
    date: Date,
    now: i64,
) -> Result<Continuity, ScheduleError> {
    let tz = zone(&settings.unit_time_zone)?;
    let (day_start, day_end) = day_range(date, &tz);
    let visits = store.visits_between(day_start, day_end).await?;
    let shifts = store.shifts_between(day_start, day_end).await?;
    let clients: HashMap<String, Client> = store.clients_by_id().await?;
    let known = store.known_nurses(now - KNOWN_SINCE_MS).await?;
    Ok(measure(
        &visits, &shifts, &clients, &known, day_start, day_end,
    ))
}

/// Continuity figures of a set of visits.
pub fn measure(
    visits: &[Visit],
    shifts: &[Shift],
    clients: &HashMap<String, Client>,
    known: &HashMap<String, Vec<String>>,
    day_start: i64,
    day_end: i64,
) -> Continuity {
    let on_shift: std::collections::HashSet<&str> = shifts
        .iter()
        .filter(|s| s.effective_end() > s.starts_at)
        .map(|s| s.nurse_id.as_str())
        .collect();
    let mut c = Continuity::default();
    let mut per_client: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    for v in visits {
        if v.planned_at < day_start || v.planned_at >= day_end || v.status == "cancelled" {
            continue;
        }
        c.visits += 1;
        let named = clients
            .get(&v.client_id)
            .and_then(|cl| cl.named_nurse_id.as_deref());
        if let Some(n) = named {
            c.with_named_nurse += 1;
            if on_shift.contains(n) {
                c.named_nurse_on_shift += 1;
            }
        }
        let Some(nurse) = v.nurse_id.as_deref() else {
            c.unassigned += 1;
            continue;
        };
        c.assigned += 1;
        if named == Some(nurse) {
            c.named_nurse_kept += 1;
        }
        if named == Some(nurse)
            || known
                .get(&v.client_id)
                .is_some_and(|k| k.iter().any(|n| n == nurse))
        {
            c.familiar_nurse += 1;
        }
        *per_client
            .entry(v.client_id.as_str())
            .or_default()
            .entry(nurse)
            .or_default() += 1;
    }
    let share = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    c.named_nurse_kept_share = share(c.named_nurse_kept, c.named_nurse_on_shift);
    c.familiar_nurse_share = share(c.familiar_nurse, c.assigned);
    let clients_seen = per_client.len();
    c.nurses_per_client = share(
        per_client.values().map(HashMap::len).sum::<usize>(),
        clients_seen,
    );
    let cocis: Vec<f64> = per_client
        .values()
        .filter_map(|by_nurse| coci(by_nurse.values().copied()))
        .collect();
    c.coci = if cocis.is_empty() {
        0.0
    } else {
        cocis.iter().sum::<f64>() / cocis.len() as f64
    };
    c
}

/// Bice-Boxerman Continuity of Care Index of visit counts per provider:
/// (sum n_j^2 - N) / (N (N - 1)); none for fewer than two visits.
pub fn coci(counts: impl Iterator<Item = usize>) -> Option<f64> {
    let counts: Vec<f64> = counts.map(|n| n as f64).collect();
    let total: f64 = counts.iter().sum();
    if total < 2.0 {
        return None;
    }
    let squares: f64 = counts.iter().map(|n| n * n).sum();
    Some((squares - total) / (total * (total - 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coci_is_one_for_one_nurse_and_zero_for_all_different() {
        assert_eq!(coci([3].into_iter()), Some(1.0));
        assert_eq!(coci([1, 1, 1].into_iter()), Some(0.0));
        assert_eq!(coci([1].into_iter()), None);
        let mixed = coci([2, 1].into_iter()).expect("two visits or more");
        assert!((mixed - 1.0 / 3.0).abs() < 1e-9, "{mixed}");
    }

    #[test]
    fn skill_bits_are_stable_and_bounded() {
        let mut bits = Bits::default();
        let a = bits.bit("diabetes");
        assert_eq!(bits.bit("diabetes"), a);
        assert_ne!(bits.bit("wound_care"), a);
        for i in 0..70 {
            bits.bit(&format!("s{i}"));
        }
        assert_eq!(bits.bit("s69"), None, "beyond 64 skills there is no bit");
    }
}
