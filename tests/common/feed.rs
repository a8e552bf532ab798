//! A client of the hub's live alert feed (`/api/v1/alerts/live`), as a
//! patrol phone or a console uses it, authenticated with a bearer token.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::HubProcess;

pub type Feed =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens the live feed of the user holding `token`.
pub async fn connect(hub: &HubProcess, token: &str) -> Feed {
    connect_to(hub, token, "/api/v1/alerts/live").await
}

/// Opens the WebSocket at `path` as the user holding `token`.
pub async fn connect_to(hub: &HubProcess, token: &str, path: &str) -> Feed {
    let ca = std::fs::read(hub.data_dir.join("tls/ca.pem")).expect("hub CA");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("ca pem")).expect("ca");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let addr = hub.base.trim_start_matches("https://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect to the hub");
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(&addr);
    let name = ServerName::try_from(host.to_string()).expect("server name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("tls");
    let mut request = format!("wss://{addr}{path}")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (socket, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .expect("the live feed opens");
    socket
}

/// The next message that is not a ping, within `limit`; None on close or time-out.
pub async fn next(feed: &mut Feed, limit: Duration) -> Option<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, feed.next()).await.ok()?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: serde_json::Value =
                    serde_json::from_str(text.as_str()).expect("json frame");
                if value["type"] != "ping" {
                    return Some(value);
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Waits for an `alert` message whose alert satisfies `want`.
pub async fn until_alert(
    feed: &mut Feed,
    limit: Duration,
    want: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = next(feed, left).await?;
        if message["type"] == "alert" && want(&message["alert"]) {
            return Some(message["alert"].clone());
        }
    }
}

pub async fn send(feed: &mut Feed, message: serde_json::Value) {
    feed.send(Message::Text(message.to_string().into()))
        .await
        .expect("send on the feed");
}
