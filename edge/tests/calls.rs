//! Calls over a real terminal link: a stand-in hub speaks TLS and the
//! WebSocket, offers calls and ends them; the agent serves one call at a
//! time by priority, reports each state back, and the client answers on
//! the kiosk.

mod common;

use common::{pki, write_profile};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use etahoiva_edge::agent::{self, RunOptions};
use etahoiva_firmware_config::Profile;
use etahoiva_proto::{decode, encode, CallKind, CallState, Command, EdgeToHub, HubToEdge};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The test's end of a stand-in hub: frames to send to the terminal, and
/// the frames the terminal sent (heartbeats left out).
struct Hub {
    to_terminal: mpsc::UnboundedSender<HubToEdge>,
    from_terminal: mpsc::UnboundedReceiver<EdgeToHub>,
    /// One message per accepted connection.
    connections: mpsc::UnboundedReceiver<()>,
    /// One token lets one connection in; until then the terminal waits in
    /// the TCP backlog, not connected.
    admit: mpsc::UnboundedSender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Hub {
    fn admit_one(&self) {
        self.admit.send(()).expect("hub running");
    }

    fn offer(&self, call_id: &str, kind: CallKind, caller: &str, auto_answer: bool) {
        let offer = HubToEdge::CallOffer {
            call_id: call_id.into(),
            kind,
            caller: caller.into(),
            visit_id: (kind == CallKind::ScheduledCare).then(|| "v1".to_string()),
            auto_answer,
        };
        self.to_terminal.send(offer).expect("hub running");
    }

    async fn next(&mut self) -> EdgeToHub {
        tokio::time::timeout(Duration::from_secs(10), self.from_terminal.recv())
            .await
            .expect("a frame from the terminal in time")
            .expect("hub running")
    }

    async fn next_update(&mut self) -> (String, CallState) {
        match self.next().await {
            EdgeToHub::CallUpdate { call_id, state, .. } => (call_id, state),
            other => panic!("expected a call update, got {other:?}"),
        }
    }

    /// Pings the terminal and returns what it sent before the answer.
    async fn sent_before_ping(&mut self, id: &str) -> Vec<EdgeToHub> {
        let ping = HubToEdge::Command {
            id: id.into(),
            command: Command::Ping,
        };
        self.to_terminal.send(ping).expect("hub running");
        let mut before = Vec::new();
        loop {
            match self.next().await {
                EdgeToHub::CommandResult { id: done, .. } if done == id => return before,
                other => before.push(other),
            }
        }
    }
}

/// A hub that welcomes the terminal, then relays frames both ways for the test.
fn stand_in_hub(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>) -> Hub {
    let (to_terminal, mut outgoing) = mpsc::unbounded_channel::<HubToEdge>();
    let (incoming, from_terminal) = mpsc::unbounded_channel::<EdgeToHub>();
    let (connected, connections) = mpsc::unbounded_channel::<()>();
    let (admit, mut admitted) = mpsc::unbounded_channel::<()>();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        // One connection at a time: a new one replaces the previous.
        let mut admitted_one = false;
        loop {
            // A failed handshake does not use up the token.
            if !admitted_one && admitted.recv().await.is_none() {
                return;
            }
            admitted_one = true;
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Some(mut ws) = common::admit(&acceptor, tcp).await else {
                continue;
            };
            admitted_one = false;
            let _ = connected.send(());
            loop {
                tokio::select! {
                    message = outgoing.recv() => {
                        let Some(message) = message else { return };
                        if ws.send(Message::Text(encode(&message).into())).await.is_err() {
                            break;
                        }
                    }
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(text))) => match decode::<EdgeToHub>(text.as_str()) {
                            Ok(EdgeToHub::Heartbeat { .. }) => {}
                            Ok(message) => { let _ = incoming.send(message); }
                            Err(e) => panic!("unreadable frame from the terminal: {e}"),
                        },
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    });
    Hub {
        to_terminal,
        from_terminal,
        connections,
        admit,
        task,
    }
}

async fn http(addr: std::net::SocketAddr, request: String) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("kiosk");
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8(response).expect("utf-8");
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .expect("body");
    (status, body)
}

async fn kiosk_state(addr: std::net::SocketAddr) -> serde_json::Value {
    let request =
        "GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_string();
    let (status, body) = http(addr, request).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// A press of a call button on the kiosk, as the page makes it.
async fn press(addr: std::net::SocketAddr, action: &str, call_id: &str) -> (u16, String) {
    let body = format!(r#"{{"call_id":"{call_id}"}}"#);
    let request = format!(
        "POST /api/call/{action} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        port = addr.port(),
        len = body.len(),
    );
    http(addr, request).await
}

async fn start(dir: &Path) -> (Hub, agent::Running, std::net::SocketAddr) {
    let tls = pki(dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut hub = stand_in_hub(listener, tls);
    hub.admit_one();
    let profile = Profile::load(&write_profile(dir, port)).expect("profile");
    let running = agent::start(profile, RunOptions { kiosk: true })
        .await
        .expect("agent starts");
    let kiosk = running.kiosk_addr.expect("kiosk address");
    tokio::time::timeout(Duration::from_secs(10), hub.connections.recv())
        .await
        .expect("the terminal connects")
        .expect("hub running");
    // The welcome has been read once the terminal answers a ping.
    assert_eq!(hub.sent_before_ping("warm-up").await, []);
    (hub, running, kiosk)
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

    // The nurse's scheduled call cuts the relative's and opens by itself.
    hub.offer("c1", CallKind::ScheduledCare, "Anna", true);
    assert_eq!(hub.next_update().await, ("r1".into(), CallState::Preempted));
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
