//! Shared by the terminal's black-box tests: a test PKI, a profile
//! pointing at a stand-in hub on loopback, the stand-in hub that relays
//! frames for a test, and plain HTTP to the kiosk.

// Each test binary uses a different part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use etahoiva_edge::agent::{self, RunOptions};
use etahoiva_firmware_config::Profile;
use etahoiva_proto::{decode, encode, CallKind, CallState, Command, EdgeToHub, HubToEdge};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

pub const DEVICE_ID: &str = "t-0123456789abcdef0123456789abcdef";

/// A CA, a hub certificate for 127.0.0.1 and a device identity, written
/// where the profile expects them; returns the hub's TLS configuration.
pub fn pki(dir: &Path) -> Arc<rustls::ServerConfig> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let hub_key = KeyPair::generate().expect("key");
    let hub_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&hub_key, &ca_cert, &ca_key)
        .expect("hub cert");
    let device_key = KeyPair::generate().expect("key");
    let device_cert = CertificateParams::new(Vec::<String>::new())
        .expect("params")
        .signed_by(&device_key, &ca_cert, &ca_key)
        .expect("device cert");
    std::fs::write(dir.join("hub-ca.pem"), ca_cert.pem()).expect("write");
    std::fs::write(dir.join("device.pem"), device_cert.pem()).expect("write");
    std::fs::write(dir.join("device-key.pem"), device_key.serialize_pem()).expect("write");
    let chain = vec![hub_cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(hub_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    Arc::new(config)
}

pub fn write_profile(dir: &Path, hub_port: u16) -> PathBuf {
    write_profile_in(dir, hub_port, "fi")
}

/// A profile for a client who speaks `language` (`fi`, `sv` or `en`).
pub fn write_profile_in(dir: &Path, hub_port: u16, language: &str) -> PathBuf {
    write_profile_with(dir, hub_port, language, "")
}

/// Like [`write_profile_in`], with `extra` TOML tables at the end.
pub fn write_profile_with(dir: &Path, hub_port: u16, language: &str, extra: &str) -> PathBuf {
    let path = dir.join("profile.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[device]
id = "{DEVICE_ID}"
name = "test terminal"

[hub]
url = "wss://127.0.0.1:{hub_port}/link"
ca_cert = "hub-ca.pem"

[identity]
cert = "device.pem"
key = "device-key.pem"

[settings]
language = "{language}"
heartbeat_secs = 30

[settings.kiosk]
listen = "127.0.0.1:0"
{extra}"#
        ),
    )
    .expect("profile");
    path
}

/// The stand-in hub's end of one terminal's link.
pub type HubSocket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

/// Admits one terminal to the stand-in hub: TLS, the WebSocket, its
/// hello in the current protocol and the hub's welcome. None when the terminal went away.
pub async fn admit(
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
) -> Option<HubSocket> {
    use etahoiva_proto::PROTOCOL_VERSION;
    let stream = acceptor.accept(tcp).await.ok()?;
    let mut ws = tokio_tungstenite::accept_async(stream).await.ok()?;
    let Some(Ok(Message::Text(hello))) = ws.next().await else {
        return None;
    };
    assert!(matches!(
        decode::<EdgeToHub>(hello.as_str()),
        Ok(EdgeToHub::Hello {
            protocol: PROTOCOL_VERSION,
            ..
        })
    ));
    let welcome = HubToEdge::Welcome {
        protocol: PROTOCOL_VERSION,
        device_id: DEVICE_ID.into(),
        heartbeat_secs: 30,
        server_time: 0,
        client_name: None,
    };
    ws.send(Message::Text(encode(&welcome).into())).await.ok()?;
    Some(ws)
}

/// The test's end of a stand-in hub: frames to send to the terminal, and
/// the frames the terminal sent (heartbeats left out).
pub struct Hub {
    pub to_terminal: mpsc::UnboundedSender<HubToEdge>,
    pub from_terminal: mpsc::UnboundedReceiver<EdgeToHub>,
    /// One message per accepted connection.
    pub connections: mpsc::UnboundedReceiver<()>,
    /// One token lets one connection in; until then the terminal waits in
    /// the TCP backlog, not connected.
    pub admit: mpsc::UnboundedSender<()>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Hub {
    pub fn admit_one(&self) {
        self.admit.send(()).expect("hub running");
    }

    pub fn offer(&self, call_id: &str, kind: CallKind, caller: &str, auto_answer: bool) {
        let offer = HubToEdge::CallOffer {
            call_id: call_id.into(),
            kind,
            caller: caller.into(),
            visit_id: (kind == CallKind::ScheduledCare).then(|| "v1".to_string()),
            auto_answer,
        };
        self.to_terminal.send(offer).expect("hub running");
    }

    pub async fn next(&mut self) -> EdgeToHub {
        tokio::time::timeout(Duration::from_secs(10), self.from_terminal.recv())
            .await
            .expect("a frame from the terminal in time")
            .expect("hub running")
    }

    pub async fn next_update(&mut self) -> (String, CallState) {
        match self.next().await {
            EdgeToHub::CallUpdate { call_id, state, .. } => (call_id, state),
            other => panic!("expected a call update, got {other:?}"),
        }
    }

    /// Pings the terminal and returns what it sent before the answer.
    pub async fn sent_before_ping(&mut self, id: &str) -> Vec<EdgeToHub> {
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
pub fn stand_in_hub(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>) -> Hub {
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
            let Some(mut ws) = self::admit(&acceptor, tcp).await else {
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

pub async fn http(addr: std::net::SocketAddr, request: String) -> (u16, String) {
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

pub async fn kiosk_state(addr: std::net::SocketAddr) -> serde_json::Value {
    let request =
        "GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_string();
    let (status, body) = http(addr, request).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// A POST to the kiosk as the page's script makes it.
pub async fn post_json(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, String) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        port = addr.port(),
        len = body.len(),
    );
    http(addr, request).await
}

/// A GET of a kiosk page; the body.
pub async fn page(addr: std::net::SocketAddr, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let (status, body) = http(addr, request).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Starts a terminal from the profile at `path` with its kiosk.
pub async fn start_terminal(path: &Path) -> (agent::Running, std::net::SocketAddr) {
    let profile = Profile::load(path).expect("profile");
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
    (running, kiosk)
}

impl Hub {
    /// Waits until the terminal is connected and has read the welcome.
    pub async fn wait_connected(&mut self) {
        tokio::time::timeout(Duration::from_secs(15), self.connections.recv())
            .await
            .expect("the terminal connects")
            .expect("hub running");
        // The welcome has been read once the terminal answers a ping.
        assert_eq!(self.sent_before_ping("warm-up").await, []);
    }

    pub fn send(&self, message: HubToEdge) {
        self.to_terminal.send(message).expect("hub running");
    }
}

/// A stand-in hub, a terminal for a Finnish-speaking client connected to it
/// and the terminal's kiosk address.
pub async fn start(dir: &Path) -> (Hub, agent::Running, std::net::SocketAddr) {
    let (hub, running, kiosk, _) = start_in(dir, "fi").await;
    (hub, running, kiosk)
}

/// Like [`start`] for a client speaking `language`; also the profile's path.
pub async fn start_in(
    dir: &Path,
    language: &str,
) -> (Hub, agent::Running, std::net::SocketAddr, PathBuf) {
    start_with(dir, language, "").await
}

/// Like [`start_in`], with `extra` TOML tables in the terminal's profile.
pub async fn start_with(
    dir: &Path,
    language: &str,
    extra: &str,
) -> (Hub, agent::Running, std::net::SocketAddr, PathBuf) {
    let tls = pki(dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut hub = stand_in_hub(listener, tls);
    hub.admit_one();
    let path = write_profile_with(dir, port, language, extra);
    let (running, kiosk) = start_terminal(&path).await;
    hub.wait_connected().await;
    (hub, running, kiosk, path)
}
