//! The console's call signalling: WebSocket `/api/v1/calls/live`.
//!
//! From the console (JSON, tagged `type`): `join {call_id}` asks for the
//! media leg of a call the user opened; `answer {call_id, leg_id, sdp}`;
//! `candidate {call_id, leg_id, candidate}`; `restart_ice {call_id, leg_id}`
//! after a network change; `hang_up {call_id}`. From the hub: `offer`,
//! `state`, `connected`, `disconnected`, `refused`, `quality`, `ping`.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use super::error::ApiError;
use crate::auth::Authenticated;
use crate::calls::media::{self, ConsoleOut, MediaError};
use crate::startup::AppState;
use crate::store::{now_ms, SessionUser};

/// An SDP answer fits; anything larger is refused by the socket.
const MAX_FRAME: usize = 64 * 1024;
const PING: Duration = Duration::from_secs(15);
const QUALITY_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ConsoleIn {
    Join {
        call_id: String,
    },
    Answer {
        call_id: String,
        leg_id: String,
        sdp: String,
    },
    Candidate {
        call_id: String,
        leg_id: String,
        #[serde(default)]
        candidate: String,
    },
    RestartIce {
        call_id: String,
        leg_id: String,
    },
    HangUp {
        call_id: String,
    },
    /// The caller invites a second professional.
    Invite {
        call_id: String,
        user_id: String,
    },
    /// A guest leaves; the call goes on.
    Leave {
        call_id: String,
    },
}

#[utoipa::path(get, path = "/api/v1/calls/live", tag = "calls",
    responses((status = 101, description = "WebSocket of call signalling"), (status = 401), (status = 403)))]
pub async fn live(
    State(state): State<AppState>,
    Authenticated(session): Authenticated,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !super::alerts::same_origin(&headers) {
        tracing::warn!(user_id = %session.user.id, "call signalling refused: foreign origin");
        return Err(ApiError::Forbidden);
    }
    let token_hash = crate::auth::request_token(&headers).map(|t| crate::auth::token_hash(&t));
    Ok(upgrade
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("call_signalling", user_id = %session.user.id);
            session_loop(state, session, token_hash, socket).instrument(span)
        }))
}

async fn send(socket: &mut WebSocket, value: &serde_json::Value) -> bool {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .is_ok()
}

fn out(call_id: &str, message: &ConsoleOut) -> serde_json::Value {
    let mut v = serde_json::to_value(message).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("call_id".into(), call_id.into());
    }
    v
}

async fn session_loop(
    state: AppState,
    mut session: SessionUser,
    token_hash: Option<String>,
    mut socket: WebSocket,
) {
    let mut signals = state.calls.subscribe();
    // Calls this connection joined.
    let mut joined: HashSet<String> = HashSet::new();
    let mut ping = tokio::time::interval(PING);
    let mut quality = tokio::time::interval(QUALITY_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                let text = match message {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let parsed: ConsoleIn = match serde_json::from_str(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        let refused = ConsoleOut::Refused { message: format!("malformed message: {e}") };
                        if !send(&mut socket, &out("", &refused)).await { break }
                        continue;
                    }
                };
                if !handle(&state, &session, parsed, &mut joined, &mut socket).await {
                    break;
                }
            }
            signal = signals.recv() => match signal {
                Ok(signal) => {
                    let to_me = signal.to_user.as_deref() == Some(session.user.id.as_str());
                    if signal.to_user.is_some() && !to_me {
                        continue;
                    }
                    // Invitations reach the invitee's consoles wherever they are.
                    let invitation = matches!(signal.message, ConsoleOut::Invited { .. });
                    if !(joined.contains(&signal.call_id) || (to_me && invitation)) {
                        continue;
                    }
                    if !send(&mut socket, &out(&signal.call_id, &signal.message)).await { break }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            },
            _ = quality.tick(), if !joined.is_empty() => {
                for call_id in joined.clone() {
                    let legs = state.relay.quality(&call_id).await;
                    let v = serde_json::json!({"type": "quality", "call_id": call_id, "legs": legs});
                    if !send(&mut socket, &v).await { return }
                }
            }
            _ = ping.tick() => {
                if let Some(hash) = &token_hash {
                    match state.store.session_user(hash, now_ms()).await {
                        Ok(Some(current)) => session = current,
                        _ => break,
                    }
                }
                if !send(&mut socket, &serde_json::json!({"type": "ping", "server_time": now_ms()})).await {
                    break;
                }
            }
        }
    }
    // A console that goes away leaves its legs; the call itself stays
    // until hung up (the console may come back after a reload).
    for call_id in &joined {
        for (leg_id, party) in state.relay.legs_of(call_id) {
            if party == crate::relay::Party::Staff(session.user.id.clone()) {
                state.relay.close_leg(&leg_id);
            }
        }
    }
}

/// Handles one message; false ends the connection.
async fn handle(
    state: &AppState,
    session: &SessionUser,
    message: ConsoleIn,
    joined: &mut HashSet<String>,
    socket: &mut WebSocket,
) -> bool {
    let refuse = |call_id: &str, e: &dyn std::fmt::Display| {
        out(
            call_id,
            &ConsoleOut::Refused {
                message: e.to_string(),
            },
        )
    };
    match message {
        ConsoleIn::Join { call_id } => match media::console_join(state, session, &call_id).await {
            Ok(offer) => {
                joined.insert(call_id.clone());
                let m = ConsoleOut::Offer {
                    leg_id: offer.leg_id,
                    sdp: offer.sdp,
                    ice_restart: false,
                    ice_servers: media::ice_servers_for(state, &session.user.id),
                };
                send(socket, &out(&call_id, &m)).await
            }
            Err(e) => {
                tracing::info!(%call_id, error = %e, "call media refused");
                send(socket, &refuse(&call_id, &e)).await
            }
        },
        ConsoleIn::Answer {
            call_id,
            leg_id,
            sdp,
        } => {
            if !media::staff_leg(state, session, &call_id, &leg_id) {
                return send(socket, &refuse(&call_id, &MediaError::NotYours)).await;
            }
            match state.relay.answer(&leg_id, &sdp).await {
                Ok(()) => true,
                Err(e) => send(socket, &refuse(&call_id, &e)).await,
            }
        }
        ConsoleIn::Candidate {
            call_id,
            leg_id,
            candidate,
        } => {
            if media::staff_leg(state, session, &call_id, &leg_id) {
                let _ = state.relay.candidate(&leg_id, &candidate);
            }
            true
        }
        ConsoleIn::RestartIce { call_id, leg_id } => {
            if !media::staff_leg(state, session, &call_id, &leg_id) {
                return send(socket, &refuse(&call_id, &MediaError::NotYours)).await;
            }
            match state.relay.restart_ice(&leg_id).await {
                Ok(offer) => {
                    let m = ConsoleOut::Offer {
                        leg_id: offer.leg_id,
                        sdp: offer.sdp,
                        ice_restart: true,
                        ice_servers: media::ice_servers_for(state, &session.user.id),
                    };
                    send(socket, &out(&call_id, &m)).await
                }
                Err(e) => send(socket, &refuse(&call_id, &e)).await,
            }
        }
        ConsoleIn::HangUp { call_id } => {
            match media::console_hang_up(state, session, &call_id).await {
                Ok(()) => true,
                Err(e) => send(socket, &refuse(&call_id, &e)).await,
            }
        }
        ConsoleIn::Invite { call_id, user_id } => {
            match media::invite(state, session, &call_id, &user_id).await {
                Ok(()) => true,
                Err(e) => send(socket, &refuse(&call_id, &e)).await,
            }
        }
        ConsoleIn::Leave { call_id } => {
            media::console_leave(state, session, &call_id);
            joined.remove(&call_id);
            true
        }
    }
}

/// A person the caller may invite into a call.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Invitable {
    pub id: String,
    pub display_name: String,
    pub roles: Vec<crate::store::Role>,
}

/// Who the caller of a running call may invite: professionals, nurses and
/// supervisors with an active account, not the caller.
#[utoipa::path(
    get,
    path = "/calls/{id}/invitable",
    tag = "calls",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, description = "People who may be invited", body = [Invitable]),
        (status = 403, description = "Not the call's caller", body = super::ErrorBody),
        (status = 404, description = "No such call", body = super::ErrorBody),
    )
)]
pub async fn invitable(
    State(state): State<AppState>,
    Authenticated(session): Authenticated,
    axum::extract::Path(call_id): axum::extract::Path<String>,
) -> Result<super::ApiJson<Vec<Invitable>>, ApiError> {
    use crate::store::Role;
    let call = state.store.get_call(&call_id).await?;
    if call.caller_id.as_deref() != Some(session.user.id.as_str()) {
        return Err(ApiError::Forbidden);
    }
    let people = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| !u.disabled && u.id != session.user.id)
        .filter(|u| {
            u.roles
                .iter()
                .any(|r| matches!(r, Role::Professional | Role::Nurse | Role::Supervisor))
        })
        .map(|u| Invitable {
            id: u.id,
            display_name: u.display_name,
            roles: u.roles,
        })
        .collect();
    Ok(super::ApiJson(people))
}
