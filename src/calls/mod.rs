//! Calls to the homes: the right to open a camera (`rights`, pure) and the
//! calls the staff handling an alarm open to the client's terminal.
//! Scheduled visits' calls are in `schedule::calls`.

pub mod media;
pub mod rights;

use etahoiva_proto::HubToEdge;
use serde::Serialize;
use utoipa::ToSchema;

use crate::alerts::AlertsError;
use crate::devices::registry::Outbound;
use crate::startup::AppState;
use crate::store::{new_id, SessionUser, StoreError};
use rights::{AlarmFacts, AlarmVideo, Caller, Decision, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Alerts(#[from] AlertsError),
    #[error("call refused: {0}")]
    Refused(Refusal),
    #[error("the alarm has no client terminal to call")]
    NoTerminal,
}

/// A call offered to a terminal.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OpenedCall {
    pub call_id: String,
    /// `alarm`.
    pub kind: String,
    /// The camera opens without the client's touch (the client's policy).
    pub auto_answer: bool,
    pub device_id: String,
}

/// The prefix of the call ids of alarm calls: `alarm:<alert id>.<call>`.
const ALARM_CALL: &str = "alarm:";

/// The alert an alarm call id belongs to.
pub fn alert_of_call(call_id: &str) -> Option<&str> {
    call_id
        .strip_prefix(ALARM_CALL)
        .and_then(|rest| rest.rsplit_once('.'))
        .map(|(alert, _)| alert)
}

/// Opens a video call to the terminal of an alarm for the person handling
/// it, as the client's policy allows; every decision is audited.
pub async fn alarm_call(
    state: &AppState,
    alert_id: &str,
    session: &SessionUser,
) -> Result<OpenedCall, CallError> {
    let view = state.store.alert_view(alert_id).await?;
    let client = match &view.client_id {
        Some(id) => Some(state.store.get_client(id).await?),
        None => None,
    };
    let device = view.device_id.clone().ok_or(CallError::NoTerminal)?;
    let online = state
        .devices
        .presence(&device)
        .is_some_and(|p| p.protocol >= 2);
    let teams = state.store.user_teams(&session.user.id).await?;
    let policy = client
        .as_ref()
        .and_then(|c| AlarmVideo::parse(&c.alarm_video))
        .unwrap_or(AlarmVideo::Ring);
    let status = view.status()?;
    let decision = rights::decide_alarm(
        Caller {
            id: &session.user.id,
            roles: &session.user.roles,
            teams: &teams,
        },
        AlarmFacts {
            status,
            team_id: view.team_id.as_deref(),
            escalated_team_id: view.escalated_team_id.as_deref(),
            claimed_by: view.claimed_by.as_deref(),
            answered_by: view.answered_by.as_deref(),
        },
        policy,
        online,
    );
    let target = view.client_id.as_deref().unwrap_or(alert_id);
    let (kind, auto_answer) = match decision {
        Decision::Refuse(refusal) => {
            tracing::warn!(alert_id, user_id = %session.user.id, refusal = refusal.code(), "alarm call refused");
            state
                .store
                .audit(
                    Some(&session.user.id),
                    "call.refused",
                    Some(target),
                    Some(&format!("{} purpose=alarm {alert_id}", refusal.code())),
                )
                .await?;
            return Err(CallError::Refused(refusal));
        }
        Decision::AutoAnswer { kind, .. } => (kind, true),
        Decision::Ring { kind, .. } => (kind, false),
    };
    let call_id = format!("{ALARM_CALL}{alert_id}.{}", new_id());
    let caller = crate::schedule::notify::first_name(&session.user.display_name);
    // On record and with its media leg before the terminal hears of it: its
    // answer may come back at once.
    state
        .store
        .create_call(&crate::store::calls::NewCall {
            id: &call_id,
            kind: "alarm",
            client_id: view.client_id.as_deref(),
            visit_id: None,
            alert_id: Some(alert_id),
            device_id: Some(&device),
            caller_id: &session.user.id,
            auto_answer,
            now: crate::store::now_ms(),
        })
        .await?;
    let media = media::prepare_terminal(state, &call_id, &device).await;
    let sent = state.devices.send(
        &device,
        Outbound::Send(HubToEdge::CallOffer {
            call_id: call_id.clone(),
            kind,
            caller,
            visit_id: None,
            auto_answer,
        }),
    );
    if !sent {
        media::abandon(state, &call_id);
        state
            .store
            .call_reported(
                &call_id,
                "ended",
                Some("terminal_offline"),
                crate::store::now_ms(),
            )
            .await?;
        return Err(CallError::Refused(Refusal::TerminalOffline));
    }
    if let Some(offer) = media {
        media::send_terminal_offer(state, &call_id, &device, offer);
    }
    let how = if auto_answer {
        "auto-answer"
    } else {
        "ringing"
    };
    state
        .store
        .audit(
            Some(&session.user.id),
            "call.open",
            Some(target),
            Some(&format!("call {call_id} alarm {how} alert={alert_id}")),
        )
        .await?;
    state
        .alerts
        .note(
            alert_id,
            &session.user.id,
            "call",
            &format!("video call to the home, {how}"),
        )
        .await?;
    tracing::info!(alert_id, %call_id, auto_answer, "alarm call offered");
    Ok(OpenedCall {
        call_id,
        kind: "alarm".into(),
        auto_answer,
        device_id: device,
    })
}

/// A terminal reported what became of an alarm call: noted on the alert,
/// if the alert is this terminal's.
pub async fn alarm_call_update(
    state: &AppState,
    device_id: &str,
    call_id: &str,
    call_state: etahoiva_proto::CallState,
) -> Result<(), CallError> {
    let Some(alert_id) = alert_of_call(call_id) else {
        return Ok(());
    };
    let view = match state.store.alert_view(alert_id).await {
        Ok(v) => v,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if view.device_id.as_deref() != Some(device_id) {
        state
            .store
            .audit(
                Some(device_id),
                "call.refused",
                Some(alert_id),
                Some("call update for another terminal's alarm"),
            )
            .await?;
        return Ok(());
    }
    let (record, reason) = crate::store::calls::reported(call_state);
    state
        .store
        .call_reported(call_id, record, reason, crate::store::now_ms())
        .await?;
    let what = serde_json::to_value(call_state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    state
        .alerts
        .note(
            alert_id,
            device_id,
            "call_update",
            &format!("the terminal: {what}"),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_call_ids_name_their_alert() {
        assert_eq!(alert_of_call("alarm:0192-x.0193-y"), Some("0192-x"));
        assert_eq!(alert_of_call("0192-abc.2"), None, "a visit's call");
        assert_eq!(alert_of_call("alarm:nodot"), None);
    }
}
