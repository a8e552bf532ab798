//! Terminals for the black-box tests: provisioned bundles, `etahoiva-edge`
//! processes, and a raw terminal-link client for what a well-behaved agent
//! would never send.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{run_cli, HubProcess};

/// The edge binary, built beside the hub's by `cargo test --workspace`.
pub fn edge_bin() -> PathBuf {
    let path = Path::new(super::HUB_BIN).with_file_name("etahoiva-edge");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// A provisioned terminal bundle.
pub struct Bundle {
    pub dir: PathBuf,
    pub profile: PathBuf,
    pub device_id: String,
}

/// Provisions a terminal through the CLI and prepares its profile for a
/// test: kiosk on a random loopback port, heartbeats every 5 seconds.
pub fn provision(hub: &HubProcess, root: &Path, name: &str, extra: &[&str]) -> Bundle {
    let dir = root.join(name.replace(' ', "-"));
    let url = hub.link_url();
    let data = hub.data_dir.to_str().expect("utf-8");
    let out = dir.to_str().expect("utf-8");
    let mut args = vec![
        "devices",
        "provision",
        "--data-dir",
        data,
        "--name",
        name,
        "--hub-url",
        &url,
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = run_cli(&args, None, &[]);
    assert!(ok, "provision failed: {stdout} {stderr}");
    let device_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("provisioned terminal "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("device id printed")
        .to_string();
    let profile = dir.join("profile.toml");
    edit_profile(&profile, |p| {
        p["settings"]["heartbeat_secs"] = toml::Value::Integer(5);
        p["settings"]["kiosk"]["listen"] = toml::Value::String("127.0.0.1:0".into());
    });
    Bundle {
        dir,
        profile,
        device_id,
    }
}

/// Rewrites a profile file through `change`.
pub fn edit_profile(path: &Path, change: impl FnOnce(&mut toml::Value)) {
    let text = std::fs::read_to_string(path).expect("profile");
    let mut value: toml::Value = toml::from_str(&text).expect("profile parses");
    change(&mut value);
    std::fs::write(path, toml::to_string(&value).expect("render")).expect("write profile");
}

/// A running `etahoiva-edge`, killed on drop.
pub struct EdgeProcess {
    pub child: Child,
    pub kiosk: String,
    pub log: PathBuf,
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl EdgeProcess {
    /// `kill -9`: no chance to clean up.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kiosk_url(&self, path: &str) -> String {
        format!("{}{}", self.kiosk.trim_end_matches('/'), path)
    }

    /// Presses the kiosk's help button; the key once the event is on disk.
    pub async fn press_help(&self, client: &reqwest::Client) -> String {
        let response = client
            .post(self.kiosk_url("/api/help"))
            .send()
            .await
            .expect("help press");
        assert_eq!(response.status(), 201, "help press accepted");
        let body: serde_json::Value = response.json().await.expect("json");
        body["key"].as_str().expect("key").to_string()
    }

    pub async fn kiosk_state(&self, client: &reqwest::Client) -> serde_json::Value {
        client
            .get(self.kiosk_url("/api/state"))
            .send()
            .await
            .expect("kiosk state")
            .json()
            .await
            .expect("json")
    }
}

/// Starts `etahoiva-edge --profile PROFILE` and waits until it serves its kiosk.
pub fn spawn_edge(bundle: &Bundle) -> EdgeProcess {
    spawn_edge_with(bundle, &[])
}

/// Starts the terminal agent with extra flags (`--simulate`).
pub fn spawn_edge_with(bundle: &Bundle, args: &[&str]) -> EdgeProcess {
    let log = bundle.dir.join(format!(
        "edge-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let mut child = Command::new(edge_bin())
        .arg("--profile")
        .arg(&bundle.profile)
        .args(args)
        .env("ETAHOIVA_EDGE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("edge starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("Kiosk on ") {
                    return EdgeProcess {
                        child,
                        kiosk: url.to_string(),
                        log,
                    };
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "edge did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }
}

/// Polls `check` every 200 ms for at most `limit`; true once it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The admin's view of one terminal.
pub async fn device(
    client: &reqwest::Client,
    hub: &HubProcess,
    token: &str,
    id: &str,
) -> serde_json::Value {
    client
        .get(hub.url(&format!("/api/v1/devices/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("device")
        .json()
        .await
        .expect("json")
}

/// Event keys the hub stored for a terminal, in order.
pub async fn stored_keys(
    client: &reqwest::Client,
    hub: &HubProcess,
    token: &str,
    id: &str,
) -> Vec<String> {
    let events: serde_json::Value = client
        .get(hub.url(&format!("/api/v1/devices/{id}/events")))
        .bearer_auth(token)
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("json");
    events
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["key"].as_str().expect("key").to_string())
        .collect()
}

pub type RawLink =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens the terminal link with the given client certificate and key
/// (PEM), trusting `ca_pem` for the hub. Err carries the reason.
pub async fn raw_link(
    addr: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<RawLink, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("ca");
    }
    let chain: Vec<_> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("cert pem");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key pem");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client auth");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let request = format!("wss://{addr}/link")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    match tokio_tungstenite::client_async(request, tls).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(format!(
            "http {}: {}",
            response.status().as_u16(),
            response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        )),
        Err(e) => Err(format!("websocket: {e}")),
    }
}

pub async fn send_text(link: &mut RawLink, text: String) {
    link.send(Message::Text(text.into())).await.expect("send");
}

/// The next text frame as JSON, within 10 seconds; None when the link closed.
pub async fn next_json(link: &mut RawLink) -> Option<serde_json::Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), link.next())
            .await
            .expect("a frame within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(text.as_str()).expect("json frame"))
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

pub fn hello(device_id: &str, protocol: u32) -> String {
    serde_json::json!({
        "type": "hello",
        "protocol": protocol,
        "device_id": device_id,
        "agent_version": "test",
        "config_version": 0,
    })
    .to_string()
}
