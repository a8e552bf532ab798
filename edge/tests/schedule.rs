//! The client's schedule over a real terminal link: a stand-in hub speaks
//! TLS and the WebSocket, sends a welcome and a schedule; the agent shows
//! the next call on its kiosk, caches it, and after a restart with the hub
//! gone still shows it from the cache.

mod common;

use common::{pki, write_profile};

use std::sync::Arc;
use std::time::Duration;

use etahoiva_edge::agent::{self, RunOptions};
use etahoiva_firmware_config::Profile;
use etahoiva_proto::{encode, HubToEdge, Schedule, ScheduledVisit};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

fn schedule_from(now_ms: i64) -> Schedule {
    let hour = 3_600_000;
    let visit = |id: &str, starts_at: i64, status: &str, nurse: &str| ScheduledVisit {
        id: id.into(),
        starts_at,
        window_start: starts_at - hour / 4,
        window_end: starts_at + hour / 2,
        length_min: 15,
        purpose: "Lääkkeet".into(),
        nurse_name: Some(nurse.into()),
        status: status.into(),
    };
    Schedule {
        time_zone: "Europe/Helsinki".into(),
        generated_at: now_ms,
        visits: vec![
            visit("over", now_ms - 2 * hour, "planned", "Eeva"),
            visit("done", now_ms + hour, "done", "Eeva"),
            visit("next", now_ms + 2 * hour, "planned", "Anna"),
        ],
    }
}

/// A hub that welcomes every terminal and sends it `schedule`.
async fn stand_in_hub(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    schedule: Schedule,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let schedule = schedule.clone();
        tokio::spawn(async move {
            let Some(mut ws) = common::admit(&acceptor, tcp).await else {
                return;
            };
            let message = HubToEdge::Schedule(schedule);
            if ws
                .send(Message::Text(encode(&message).into()))
                .await
                .is_err()
            {
                return;
            }
            while let Some(Ok(_)) = ws.next().await {}
        });
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("kiosk");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8(response).expect("utf-8");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .expect("body")
}

async fn kiosk_state(addr: std::net::SocketAddr) -> serde_json::Value {
    serde_json::from_str(&http_get(addr, "/api/state").await).expect("json")
}

fn assert_next_call_is_annas(state: &serde_json::Value) {
    let line = state["next_call"].as_str().unwrap_or_default();
    // Today or tomorrow depending on when the test runs, but always Anna's.
    assert!(
        line.starts_with("Seuraava puhelu ") && line.ends_with(", hoitaja Anna"),
        "{state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_arrives_over_the_link_and_survives_a_restart_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = pki(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let schedule = schedule_from(agent::now_ms());
    let hub = tokio::spawn(stand_in_hub(listener, tls, schedule.clone()));
    let profile_path = write_profile(dir.path(), port);
    let profile = Profile::load(&profile_path).expect("profile");

    let running = agent::start(
        profile,
        RunOptions {
            kiosk: true,
            simulate: false,
        },
    )
    .await
    .expect("agent starts");
    let kiosk = running.kiosk_addr.expect("kiosk address");
    let mut state = serde_json::Value::Null;
    for _ in 0..100 {
        state = kiosk_state(kiosk).await;
        if state["next_call"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state["connected"], true);
    assert_next_call_is_annas(&state);
    assert_eq!(running.shared.schedule().as_ref(), Some(&schedule));
    let cached = std::fs::read(dir.path().join("state").join("schedule.json")).expect("cached");
    assert_eq!(
        serde_json::from_slice::<Schedule>(&cached).expect("schedule"),
        schedule
    );
    running.stop().await;

    // The hub goes away; the terminal restarts and cannot reach it.
    hub.abort();
    let _ = hub.await;
    let profile = Profile::load(&profile_path).expect("profile");
    let running = agent::start(
        profile,
        RunOptions {
            kiosk: true,
            simulate: false,
        },
    )
    .await
    .expect("agent starts");
    let kiosk = running.kiosk_addr.expect("kiosk address");
    let state = kiosk_state(kiosk).await;
    assert_eq!(state["connected"], false);
    assert_next_call_is_annas(&state);
    let page = http_get(kiosk, "/").await;
    let line = state["next_call"].as_str().unwrap_or_default();
    assert!(
        page.contains(&format!(r#"id="next-call">{line}</p>"#)),
        "not on the first page load"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_damaged_cache_does_not_stop_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _ = pki(dir.path());
    // A port nobody listens on: the hub is unreachable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).expect("state dir");
    std::fs::write(state_dir.join("schedule.json"), b"{\"time_zone\": 12").expect("write");
    let profile = Profile::load(&write_profile(dir.path(), port)).expect("profile");
    let running = agent::start(
        profile,
        RunOptions {
            kiosk: true,
            simulate: false,
        },
    )
    .await
    .expect("agent starts");
    let kiosk = running.kiosk_addr.expect("kiosk address");
    let state = kiosk_state(kiosk).await;
    assert!(state["next_call"].is_null(), "{state}");
    assert_eq!(running.shared.schedule(), None);
    assert!(!state_dir.join("schedule.json").exists());
    assert_eq!(
        std::fs::read(state_dir.join("schedule.json.corrupt")).expect("set aside"),
        b"{\"time_zone\": 12"
    );
    running.stop().await;
}
