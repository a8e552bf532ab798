//! The terminal link on the hub: one WebSocket per terminal over mutual TLS.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use etahoiva_proto::{
    decode, encode, DecodeError, EdgeToHub, ErrorCode, HubToEdge, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
};
use futures_util::StreamExt;
use tracing::Instrument;

use super::identity::{peer_identity, PeerCertificate};
use super::registry::{Outbound, Presence};
use crate::startup::{AppState, PeerAddr};
use crate::store::{now_ms, DeviceRecord};

/// A terminal must say hello this soon after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames above this close the link (frames above the protocol limit get an error reply).
const HARD_FRAME_LIMIT: usize = 1024 * 1024;
/// After this many bad frames in a row the link is closed.
const MAX_BAD_FRAMES: u32 = 50;

fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, reason.to_string()).into_response()
}

/// `GET /link`: checks the presented certificate against the device records,
/// then upgrades to the WebSocket link.
pub async fn link(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    cert: Option<Extension<PeerCertificate>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let address = peer.map(|p| p.0 .0.to_string()).unwrap_or_default();
    let Some(Extension(PeerCertificate(der))) = cert else {
        return refuse(StatusCode::UNAUTHORIZED, "a device certificate is required");
    };
    let Some(identity) = peer_identity(&der) else {
        tracing::warn!(%address, "link refused: certificate names no device");
        return refuse(StatusCode::FORBIDDEN, "the certificate names no device");
    };
    let device = match state.store.get_device(&identity.device_id).await {
        Ok(device) => device,
        Err(crate::store::StoreError::NotFound(_)) => {
            tracing::warn!(device_id = %identity.device_id, %address, "link refused: unknown device");
            return refuse(StatusCode::FORBIDDEN, "unknown device");
        }
        Err(e) => {
            tracing::error!(error = %e, "link refused: store unavailable");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the hub cannot reach its store",
            );
        }
    };
    let refusal = if device.revoked_at.is_some() {
        Some("this device has been revoked")
    } else if device.cert_fingerprint != identity.fingerprint {
        Some("this certificate is not the current certificate of the device")
    } else {
        None
    };
    if let Some(reason) = refusal {
        tracing::warn!(device_id = %device.id, %address, reason, "link refused");
        metrics::counter!("etahoiva_link_refused_total").increment(1);
        let _ = state
            .store
            .audit(
                Some(&device.id),
                "device.link_refused",
                Some(&device.id),
                Some(reason),
            )
            .await;
        return refuse(StatusCode::FORBIDDEN, reason);
    }
    let span = tracing::info_span!("link", device_id = %device.id);
    upgrade
        // Terminals send small frames rarely: small buffers keep thousands of links cheap.
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| run(state, device, address, socket).instrument(span))
}

/// The heartbeat interval configured for a device, from its stored settings.
fn heartbeat_secs(device: &DeviceRecord) -> u64 {
    serde_json::from_str::<serde_json::Value>(&device.settings_json)
        .ok()
        .and_then(|v| v.get("heartbeat_secs").and_then(|h| h.as_u64()))
        .filter(|h| *h > 0)
        .unwrap_or(30)
}

async fn send(socket: &mut WebSocket, message: &HubToEdge) -> bool {
    socket
        .send(Message::Text(encode(message).into()))
        .await
        .is_ok()
}

fn error(code: ErrorCode, message: impl Into<String>, fatal: bool) -> HubToEdge {
    HubToEdge::Error {
        code,
        message: message.into(),
        fatal,
    }
}

async fn close_with(socket: &mut WebSocket, message: HubToEdge) {
    let _ = send(socket, &message).await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn run(state: AppState, device: DeviceRecord, address: String, mut socket: WebSocket) {
    // 1. Hello.
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, socket.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => decode::<EdgeToHub>(text.as_str()),
        Ok(_) => return,
        Err(_) => {
            tracing::warn!("link closed: no hello in time");
            return;
        }
    };
    let (protocol, agent_version, config_version, announced_heartbeat) = match hello {
        Ok(EdgeToHub::Hello {
            protocol,
            device_id,
            agent_version,
            config_version,
            heartbeat_secs,
        }) => {
            if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&protocol) {
                tracing::warn!(protocol, "link refused: unsupported protocol version");
                let text = format!(
                    "protocol version {protocol} is not supported; this hub speaks {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}"
                );
                close_with(
                    &mut socket,
                    error(ErrorCode::UnsupportedProtocol, text, true),
                )
                .await;
                return;
            }
            if device_id != device.id {
                tracing::warn!(claimed = %device_id, "link refused: certificate of another device");
                let _ = state
                    .store
                    .audit(
                        Some(&device.id),
                        "device.link_refused",
                        Some(&device_id),
                        Some("certificate of another device"),
                    )
                    .await;
                let text = format!(
                    "the certificate belongs to device {}, not {device_id}",
                    device.id
                );
                close_with(&mut socket, error(ErrorCode::IdentityMismatch, text, true)).await;
                return;
            }
            (protocol, agent_version, config_version, heartbeat_secs)
        }
        Ok(_) => {
            close_with(
                &mut socket,
                error(
                    ErrorCode::UnexpectedMessage,
                    "the first message must be a hello",
                    true,
                ),
            )
            .await;
            return;
        }
        Err(e) => {
            close_with(
                &mut socket,
                error(ErrorCode::Malformed, e.to_string(), true),
            )
            .await;
            return;
        }
    };

    // 2. Register and welcome.
    let now = now_ms();
    let (conn, mut outbound) = state.devices.register(
        &device.id,
        Presence {
            connected_at: now,
            last_seen: now,
            address: address.clone(),
            agent_version: agent_version.clone(),
            protocol,
            config_version,
        },
    );
    tracing::info!(%address, %agent_version, protocol, "terminal connected");
    if let Err(e) = state
        .store
        .record_connection(&device.id, &address, &agent_version, protocol)
        .await
    {
        tracing::warn!(error = %e, "cannot record the connection");
    }
    // The interval the terminal says it runs, else the one it was given.
    let heartbeat = announced_heartbeat
        .map(|h| h.clamp(5, 3600))
        .unwrap_or_else(|| heartbeat_secs(&device));
    let client_name = match &device.client_id {
        Some(id) => state.store.client_name(id).await.ok().flatten(),
        None => None,
    };
    let welcome = HubToEdge::Welcome {
        protocol,
        device_id: device.id.clone(),
        heartbeat_secs: heartbeat,
        server_time: now,
        client_name,
    };
    let mut alive = send(&mut socket, &welcome).await;
    if alive && device.settings_version as u64 > config_version {
        if let Ok(settings) = serde_json::from_str(&device.settings_json) {
            alive = send(
                &mut socket,
                &HubToEdge::ConfigPush {
                    version: device.settings_version as u64,
                    settings,
                },
            )
            .await;
        }
    }

    if alive && protocol >= 2 {
        if let Some(client_id) = &device.client_id {
            match crate::schedule::notify::nurse_names(&state.store).await {
                Ok(names) => match crate::schedule::notify::client_schedule(
                    &state.store,
                    client_id,
                    now_ms(),
                    &names,
                )
                .await
                {
                    Ok(schedule) => {
                        alive = send(&mut socket, &HubToEdge::Schedule(schedule)).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the client's schedule"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot read nurse names"),
            }
        }
    }

    if alive {
        // Queued to the link, which starts reading its queue below.
        let alerts = state.alerts.clone();
        let device_id = device.id.clone();
        tokio::spawn(async move { alerts.device_connected(&device_id, protocol).await });
    }

    // 3. Frames until the terminal goes, goes silent, or is told to go.
    let missed = state.settings.missed_heartbeats.max(1) as u64;
    let mut silence = Duration::from_secs(heartbeat.saturating_mul(missed));
    let mut bad_frames = 0u32;
    let reason = loop {
        if !alive {
            break "send failed";
        }
        tokio::select! {
            frame = tokio::time::timeout(silence, socket.next()) => {
                let frame = match frame {
                    Err(_) => break "missed heartbeats",
                    Ok(None) => break "closed by the terminal",
                    Ok(Some(Err(_))) => break "connection error",
                    Ok(Some(Ok(frame))) => frame,
                };
                state.devices.touch(&device.id, conn, now_ms());
                let reply = match frame {
                    Message::Text(text) => match decode::<EdgeToHub>(text.as_str()) {
                        Ok(message) => {
                            bad_frames = 0;
                            let applied = matches!(message, EdgeToHub::ConfigApplied { .. });
                            let reply = handle(&state, &device.id, device.client_id.as_deref(), message).await;
                            if applied {
                                // New settings may change the heartbeat interval.
                                if let Ok(current) = state.store.get_device(&device.id).await {
                                    silence = Duration::from_secs(heartbeat_secs(&current).saturating_mul(missed));
                                }
                            }
                            reply
                        }
                        Err(e) => {
                            bad_frames += 1;
                            let code = match e {
                                DecodeError::TooLarge(_) => ErrorCode::TooLarge,
                                DecodeError::Malformed(_) => ErrorCode::Malformed,
                            };
                            tracing::warn!(error = %e, "bad frame from terminal");
                            metrics::counter!("etahoiva_link_frames_rejected_total").increment(1);
                            Some(error(code, e.to_string(), false))
                        }
                    },
                    Message::Binary(_) => {
                        bad_frames += 1;
                        tracing::warn!("binary frame from terminal");
                        metrics::counter!("etahoiva_link_frames_rejected_total").increment(1);
                        Some(error(ErrorCode::Malformed, "binary frames are not part of the protocol", false))
                    }
                    Message::Close(_) => break "closed by the terminal",
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if bad_frames >= MAX_BAD_FRAMES {
                    close_with(&mut socket, error(ErrorCode::Malformed, "too many bad frames", true)).await;
                    break "too many bad frames";
                }
                if let Some(reply) = reply {
                    alive = send(&mut socket, &reply).await;
                }
            }
            command = outbound.recv() => match command {
                Some(Outbound::Send(message)) => alive = send(&mut socket, &message).await,
                Some(Outbound::Close(message)) => {
                    close_with(&mut socket, message).await;
                    break "closed by the hub";
                }
                None => break "hub shutting down",
            }
        }
    };
    if let Some(presence) = state.devices.unregister(&device.id, conn) {
        let _ = state
            .store
            .record_last_seen(&[(device.id.clone(), presence.last_seen)])
            .await;
    }
    tracing::info!(reason, "terminal disconnected");
}

/// Handles one message; returns the reply, if any.
/// `client_id` is the client the terminal was provisioned for.
async fn handle(
    state: &AppState,
    device_id: &str,
    client_id: Option<&str>,
    message: EdgeToHub,
) -> Option<HubToEdge> {
    match message {
        EdgeToHub::Heartbeat { .. } => None,
        EdgeToHub::Event(event) => {
            let span =
                tracing::info_span!("event", event_key = %event.key, kind = event.kind.as_str());
            if let Some(kind) = crate::alerts::Kind::of_event(&event.kind) {
                // An alarm: stored with its alert in one step, acknowledged once durable.
                let key = event.key.clone();
                let input = crate::store::alerts::AlarmInput {
                    device_id: device_id.to_string(),
                    client_id: client_id.map(str::to_string),
                    priority: crate::alerts::Priority::of_event(kind, &event.detail),
                    kind,
                    event,
                };
                return match state.alerts.intake(input).instrument(span).await {
                    Ok(_) => Some(HubToEdge::Ack { key }),
                    Err(e) => {
                        tracing::error!(event_key = %key, error = %e, "cannot store alarm; the terminal keeps it");
                        Some(error(
                            ErrorCode::Unavailable,
                            format!("alarm {key} not stored; send it again"),
                            false,
                        ))
                    }
                };
            }
            let _enter = span.enter();
            match state.store.insert_device_event(device_id, &event).await {
                Ok(new) => {
                    metrics::counter!("etahoiva_link_events_total", "outcome" => if new { "stored" } else { "duplicate" }).increment(1);
                    if new {
                        tracing::info!("event stored");
                    } else {
                        tracing::debug!("duplicate event acknowledged again");
                    }
                    Some(HubToEdge::Ack { key: event.key })
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot store event; the terminal keeps it");
                    metrics::counter!("etahoiva_link_events_total", "outcome" => "error")
                        .increment(1);
                    Some(error(
                        ErrorCode::Unavailable,
                        format!("event {} not stored; send it again", event.key),
                        false,
                    ))
                }
            }
        }
        EdgeToHub::ConfigApplied { version } => {
            tracing::info!(version, "terminal applied settings");
            state.devices.set_config_version(device_id, version);
            if let Err(e) = state
                .store
                .set_device_config_report(device_id, version, None)
                .await
            {
                tracing::warn!(error = %e, "cannot record applied settings");
            }
            None
        }
        EdgeToHub::ConfigRejected { version, reason } => {
            tracing::warn!(version, %reason, "terminal refused settings");
            if let Err(e) = state
                .store
                .set_device_config_report(device_id, version, Some(&reason))
                .await
            {
                tracing::warn!(error = %e, "cannot record refused settings");
            }
            let _ = state
                .store
                .audit(
                    Some(device_id),
                    "device.config_rejected",
                    Some(device_id),
                    Some(&reason),
                )
                .await;
            None
        }
        EdgeToHub::CommandResult { id, ok, detail } => {
            tracing::info!(command_id = %id, ok, %detail, "command result");
            let outcome = super::registry::CommandOutcome { ok, detail };
            if !state.devices.command_answered(device_id, &id, outcome) {
                tracing::debug!(command_id = %id, "answer to a command nobody waits for");
            }
            None
        }
        EdgeToHub::CallUpdate {
            call_id,
            state: call_state,
            ..
        } => {
            tracing::info!(%call_id, ?call_state, "call update");
            let own_leg = state
                .relay
                .legs_of(&call_id)
                .iter()
                .any(|(_, p)| *p == crate::relay::Party::Terminal(device_id.to_string()));
            if own_leg {
                crate::calls::media::terminal_state(state, &call_id, call_state);
            }
            if let Err(e) = crate::schedule::calls::terminal_update(
                state, device_id, client_id, &call_id, call_state,
            )
            .await
            {
                tracing::warn!(%call_id, error = %e, "call update not applied");
            }
            None
        }
        EdgeToHub::MediaAnswer {
            call_id,
            leg_id,
            sdp,
        } => {
            crate::calls::media::terminal_answer(state, device_id, &call_id, &leg_id, &sdp).await;
            None
        }
        EdgeToHub::IceCandidate {
            call_id,
            leg_id,
            candidate,
        } => {
            crate::calls::media::terminal_candidate(
                state, device_id, &call_id, &leg_id, &candidate,
            )
            .await;
            None
        }
        EdgeToHub::IceRestartRequest { call_id, leg_id } => {
            crate::calls::media::terminal_restart(state, device_id, &call_id, &leg_id).await;
            None
        }
        EdgeToHub::Hello { .. } => Some(error(
            ErrorCode::UnexpectedMessage,
            "hello was already received",
            false,
        )),
        _ => Some(error(ErrorCode::Malformed, "unsupported message", false)),
    }
}
