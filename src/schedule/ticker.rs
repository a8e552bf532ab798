//! The hub's schedule clock: moves visits through their lifecycle as time
//! passes (windows opening, retries due, calls ringing too long, windows
//! closing on missed visits) and keeps the rolling horizon generated.

use std::time::Duration;

use super::lifecycle::{Action, RetryPolicy, VisitState};
use super::notify::{Change, Notifier};
use super::ScheduleError;
use crate::settings::Settings;
use crate::store::{now_ms, Store, Visit};

/// How often visits are looked at.
pub const TICK: Duration = Duration::from_secs(5);
/// How often the horizon is extended.
const HORIZON_EVERY: Duration = Duration::from_secs(3600);

/// The retry policy the settings give.
pub fn policy(settings: &Settings) -> RetryPolicy {
    RetryPolicy {
        max_tries: settings.visit_max_tries,
        retry_interval_ms: (settings.visit_retry_secs as i64).saturating_mul(1000),
        ring_timeout_ms: (settings.visit_ring_secs as i64).saturating_mul(1000),
    }
}

/// The lifecycle view of a stored visit.
pub fn state_of(v: &Visit) -> Result<VisitState, ScheduleError> {
    Ok(VisitState {
        status: v.status()?,
        attempts: u32::try_from(v.attempts).unwrap_or(0),
        next_attempt_at: v.next_attempt_at,
        status_since: v.status_since,
        window_start: v.window_start,
        window_end: v.window_end,
    })
}

/// Applies `action` to a visit, stores it and writes the audit trail; a
/// concurrent change is an error.
#[tracing::instrument(skip(store, notifier, policy, outcome, note), fields(visit_id = %visit_id))]
#[allow(clippy::too_many_arguments)]
pub async fn act(
    store: &Store,
    notifier: &Notifier,
    policy: &RetryPolicy,
    visit_id: &str,
    action: Action,
    actor: Option<&str>,
    outcome: Option<&str>,
    note: Option<&str>,
) -> Result<Visit, ScheduleError> {
    let visit = store.get_visit(visit_id).await?;
    let now = now_ms();
    let state = state_of(&visit)?;
    let Some(t) = state.step(action, now, policy)? else {
        return Ok(visit);
    };
    if !store
        .transition_visit(visit_id, state.status, &t, now, actor, outcome, note)
        .await?
    {
        return Err(ScheduleError::Concurrent);
    }
    if t.missed {
        tracing::warn!(client_id = %visit.client_id, "visit missed: alert raised");
        metrics::counter!("etahoiva_visits_missed_total").increment(1);
    }
    metrics::counter!("etahoiva_visit_transitions_total", "to" => t.status.as_str()).increment(1);
    store
        .audit(
            actor,
            "visit.action",
            Some(visit_id),
            Some(&format!("{action:?} -> {}", t.status.as_str())),
        )
        .await?;
    notifier.send(Change::Visit {
        visit_id: visit.id.clone(),
        client_id: visit.client_id.clone(),
        nurse_id: visit.nurse_id.clone(),
    });
    Ok(store.get_visit(visit_id).await?)
}

/// One pass over the visits whose time has come. Returns how many changed.
pub async fn tick_once(
    store: &Store,
    notifier: &Notifier,
    policy: &RetryPolicy,
    now: i64,
) -> Result<usize, ScheduleError> {
    let mut changed = 0;
    for visit in store
        .visits_needing_tick(now, policy.ring_timeout_ms)
        .await?
    {
        let state = state_of(&visit)?;
        let Some(t) = state.step(Action::Tick, now, policy)? else {
            continue;
        };
        // Another actor may have moved it meanwhile; then this tick has nothing to do.
        if store
            .transition_visit(&visit.id, state.status, &t, now, None, None, None)
            .await?
        {
            changed += 1;
            if t.missed {
                tracing::warn!(visit_id = %visit.id, client_id = %visit.client_id, "visit missed: alert raised");
                metrics::counter!("etahoiva_visits_missed_total").increment(1);
            }
            metrics::counter!("etahoiva_visit_transitions_total", "to" => t.status.as_str())
                .increment(1);
            notifier.send(Change::Visit {
                visit_id: visit.id,
                client_id: visit.client_id,
                nurse_id: visit.nurse_id,
            });
        }
    }
    Ok(changed)
}

/// Runs the clock until the task is dropped.
pub async fn run(store: Store, notifier: Notifier, settings: std::sync::Arc<Settings>) {
    let policy = policy(&settings);
    let mut last_horizon: Option<tokio::time::Instant> = None;
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if last_horizon.is_none_or(|t| t.elapsed() >= HORIZON_EVERY) {
            match super::generate::roll_horizon(&store, now_ms(), settings.schedule_horizon_days)
                .await
            {
                Ok(report) => {
                    last_horizon = Some(tokio::time::Instant::now());
                    if report.written > 0 {
                        tracing::info!(written = report.written, "visit horizon extended");
                        notifier.send(Change::Everything);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot extend the visit horizon"),
            }
        }
        if let Err(e) = tick_once(&store, &notifier, &policy, now_ms()).await {
            tracing::warn!(error = %e, "visit clock tick failed; retrying");
        }
    }
}
