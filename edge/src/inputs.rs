//! Alarm inputs: the local sources of events (a wristband receiver on a
//! Unix socket, sensors on the home's MQTT broker, simulated alarms). Each
//! signal is acknowledged to its source only after it is in the outbox.

use std::sync::Arc;
use std::time::Duration;

use etahoiva_firmware_config::{AlarmInput, AlarmKind, InputSource};
use etahoiva_proto::EventKind;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::agent::Shared;

/// Longest line a socket source may send.
const MAX_LINE: usize = 2048;

fn event_kind(kind: AlarmKind) -> EventKind {
    match kind {
        AlarmKind::HelpButton => EventKind::HelpButton,
        AlarmKind::Wristband => EventKind::Wristband,
        AlarmKind::Sensor => EventKind::Sensor,
    }
}

/// Runs the configured inputs, restarting them when settings change.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut applied = shared.applied_changes();
    loop {
        let inputs = shared.settings().alarm_inputs;
        let mut tasks = JoinSet::new();
        for input in inputs {
            tasks.spawn(run_input(shared.clone(), input));
        }
        let stopping = tokio::select! {
            _ = stop.changed() => true,
            changed = applied.changed() => changed.is_err(),
        };
        tasks.shutdown().await;
        if stopping {
            return;
        }
    }
}

async fn run_input(shared: Arc<Shared>, input: AlarmInput) {
    let span = tracing::info_span!("input", name = %input.name);
    async move {
        match &input.source {
            InputSource::Socket { path } => socket_input(shared, &input, path).await,
            InputSource::Simulated { every_secs } => {
                simulated_input(shared, &input, *every_secs).await
            }
            InputSource::Mqtt { broker, topic } => mqtt_input(shared, &input, broker, topic).await,
        }
    }
    .instrument(span)
    .await
}

/// Accepts a signal from an input; the reply for the source.
async fn accept(shared: &Shared, input: &AlarmInput, message: &str) -> Result<String, String> {
    let detail = serde_json::json!({ "input": input.name, "message": message });
    shared
        .accept(event_kind(input.kind), detail)
        .await
        .map_err(|e| {
            tracing::error!(input = %input.name, error = %e, "an alarm could not be saved");
            e.to_string()
        })
}

async fn socket_input(shared: Arc<Shared>, input: &AlarmInput, path: &std::path::Path) {
    // A socket file left by an earlier run would block the bind.
    if std::fs::symlink_metadata(path)
        .map(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        })
        .unwrap_or(false)
    {
        let _ = std::fs::remove_file(path);
    }
    let listener = match tokio::net::UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(input = %input.name, path = %path.display(), error = %e,
                "cannot open the alarm input socket");
            return;
        }
    };
    tracing::info!(input = %input.name, path = %path.display(), "alarm input listening");
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    let input = input.clone();
                    connections.spawn(async move { socket_connection(shared, input, stream).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "alarm input accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One source connection: each line is one signal, answered with
/// `ok KEY` once it is safe on disk, or `error REASON`.
async fn socket_connection(shared: Arc<Shared>, input: AlarmInput, stream: tokio::net::UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut lines)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let reply = if n > MAX_LINE && !line.ends_with(b"\n") {
            // Skip the rest of an overlong line.
            let mut rest = Vec::new();
            let _ = lines.read_until(b'\n', &mut rest).await;
            format!("error line longer than {MAX_LINE} bytes\n")
        } else {
            let text = String::from_utf8_lossy(&line).trim().to_string();
            if text.is_empty() {
                continue;
            }
            match accept(&shared, &input, &text).await {
                Ok(key) => format!("ok {key}\n"),
                Err(e) => format!("error {e}\n"),
            }
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn simulated_input(shared: Arc<Shared>, input: &AlarmInput, every_secs: u64) {
    let period = Duration::from_secs(every_secs.max(1));
    // Spread simulated terminals over the period instead of firing together.
    let offset = Duration::from_millis(rand::random::<u64>() % (period.as_millis() as u64).max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    let mut count = 0u64;
    loop {
        tick.tick().await;
        count += 1;
        let _ = accept(&shared, input, &format!("simulated alarm {count}")).await;
    }
}

async fn mqtt_input(shared: Arc<Shared>, input: &AlarmInput, broker: &str, topic: &str) {
    let Some((host, port)) = broker
        .strip_prefix("mqtt://")
        .map(|hp| match hp.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(1883)),
            None => (hp.to_string(), 1883),
        })
    else {
        tracing::error!(broker, "not an MQTT broker address");
        return;
    };
    let client_id = format!("etahoiva-{}", shared.device_id());
    let mut options = rumqttc::MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    // Signals are acknowledged to the broker only after they are on disk;
    // a persistent session makes the broker keep unacknowledged ones.
    options.set_manual_acks(true);
    options.set_clean_session(false);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 16);
    loop {
        match events.poll().await {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                tracing::info!(input = %input.name, topic, "alarm input subscribed");
                if let Err(e) = client.subscribe(topic, rumqttc::QoS::AtLeastOnce).await {
                    tracing::warn!(error = %e, "cannot subscribe");
                }
            }
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(publish))) => {
                let text = String::from_utf8_lossy(&publish.payload);
                let text: String = text.chars().take(MAX_LINE).collect();
                if accept(&shared, input, text.trim()).await.is_ok() {
                    if let Err(e) = client.ack(&publish).await {
                        tracing::warn!(error = %e, "cannot acknowledge to the broker");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(input = %input.name, error = %e, "MQTT broker unreachable; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}
