//! Calls of scheduled visits on the client's terminal: the nurse's "call"
//! rings the terminal (or opens it by itself when the hub finds the right
//! to), and what the terminal answers moves the visit on.

use etahoiva_proto::{CallKind, CallState, HubToEdge};

use super::lifecycle::{Action, VisitStatus};
use super::notify::first_name;
use super::{ticker, ScheduleError};
use crate::calls::rights::{self, Caller, Decision, VisitFacts};
use crate::devices::registry::Outbound;
use crate::startup::AppState;
use crate::store::{now_ms, Visit};

/// The call id of a visit's current try: `<visit id>.<try>`.
pub fn call_id(visit: &Visit) -> String {
    format!("{}.{}", visit.id, visit.attempts)
}

/// The visit a call id belongs to.
pub fn visit_of_call(call_id: &str) -> Option<&str> {
    call_id.rsplit_once('.').map(|(visit, _)| visit)
}

/// Applies a nurse's action to a visit; a call also rings the client's terminal.
pub async fn act_and_ring(
    state: &AppState,
    visit_id: &str,
    action: Action,
    actor: &str,
    outcome: Option<&str>,
    note: Option<&str>,
) -> Result<Visit, ScheduleError> {
    // The right to call is decided before the visit moves: a refused call
    // changes nothing but the audit trail.
    let decision = if action == Action::Call {
        call_decision(state, visit_id, actor).await?
    } else {
        None
    };
    let visit = ticker::act(
        &state.store,
        &state.schedule,
        &ticker::policy(&state.settings),
        visit_id,
        action,
        Some(actor),
        outcome,
        note,
    )
    .await?;
    if let Some(decision) = decision {
        if let Err(e) = ring(state, &visit, actor, decision.auto_answer()).await {
            tracing::warn!(visit_id, error = %e, "cannot ring the terminal");
        }
    }
    Ok(visit)
}

/// Whether `caller_id` may call the visit's client, and how: decided by
/// the call rights; a refusal is audited and returned. None for a visit
/// that is over: its lifecycle refuses the call.
async fn call_decision(
    state: &AppState,
    visit_id: &str,
    caller_id: &str,
) -> Result<Option<Decision>, ScheduleError> {
    let visit = state.store.get_visit(visit_id).await?;
    let client = state.store.get_client(&visit.client_id).await?;
    let caller = state.store.get_user(caller_id).await?;
    if matches!(
        visit.status()?,
        VisitStatus::Completed | VisitStatus::Missed | VisitStatus::Cancelled
    ) {
        return Ok(None);
    }
    let margin_ms = (state.settings.call_auto_answer_margin_secs.min(86_400) * 1000) as i64;
    let decision = rights::decide_visit(
        Caller {
            id: caller_id,
            roles: &caller.roles,
            teams: &[],
        },
        VisitFacts {
            nurse_id: visit.nurse_id.as_deref(),
            window_start: visit.window_start,
            window_end: visit.window_end,
            closed: false,
        },
        client.consent_auto_answer,
        now_ms(),
        margin_ms,
    );
    if let Decision::Refuse(refusal) = decision {
        state
            .store
            .audit(
                Some(caller_id),
                "call.refused",
                Some(&visit.client_id),
                Some(&format!("{} purpose=visit {visit_id}", refusal.code())),
            )
            .await?;
        return Err(ScheduleError::CallRefused(refusal));
    }
    Ok(Some(decision))
}

/// Offers the call to the client's connected terminals; returns how many.
/// `auto_answer` is the call rights' decision.
#[tracing::instrument(skip(state, visit), fields(visit_id = %visit.id, client_id = %visit.client_id))]
pub async fn ring(
    state: &AppState,
    visit: &Visit,
    caller_id: &str,
    auto_answer: bool,
) -> Result<usize, ScheduleError> {
    let client = state.store.get_client(&visit.client_id).await?;
    let caller = state
        .store
        .list_nurses()
        .await?
        .into_iter()
        .find(|n| n.id == caller_id)
        .map(|n| first_name(&n.display_name))
        .unwrap_or_default();
    let id = call_id(visit);
    let now = now_ms();
    let online: Vec<String> = state
        .store
        .client_devices(&client.id)
        .await?
        .into_iter()
        .filter(|d| state.devices.presence(d).is_some_and(|p| p.protocol >= 2))
        .collect();
    // On record before any terminal hears of it: an answer may come back at once.
    state
        .store
        .create_call(&crate::store::calls::NewCall {
            id: &id,
            kind: "scheduled_care",
            client_id: Some(&visit.client_id),
            visit_id: Some(&visit.id),
            alert_id: None,
            device_id: online.first().map(String::as_str),
            caller_id,
            auto_answer,
            now,
        })
        .await?;
    let mut rung = 0;
    for device in online {
        // The media leg exists before the terminal can answer.
        let media = crate::calls::media::prepare_terminal(state, &id, &device).await;
        let offer = HubToEdge::CallOffer {
            call_id: id.clone(),
            kind: CallKind::ScheduledCare,
            caller: caller.clone(),
            visit_id: Some(visit.id.clone()),
            auto_answer,
        };
        if state.devices.send(&device, Outbound::Send(offer)) {
            rung += 1;
            if let Some(media) = media {
                crate::calls::media::send_terminal_offer(state, &id, &device, media);
            }
        } else if let Some(media) = media {
            state.relay.close_leg(&media.leg_id);
        }
    }
    if rung == 0 {
        state
            .store
            .call_reported(&id, "ended", Some("terminal_offline"), now)
            .await?;
    }
    state
        .store
        .audit(
            Some(caller_id),
            "call.offer",
            Some(&visit.client_id),
            Some(&format!(
                "visit {} to {rung} terminal(s), {}",
                visit.id,
                if auto_answer {
                    "auto-answer"
                } else {
                    "ringing"
                }
            )),
        )
        .await?;
    Ok(rung)
}

/// A terminal reported what became of a call. Only calls of visits of the
/// terminal's own client are taken.
pub async fn terminal_update(
    state: &AppState,
    device_id: &str,
    client_id: Option<&str>,
    call_id: &str,
    call_state: CallState,
) -> Result<(), ScheduleError> {
    if crate::calls::alert_of_call(call_id).is_some() {
        if let Err(e) = crate::calls::alarm_call_update(state, device_id, call_id, call_state).await
        {
            tracing::warn!(call_id, error = %e, "alarm call update not noted");
        }
        return Ok(());
    }
    let Some(visit_id) = visit_of_call(call_id) else {
        return Ok(());
    };
    let action = match call_state {
        CallState::Answered => Action::Answered,
        CallState::Declined | CallState::Busy => Action::NoAnswer,
        _ => return Ok(()),
    };
    let visit = match state.store.get_visit(visit_id).await {
        Ok(v) => v,
        Err(crate::store::StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if Some(visit.client_id.as_str()) != client_id {
        tracing::warn!(
            device_id,
            visit_id,
            "call update for another client's visit ignored"
        );
        state
            .store
            .audit(
                Some(device_id),
                "call.refused",
                Some(visit_id),
                Some("call update for another client's visit"),
            )
            .await?;
        return Ok(());
    }
    let (record, reason) = crate::store::calls::reported(call_state);
    state
        .store
        .call_reported(call_id, record, reason, now_ms())
        .await?;
    // Only the current try counts; a late answer to an earlier try changes nothing.
    if visit.status()? != VisitStatus::Calling || call_id != super::calls::call_id(&visit) {
        return Ok(());
    }
    ticker::act(
        &state.store,
        &state.schedule,
        &ticker::policy(&state.settings),
        visit_id,
        action,
        Some(device_id),
        None,
        None,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(nurse: Option<&str>) -> Visit {
        Visit {
            id: "0192-abc".into(),
            client_id: "c".into(),
            rule_id: None,
            occurrence: String::new(),
            local_date: String::new(),
            planned_at: 1_000,
            window_start: 0,
            window_end: 2_000,
            length_min: 10,
            purpose: String::new(),
            skill: None,
            language: "fi".into(),
            nurse_id: nurse.map(str::to_string),
            pinned: false,
            scheduled_start: None,
            status: "calling".into(),
            status_since: 0,
            attempts: 2,
            next_attempt_at: None,
            started_at: None,
            ended_at: None,
            outcome: None,
            note: None,
        }
    }

    #[test]
    fn call_ids_name_the_visit_and_the_try() {
        let v = visit(None);
        assert_eq!(call_id(&v), "0192-abc.2");
        assert_eq!(visit_of_call("0192-abc.2"), Some("0192-abc"));
        assert_eq!(visit_of_call("nodot"), None);
    }
}
