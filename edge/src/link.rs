//! The link to the hub: one WebSocket over mutual TLS, reconnected with
//! backoff, carrying heartbeats, outbox events, settings pushes, the
//! client's schedule, calls (offers and ends from the hub, the terminal's
//! call updates back), the progress of the client's alarms and notices
//! for the client.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use etahoiva_proto::{decode, encode, Command, EdgeToHub, ErrorCode, HubToEdge, PROTOCOL_VERSION};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::agent::Shared;
use crate::alarm::AlarmStatus;
use crate::backoff::Backoff;
use crate::calls::Offer;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("invalid hub address {0:?}: use wss://host:port/path")]
    BadUrl(String),
    #[error("cannot reach the hub: {0}")]
    Connect(String),
    #[error("TLS with the hub failed: {0}")]
    Tls(String),
    #[error("the hub refused the link: {0}")]
    Refused(String),
    #[error("the link broke: {0}")]
    Broken(String),
}

impl LinkError {
    /// Refusals that will not change by retrying soon (revoked, wrong identity, protocol).
    fn is_refusal(&self) -> bool {
        matches!(self, LinkError::Refused(_))
    }
}

/// Where to connect, from the profile's `wss://host:port/path`.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, LinkError> {
        let uri: Uri = url.parse().map_err(|_| LinkError::BadUrl(url.into()))?;
        if uri.scheme_str() != Some("wss") {
            return Err(LinkError::BadUrl(url.into()));
        }
        let host = uri
            .host()
            .ok_or_else(|| LinkError::BadUrl(url.into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Target {
            url: url.to_string(),
            port: uri.port_u16().unwrap_or(443),
            host,
        })
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

async fn connect(target: &Target, tls: &Arc<rustls::ClientConfig>) -> Result<Socket, LinkError> {
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| LinkError::Connect("timed out".into()))?
    .map_err(|e| LinkError::Connect(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| LinkError::BadUrl(target.url.clone()))?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| LinkError::Tls("handshake timed out".into()))?
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    let request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|_| LinkError::BadUrl(target.url.clone()))?;
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(etahoiva_proto::MAX_FRAME_BYTES * 4);
    let (socket, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    .map_err(|_| LinkError::Connect("WebSocket handshake timed out".into()))?
    .map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => LinkError::Refused(format!(
            "HTTP {}: {}",
            response.status(),
            response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        )),
        other => LinkError::Connect(other.to_string()),
    })?;
    Ok(socket)
}

async fn send(socket: &mut Socket, message: &EdgeToHub) -> Result<(), LinkError> {
    socket
        .send(Message::Text(encode(message).into()))
        .await
        .map_err(|e| LinkError::Broken(e.to_string()))
}

/// Keeps the link up until `stop` fires; then closes it politely.
pub async fn run(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let target = match Target::parse(&shared.profile.hub.url) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "the link cannot start");
            return;
        }
    };
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let outcome = session(&shared, &target, &mut backoff, stop.clone()).await;
        shared.set_connected(false);
        if *stop.borrow() {
            return;
        }
        let mut delay = backoff.next_delay(&mut rand::thread_rng());
        match &outcome {
            Ok(()) => tracing::info!("link closed; reconnecting"),
            Err(e) if e.is_refusal() => {
                // Refusals do not heal quickly: wait the longest delay.
                delay = delay.max(Duration::from_secs(30));
                tracing::error!(error = %e, "the hub refused this terminal");
            }
            Err(e) => tracing::warn!(error = %e, "link down"),
        }
        tracing::debug!(
            delay_ms = delay.as_millis() as u64,
            "waiting before reconnecting"
        );
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection: hello, welcome, then frames until it breaks.
async fn session(
    shared: &Arc<Shared>,
    target: &Target,
    backoff: &mut Backoff,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), LinkError> {
    // Live frames are for the connection they were made on: whatever a
    // broken one left behind is dropped, not replayed.
    let mut live = shared.live_frames().await;
    while let Ok(stale) = live.try_recv() {
        crate::agent::log_dropped(&stale, "the link broke before sending it");
    }
    let tls = shared.tls.clone();
    let mut socket = tokio::select! {
        _ = stop.changed() => return Ok(()),
        socket = connect(target, &tls) => socket?,
    };
    let hello = EdgeToHub::Hello {
        protocol: PROTOCOL_VERSION,
        device_id: shared.profile.device.id.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        config_version: shared.settings().version,
        heartbeat_secs: Some(shared.settings().heartbeat_secs),
    };
    send(&mut socket, &hello).await?;
    let welcome = tokio::time::timeout(WELCOME_TIMEOUT, socket.next())
        .await
        .map_err(|_| LinkError::Broken("no welcome from the hub".into()))?;
    match welcome {
        Some(Ok(Message::Text(text))) => match decode::<HubToEdge>(text.as_str()) {
            Ok(HubToEdge::Welcome { client_name, .. }) => shared.welcomed(client_name),
            Ok(HubToEdge::Error { code, message, .. }) => {
                return Err(LinkError::Refused(format!("{code:?}: {message}")));
            }
            Ok(other) => {
                return Err(LinkError::Broken(format!(
                    "expected a welcome, got {other:?}"
                )))
            }
            Err(e) => return Err(LinkError::Broken(e.to_string())),
        },
        Some(Ok(other)) => return Err(LinkError::Broken(format!("unexpected frame {other:?}"))),
        Some(Err(e)) => return Err(LinkError::Broken(e.to_string())),
        None => return Err(LinkError::Broken("closed before the welcome".into())),
    }
    tracing::info!("connected to the hub");
    backoff.reset();

    let mut in_flight: HashSet<String> = HashSet::new();
    let mut seq = 0u64;
    let mut heartbeat =
        tokio::time::interval(Duration::from_secs(shared.settings().heartbeat_secs.max(1)));
    heartbeat.tick().await;
    send_pending(shared, &mut socket, &mut in_flight).await?;
    loop {
        let silence = Duration::from_secs(shared.settings().heartbeat_secs.max(1) * 3);
        tokio::select! {
            _ = stop.changed() => {
                let _ = socket.close(None).await;
                return Ok(());
            }
            _ = heartbeat.tick() => {
                seq += 1;
                send(&mut socket, &EdgeToHub::Heartbeat { seq }).await?;
                let period = Duration::from_secs(shared.settings().heartbeat_secs.max(1));
                if heartbeat.period() != period {
                    heartbeat = tokio::time::interval(period);
                    heartbeat.tick().await;
                }
            }
            _ = shared.outbox_changed.notified() => {
                send_pending(shared, &mut socket, &mut in_flight).await?;
            }
            Some(frame) = live.recv() => {
                send(&mut socket, &frame).await?;
            }
            frame = tokio::time::timeout(silence, socket.next()) => {
                let frame = match frame {
                    Err(_) => return Err(LinkError::Broken("the hub went silent".into())),
                    Ok(None) => return Ok(()),
                    Ok(Some(Err(e))) => return Err(LinkError::Broken(e.to_string())),
                    Ok(Some(Ok(frame))) => frame,
                };
                shared.heard_from_hub();
                let text = match frame {
                    Message::Text(text) => text,
                    Message::Close(_) => return Ok(()),
                    _ => continue,
                };
                let message = match decode::<HubToEdge>(text.as_str()) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable frame from the hub");
                        continue;
                    }
                };
                match message {
                    HubToEdge::Ack { key } => {
                        in_flight.remove(&key);
                        shared.acknowledged(key).await;
                    }
                    HubToEdge::ConfigPush { version, settings } => {
                        let reply = match shared.apply_settings(version, &settings).await {
                            Ok(()) => EdgeToHub::ConfigApplied { version },
                            Err(reason) => EdgeToHub::ConfigRejected { version, reason },
                        };
                        send(&mut socket, &reply).await?;
                    }
                    HubToEdge::Command { id, command } => {
                        let (ok, detail) = match command {
                            Command::Ping => (true, "pong".to_string()),
                            Command::FlushOutbox => {
                                in_flight.clear();
                                send_pending(shared, &mut socket, &mut in_flight).await?;
                                (true, format!("{} pending", shared.pending_count().await))
                            }
                            other => (false, format!("unsupported command {other:?}")),
                        };
                        send(&mut socket, &EdgeToHub::CommandResult { id, ok, detail }).await?;
                    }
                    HubToEdge::Error { code, message, fatal } => {
                        if fatal {
                            let error = format!("{code:?}: {message}");
                            return Err(match code {
                                ErrorCode::Revoked | ErrorCode::IdentityMismatch | ErrorCode::UnsupportedProtocol => LinkError::Refused(error),
                                _ => LinkError::Broken(error),
                            });
                        }
                        tracing::warn!(?code, %message, "the hub reported an error");
                        if code == ErrorCode::Unavailable {
                            // The hub could not store an event: send the outbox again shortly.
                            in_flight.clear();
                            let shared = shared.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                                shared.outbox_changed.notify_one();
                            });
                        }
                    }
                    HubToEdge::Schedule(schedule) => shared.schedule_received(schedule).await,
                    HubToEdge::CallOffer { call_id, kind, caller, visit_id, auto_answer } => {
                        let offer = Offer { call_id, kind, caller, visit_id, auto_answer };
                        for update in shared.call_offered(offer) {
                            send(&mut socket, &update).await?;
                        }
                    }
                    HubToEdge::CallEnd { call_id, reason: _ } => shared.call_ended(&call_id),
                    HubToEdge::AlarmStatus { alert_id, event_keys, progress, at } => {
                        let status = AlarmStatus { alert_id, event_keys, progress, at };
                        shared.alarm_status(status).await;
                    }
                    HubToEdge::Notice { id, text } => {
                        shared.notice_received(id, text).await;
                    }
                    HubToEdge::MediaOffer { call_id, leg_id, sdp, ice_restart: _, ice_servers } => {
                        if shared.simulates() {
                            if !shared.sim_calls.reoffer(&call_id, leg_id.clone(), sdp.clone()) {
                                tokio::spawn(crate::media::answer_offer(shared.clone(), call_id, leg_id, sdp));
                            }
                        } else {
                            shared.media_offer(call_id, leg_id, sdp, ice_servers);
                        }
                    }
                    HubToEdge::Welcome { .. } => {}
                    other => tracing::debug!(?other, "ignored message"),
                }
            }
        }
    }
}

/// Sends every pending event not already sent on this connection, in order.
async fn send_pending(
    shared: &Arc<Shared>,
    socket: &mut Socket,
    in_flight: &mut HashSet<String>,
) -> Result<(), LinkError> {
    for event in shared.pending().await {
        if in_flight.insert(event.key.clone()) {
            send(socket, &EdgeToHub::Event(event)).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_urls_are_parsed_strictly() {
        let t = Target::parse("wss://hub.example:8444/link").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("hub.example", 8444));
        let t = Target::parse("wss://[::1]:9000/link").expect("valid");
        assert_eq!(t.host, "::1");
        assert_eq!(
            Target::parse("wss://hub.example/link").expect("valid").port,
            443
        );
        assert!(Target::parse("ws://hub.example/link").is_err());
        assert!(Target::parse("https://hub.example/link").is_err());
        assert!(Target::parse("not a url").is_err());
    }
}
