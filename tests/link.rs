//! The terminal link end to end: real hub and `etahoiva-edge` processes,
//! provisioned through the CLI, talking mutual TLS on loopback.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::edge::{
    device, edit_profile, eventually, hello, next_json, provision, raw_link, send_text, spawn_edge,
    stored_keys,
};
use common::{add_user, spawn_hub_in, HubProcess};

const PASSWORD: &str = "link-test-password";

struct Setup {
    dir: tempfile::TempDir,
    hub: HubProcess,
    client: reqwest::Client,
    token: String,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("hub");
    add_user(&data, "admin", "admin", PASSWORD);
    let hub = spawn_hub_in(&data, "hub", &[], &[]);
    let client = hub.client();
    let token = common::login(&client, &hub, "admin", PASSWORD).await;
    Setup {
        dir,
        hub,
        client,
        token,
    }
}

fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
}

async fn is_online(s: &Setup, hub: &HubProcess, id: &str) -> bool {
    device(&s.client, hub, &s.token, id).await["online"] == true
}

#[tokio::test]
async fn a_provisioned_terminal_comes_online_and_goes_offline_when_silent() {
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "Aino Virtanen olohuone", &[]);
    // `validate` checks the bundle without connecting.
    let (ok, out, err) = run_edge(&["validate", bundle.profile.to_str().expect("utf-8")]);
    assert!(ok && out.contains("valid profile"), "{out} {err}");

    let edge = spawn_edge(&bundle);
    assert!(
        eventually(Duration::from_secs(20), || is_online(
            &s,
            &s.hub,
            &bundle.device_id
        ))
        .await,
        "terminal online"
    );
    let d = device(&s.client, &s.hub, &s.token, &bundle.device_id).await;
    assert_eq!(d["name"], "Aino Virtanen olohuone");
    assert!(d["last_seen"].as_i64().is_some_and(|t| t > 0), "{d}");
    assert!(
        d["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{d}"
    );
    assert_eq!(d["protocol_version"], etahoiva_proto::PROTOCOL_VERSION);
    assert!(d["agent_version"].as_str().is_some_and(|v| !v.is_empty()));
    let kiosk = plain_http();
    let state = edge.kiosk_state(&kiosk).await;
    assert_eq!(state["connected"], true, "{state}");

    // The admin console lists it, and the offline filter does not.
    let page = s
        .hub
        .client()
        .get(s.hub.url("/console/admin/devices?filter=all"))
        .send()
        .await
        .expect("fragment");
    assert_eq!(page.status(), 401, "the fragment needs a session");
    let console = s.hub.client();
    let signed_in = console
        .post(s.hub.url("/api/v1/login"))
        .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(signed_in.status(), 200);
    let all = console
        .get(s.hub.url("/console/admin?filter=all"))
        .send()
        .await
        .expect("console")
        .text()
        .await
        .expect("text");
    assert!(
        all.contains("Aino Virtanen olohuone"),
        "listed in the console"
    );
    let offline = console
        .get(s.hub.url("/console/admin/devices?filter=offline"))
        .send()
        .await
        .expect("fragment")
        .text()
        .await
        .expect("text");
    assert!(
        !offline.contains("Aino Virtanen olohuone"),
        "online terminals are filtered out"
    );

    // Commands reach the terminal and come back with its answer.
    let command = |name: &str| {
        s.client
            .post(
                s.hub
                    .url(&format!("/api/v1/devices/{}/commands", bundle.device_id)),
            )
            .bearer_auth(&s.token)
            .json(&serde_json::json!({ "command": name }))
            .send()
    };
    let pong: serde_json::Value = command("ping")
        .await
        .expect("ping")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (pong["ok"].as_bool(), pong["detail"].as_str()),
        (Some(true), Some("pong")),
        "{pong}"
    );
    let flushed = command("flush_outbox").await.expect("flush");
    assert_eq!(flushed.status(), 200);
    assert_eq!(
        command("reboot_camera").await.expect("unknown").status(),
        422
    );

    // A terminal that stops answering (frozen, network gone) is marked
    // offline after the configured number of missed heartbeats (3 × 5 s).
    edge.signal("-STOP");
    assert!(
        eventually(Duration::from_secs(30), || async {
            !is_online(&s, &s.hub, &bundle.device_id).await
        })
        .await,
        "silent terminal marked offline"
    );
    let offline_list: serde_json::Value = s
        .client
        .get(s.hub.url("/api/v1/devices?online=false"))
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("devices")
        .json()
        .await
        .expect("json");
    assert!(offline_list
        .as_array()
        .expect("array")
        .iter()
        .any(|d| d["id"] == bundle.device_id.as_str()));
    let offline = console
        .get(s.hub.url("/console/admin/devices?filter=offline"))
        .send()
        .await
        .expect("fragment")
        .text()
        .await
        .expect("text");
    assert!(
        offline.contains("Aino Virtanen olohuone"),
        "shown under offline"
    );
    // It comes back by itself.
    edge.signal("-CONT");
    assert!(
        eventually(Duration::from_secs(90), || is_online(
            &s,
            &s.hub,
            &bundle.device_id
        ))
        .await,
        "terminal reconnected after it woke up"
    );
}

fn run_edge(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(common::edge::edge_bin())
        .args(args)
        .output()
        .expect("edge runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn only_current_unrevoked_certificates_of_the_device_ca_are_accepted() {
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "cert test", &[]);
    let read = |name: &str| std::fs::read_to_string(bundle.dir.join(name)).expect("bundle file");
    let (ca, cert, key) = (
        read("hub-ca.pem"),
        read("device.pem"),
        read("device-key.pem"),
    );
    let addr = s.hub.link_addr();

    // The real identity works.
    let mut link = raw_link(&addr, &ca, &cert, &key).await.expect("accepted");
    send_text(&mut link, hello(&bundle.device_id, 1)).await;
    assert_eq!(
        next_json(&mut link).await.expect("welcome")["type"],
        "welcome"
    );
    drop(link);

    let device_ca =
        etahoiva::devices::identity::DeviceCa::load_or_create(&s.hub.data_dir).expect("device CA");
    let now = time::OffsetDateTime::now_utc();

    // A certificate from a CA the hub does not know: refused in the handshake.
    let stranger_dir = tempfile::tempdir().expect("tempdir");
    let stranger = etahoiva::devices::identity::DeviceCa::load_or_create(stranger_dir.path())
        .expect("other CA")
        .issue_for_days(&bundle.device_id, 30)
        .expect("issue");
    let refused = raw_link(&addr, &ca, &stranger.cert_pem, &stranger.key_pem)
        .await
        .expect_err("foreign CA refused");
    assert!(
        !refused.starts_with("http"),
        "refused before HTTP: {refused}"
    );

    // An expired certificate of the right CA: refused in the handshake.
    let expired = device_ca
        .issue(
            &bundle.device_id,
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .expect("issue");
    let refused = raw_link(&addr, &ca, &expired.cert_pem, &expired.key_pem)
        .await
        .expect_err("expired refused");
    assert!(refused.to_lowercase().contains("expired"), "{refused}");

    // A valid certificate for a device the hub never registered.
    let unknown = device_ca
        .issue_for_days("t-00000000000000000000000000000000", 30)
        .expect("issue");
    let refused = raw_link(&addr, &ca, &unknown.cert_pem, &unknown.key_pem)
        .await
        .expect_err("unknown refused");
    assert!(
        refused.starts_with("http 403") && refused.contains("unknown device"),
        "{refused}"
    );

    // A second certificate issued for the same id is not the registered one.
    let copy = device_ca
        .issue_for_days(&bundle.device_id, 30)
        .expect("issue");
    let refused = raw_link(&addr, &ca, &copy.cert_pem, &copy.key_pem)
        .await
        .expect_err("not the current certificate");
    assert!(refused.starts_with("http 403"), "{refused}");

    // Another device's certificate cannot speak for this device.
    let other = provision(&s.hub, s.dir.path(), "other terminal", &[]);
    let other_cert = std::fs::read_to_string(other.dir.join("device.pem")).expect("cert");
    let other_key = std::fs::read_to_string(other.dir.join("device-key.pem")).expect("key");
    let mut link = raw_link(&addr, &ca, &other_cert, &other_key)
        .await
        .expect("TLS and HTTP pass for a real device");
    send_text(&mut link, hello(&bundle.device_id, 1)).await;
    let reply = next_json(&mut link).await.expect("error frame");
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "identity_mismatch");
    assert!(next_json(&mut link).await.is_none(), "link closed");
    // The same with the real agent: a profile naming one device with the
    // other's certificate never comes online.
    std::fs::copy(other.dir.join("device.pem"), bundle.dir.join("device.pem")).expect("copy");
    std::fs::copy(
        other.dir.join("device-key.pem"),
        bundle.dir.join("device-key.pem"),
    )
    .expect("copy");
    let edge = spawn_edge(&bundle);
    assert!(
        eventually(Duration::from_secs(10), || async {
            edge.log_text().contains("IdentityMismatch")
        })
        .await,
        "the agent reports the refusal: {}",
        edge.log_text()
    );
    assert!(!is_online(&s, &s.hub, &bundle.device_id).await);
    assert!(!is_online(&s, &s.hub, &other.device_id).await);
    drop(edge);

    // Revoked: refused at once.
    let revoked = s
        .client
        .post(
            s.hub
                .url(&format!("/api/v1/devices/{}/revoke", other.device_id)),
        )
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    let refused = raw_link(&addr, &ca, &other_cert, &other_key)
        .await
        .expect_err("revoked refused");
    assert!(
        refused.starts_with("http 403") && refused.contains("revoked"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_terminal_refuses_a_hub_not_signed_by_its_ca() {
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "pinned terminal", &[]);
    // Replace the hub CA in the bundle with a CA that did not sign the hub:
    // whoever answers at that address cannot prove it is the hub.
    let impostor_dir = tempfile::tempdir().expect("tempdir");
    let impostor =
        etahoiva::devices::identity::DeviceCa::load_or_create(impostor_dir.path()).expect("CA");
    std::fs::write(bundle.dir.join("hub-ca.pem"), &impostor.cert_pem).expect("write");
    let edge = spawn_edge(&bundle);
    assert!(
        eventually(Duration::from_secs(15), || async {
            let log = edge.log_text();
            log.contains("TLS with the hub failed") && log.contains("UnknownIssuer")
        })
        .await,
        "the agent refuses the hub: {}",
        edge.log_text()
    );
    assert!(!is_online(&s, &s.hub, &bundle.device_id).await);
    let kiosk = edge.kiosk_state(&plain_http()).await;
    assert_eq!(kiosk["connected"], false);
}

#[tokio::test]
async fn events_pressed_while_the_hub_is_down_arrive_when_it_returns() {
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "offline presses", &[]);
    let edge = spawn_edge(&bundle);
    assert!(
        eventually(Duration::from_secs(20), || is_online(
            &s,
            &s.hub,
            &bundle.device_id
        ))
        .await
    );
    let link_addr = s.hub.link_addr();
    let data = s.hub.data_dir.clone();
    let Setup {
        dir, hub, client, ..
    } = s;
    hub.stop();

    let kiosk = plain_http();
    assert!(
        eventually(Duration::from_secs(20), || async {
            edge.kiosk_state(&kiosk).await["connected"] == false
        })
        .await,
        "the kiosk shows the lost connection"
    );
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(edge.press_help(&kiosk).await);
    }
    let state = edge.kiosk_state(&kiosk).await;
    assert_eq!(state["pending_events"], 3);
    assert_eq!(state["help"], "saved");
    let page = kiosk
        .get(edge.kiosk_url("/"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("Ei yhteyttä hoitajiin"),
        "offline shown in Finnish"
    );

    let hub = spawn_hub_in(&data, "hub", &["--device-listen", &link_addr], &[]);
    let token = common::login(&client, &hub, "admin", PASSWORD).await;
    assert!(
        eventually(Duration::from_secs(90), || async {
            stored_keys(&client, &hub, &token, &bundle.device_id)
                .await
                .len()
                == 3
        })
        .await,
        "all three events arrived"
    );
    assert_eq!(
        stored_keys(&client, &hub, &token, &bundle.device_id).await,
        keys,
        "in order"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            let state = edge.kiosk_state(&kiosk).await;
            // Delivered, and then the alarm's own progress takes over.
            state["pending_events"] == 0
                && (state["help"] == "delivered" || state["alarm"]["progress"] == "received")
        })
        .await,
        "the outbox emptied after the acks"
    );
    drop(dir);
}

#[tokio::test]
async fn kill_9_of_the_terminal_loses_no_accepted_event() {
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "power cut", &[]);
    let kiosk = plain_http();
    let mut accepted = Vec::new();
    // Round 1: accepted while the hub cannot be reached, then the power goes.
    edit_profile(&bundle.profile, |p| {
        p["hub"]["url"] = toml::Value::String("wss://127.0.0.1:9/link".into());
    });
    let edge = spawn_edge(&bundle);
    for _ in 0..5 {
        accepted.push(edge.press_help(&kiosk).await);
    }
    edge.kill_hard();
    edit_profile(&bundle.profile, |p| {
        p["hub"]["url"] = toml::Value::String(s.hub.link_url());
    });
    // Round 2: online, killed in the middle of a burst of presses.
    let edge = spawn_edge(&bundle);
    for _ in 0..20 {
        accepted.push(edge.press_help(&kiosk).await);
    }
    edge.kill_hard();
    // Round 3: back up; everything accepted arrives exactly once.
    let edge = spawn_edge(&bundle);
    assert!(
        eventually(Duration::from_secs(60), || async {
            stored_keys(&s.client, &s.hub, &s.token, &bundle.device_id)
                .await
                .len()
                >= accepted.len()
        })
        .await,
        "every accepted event arrived"
    );
    let stored = stored_keys(&s.client, &s.hub, &s.token, &bundle.device_id).await;
    let unique: HashSet<_> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no event stored twice");
    assert_eq!(stored.len(), accepted.len(), "nothing extra");
    assert!(accepted.iter().all(|k| unique.contains(k)), "nothing lost");
    assert!(
        eventually(Duration::from_secs(10), || async {
            edge.kiosk_state(&kiosk).await["pending_events"] == 0
        })
        .await
    );
}

#[tokio::test]
async fn a_hub_restart_during_a_burst_stores_every_event_exactly_once() {
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "burst", &[]);
    let edge = std::sync::Arc::new(spawn_edge(&bundle));
    assert!(
        eventually(Duration::from_secs(20), || is_online(
            &s,
            &s.hub,
            &bundle.device_id
        ))
        .await
    );
    let link_addr = s.hub.link_addr();
    let data = s.hub.data_dir.clone();
    let Setup {
        dir,
        hub,
        client,
        token: _,
    } = s;

    let presser = {
        let edge = edge.clone();
        tokio::spawn(async move {
            let kiosk = plain_http();
            let mut keys = Vec::new();
            for _ in 0..150 {
                keys.push(edge.press_help(&kiosk).await);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            keys
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The hub dies without warning in the middle of the burst.
    let mut hub = hub;
    let _ = hub.child.kill();
    let _ = hub.child.wait();
    drop(hub);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hub = spawn_hub_in(&data, "hub", &["--device-listen", &link_addr], &[]);
    let keys = presser.await.expect("presses");
    let token = common::login(&client, &hub, "admin", PASSWORD).await;
    assert!(
        eventually(Duration::from_secs(90), || async {
            stored_keys(&client, &hub, &token, &bundle.device_id)
                .await
                .len()
                >= keys.len()
        })
        .await,
        "all events arrived"
    );
    let stored = stored_keys(&client, &hub, &token, &bundle.device_id).await;
    let unique: HashSet<_> = stored.iter().collect();
    assert_eq!(stored.len(), unique.len(), "each event stored once");
    assert_eq!(stored.len(), keys.len());
    assert!(keys.iter().all(|k| unique.contains(k)));
    drop(dir);
}

#[tokio::test]
async fn malformed_frames_are_answered_and_leave_other_terminals_connected() {
    let s = setup().await;
    let good = provision(&s.hub, s.dir.path(), "well behaved", &[]);
    let edge = spawn_edge(&good);
    assert!(
        eventually(Duration::from_secs(20), || is_online(
            &s,
            &s.hub,
            &good.device_id
        ))
        .await
    );

    let bad = provision(&s.hub, s.dir.path(), "misbehaving", &[]);
    let read = |name: &str| std::fs::read_to_string(bad.dir.join(name)).expect("bundle file");
    let addr = s.hub.link_addr();
    let mut link = raw_link(
        &addr,
        &read("hub-ca.pem"),
        &read("device.pem"),
        &read("device-key.pem"),
    )
    .await
    .expect("link");
    send_text(&mut link, hello(&bad.device_id, 1)).await;
    assert_eq!(
        next_json(&mut link).await.expect("welcome")["type"],
        "welcome"
    );

    let oversized = format!(
        "{{\"type\":\"heartbeat\",\"seq\":1,\"pad\":\"{}\"}}",
        "x".repeat(etahoiva_proto::MAX_FRAME_BYTES + 10)
    );
    for (frame, code) in [
        ("not json at all".to_string(), "malformed"),
        ("{\"type\":\"launch_rockets\"}".to_string(), "malformed"),
        ("{\"type\":\"event\",\"key\":5}".to_string(), "malformed"),
        (oversized, "too_large"),
    ] {
        send_text(&mut link, frame).await;
        let reply = next_json(&mut link)
            .await
            .expect("an error reply, not a close");
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["code"], code, "{reply}");
        assert_eq!(reply["fatal"], false);
    }
    use futures_util::SinkExt;
    link.send(tokio_tungstenite::tungstenite::Message::Binary(
        vec![0u8; 16].into(),
    ))
    .await
    .expect("send");
    assert_eq!(
        next_json(&mut link).await.expect("reply")["code"],
        "malformed"
    );
    // The misbehaving link itself still works: an event is stored and acked.
    send_text(
        &mut link,
        serde_json::json!({"type": "event", "key": "raw-1", "kind": "sensor",
            "occurred_at": 1_700_000_000_000_i64, "detail": {"input": "door"}})
        .to_string(),
    )
    .await;
    let ack = next_json(&mut link).await.expect("ack");
    assert_eq!(ack, serde_json::json!({"type": "ack", "key": "raw-1"}));
    // The well-behaved terminal never noticed.
    assert!(is_online(&s, &s.hub, &good.device_id).await);
    assert!(edge.kiosk_state(&plain_http()).await["connected"] == true);
    assert!(
        !edge.log_text().contains("link down"),
        "{}",
        edge.log_text()
    );

    // A protocol version the hub does not speak is refused with the reason.
    drop(link);
    let mut link = raw_link(
        &addr,
        &read("hub-ca.pem"),
        &read("device.pem"),
        &read("device-key.pem"),
    )
    .await
    .expect("link");
    send_text(&mut link, hello(&bad.device_id, 99)).await;
    let reply = next_json(&mut link).await.expect("refusal");
    assert_eq!(reply["code"], "unsupported_protocol");
    assert!(reply["message"]
        .as_str()
        .is_some_and(|m| m.contains("99") && m.contains("1")));
    assert!(
        next_json(&mut link).await.is_none(),
        "closed after the refusal"
    );
}

#[tokio::test]
async fn settings_pushes_are_applied_or_refused_and_reported() {
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "remote settings", &[]);
    let edge = spawn_edge(&bundle);
    assert!(
        eventually(Duration::from_secs(20), || is_online(
            &s,
            &s.hub,
            &bundle.device_id
        ))
        .await
    );
    let put = |body: serde_json::Value| {
        s.client
            .put(
                s.hub
                    .url(&format!("/api/v1/devices/{}/settings", bundle.device_id)),
            )
            .bearer_auth(&s.token)
            .json(&body)
            .send()
    };
    // Invalid for the hub: refused before it is stored, naming the field.
    let invalid = put(serde_json::json!({"heartbeat_secs": 1}))
        .await
        .expect("put");
    assert_eq!(invalid.status(), 422);
    assert!(invalid
        .text()
        .await
        .expect("text")
        .contains("settings.heartbeat_secs"));

    // Valid: stored as version 1, pushed, applied, reported.
    let settings = serde_json::json!({
        "language": "sv",
        "heartbeat_secs": 7,
        "kiosk": {"listen": "127.0.0.1:0", "font_scale": 2.0, "high_contrast": true},
    });
    let response = put(settings).await.expect("put");
    assert_eq!(response.status(), 202);
    assert!(
        eventually(Duration::from_secs(15), || async {
            device(&s.client, &s.hub, &s.token, &bundle.device_id).await["config_version"] == 1
        })
        .await,
        "the terminal reports version 1"
    );
    let kiosk = plain_http();
    let state = edge.kiosk_state(&kiosk).await;
    assert_eq!(
        (state["language"].as_str(), state["high_contrast"].as_bool()),
        (Some("sv"), Some(true))
    );
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bundle.dir.join("state/settings.json")).expect("saved settings"),
    )
    .expect("json");
    assert_eq!(
        (saved["version"].as_u64(), saved["heartbeat_secs"].as_u64()),
        (Some(1), Some(7))
    );

    // Valid for the hub but impossible on this terminal: refused, reported, old kept.
    let response = put(serde_json::json!({
        "language": "en",
        "heartbeat_secs": 7,
        "kiosk": {"listen": "127.0.0.1:0"},
        "alarm_inputs": [{"name": "door", "kind": "sensor",
            "source": {"type": "socket", "path": "/nonexistent-etahoiva-dir/door.sock"}}],
    }))
    .await
    .expect("put");
    assert_eq!(response.status(), 202);
    assert!(
        eventually(Duration::from_secs(15), || async {
            device(&s.client, &s.hub, &s.token, &bundle.device_id).await["config_error"]
                .as_str()
                .is_some_and(|e| e.contains("alarm_inputs[0]"))
        })
        .await,
        "the refusal is reported"
    );
    let d = device(&s.client, &s.hub, &s.token, &bundle.device_id).await;
    assert_eq!(
        (
            d["config_version"].as_i64(),
            d["desired_config_version"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(
        edge.kiosk_state(&kiosk).await["language"],
        "sv",
        "old settings stay"
    );

    // After a restart the terminal runs the applied version 1 again.
    drop(edge);
    let edge = spawn_edge(&bundle);
    assert_eq!(
        edge.kiosk_state(&kiosk).await["language"],
        "sv",
        "applied settings survive a restart"
    );
}

#[tokio::test]
async fn revocation_closes_a_live_link_within_seconds() {
    let s = setup().await;
    let via_api = provision(&s.hub, s.dir.path(), "revoked by api", &[]);
    let via_cli = provision(&s.hub, s.dir.path(), "revoked by cli", &[]);
    let edge_api = spawn_edge(&via_api);
    let edge_cli = spawn_edge(&via_cli);
    assert!(
        eventually(Duration::from_secs(20), || async {
            is_online(&s, &s.hub, &via_api.device_id).await
                && is_online(&s, &s.hub, &via_cli.device_id).await
        })
        .await
    );

    let response = s
        .client
        .post(
            s.hub
                .url(&format!("/api/v1/devices/{}/revoke", via_api.device_id)),
        )
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    let (ok, out, err) = common::run_cli(
        &[
            "devices",
            "revoke",
            &via_cli.device_id,
            "--data-dir",
            s.hub.data_dir.to_str().expect("utf-8"),
        ],
        None,
        &[],
    );
    assert!(ok, "{out} {err}");
    assert!(
        eventually(Duration::from_secs(8), || async {
            !is_online(&s, &s.hub, &via_api.device_id).await
                && !is_online(&s, &s.hub, &via_cli.device_id).await
        })
        .await,
        "both links closed within seconds"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            edge_api.log_text().contains("revoked") && edge_cli.log_text().contains("revoked")
        })
        .await,
        "the terminals were told why"
    );
    // They stay out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!is_online(&s, &s.hub, &via_api.device_id).await);
    assert!(!is_online(&s, &s.hub, &via_cli.device_id).await);
    let d = device(&s.client, &s.hub, &s.token, &via_cli.device_id).await;
    assert_eq!(d["revoked"], true);
}

/// A tmpfs of `size` mounted at `path` for one test, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).expect("mount point");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(path.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_new_events_clearly_and_keeps_the_accepted_ones() {
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "full disk", &[]);
    let state = s.dir.path().join("small-disk");
    let Some(_disk) = SmallDisk::mount(&state, "96k") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("cannot mount a small tmpfs in CI; the disk-full test must run");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED a_full_disk_refuses_new_events_clearly_and_keeps_the_accepted_ones: mounting a tmpfs needs root"
        );
        return;
    };
    edit_profile(&bundle.profile, |p| {
        p["state_dir"] = toml::Value::String(state.to_str().expect("utf-8").into());
        p["hub"]["url"] = toml::Value::String("wss://127.0.0.1:9/link".into());
    });
    let edge = spawn_edge(&bundle);
    let kiosk = plain_http();
    let mut accepted = Vec::new();
    let mut refusal = None;
    for _ in 0..200 {
        let response = kiosk
            .post(edge.kiosk_url("/api/help"))
            .send()
            .await
            .expect("press");
        match response.status().as_u16() {
            201 => {
                let body: serde_json::Value = response.json().await.expect("json");
                accepted.push(body["key"].as_str().expect("key").to_string());
            }
            503 => {
                refusal = Some(response.text().await.expect("text"));
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let refusal = refusal.expect("the small disk fills up");
    assert!(refusal.contains("full"), "{refusal}");
    assert!(accepted.len() >= 3, "some events fit: {}", accepted.len());
    assert_eq!(
        edge.kiosk_state(&kiosk).await["pending_events"],
        accepted.len(),
        "the refused press left nothing half-written"
    );
    drop(edge);

    // Once the hub is reachable again, everything accepted arrives and the
    // freed space takes new presses.
    edit_profile(&bundle.profile, |p| {
        p["hub"]["url"] = toml::Value::String(s.hub.link_url());
    });
    let edge = spawn_edge(&bundle);
    assert!(
        eventually(Duration::from_secs(60), || async {
            stored_keys(&s.client, &s.hub, &s.token, &bundle.device_id)
                .await
                .len()
                == accepted.len()
        })
        .await,
        "every accepted event arrived"
    );
    assert_eq!(
        stored_keys(&s.client, &s.hub, &s.token, &bundle.device_id).await,
        accepted
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            edge.kiosk_state(&kiosk).await["pending_events"] == 0
        })
        .await
    );
    let key = edge.press_help(&kiosk).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored_keys(&s.client, &s.hub, &s.token, &bundle.device_id)
                .await
                .contains(&key)
        })
        .await
    );
    drop(edge);
}

#[tokio::test]
async fn alarms_from_the_homes_mqtt_broker_reach_the_hub() {
    const BROKER: &str = "127.0.0.1:1883";
    if std::net::TcpStream::connect(BROKER).is_err() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("MQTT broker not reachable on {BROKER} in CI");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED alarms_from_the_homes_mqtt_broker_reach_the_hub: no MQTT broker on {BROKER}"
        );
        return;
    }
    let s = setup().await;
    let bundle = provision(&s.hub, s.dir.path(), "mqtt door", &[]);
    let topic = format!("etahoiva-test/{}/door", bundle.device_id);
    edit_profile(&bundle.profile, |p| {
        let input: toml::Value = toml::from_str(&format!(
            "name = \"ulko-ovi\"\nkind = \"sensor\"\nsource = {{ type = \"mqtt\", broker = \"mqtt://{BROKER}\", topic = \"{topic}\" }}\n"
        ))
        .expect("input");
        p["settings"]["alarm_inputs"] = toml::Value::Array(vec![input]);
    });
    let edge = spawn_edge(&bundle);
    assert!(
        eventually(Duration::from_secs(20), || async {
            edge.log_text().contains("alarm input subscribed")
        })
        .await,
        "subscribed: {}",
        edge.log_text()
    );
    // Give the broker a moment to register the subscription it acknowledged.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 1..=3 {
        let status = std::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", &topic])
            .args(["-m", &format!("door opened {n}")])
            .status()
            .expect("mosquitto_pub runs");
        assert!(status.success());
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored_keys(&s.client, &s.hub, &s.token, &bundle.device_id)
                .await
                .len()
                == 3
        })
        .await,
        "three door alarms stored"
    );
    let events: serde_json::Value = s
        .client
        .get(
            s.hub
                .url(&format!("/api/v1/devices/{}/events", bundle.device_id)),
        )
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("json");
    let events = events.as_array().expect("array");
    assert!(events
        .iter()
        .all(|e| e["kind"] == "sensor" && e["detail"]["input"] == "ulko-ovi"));
    let messages: Vec<_> = events
        .iter()
        .map(|e| e["detail"]["message"].clone())
        .collect();
    assert_eq!(
        messages,
        ["door opened 1", "door opened 2", "door opened 3"].map(serde_json::Value::from)
    );
}
