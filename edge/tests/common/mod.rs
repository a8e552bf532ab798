//! Shared by the terminal's black-box tests: a test PKI and a profile
//! pointing at a stand-in hub on loopback.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
language = "fi"
heartbeat_secs = 30

[settings.kiosk]
listen = "127.0.0.1:0"
"#
        ),
    )
    .expect("profile");
    path
}

/// The stand-in hub's end of one terminal's link.
pub type HubSocket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

/// Admits one terminal to the stand-in hub: TLS, the WebSocket, its
/// protocol-2 hello and the hub's welcome. None when the terminal went away.
pub async fn admit(
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
) -> Option<HubSocket> {
    use etahoiva_proto::{decode, encode, EdgeToHub, HubToEdge};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let stream = acceptor.accept(tcp).await.ok()?;
    let mut ws = tokio_tungstenite::accept_async(stream).await.ok()?;
    let Some(Ok(Message::Text(hello))) = ws.next().await else {
        return None;
    };
    assert!(matches!(
        decode::<EdgeToHub>(hello.as_str()),
        Ok(EdgeToHub::Hello { protocol: 2, .. })
    ));
    let welcome = HubToEdge::Welcome {
        protocol: 2,
        device_id: DEVICE_ID.into(),
        heartbeat_secs: 30,
        server_time: 0,
        client_name: None,
    };
    ws.send(Message::Text(encode(&welcome).into())).await.ok()?;
    Some(ws)
}
