//! Black-box test of TURN: a real hub issues short-lived credentials at
//! `GET /api/v1/calls/ice-servers`, and its embedded TURN server allocates
//! a relayed address with them, and only with them.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{add_user, login, spawn_hub_in};
use hmac::Mac;
use serde_json::Value;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "a shared secret only this test and the hub know";

fn password_for(username: &str) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Whether `error` is the server refusing an Allocate request for its
/// credentials. The embedded server (`turn` 0.17.2) answers a failed
/// authentication with 400 Bad Request, coturn with 401 Unauthorized.
fn refused_credentials(error: &str) -> bool {
    error.contains("error response") && (error.contains("error 400") || error.contains("error 401"))
}

/// Allocates a relayed address on `server`; the relayed address, or the
/// server's refusal.
async fn allocate(
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Result<SocketAddr, String> {
    let (client, result) = allocation(server, username, password).await;
    let result = result.map(|relayed| relayed.local_addr().expect("relayed address"));
    let _ = client.close().await;
    result
}

/// A TURN client of `server` and its allocation, or the server's refusal.
async fn allocation(
    server: SocketAddr,
    username: &str,
    password: &str,
) -> (Client, Result<impl Conn, String>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("client socket");
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_string(),
        password: password.to_string(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(socket),
        vnet: None,
    })
    .await
    .expect("client");
    client.listen().await.expect("listen");
    // A refusal is an answer: it must come long before the client gives up.
    let result = tokio::time::timeout(Duration::from_secs(20), client.allocate())
        .await
        .expect("the TURN server answers");
    (client, result.map_err(|e| e.to_string()))
}

#[tokio::test]
async fn turn_credentials_from_the_hub_allocate_and_nothing_else_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("hub");
    let secret_file = dir.path().join("turn-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret file");
    add_user(&data, "hanna", "nurse", PASSWORD);
    let hub = spawn_hub_in(
        &data,
        "hub",
        &[],
        &[(
            "ETAHOIVA_TURN_SECRET_FILE",
            secret_file.to_str().expect("utf-8 path"),
        )],
    );
    let turn_addr = hub.turn_addr();
    assert!(turn_addr.ip().is_loopback() && turn_addr.port() != 3478);

    // Not signed in: refused.
    let anonymous = hub
        .client()
        .get(hub.url("/api/v1/calls/ice-servers"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);

    let http = hub.client();
    let token = login(&http, &hub, "hanna", PASSWORD).await;
    let me: Value = http
        .get(hub.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    let response = http
        .get(hub.url("/api/v1/calls/ice-servers"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("ice servers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let servers: Value = response.json().await.expect("json");
    let servers = servers.as_array().expect("a list of RTCIceServer");
    assert_eq!(servers.len(), 1, "{servers:?}");
    let server = &servers[0];
    assert_eq!(
        server["urls"],
        serde_json::json!([format!("turn:{turn_addr}?transport=udp")])
    );
    let username = server["username"].as_str().expect("username");
    let credential = server["credential"].as_str().expect("credential");
    let (expiry, user_id) = username.split_once(':').expect("<expiry>:<id>");
    assert_eq!(user_id, me["id"].as_str().expect("user id"));
    let expiry: u64 = expiry.parse().expect("unix seconds");
    let now = unix_now();
    assert!(
        (now + 3500..=now + 3700).contains(&expiry),
        "expiry {expiry} is not an hour from {now}"
    );
    assert_eq!(credential, password_for(username), "the coturn REST scheme");

    // The issued credentials allocate a relayed address.
    let relayed = allocate(turn_addr, username, credential)
        .await
        .expect("allocation with the hub's credentials");
    assert!(relayed.ip().is_loopback(), "relayed address {relayed}");
    assert_ne!(relayed.port(), 0);

    // The server relays to the hub's media addresses only: a datagram for
    // any other peer goes nowhere.
    let (client, relayed) = allocation(turn_addr, username, credential).await;
    let relayed = relayed.expect("a second allocation");
    let elsewhere = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("peer socket");
    relayed
        .send_to(b"to someone else", elsewhere.local_addr().expect("addr"))
        .await
        .expect("the client sends");
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_secs(1), elsewhere.recv_from(&mut buf))
            .await
            .is_err(),
        "a peer other than the relay received a relayed datagram"
    );
    let _ = relayed.close().await;
    let _ = client.close().await;

    // A wrong password is refused.
    let refused = allocate(turn_addr, username, "not the password")
        .await
        .expect_err("a wrong password allocates nothing");
    assert!(refused_credentials(&refused), "{refused}");

    // So is an expired username, even with its correct password.
    let expired = format!("{}:{user_id}", now - 60);
    let refused = allocate(turn_addr, &expired, &password_for(&expired))
        .await
        .expect_err("an expired username allocates nothing");
    assert!(refused_credentials(&refused), "{refused}");

    // And a username the hub never issued under another secret.
    let forged = format!("{}:{user_id}", now + 600);
    let refused = allocate(turn_addr, &forged, "Zm9yZ2VkIHBhc3N3b3Jk")
        .await
        .expect_err("a forged credential allocates nothing");
    assert!(refused_credentials(&refused), "{refused}");
}

#[tokio::test]
async fn with_an_external_turn_server_the_hub_issues_credentials_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("hub");
    add_user(&data, "pekka", "patrol", PASSWORD);
    let urls =
        r#"["turns:turn.example.fi:443?transport=tcp", "turn:turn.example.fi:3478?transport=udp"]"#;
    let hub = spawn_hub_in(
        &data,
        "hub",
        &[],
        &[
            ("ETAHOIVA_TURN_ENABLED", "false"),
            ("ETAHOIVA_TURN_URLS", urls),
        ],
    );
    assert!(
        !hub.stdout.iter().any(|l| l.starts_with("TURN server on")),
        "no embedded TURN server: {:?}",
        hub.stdout
    );
    let http = hub.client();
    let token = login(&http, &hub, "pekka", PASSWORD).await;
    let servers: Value = http
        .get(hub.url("/api/v1/calls/ice-servers"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("ice servers")
        .json()
        .await
        .expect("json");
    assert_eq!(
        servers[0]["urls"],
        serde_json::from_str::<Value>(urls).expect("urls")
    );
    // The secret was generated once in the data directory, for the
    // administrator to give coturn, readable by the hub's user alone.
    let secret_file = data.join("turn.secret");
    let secret = std::fs::read_to_string(&secret_file).expect("generated secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let username = servers[0]["username"].as_str().expect("username");
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.trim().as_bytes()).expect("key");
    mac.update(username.as_bytes());
    assert_eq!(
        servers[0]["credential"],
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
}

#[test]
fn a_busy_turn_port_stops_the_hub_with_a_clear_message() {
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
    let busy_addr = busy.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(common::HUB_BIN)
        .args([
            "hub",
            "--listen",
            "127.0.0.1:0",
            "--device-listen",
            "127.0.0.1:0",
        ])
        .args(["--relay-listen", "127.0.0.1:0", "--turn-listen", &busy_addr])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env("ETAHOIVA_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hub starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the hub kept running without its TURN port");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("cannot listen for TURN on {busy_addr} (UDP)")),
        "{stderr}"
    );
}
