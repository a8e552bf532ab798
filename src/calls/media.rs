//! Media of calls: the signalling between the consoles (WebSocket
//! `/api/v1/calls/live`), the terminals (protocol 4 on the link) and the
//! relay. A leg is opened only for the call's caller and the call's own
//! terminal, after the call rights decided the call; everything else is
//! refused and audited.

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
}

/// The hub's fan-out of call signals to the consoles.
#[derive(Clone)]
pub struct Board {
    tx: broadcast::Sender<Arc<CallSignal>>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Board {
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
                } => state.calls.publish(
                    &call_id,
                    None,
                    ConsoleOut::Disconnected {
                        leg_id,
                        party: party_name(&party),
                        failed: false,
                    },
                ),
                RelayEvent::Failed {
                    call_id,
                    leg_id,
                    party,
                } => state.calls.publish(
                    &call_id,
                    None,
                    ConsoleOut::Disconnected {
                        leg_id,
                        party: party_name(&party),
                        failed: true,
                    },
                ),
            }
        }
    });
}

/// Sends a terminal the media offer of a call it was just offered, if it
/// speaks protocol 4.
pub async fn offer_terminal(state: &AppState, call_id: &str, device_id: &str) {
    let speaks_media = state
        .devices
        .presence(device_id)
        .is_some_and(|p| p.protocol >= MEDIA_PROTOCOL_VERSION);
    if !speaks_media {
        return;
    }
    match state
        .relay
        .open_leg(call_id, Party::Terminal(device_id.to_string()))
        .await
    {
        Ok(LegOffer { leg_id, sdp, .. }) => {
            let sent = state.devices.send(
                device_id,
                Outbound::Send(HubToEdge::MediaOffer {
                    call_id: call_id.to_string(),
                    leg_id: leg_id.clone(),
                    sdp,
                    ice_restart: false,
                }),
            );
            if !sent {
                state.relay.close_leg(&leg_id);
            }
        }
        Err(e) => tracing::warn!(call_id, device_id, error = %e, "no media leg for the terminal"),
    }
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
        _ => state.relay.close_call(call_id),
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
    if call.caller_id.as_deref() != Some(session.user.id.as_str()) {
        state
            .store
            .audit(
                Some(&session.user.id),
                "call.refused",
                call.client_id.as_deref().or(Some(call_id)),
                Some(&format!("media of call {call_id}: not the caller")),
            )
            .await?;
        return Err(MediaError::NotYours);
    }
    if call.state == "ended" {
        return Err(MediaError::Ended);
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
