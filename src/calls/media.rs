//! Media of calls: the signalling between the consoles (WebSocket
//! `/api/v1/calls/live`), the terminals (protocol 4 on the link) and the
//! relay. A leg is opened only for the call's caller and the call's own
//! terminal, after the call rights decided the call; everything else is
//! refused and audited.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use etahoiva_proto::{CallState, HubToEdge, MEDIA_PROTOCOL_VERSION};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::devices::registry::Outbound;
use crate::relay::{LegOffer, Party, RelayEvent};
use crate::startup::AppState;
use crate::store::{now_ms, SessionUser, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Relay(#[from] crate::relay::RelayError),
    #[error("this call is not yours")]
    NotYours,
    #[error("the call has ended")]
    Ended,
    #[error("only the caller may invite")]
    NotCaller,
    #[error("that person cannot join video visits")]
    NotAProfessional,
}

/// What the consoles are told about calls.
#[derive(Clone, Debug, Serialize)]
pub struct CallSignal {
    pub call_id: String,
    /// Only this user's consoles receive it (offers); None: everybody in the call.
    #[serde(skip)]
    pub to_user: Option<String>,
    #[serde(flatten)]
    pub message: ConsoleOut,
}

/// Messages to a console, tagged with `type`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsoleOut {
    /// The hub's offer for the console's leg (answer with `answer`).
    Offer {
        leg_id: String,
        sdp: String,
        ice_restart: bool,
        /// TURN servers with fresh credentials for the console's connection.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<crate::relay::turn::IceServer>,
    },
    /// The call moved on.
    State {
        state: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A leg is connected (ICE and DTLS done).
    Connected {
        leg_id: String,
        party: &'static str,
        setup_ms: u64,
    },
    /// A leg lost its connection, for a moment or for good.
    Disconnected {
        leg_id: String,
        party: &'static str,
        failed: bool,
    },
    Refused {
        message: String,
    },
    /// Somebody invites this user into a running call.
    Invited {
        by: String,
        client_first_name: String,
    },
    /// Who is in the call: each leg with its participant's name and role.
    Participants {
        participants: Vec<Participant>,
    },
    /// A participant's link changed: audio only, or the picture again.
    Link {
        leg_id: String,
        party: &'static str,
        audio_only: bool,
        estimate_bps: u64,
    },
    /// A participant left.
    Left {
        leg_id: String,
        party: &'static str,
    },
}

/// A participant of a call as the consoles show them; `leg_id` is also the
/// stream id of their media on the other legs.
#[derive(Clone, Debug, Serialize)]
pub struct Participant {
    pub leg_id: String,
    /// `client`, `caller` or `guest`.
    pub role: &'static str,
    pub name: String,
}

/// The hub's fan-out of call signals to the consoles, and who was invited
/// into which call.
#[derive(Clone)]
pub struct Board {
    tx: broadcast::Sender<Arc<CallSignal>>,
    guests: Arc<std::sync::Mutex<HashMap<String, HashSet<String>>>>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            tx: broadcast::channel(1024).0,
            guests: Default::default(),
        }
    }
}

impl Board {
    fn guests(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.guests.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_guest(&self, call_id: &str, user_id: &str) -> bool {
        self.guests()
            .get(call_id)
            .is_some_and(|g| g.contains(user_id))
    }

    fn invite(&self, call_id: &str, user_id: &str) {
        self.guests()
            .entry(call_id.to_string())
            .or_default()
            .insert(user_id.to_string());
    }

    fn forget_call(&self, call_id: &str) {
        self.guests().remove(call_id);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CallSignal>> {
        self.tx.subscribe()
    }

    pub fn publish(&self, call_id: &str, to_user: Option<&str>, message: ConsoleOut) {
        let _ = self.tx.send(Arc::new(CallSignal {
            call_id: call_id.to_string(),
            to_user: to_user.map(str::to_string),
            message,
        }));
    }
}

fn party_name(p: &Party) -> &'static str {
    match p {
        Party::Staff(_) => "staff",
        Party::Terminal(_) => "terminal",
    }
}

/// Passes the relay's events to the consoles; runs for the hub's life.
pub fn spawn_relay_events(state: AppState) {
    let mut events = state.relay.subscribe();
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let connected_call = match &event {
                RelayEvent::Connected { call_id, .. } => Some(call_id.clone()),
                _ => None,
            };
            record_participation(&state, &event).await;
            match event {
                RelayEvent::Connected {
                    call_id,
                    leg_id,
                    party,
                    setup_ms,
                } => state.calls.publish(
                    &call_id,
                    None,
                    ConsoleOut::Connected {
                        leg_id,
                        party: party_name(&party),
                        setup_ms,
                    },
                ),
                RelayEvent::Disconnected {
                    call_id,
                    leg_id,
                    party,
                    failed,
                } => state.calls.publish(
                    &call_id,
                    None,
                    ConsoleOut::Disconnected {
                        leg_id,
                        party: party_name(&party),
                        failed,
                    },
                ),
                RelayEvent::Offer {
                    call_id,
                    leg_id,
                    party,
                    sdp,
                } => match party {
                    Party::Staff(user) => state.calls.publish(
                        &call_id,
                        Some(&user),
                        ConsoleOut::Offer {
                            leg_id,
                            sdp,
                            ice_restart: false,
                            ice_servers: ice_servers_for(&state, &user),
                        },
                    ),
                    Party::Terminal(device) => {
                        let ice_servers = wire_ice_servers(&state, &device);
                        state.devices.send(
                            &device,
                            Outbound::Send(HubToEdge::MediaOffer {
                                call_id,
                                leg_id,
                                sdp,
                                ice_restart: false,
                                ice_servers,
                            }),
                        );
                    }
                },
                RelayEvent::Quality {
                    call_id,
                    leg_id,
                    party,
                    audio_only,
                    estimate_bps,
                } => state.calls.publish(
                    &call_id,
                    None,
                    ConsoleOut::Link {
                        leg_id,
                        party: party_name(&party),
                        audio_only,
                        estimate_bps,
                    },
                ),
                RelayEvent::Left {
                    call_id,
                    leg_id,
                    party,
                } => {
                    state.calls.publish(
                        &call_id,
                        None,
                        ConsoleOut::Left {
                            leg_id,
                            party: party_name(&party),
                        },
                    );
                    publish_participants(&state, &call_id).await;
                }
            }
            if let Some(call_id) = connected_call {
                publish_participants(&state, &call_id).await;
            }
        }
    });
}

/// TURN servers with fresh credentials for a participant (user or terminal).
pub fn ice_servers_for(state: &AppState, id: &str) -> Vec<crate::relay::turn::IceServer> {
    crate::relay::turn::ice_servers(&state.turn, id, std::time::SystemTime::now())
}

fn wire_ice_servers(state: &AppState, device_id: &str) -> Vec<etahoiva_proto::IceServer> {
    ice_servers_for(state, device_id)
        .into_iter()
        .map(|s| etahoiva_proto::IceServer {
            urls: s.urls,
            username: s.username,
            credential: s.credential,
        })
        .collect()
}

/// Opens the media leg of a terminal about to be offered a call, if it
/// speaks protocol 4: before the call offer, so the leg exists when the
/// terminal answers (at once, with auto-answer).
pub async fn prepare_terminal(
    state: &AppState,
    call_id: &str,
    device_id: &str,
) -> Option<LegOffer> {
    let speaks_media = state
        .devices
        .presence(device_id)
        .is_some_and(|p| p.protocol >= MEDIA_PROTOCOL_VERSION);
    if !speaks_media {
        return None;
    }
    match state
        .relay
        .open_leg(call_id, Party::Terminal(device_id.to_string()))
        .await
    {
        Ok(offer) => Some(offer),
        Err(e) => {
            tracing::warn!(call_id, device_id, error = %e, "no media leg for the terminal");
            None
        }
    }
}

/// Sends the terminal its leg's offer, right after the call offer.
pub fn send_terminal_offer(state: &AppState, call_id: &str, device_id: &str, offer: LegOffer) {
    let LegOffer { leg_id, sdp, .. } = offer;
    let sent = state.devices.send(
        device_id,
        Outbound::Send(HubToEdge::MediaOffer {
            call_id: call_id.to_string(),
            leg_id: leg_id.clone(),
            sdp,
            ice_restart: false,
            ice_servers: wire_ice_servers(state, device_id),
        }),
    );
    if !sent {
        state.relay.close_leg(&leg_id);
    }
}

/// The call could not be offered: its media goes too.
pub fn abandon(state: &AppState, call_id: &str) {
    state.relay.close_call(call_id);
    state.calls.forget_call(call_id);
}

/// The leg, if it is this terminal's in this call.
fn terminal_leg(state: &AppState, device_id: &str, call_id: &str, leg_id: &str) -> bool {
    state
        .relay
        .leg(leg_id)
        .is_some_and(|l| l.call_id == call_id && l.party == Party::Terminal(device_id.to_string()))
}

async fn refuse_terminal(state: &AppState, device_id: &str, call_id: &str, what: &str) {
    tracing::warn!(
        device_id,
        call_id,
        what,
        "media message for another leg refused"
    );
    let _ = state
        .store
        .audit(
            Some(device_id),
            "call.refused",
            Some(call_id),
            Some(&format!("{what} for a leg that is not this terminal's")),
        )
        .await;
}

/// The terminal's answer to its media offer.
pub async fn terminal_answer(
    state: &AppState,
    device_id: &str,
    call_id: &str,
    leg_id: &str,
    sdp: &str,
) {
    if !terminal_leg(state, device_id, call_id, leg_id) {
        refuse_terminal(state, device_id, call_id, "media answer").await;
        return;
    }
    if let Err(e) = state.relay.answer(leg_id, sdp).await {
        tracing::warn!(device_id, call_id, error = %e, "terminal's media answer refused");
    }
}

pub async fn terminal_candidate(
    state: &AppState,
    device_id: &str,
    call_id: &str,
    leg_id: &str,
    candidate: &str,
) {
    if !terminal_leg(state, device_id, call_id, leg_id) {
        refuse_terminal(state, device_id, call_id, "ICE candidate").await;
        return;
    }
    let _ = state.relay.candidate(leg_id, candidate);
}

/// The terminal's network changed: a new offer with fresh ICE credentials.
pub async fn terminal_restart(state: &AppState, device_id: &str, call_id: &str, leg_id: &str) {
    if !terminal_leg(state, device_id, call_id, leg_id) {
        refuse_terminal(state, device_id, call_id, "ICE restart").await;
        return;
    }
    match state.relay.restart_ice(leg_id).await {
        Ok(offer) => {
            state.devices.send(
                device_id,
                Outbound::Send(HubToEdge::MediaOffer {
                    call_id: call_id.to_string(),
                    leg_id: offer.leg_id,
                    sdp: offer.sdp,
                    ice_restart: true,
                    ice_servers: wire_ice_servers(state, device_id),
                }),
            );
        }
        Err(e) => tracing::warn!(device_id, call_id, error = %e, "ICE restart failed"),
    }
}

/// What the terminal reported of a call, for the media: an answer opens
/// the media gate, an end closes every leg. The caller has checked that
/// the call is this terminal's.
pub fn terminal_state(state: &AppState, call_id: &str, call_state: CallState) {
    let (name, reason) = crate::store::calls::reported(call_state);
    match call_state {
        CallState::Answered => state.relay.open_gate(call_id),
        CallState::Ringing => {}
        _ => {
            state.relay.close_call(call_id);
            state.calls.forget_call(call_id);
        }
    }
    state.calls.publish(
        call_id,
        None,
        ConsoleOut::State {
            state: name.to_string(),
            reason: reason.map(str::to_string),
        },
    );
}

/// The console of the call's caller asks for its media leg (again, after
/// a reload): the hub's offer goes to that user's consoles.
pub async fn console_join(
    state: &AppState,
    session: &SessionUser,
    call_id: &str,
) -> Result<LegOffer, MediaError> {
    let call = match state.store.get_call(call_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => return Err(MediaError::NotYours),
        Err(e) => return Err(e.into()),
    };
    let caller = call.caller_id.as_deref() == Some(session.user.id.as_str());
    let guest = state.calls.is_guest(call_id, &session.user.id);
    if !caller && !guest {
        audit_call(
            state,
            &session.user.id,
            "call.refused",
            &call,
            &format!("media of call {call_id}: neither the caller nor invited"),
        )
        .await?;
        return Err(MediaError::NotYours);
    }
    if call.state == "ended" {
        return Err(MediaError::Ended);
    }
    if guest {
        audit_call(
            state,
            &session.user.id,
            "call.join",
            &call,
            &format!("joined call {call_id} as an invited professional"),
        )
        .await?;
    }
    let me = Party::Staff(session.user.id.clone());
    // One leg per caller: a reload replaces the old one.
    for (leg_id, party) in state.relay.legs_of(call_id) {
        if party == me {
            state.relay.close_leg(&leg_id);
        }
    }
    let offer = state.relay.open_leg(call_id, me).await?;
    if call.state == "answered" {
        state.relay.open_gate(call_id);
    }
    Ok(offer)
}

/// A leg of this user in this call.
pub fn staff_leg(state: &AppState, session: &SessionUser, call_id: &str, leg_id: &str) -> bool {
    state
        .relay
        .leg(leg_id)
        .is_some_and(|l| l.call_id == call_id && l.party == Party::Staff(session.user.id.clone()))
}

/// The caller hangs up: the terminal is told, the call is on record as
/// ended by the staff, and every leg closes.
pub async fn console_hang_up(
    state: &AppState,
    session: &SessionUser,
    call_id: &str,
) -> Result<(), MediaError> {
    let call = state.store.get_call(call_id).await?;
    if call.caller_id.as_deref() != Some(session.user.id.as_str()) {
        return Err(MediaError::NotYours);
    }
    if let Some(device) = &call.device_id {
        state.devices.send(
            device,
            Outbound::Send(HubToEdge::CallEnd {
                call_id: call_id.to_string(),
                reason: "hung_up_by_staff".into(),
            }),
        );
    }
    state
        .store
        .call_reported(call_id, "ended", Some("hung_up_by_staff"), now_ms())
        .await?;
    state.relay.close_call(call_id);
    state.calls.forget_call(call_id);
    state.calls.publish(
        call_id,
        None,
        ConsoleOut::State {
            state: "ended".into(),
            reason: Some("hung_up_by_staff".into()),
        },
    );
    Ok(())
}

/// A guest leaves: their leg closes, the call goes on.
pub fn console_leave(state: &AppState, session: &SessionUser, call_id: &str) {
    let me = Party::Staff(session.user.id.clone());
    for (leg_id, party) in state.relay.legs_of(call_id) {
        if party == me {
            state.relay.close_leg(&leg_id);
        }
    }
}

/// The caller invites a second professional (a doctor, a physiotherapist,
/// a social worker, an interpreter, another nurse) into a running call;
/// audited. The invitee's consoles are told.
pub async fn invite(
    state: &AppState,
    session: &SessionUser,
    call_id: &str,
    user_id: &str,
) -> Result<(), MediaError> {
    use crate::store::Role;
    let call = state.store.get_call(call_id).await?;
    if call.caller_id.as_deref() != Some(session.user.id.as_str()) {
        return Err(MediaError::NotCaller);
    }
    if call.state == "ended" {
        return Err(MediaError::Ended);
    }
    let invitee = match state.store.get_user(user_id).await {
        Ok(u) => u,
        Err(StoreError::NotFound(_)) => return Err(MediaError::NotAProfessional),
        Err(e) => return Err(e.into()),
    };
    let may_join = !invitee.disabled
        && invitee
            .roles
            .iter()
            .any(|r| matches!(r, Role::Professional | Role::Nurse | Role::Supervisor));
    if !may_join {
        audit_call(
            state,
            &session.user.id,
            "call.refused",
            &call,
            &format!("invitation of {user_id} into call {call_id}: no care role"),
        )
        .await?;
        return Err(MediaError::NotAProfessional);
    }
    state.calls.invite(call_id, user_id);
    audit_call(
        state,
        &session.user.id,
        "call.invite",
        &call,
        &format!("invited {user_id} into call {call_id}"),
    )
    .await?;
    let client_first_name = match &call.client_id {
        Some(id) => state
            .store
            .get_client(id)
            .await
            .map(|c| crate::schedule::notify::first_name(&c.name))
            .unwrap_or_default(),
        None => String::new(),
    };
    state.calls.publish(
        call_id,
        Some(user_id),
        ConsoleOut::Invited {
            by: session.user.display_name.clone(),
            client_first_name,
        },
    );
    Ok(())
}

/// An audit entry about a call, by a staff member: its target is the
/// call's client (or the call when it has none).
async fn audit_call(
    state: &AppState,
    actor: &str,
    action: &str,
    call: &crate::store::calls::CallRecord,
    detail: &str,
) -> Result<(), StoreError> {
    state
        .store
        .audit(
            Some(actor),
            action,
            call.client_id.as_deref().or(Some(call.id.as_str())),
            Some(detail),
        )
        .await
}

/// Keeps who took part in each call on record: a participant joins when
/// their media connects and leaves when their leg closes.
async fn record_participation(state: &AppState, event: &RelayEvent) {
    let (call_id, party, joined) = match event {
        RelayEvent::Connected { call_id, party, .. } => (call_id, party, true),
        RelayEvent::Left { call_id, party, .. } => (call_id, party, false),
        _ => return,
    };
    let now = now_ms();
    let id = match party {
        Party::Staff(u) | Party::Terminal(u) => u.as_str(),
    };
    let result = if joined {
        let Ok(call) = state.store.get_call(call_id).await else {
            return;
        };
        let (role, name) = participant_of(state, &call, party).await;
        state.store.call_joined(call_id, id, role, &name, now).await
    } else {
        state.store.call_left(call_id, id, now).await
    };
    if let Err(e) = result {
        tracing::warn!(call_id, error = %e, "call participation not recorded");
    }
}

/// A party's role in a call and the name the others see.
async fn participant_of(
    state: &AppState,
    call: &crate::store::calls::CallRecord,
    party: &Party,
) -> (&'static str, String) {
    match party {
        Party::Terminal(_) => {
            let name = match &call.client_id {
                Some(id) => state
                    .store
                    .get_client(id)
                    .await
                    .map(|c| crate::schedule::notify::first_name(&c.name))
                    .unwrap_or_default(),
                None => String::new(),
            };
            ("client", name)
        }
        Party::Staff(user) => {
            let name = state
                .store
                .get_user(user)
                .await
                .map(|u| u.display_name)
                .unwrap_or_default();
            let role = if call.caller_id.as_deref() == Some(user.as_str()) {
                "caller"
            } else {
                "guest"
            };
            (role, name)
        }
    }
}

/// Tells everybody in the call who is in it.
pub async fn publish_participants(state: &AppState, call_id: &str) {
    let Ok(call) = state.store.get_call(call_id).await else {
        return;
    };
    let mut participants = Vec::new();
    for (leg_id, party) in state.relay.legs_of(call_id) {
        let (role, name) = participant_of(state, &call, &party).await;
        participants.push(Participant { leg_id, role, name });
    }
    participants.sort_by(|a, b| a.leg_id.cmp(&b.leg_id));
    state
        .calls
        .publish(call_id, None, ConsoleOut::Participants { participants });
}
