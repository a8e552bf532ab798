//! TURN for participants whose network blocks UDP to the relay's ports: an
//! embedded TURN server (UDP, on the `turn` crate) and the short-lived
//! credentials the hub hands out.
//!
//! Credentials follow the "TURN REST API" scheme coturn implements with
//! `use-auth-secret`: the username is `"<expiry unix seconds>:<user id>"`,
//! the password `base64(HMAC-SHA1(secret, username))`. The same credentials
//! therefore work with the embedded server and with coturn sharing the
//! secret (`deploy/coturn/`). A username whose expiry has passed is refused.
//!
//! The embedded server relays only to the relay's own media addresses:
//! every relayed socket is wrapped so that datagrams to any other peer are
//! dropped and datagrams from any other source are ignored. (`turn` 0.17.2
//! has no hook to refuse a CreatePermission, so a permission for another
//! peer is granted but carries nothing.) It has no allocation quotas; a
//! production deployment that needs them uses coturn.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;
use tokio::net::UdpSocket;
use turn::auth::AuthHandler;
use turn::relay::RelayAddressGenerator;
use turn::server::config::{ConnConfig, ServerConfig};
use turn::server::Server;
use webrtc_util::Conn;

use crate::settings::Settings;

/// The realm of the embedded server.
pub const REALM: &str = "etahoiva";

/// How long issued credentials stay valid. A TURN allocation is refreshed
/// with the same username, so a call may outlast it only by the
/// allocation's own lifetime; a client asks for fresh ones per call.
pub const CREDENTIAL_LIFETIME: Duration = Duration::from_secs(3600);

/// The file in the data directory holding a generated secret.
pub const SECRET_FILE_NAME: &str = "turn.secret";

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("cannot read the TURN secret from {path}: {error}")]
    ReadSecret {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the TURN secret file {0} is empty")]
    EmptySecret(PathBuf),
    #[error("cannot write the TURN secret to {path}: {error}")]
    WriteSecret {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "cannot listen for TURN on {addr} (UDP): {error}; set turn_listen to a free address, \
         or turn_enabled = false when another TURN server is used"
    )]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot start the TURN server: {0}")]
    Server(String),
}

/// The shared secret of the TURN REST scheme. Its `Debug` hides it.
#[derive(Clone)]
pub struct TurnSecret(Arc<str>);

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

impl TurnSecret {
    pub fn new(secret: &str) -> TurnSecret {
        TurnSecret(Arc::from(secret))
    }

    /// Reads the secret from `file` (surrounding white space ignored); with
    /// no file, from `DATA_DIR/turn.secret`, creating it (mode 0600) with a
    /// random secret the first time.
    pub fn load_or_create(file: Option<&Path>, data_dir: &Path) -> Result<TurnSecret, TurnError> {
        if let Some(path) = file {
            return read_secret(path);
        }
        let path = data_dir.join(SECRET_FILE_NAME);
        if path.exists() {
            return read_secret(&path);
        }
        let write_err = |error| TurnError::WriteSecret {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(data_dir).map_err(write_err)?;
        let secret = random_secret();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(format!("{secret}\n").as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(write_err)?;
                tracing::info!(path = %path.display(), "generated the TURN secret");
                Ok(TurnSecret::new(&secret))
            }
            // Another process created it first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret(&path),
            Err(e) => Err(write_err(e)),
        }
    }

    /// The password of `username`: `base64(HMAC-SHA1(secret, username))`.
    pub fn password(&self, username: &str) -> String {
        let mut mac =
            Hmac::<Sha1>::new_from_slice(self.0.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(username.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}

fn read_secret(path: &Path) -> Result<TurnSecret, TurnError> {
    let text = std::fs::read_to_string(path).map_err(|error| TurnError::ReadSecret {
        path: path.to_path_buf(),
        error,
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(TurnError::EmptySecret(path.to_path_buf()));
    }
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(path = %path.display(), "the TURN secret file is readable by every user; chmod o-r it");
        }
    }
    Ok(TurnSecret::new(secret))
}

/// 32 random bytes as 64 hexadecimal digits.
fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A username and password valid until `expiry` (unix seconds).
pub fn credential(secret: &TurnSecret, user_id: &str, expiry: u64) -> (String, String) {
    let username = format!("{expiry}:{user_id}");
    let password = secret.password(&username);
    (username, password)
}

/// Why a TURN username is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not of the form <expiry>:<id>")]
    Malformed,
    #[error("expired")]
    Expired,
    #[error("another realm")]
    Realm,
}

/// The password the holder of `username` must prove, or why it is refused
/// at `now` (unix seconds).
pub fn check_username(
    secret: &TurnSecret,
    username: &str,
    realm: &str,
    now: u64,
) -> Result<String, Refused> {
    if realm != REALM {
        return Err(Refused::Realm);
    }
    let (expiry, id) = username.split_once(':').ok_or(Refused::Malformed)?;
    let expiry: u64 = expiry.parse().map_err(|_| Refused::Malformed)?;
    if id.is_empty() {
        return Err(Refused::Malformed);
    }
    if expiry <= now {
        return Err(Refused::Expired);
    }
    Ok(secret.password(username))
}

/// The embedded server's authentication: only the hub's time-limited
/// credentials. A refused username is answered with an error response, a
/// wrong password fails the message integrity check.
pub struct TurnRestAuth {
    secret: TurnSecret,
}

impl TurnRestAuth {
    pub fn new(secret: TurnSecret) -> TurnRestAuth {
        TurnRestAuth { secret }
    }
}

impl AuthHandler for TurnRestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        match check_username(&self.secret, username, realm, unix_secs(SystemTime::now())) {
            Ok(password) => Ok(turn::auth::generate_auth_key(username, realm, &password)),
            Err(why) => {
                tracing::info!(%src_addr, username, reason = %why, "TURN credentials refused");
                metrics::counter!("etahoiva_turn_refusals_total").increment(1);
                Err(turn::Error::Other(format!("TURN username refused: {why}")))
            }
        }
    }
}

/// An entry of `RTCConfiguration.iceServers` (the W3C `RTCIceServer`
/// dictionary): TURN URLs with a username and password valid for
/// [`CREDENTIAL_LIFETIME`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IceServer {
    /// `turn:host:port?transport=udp`, `turns:host:443?transport=tcp`, …
    pub urls: Vec<String>,
    /// `<expiry unix seconds>:<user or device id>`.
    pub username: String,
    /// base64(HMAC-SHA1(shared secret, username)).
    pub credential: String,
}

/// What the hub needs to hand out TURN credentials.
#[derive(Clone, Debug)]
pub struct IceConfig {
    /// Empty: no TURN server (embedded one off and no `turn_urls`).
    pub urls: Vec<String>,
    pub secret: Option<TurnSecret>,
}

impl IceConfig {
    /// No TURN at all.
    pub fn none() -> IceConfig {
        IceConfig {
            urls: Vec::new(),
            secret: None,
        }
    }
}

/// The ICE servers for `user_or_device_id` at `now`: the configured TURN
/// URLs with credentials expiring [`CREDENTIAL_LIFETIME`] later; none when
/// no TURN server is configured.
pub fn ice_servers(config: &IceConfig, user_or_device_id: &str, now: SystemTime) -> Vec<IceServer> {
    let Some(secret) = &config.secret else {
        return Vec::new();
    };
    if config.urls.is_empty() {
        return Vec::new();
    }
    let expiry = unix_secs(now) + CREDENTIAL_LIFETIME.as_secs();
    let (username, credential) = credential(secret, user_or_device_id, expiry);
    vec![IceServer {
        urls: config.urls.clone(),
        username,
        credential,
    }]
}

/// The relay's media addresses as announced to participants, and where the
/// TURN server reaches each of them on this host.
#[derive(Clone, Debug, Default)]
struct MediaPeers {
    /// (announced, local)
    pairs: Vec<(SocketAddr, SocketAddr)>,
}

impl MediaPeers {
    fn new(announced: &[SocketAddr], relay_bind: IpAddr) -> MediaPeers {
        let pairs = announced
            .iter()
            .map(|a| {
                let ip = if relay_bind.is_unspecified() {
                    loopback_like(a.ip())
                } else {
                    relay_bind
                };
                (*a, SocketAddr::new(ip, a.port()))
            })
            .collect();
        MediaPeers { pairs }
    }

    /// Where to send a datagram addressed to `peer`, if anywhere.
    fn local_of(&self, peer: SocketAddr) -> Option<SocketAddr> {
        self.pairs
            .iter()
            .find(|(announced, local)| *announced == peer || *local == peer)
            .map(|(_, local)| *local)
    }

    /// The announced address of the media socket a datagram came from.
    fn announced_of(&self, from: SocketAddr) -> Option<SocketAddr> {
        self.pairs
            .iter()
            .find(|(_, local)| *local == from)
            .map(|(announced, _)| *announced)
    }
}

fn loopback_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

/// A relayed socket that carries datagrams only to and from the relay's
/// media addresses.
struct MediaOnlyConn {
    socket: UdpSocket,
    peers: Arc<MediaPeers>,
}

#[async_trait::async_trait]
impl Conn for MediaOnlyConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other(
            "a relayed socket is not connected".into(),
        ))
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            match self.peers.announced_of(from) {
                Some(announced) => return Ok((n, announced)),
                None => {
                    metrics::counter!("etahoiva_turn_dropped_total", "direction" => "in")
                        .increment(1);
                }
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other(
            "a relayed socket is not connected".into(),
        ))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        match self.peers.local_of(target) {
            Some(local) => Ok(self.socket.send_to(buf, local).await?),
            None => {
                // Not the relay: dropped, as a firewall would.
                tracing::debug!(%target, "TURN datagram to a peer other than the relay dropped");
                metrics::counter!("etahoiva_turn_dropped_total", "direction" => "out").increment(1);
                Ok(buf.len())
            }
        }
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Opens relayed sockets next to the relay's own sockets, each limited to
/// the relay's media addresses.
struct MediaRelayAddrs {
    /// Where relayed sockets are bound (any port).
    bind_ip: IpAddr,
    /// The IP put in the XOR-RELAYED-ADDRESS of allocations.
    public_ip: IpAddr,
    peers: Arc<MediaPeers>,
}

#[async_trait::async_trait]
impl RelayAddressGenerator for MediaRelayAddrs {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        if use_ipv4 != self.bind_ip.is_ipv4() {
            return Err(turn::Error::Other(
                "the relay has no media address of that family".into(),
            ));
        }
        let socket = UdpSocket::bind(SocketAddr::new(self.bind_ip, requested_port)).await?;
        let relayed = SocketAddr::new(self.public_ip, socket.local_addr()?.port());
        Ok((
            Arc::new(MediaOnlyConn {
                socket,
                peers: self.peers.clone(),
            }),
            relayed,
        ))
    }
}

/// A running embedded TURN server.
pub struct TurnServer {
    server: Server,
    addr: SocketAddr,
}

impl TurnServer {
    /// Binds `listen` (UDP) and serves TURN there, relaying only to
    /// `media` (the relay's announced addresses; its sockets are bound on
    /// `relay_bind`). Allocations get `public_ip` as their relayed address.
    pub async fn start(
        listen: SocketAddr,
        secret: TurnSecret,
        media: &[SocketAddr],
        relay_bind: IpAddr,
        public_ip: IpAddr,
    ) -> Result<TurnServer, TurnError> {
        let socket = UdpSocket::bind(listen)
            .await
            .map_err(|error| TurnError::Bind {
                addr: listen,
                error,
            })?;
        let addr = socket.local_addr().map_err(|error| TurnError::Bind {
            addr: listen,
            error,
        })?;
        let peers = Arc::new(MediaPeers::new(media, relay_bind));
        let server = Server::new(ServerConfig {
            conn_configs: vec![ConnConfig {
                conn: Arc::new(socket),
                relay_addr_generator: Box::new(MediaRelayAddrs {
                    bind_ip: relay_bind,
                    public_ip,
                    peers,
                }),
            }],
            realm: REALM.to_string(),
            auth_handler: Arc::new(TurnRestAuth::new(secret)),
            channel_bind_timeout: Duration::ZERO,
            alloc_close_notify: None,
        })
        .await
        .map_err(|e| TurnError::Server(e.to_string()))?;
        tracing::info!(%addr, realm = REALM, media = ?media, "TURN server listening (UDP)");
        Ok(TurnServer { server, addr })
    }

    /// The UDP address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listener and every allocation.
    pub async fn close(self) {
        if let Err(e) = self.server.close().await {
            tracing::debug!(error = %e, "closing the TURN server");
        }
    }
}

/// Starts TURN as the settings ask, next to a relay whose announced media
/// addresses are `media`: the embedded server when `turn_enabled`, and the
/// URLs and secret credentials are issued for.
pub async fn start(
    settings: &Settings,
    media: &[SocketAddr],
) -> Result<(Option<TurnServer>, IceConfig), TurnError> {
    if !settings.turn_enabled && settings.turn_urls.as_ref().is_none_or(|u| u.is_empty()) {
        tracing::warn!("no TURN server: turn_enabled is false and turn_urls is unset; participants whose network blocks UDP to the relay cannot join calls");
        return Ok((None, IceConfig::none()));
    }
    let secret =
        TurnSecret::load_or_create(settings.turn_secret_file.as_deref(), &settings.data_dir)?;
    let relay_bind = settings.relay_listen.ip();
    let announced = media
        .first()
        .map_or_else(|| loopback_like(relay_bind), |a| a.ip());
    // The address participants reach this host at: given, else the TURN
    // listener's own when it is a specific one, else the relay's.
    let public_ip = settings.relay_public_ip.unwrap_or_else(|| {
        if settings.turn_listen.ip().is_unspecified() {
            announced
        } else {
            settings.turn_listen.ip()
        }
    });
    let server = if settings.turn_enabled {
        Some(
            TurnServer::start(
                settings.turn_listen,
                secret.clone(),
                media,
                relay_bind,
                public_ip,
            )
            .await?,
        )
    } else {
        None
    };
    let urls = match (&settings.turn_urls, &server) {
        (Some(urls), _) => urls.clone(),
        (None, Some(server)) => vec![format!(
            "turn:{}?transport=udp",
            SocketAddr::new(public_ip, server.addr().port())
        )],
        (None, None) => Vec::new(),
    };
    Ok((
        server,
        IceConfig {
            urls,
            secret: Some(secret),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_base64_hmac_sha1_of_the_username() {
        // RFC 2104 style test vector (key "key").
        let secret = TurnSecret::new("key");
        assert_eq!(
            secret.password("The quick brown fox jumps over the lazy dog"),
            "3nybhbi3iqa8ino29wqQcBydtNk="
        );
        // coturn's REST format, computed independently.
        let secret = TurnSecret::new("north");
        let (username, password) = credential(&secret, "u1", 1_700_000_000);
        assert_eq!(username, "1700000000:u1");
        assert_eq!(password, "V5T4+SMzwlCncdLd960W+gxser0=");
        // The long-term key the server derives: MD5(username:realm:password).
        let key = turn::auth::generate_auth_key(&username, REALM, &password);
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "369c15dffb272fd5553a5c33ed097e9c");
    }

    #[test]
    fn issued_credentials_are_accepted_until_they_expire() {
        let secret = TurnSecret::new("north");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let config = IceConfig {
            urls: vec!["turn:192.0.2.1:3478?transport=udp".into()],
            secret: Some(secret.clone()),
        };
        let servers = ice_servers(&config, "u1", now);
        assert_eq!(servers.len(), 1);
        let s = &servers[0];
        assert_eq!(s.username, "1700003600:u1");
        assert_eq!(s.urls, config.urls);
        let now = 1_700_000_000;
        assert_eq!(
            check_username(&secret, &s.username, REALM, now).as_deref(),
            Ok(s.credential.as_str())
        );
        assert_eq!(
            check_username(&secret, &s.username, REALM, now + 3599).as_deref(),
            Ok(s.credential.as_str())
        );
        assert_eq!(
            check_username(&secret, &s.username, REALM, now + 3600),
            Err(Refused::Expired)
        );
        assert_eq!(
            check_username(&secret, "1699999999:u1", REALM, now),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn malformed_usernames_and_other_realms_are_refused() {
        let secret = TurnSecret::new("north");
        let now = 1_700_000_000;
        for username in ["", "u1", "1800000000", "1800000000:", "soon:u1", "-1:u1"] {
            assert_eq!(
                check_username(&secret, username, REALM, now),
                Err(Refused::Malformed),
                "{username:?}"
            );
        }
        assert_eq!(
            check_username(&secret, "1800000000:u1", "example.org", now),
            Err(Refused::Realm)
        );
    }

    #[test]
    fn a_credential_under_another_secret_does_not_authenticate() {
        let ours = TurnSecret::new("north");
        let theirs = TurnSecret::new("south");
        let (username, forged) = credential(&theirs, "u1", u64::MAX / 2);
        let auth = TurnRestAuth::new(ours.clone());
        let addr = SocketAddr::from(([192, 0, 2, 7], 50000));
        let expected = auth
            .auth_handle(&username, REALM, addr)
            .expect("not expired");
        // The key the client proves with its password is not the server's.
        assert_ne!(
            expected,
            turn::auth::generate_auth_key(&username, REALM, &forged)
        );
        let (_, genuine) = credential(&ours, "u1", u64::MAX / 2);
        assert_eq!(
            expected,
            turn::auth::generate_auth_key(&username, REALM, &genuine)
        );
        // And an expired one is refused before any key is derived.
        assert!(auth.auth_handle("1:u1", REALM, addr).is_err());
    }

    #[test]
    fn no_turn_server_means_no_ice_servers() {
        assert!(ice_servers(&IceConfig::none(), "u1", SystemTime::now()).is_empty());
    }

    #[test]
    fn ice_server_serializes_as_rtc_ice_server() {
        let s = IceServer {
            urls: vec!["turn:192.0.2.1:3478?transport=udp".into()],
            username: "1:u".into(),
            credential: "c".into(),
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"urls": ["turn:192.0.2.1:3478?transport=udp"], "username": "1:u", "credential": "c"})
        );
    }

    #[test]
    fn the_generated_secret_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = TurnSecret::load_or_create(None, dir.path()).unwrap();
        let path = dir.path().join(SECRET_FILE_NAME);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim().len(), 64);
        let again = TurnSecret::load_or_create(None, dir.path()).unwrap();
        assert_eq!(first.password("x"), again.password("x"));
        // A configured file wins, surrounding white space ignored.
        let given = dir.path().join("given");
        std::fs::write(&given, "north\n").unwrap();
        let configured = TurnSecret::load_or_create(Some(&given), dir.path()).unwrap();
        assert_eq!(
            configured.password("x"),
            TurnSecret::new("north").password("x")
        );
        std::fs::write(&given, " \n").unwrap();
        assert!(TurnSecret::load_or_create(Some(&given), dir.path()).is_err());
        assert!(format!("{configured:?}").contains("redacted"));
    }

    #[test]
    fn relayed_sockets_reach_only_the_relay() {
        let announced = [
            SocketAddr::from(([203, 0, 113, 10], 3480)),
            SocketAddr::from(([203, 0, 113, 10], 3481)),
        ];
        let peers = MediaPeers::new(&announced, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            peers.local_of(announced[1]),
            Some(SocketAddr::from(([127, 0, 0, 1], 3481)))
        );
        assert_eq!(
            peers.local_of(SocketAddr::from(([203, 0, 113, 10], 22))),
            None
        );
        assert_eq!(
            peers.local_of(SocketAddr::from(([10, 0, 0, 1], 3480))),
            None
        );
        assert_eq!(
            peers.announced_of(SocketAddr::from(([127, 0, 0, 1], 3480))),
            Some(announced[0])
        );
        assert_eq!(
            peers.announced_of(SocketAddr::from(([127, 0, 0, 1], 9))),
            None
        );
        let bound = MediaPeers::new(&announced, IpAddr::from([10, 0, 0, 5]));
        assert_eq!(
            bound.local_of(announced[0]),
            Some(SocketAddr::from(([10, 0, 0, 5], 3480)))
        );
    }

    #[tokio::test]
    async fn the_media_only_socket_drops_other_peers() {
        let relay = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        relay
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        other
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let conn = MediaOnlyConn {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            peers: Arc::new(MediaPeers::new(
                &[relay.local_addr().unwrap()],
                IpAddr::from([127, 0, 0, 1]),
            )),
        };
        let me = conn.local_addr().unwrap();
        conn.send_to(b"hi", other.local_addr().unwrap())
            .await
            .unwrap();
        conn.send_to(b"relay", relay.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = relay.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"relay");
        assert!(
            other.recv_from(&mut buf).is_err(),
            "nothing reaches another peer"
        );
        other.send_to(b"stray", me).unwrap();
        relay.send_to(b"back", me).unwrap();
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), conn.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"back"[..], relay.local_addr().unwrap())
        );
    }
}
