//! Calls over a real terminal link: a stand-in hub speaks TLS and the
//! WebSocket, offers calls and ends them; the agent serves one call at a
//! time by priority, reports each state back, and the client answers on
//! the kiosk.

mod common;

use common::{http, kiosk_state, post_json, start, start_with};
use std::time::{Duration, Instant};

use etahoiva_proto::{CallKind, CallState, HubToEdge};

/// A press of a call button on the kiosk, as the page makes it.
async fn press(addr: std::net::SocketAddr, action: &str, call_id: &str) -> (u16, String) {
    let body = format!(r#"{{"call_id":"{call_id}"}}"#);
    post_json(addr, &format!("/api/call/{action}"), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_served_one_at_a_time_by_priority() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut hub, running, kiosk) = start(dir.path()).await;

    // A relative calls: the terminal rings and says so on the kiosk.
    hub.offer("r1", CallKind::Relative, "Matti", false);
    assert_eq!(hub.next_update().await, ("r1".into(), CallState::Ringing));
    let call = kiosk_state(kiosk).await["call"].clone();
    assert_eq!(call["call_id"], "r1");
    assert_eq!(call["state"], "ringing");
    assert_eq!(call["title"], "Matti soittaa");
    assert!(call["cut"].is_null());

    // The client answers on the kiosk.
    let (status, body) = press(kiosk, "accept", "r1").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""state":"answered""#), "{body}");
    assert_eq!(hub.next_update().await, ("r1".into(), CallState::Answered));
    let call = kiosk_state(kiosk).await["call"].clone();
    assert_eq!(call["state"], "answered");
    assert_eq!(call["title"], "Puhelu käynnissä: Matti");

    // The nurse's scheduled call cuts the relative's and rings, counting
    // down to opening by itself; the client answers before it does.
    hub.offer("c1", CallKind::ScheduledCare, "Anna", true);
    assert_eq!(hub.next_update().await, ("r1".into(), CallState::Preempted));
    assert_eq!(hub.next_update().await, ("c1".into(), CallState::Ringing));
    let call = kiosk_state(kiosk).await["call"].clone();
    assert_eq!(call["state"], "ringing");
    assert_eq!(call["title"], "Hoitaja Anna soittaa");
    assert_eq!(call["initial"], "A");
    let left = call["auto_answer_at"].as_i64().expect("a deadline") - agent_now();
    assert!((8_000..=10_000).contains(&left), "{left} ms left");
    let (status, _) = press(kiosk, "accept", "c1").await;
    assert_eq!(status, 200);
    assert_eq!(hub.next_update().await, ("c1".into(), CallState::Answered));
    let call = kiosk_state(kiosk).await["call"].clone();
    assert_eq!(call["call_id"], "c1");
    assert_eq!(call["kind"], "scheduled_care");
    assert_eq!(call["state"], "answered");
    assert_eq!(call["title"], "Puhelu käynnissä: Anna");
    assert_eq!(call["cut"], "Edellinen puhelu katkaistiin: hoitaja soittaa");
    let page = http(
        kiosk,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".into(),
    )
    .await
    .1;
    assert!(page.contains(r#"id="call-cut">Edellinen puhelu katkaistiin: hoitaja soittaa</p>"#));
    assert!(page.contains(">Lopeta puhelu</button>"));
    // The cut call is gone: a stale press for it changes nothing.
    let (status, _) = press(kiosk, "hang-up", "r1").await;
    assert_eq!(status, 409);

    // Another relative calls while the nurse is on: busy.
    hub.offer("r2", CallKind::Relative, "Matti", false);
    assert_eq!(hub.next_update().await, ("r2".into(), CallState::Busy));
    assert_eq!(kiosk_state(kiosk).await["call"]["call_id"], "c1");

    // The hub ends the nurse's call: the slot is free and nothing is reported.
    hub.to_terminal
        .send(HubToEdge::CallEnd {
            call_id: "c1".into(),
            reason: "caller_hung_up".into(),
        })
        .expect("hub running");
    assert_eq!(hub.sent_before_ping("after-end").await, []);
    assert!(kiosk_state(kiosk).await["call"].is_null());
    assert_eq!(running.shared.current_call(), None);
    let (status, _) = press(kiosk, "hang-up", "c1").await;
    assert_eq!(status, 409);
    // Nothing of those stale presses reached the hub.
    assert_eq!(hub.sent_before_ping("after-stale").await, []);

    // The free terminal rings again; the client declines.
    hub.offer("r3", CallKind::Relative, "Matti", false);
    assert_eq!(hub.next_update().await, ("r3".into(), CallState::Ringing));
    let (status, _) = press(kiosk, "decline", "r3").await;
    assert_eq!(status, 200);
    assert_eq!(hub.next_update().await, ("r3".into(), CallState::Declined));
    assert!(kiosk_state(kiosk).await["call"].is_null());

    running.stop().await;
    hub.task.abort();
}

fn agent_now() -> i64 {
    etahoiva_edge::agent::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consented_care_call_opens_by_itself_after_the_countdown_unless_declined() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The shortest countdown the settings allow.
    let (mut hub, running, kiosk, _) = start_with(
        dir.path(),
        "en",
        "[settings.auto_answer]\nenabled = true\ncountdown_secs = 3\n",
    )
    .await;

    // The client declines the first call during its countdown.
    hub.offer("c1", CallKind::ScheduledCare, "Anna", true);
    assert_eq!(hub.next_update().await, ("c1".into(), CallState::Ringing));
    let (status, _) = press(kiosk, "decline", "c1").await;
    assert_eq!(status, 200);
    assert_eq!(hub.next_update().await, ("c1".into(), CallState::Declined));

    // The next one rings with a countdown on the kiosk...
    let offered = Instant::now();
    hub.offer("c2", CallKind::ScheduledCare, "Anna", true);
    assert_eq!(hub.next_update().await, ("c2".into(), CallState::Ringing));
    let call = kiosk_state(kiosk).await["call"].clone();
    assert_eq!(call["state"], "ringing");
    let left = call["auto_answer_at"].as_i64().expect("a deadline") - agent_now();
    assert!((1_000..=3_000).contains(&left), "{left} ms left");
    // ...and opens by itself when it runs out, as if the client had answered.
    assert_eq!(hub.next_update().await, ("c2".into(), CallState::Answered));
    assert!(offered.elapsed() >= Duration::from_millis(2_900));
    let call = kiosk_state(kiosk).await["call"].clone();
    assert_eq!(call["state"], "answered");
    assert!(call["auto_answer_at"].is_null());
    // The declined call's countdown, over by now too, answered nothing.
    assert_eq!(hub.sent_before_ping("after-countdown").await, []);

    // An alarm call the hub lets open at once does so.
    hub.offer("a1", CallKind::Alarm, "Hälytyskeskus", true);
    assert_eq!(hub.next_update().await, ("c2".into(), CallState::Preempted));
    assert_eq!(hub.next_update().await, ("a1".into(), CallState::Answered));

    running.stop().await;
    hub.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_while_the_link_is_down_is_not_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut hub, running, kiosk) = start(dir.path()).await;
    hub.offer("r1", CallKind::Relative, "Matti", false);
    assert_eq!(hub.next_update().await, ("r1".into(), CallState::Ringing));

    // The hub drops the connection (a replacement, as after a restart).
    hub.to_terminal
        .send(HubToEdge::Error {
            code: etahoiva_proto::ErrorCode::Replaced,
            message: "replaced".into(),
            fatal: true,
        })
        .expect("hub running");
    let mut state = serde_json::Value::Null;
    for _ in 0..100 {
        state = kiosk_state(kiosk).await;
        if state["connected"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state["connected"], false, "{state}");

    // The client answers while the link is down: the terminal shows it...
    let (status, body) = press(kiosk, "accept", "r1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kiosk_state(kiosk).await["call"]["state"], "answered");

    // ...but once the link is back the hub hears nothing of it.
    hub.admit_one();
    tokio::time::timeout(Duration::from_secs(15), hub.connections.recv())
        .await
        .expect("the terminal reconnects")
        .expect("hub running");
    assert_eq!(hub.sent_before_ping("after-reconnect").await, []);
    // Live updates flow again on the new connection.
    let (status, _) = press(kiosk, "hang-up", "r1").await;
    assert_eq!(status, 200);
    assert_eq!(hub.next_update().await, ("r1".into(), CallState::Ended));

    running.stop().await;
    hub.task.abort();
}
