//! The video relay: a selective forwarding unit inside the hub. Every
//! participant of a call (the nurse's console, the home terminal) connects
//! to the hub, never to another participant; the hub terminates ICE, DTLS
//! and SRTP of each leg and forwards RTP between the legs of a call without
//! decoding it. A leg exists only after the hub decided, on record, that its
//! participant may be in that call: a STUN check for any other leg is
//! dropped. See `docs/relay.md`.
//!
//! Legs live on shards: a thread each, with its own UDP socket; all legs of
//! a call on one shard, so forwarding is a function call in one thread.

pub mod adapt;
pub mod forward;
mod shard;
pub mod turn;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etahoiva_media::{EngineError, MediaEngine, RtcEngine};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use shard::LegKey;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("no such leg")]
    NoLeg,
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the relay is not running")]
    Stopped,
    #[error("cannot open the relay's socket on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Who a leg serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Party {
    /// A staff member's console (user id).
    Staff(String),
    /// A home terminal (device id).
    Terminal(String),
}

impl Party {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Party::Terminal(_))
    }
}

#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// Where the shards' UDP sockets listen; shard n uses `port + n`
    /// (port 0: any free port, for tests).
    pub bind: SocketAddr,
    /// The address announced to participants; the bind address when it is
    /// a specific one.
    pub public_ip: Option<IpAddr>,
    pub shards: usize,
}

impl RelaySettings {
    fn announced_ip(&self) -> IpAddr {
        match self.public_ip {
            Some(ip) => ip,
            None if !self.bind.ip().is_unspecified() => self.bind.ip(),
            None => IpAddr::from([127, 0, 0, 1]),
        }
    }
}

/// What the relay tells the rest of the hub.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RelayEvent {
    /// ICE and DTLS of a leg are done.
    Connected {
        call_id: String,
        leg_id: String,
        party: Party,
        setup_ms: u64,
    },
    /// A leg lost its connection: for a moment (the participant may restart
    /// ICE), or for good (`failed`).
    Disconnected {
        call_id: String,
        leg_id: String,
        party: Party,
        failed: bool,
    },
    /// A new offer for a leg (somebody joined the call): the participant
    /// must answer it like the first.
    Offer {
        call_id: String,
        leg_id: String,
        party: Party,
        sdp: String,
    },
    /// A receiver's link changed: audio only, or the picture again.
    Quality {
        call_id: String,
        leg_id: String,
        party: Party,
        audio_only: bool,
        estimate_bps: u64,
    },
    /// A leg closed: its participant left the call.
    Left {
        call_id: String,
        leg_id: String,
        party: Party,
    },
}

/// A leg as the rest of the hub knows it.
#[derive(Clone, Debug)]
pub struct LegInfo {
    pub call_id: String,
    pub party: Party,
    shard: usize,
    key: LegKey,
}

/// An offer for a new or restarted leg.
#[derive(Clone, Debug, Serialize)]
pub struct LegOffer {
    pub call_id: String,
    pub leg_id: String,
    pub sdp: String,
}

/// Counters of one leg, for the quality indicator and the benchmark.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LegQuality {
    pub leg_id: String,
    pub connected: bool,
    /// The participant's link is too weak for the picture: sound only.
    pub audio_only: bool,
    /// What the hub estimates the participant's downlink carries, bits per second.
    pub estimate_bps: u64,
    pub sent_packets: u64,
    pub received_packets: u64,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    pub keyframe_requests_in: u64,
}

enum Command {
    Open {
        key: LegKey,
        call_id: String,
        leg_id: String,
        party: Party,
        reply: oneshot::Sender<Result<String, RelayError>>,
    },
    Answer {
        key: LegKey,
        sdp: String,
        reply: oneshot::Sender<Result<(), RelayError>>,
    },
    Candidate {
        key: LegKey,
        candidate: String,
    },
    Restart {
        key: LegKey,
        reply: oneshot::Sender<Result<String, RelayError>>,
    },
    OpenGate {
        call_id: String,
    },
    CloseLeg {
        key: LegKey,
    },
    CloseCall {
        call_id: String,
    },
    Quality {
        call_id: String,
        reply: oneshot::Sender<Vec<LegQuality>>,
    },
    /// An ICE-TCP connection whose first check names a leg of this shard;
    /// `buffered` is what was read from it so far.
    Tcp {
        stream: std::net::TcpStream,
        buffered: Vec<u8>,
    },
}

struct Directory {
    legs: HashMap<String, LegInfo>,
    /// The shard of each call with legs.
    calls: HashMap<String, usize>,
    /// Legs per shard, to place new calls.
    load: Vec<usize>,
    next_key: LegKey,
}

/// The ICE-TCP listener: on the relay's UDP port number where it is free
/// (TCP and UDP ports are separate), else any port. None without a runtime
/// to serve it or when it cannot listen (logged; UDP and TURN still work).
fn tcp_listener(ip: IpAddr, port: u16) -> Option<tokio::net::TcpListener> {
    tokio::runtime::Handle::try_current().ok()?;
    let bind = |port| {
        let listener = std::net::TcpListener::bind(SocketAddr::new(ip, port))?;
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    };
    match bind(port).or_else(|_| bind(0)) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "no ICE-TCP listener");
            None
        }
    }
}

/// Largest first frame read before a connection names its leg.
const TCP_FIRST_BYTES: usize = 4096;
/// A connection that names no leg in this time is closed.
const TCP_FIRST_WAIT: Duration = Duration::from_secs(5);

/// Accepts ICE-TCP connections and hands each to the shard of the leg its
/// first connectivity check names (RFC 6544, RFC 4571 framing).
async fn accept_tcp(
    listener: tokio::net::TcpListener,
    ufrags: Arc<Mutex<HashMap<String, usize>>>,
    shards: Arc<Vec<mpsc::UnboundedSender<Command>>>,
) {
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "ICE-TCP accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ufrags = ufrags.clone();
        let shards = shards.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buffered = Vec::new();
            let mut buf = [0u8; 1024];
            let named = tokio::time::timeout(TCP_FIRST_WAIT, async {
                loop {
                    if buffered.len() >= 2 {
                        let len = u16::from_be_bytes([buffered[0], buffered[1]]) as usize;
                        if buffered.len() >= 2 + len {
                            let ufrag =
                                etahoiva_media::stun::receiver_ufrag(&buffered[2..2 + len])?;
                            return ufrags
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get(ufrag)
                                .copied();
                        }
                    }
                    if buffered.len() > TCP_FIRST_BYTES {
                        return None;
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return None,
                        Ok(n) => buffered.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            let Ok(Some(shard)) = named else {
                metrics::counter!("etahoiva_relay_dropped_unknown_total").increment(1);
                tracing::debug!(%peer, "ICE-TCP connection for no leg closed");
                return;
            };
            let Ok(stream) = stream.into_std() else {
                return;
            };
            if let Some(tx) = shards.get(shard) {
                let _ = tx.send(Command::Tcp { stream, buffered });
            }
        });
    }
}

/// Receive and send buffers of a shard's socket: a burst of a few hundred
/// calls' packets waits there while the shard works, instead of being lost.
const SOCKET_BUFFER: usize = 4 << 20;

/// Asks for large socket buffers (as root beyond the system's default
/// limit); the kernel may give less, which is logged.
fn socket_buffers(socket: &std::net::UdpSocket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let value = bytes as libc::c_int;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        // SAFETY: setsockopt with a valid fd and a c_int option value.
        let set = |option| unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        };
        if !set(force) && !set(plain) {
            tracing::warn!(bytes, "could not enlarge the relay socket's buffers");
        }
    }
}

/// Buckets of the forwarding delay histogram: one per microsecond up to
/// 20 ms; slower forwards count in the last.
const DELAY_BUCKETS: usize = 20_001;

/// What the relay forwarded and how long each forward took inside the hub
/// (from the datagram's arrival to its copies leaving the socket).
pub struct RelayCounters {
    forwarded: AtomicU64,
    delay_us: Vec<AtomicU64>,
    max_us: AtomicU64,
}

impl Default for RelayCounters {
    fn default() -> Self {
        RelayCounters {
            forwarded: AtomicU64::new(0),
            delay_us: (0..DELAY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }
}

/// A reading of [`RelayCounters`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct ForwardStats {
    pub forwarded: u64,
    pub delay_p50_us: u64,
    pub delay_p99_us: u64,
    pub delay_max_us: u64,
}

impl RelayCounters {
    pub(crate) fn record(&self, packets: u64, delay: Duration) {
        if packets == 0 {
            return;
        }
        let us = delay.as_micros().min(u64::MAX as u128) as u64;
        self.forwarded.fetch_add(packets, Ordering::Relaxed);
        self.delay_us[(us as usize).min(DELAY_BUCKETS - 1)].fetch_add(packets, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn read(&self) -> ForwardStats {
        let counts: Vec<u64> = self
            .delay_us
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| -> u64 {
            let want = ((total as f64) * q).ceil() as u64;
            let mut seen = 0;
            for (us, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= want.max(1) {
                    return us as u64;
                }
            }
            0
        };
        ForwardStats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            delay_p50_us: if total == 0 { 0 } else { quantile(0.5) },
            delay_p99_us: if total == 0 { 0 } else { quantile(0.99) },
            delay_max_us: self.max_us.load(Ordering::Relaxed),
        }
    }
}

/// The relay's handle (cheap to clone).
#[derive(Clone)]
pub struct Relay {
    tcp: Option<SocketAddr>,
    shards: Arc<Vec<mpsc::UnboundedSender<Command>>>,
    addrs: Arc<Vec<SocketAddr>>,
    directory: Arc<Mutex<Directory>>,
    events: broadcast::Sender<RelayEvent>,
    engine: &'static str,
    counters: Arc<RelayCounters>,
}

impl Relay {
    /// Starts the relay on the `rtc` engine.
    pub fn start(settings: &RelaySettings) -> Result<Relay, RelayError> {
        Relay::start_with(RtcEngine, settings)
    }

    /// Starts the relay on any media engine.
    pub fn start_with<E: MediaEngine + Clone>(
        engine: E,
        settings: &RelaySettings,
    ) -> Result<Relay, RelayError> {
        let (events, _) = broadcast::channel(1024);
        let counters = Arc::new(RelayCounters::default());
        let ufrags: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let mut tcp = None;
        let mut tcp_public = None;
        let count = settings.shards.clamp(1, 8);
        let mut shards = Vec::with_capacity(count);
        let mut addrs = Vec::with_capacity(count);
        let announced = settings.announced_ip();
        for n in 0..count {
            let port = match settings.bind.port() {
                0 => 0,
                p => p.saturating_add(n as u16),
            };
            let bind = SocketAddr::new(settings.bind.ip(), port);
            let socket = std::net::UdpSocket::bind(bind)
                .map_err(|source| RelayError::Bind { addr: bind, source })?;
            socket
                .set_nonblocking(true)
                .map_err(|source| RelayError::Bind { addr: bind, source })?;
            socket_buffers(&socket, SOCKET_BUFFER);
            let local = socket
                .local_addr()
                .map_err(|source| RelayError::Bind { addr: bind, source })?;
            let public = SocketAddr::new(announced, local.port());
            let (tx, rx) = mpsc::unbounded_channel();
            if n == 0 {
                tcp = tcp_listener(settings.bind.ip(), local.port());
                tcp_public = tcp
                    .as_ref()
                    .and_then(|l| l.local_addr().ok())
                    .map(|a| SocketAddr::new(announced, a.port()));
            }
            shard::spawn(
                n,
                engine.clone(),
                socket,
                public,
                shard::Wiring {
                    commands: rx,
                    events: events.clone(),
                    counters: counters.clone(),
                    ufrags: ufrags.clone(),
                    tcp_public,
                },
            );
            shards.push(tx);
            addrs.push(public);
        }
        let shards = Arc::new(shards);
        if let Some(listener) = tcp {
            tokio::spawn(accept_tcp(listener, ufrags.clone(), shards.clone()));
        }
        tracing::info!(engine = engine.name(), shards = count, addrs = ?addrs, tcp = ?tcp_public, "relay started");
        Ok(Relay {
            tcp: tcp_public,
            shards,
            addrs: Arc::new(addrs),
            directory: Arc::new(Mutex::new(Directory {
                legs: HashMap::new(),
                calls: HashMap::new(),
                load: vec![0; count],
                next_key: 1,
            })),
            events,
            engine: engine.name(),
            counters,
        })
    }

    /// Packets forwarded and the time each took inside the hub.
    pub fn forward_stats(&self) -> ForwardStats {
        self.counters.read()
    }

    pub fn engine(&self) -> &'static str {
        self.engine
    }

    /// The passive ICE-TCP address every leg announces, if listening.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The media addresses participants reach, one per shard.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RelayEvent> {
        self.events.subscribe()
    }

    fn directory(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The leg, if it exists.
    pub fn leg(&self, leg_id: &str) -> Option<LegInfo> {
        self.directory().legs.get(leg_id).cloned()
    }

    /// Ids of the legs of a call.
    pub fn legs_of(&self, call_id: &str) -> Vec<(String, Party)> {
        self.directory()
            .legs
            .iter()
            .filter(|(_, l)| l.call_id == call_id)
            .map(|(id, l)| (id.clone(), l.party.clone()))
            .collect()
    }

    /// Opens a leg for `party` in a call: its offer, for the participant to
    /// answer. The caller has decided that the party may be in the call.
    pub async fn open_leg(&self, call_id: &str, party: Party) -> Result<LegOffer, RelayError> {
        let leg_id = format!("leg-{}", etahoiva_media::engine::random_token(16));
        let (shard, key) = {
            let mut d = self.directory();
            let shard = match d.calls.get(call_id) {
                Some(s) => *s,
                None => d
                    .load
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, n)| **n)
                    .map(|(i, _)| i)
                    .unwrap_or(0),
            };
            let key = d.next_key;
            d.next_key += 1;
            d.calls.insert(call_id.to_string(), shard);
            d.load[shard] += 1;
            d.legs.insert(
                leg_id.clone(),
                LegInfo {
                    call_id: call_id.to_string(),
                    party: party.clone(),
                    shard,
                    key,
                },
            );
            (shard, key)
        };
        let (reply, answer) = oneshot::channel();
        let sent = self.shards[shard].send(Command::Open {
            key,
            call_id: call_id.to_string(),
            leg_id: leg_id.clone(),
            party,
            reply,
        });
        let result = match sent {
            Ok(()) => answer.await.unwrap_or(Err(RelayError::Stopped)),
            Err(_) => Err(RelayError::Stopped),
        };
        match result {
            Ok(sdp) => Ok(LegOffer {
                call_id: call_id.to_string(),
                leg_id,
                sdp,
            }),
            Err(e) => {
                self.forget(&leg_id);
                Err(e)
            }
        }
    }

    /// The participant's answer to the leg's offer.
    pub async fn answer(&self, leg_id: &str, sdp: &str) -> Result<(), RelayError> {
        let leg = self.leg(leg_id).ok_or(RelayError::NoLeg)?;
        let (reply, answer) = oneshot::channel();
        self.shards[leg.shard]
            .send(Command::Answer {
                key: leg.key,
                sdp: sdp.to_string(),
                reply,
            })
            .map_err(|_| RelayError::Stopped)?;
        answer.await.unwrap_or(Err(RelayError::Stopped))
    }

    /// A candidate trickled by the participant.
    pub fn candidate(&self, leg_id: &str, candidate: &str) -> Result<(), RelayError> {
        let leg = self.leg(leg_id).ok_or(RelayError::NoLeg)?;
        self.shards[leg.shard]
            .send(Command::Candidate {
                key: leg.key,
                candidate: candidate.to_string(),
            })
            .map_err(|_| RelayError::Stopped)
    }

    /// A new offer with fresh ICE credentials: the participant's network
    /// changed. The call and its media carry on.
    pub async fn restart_ice(&self, leg_id: &str) -> Result<LegOffer, RelayError> {
        let leg = self.leg(leg_id).ok_or(RelayError::NoLeg)?;
        let (reply, answer) = oneshot::channel();
        self.shards[leg.shard]
            .send(Command::Restart {
                key: leg.key,
                reply,
            })
            .map_err(|_| RelayError::Stopped)?;
        let sdp = answer.await.unwrap_or(Err(RelayError::Stopped))?;
        Ok(LegOffer {
            call_id: leg.call_id,
            leg_id: leg_id.to_string(),
            sdp,
        })
    }

    /// Media of the call flows from now on (the client answered): until
    /// then nothing is forwarded in either direction.
    pub fn open_gate(&self, call_id: &str) {
        let shard = self.directory().calls.get(call_id).copied();
        if let Some(shard) = shard {
            let _ = self.shards[shard].send(Command::OpenGate {
                call_id: call_id.to_string(),
            });
        }
    }

    pub fn close_leg(&self, leg_id: &str) {
        if let Some(leg) = self.forget(leg_id) {
            let _ = self.shards[leg.shard].send(Command::CloseLeg { key: leg.key });
        }
    }

    /// Closes every leg of a call.
    pub fn close_call(&self, call_id: &str) {
        let shard = {
            let mut d = self.directory();
            let ids: Vec<String> = d
                .legs
                .iter()
                .filter(|(_, l)| l.call_id == call_id)
                .map(|(id, _)| id.clone())
                .collect();
            for id in ids {
                if let Some(l) = d.legs.remove(&id) {
                    d.load[l.shard] = d.load[l.shard].saturating_sub(1);
                }
            }
            d.calls.remove(call_id)
        };
        if let Some(shard) = shard {
            let _ = self.shards[shard].send(Command::CloseCall {
                call_id: call_id.to_string(),
            });
        }
    }

    fn forget(&self, leg_id: &str) -> Option<LegInfo> {
        let mut d = self.directory();
        let leg = d.legs.remove(leg_id)?;
        d.load[leg.shard] = d.load[leg.shard].saturating_sub(1);
        if !d.legs.values().any(|l| l.call_id == leg.call_id) {
            d.calls.remove(&leg.call_id);
        }
        Some(leg)
    }

    /// Counters of the legs of a call.
    pub async fn quality(&self, call_id: &str) -> Vec<LegQuality> {
        let shard = self.directory().calls.get(call_id).copied();
        let Some(shard) = shard else {
            return Vec::new();
        };
        let (reply, answer) = oneshot::channel();
        if self.shards[shard]
            .send(Command::Quality {
                call_id: call_id.to_string(),
                reply,
            })
            .is_err()
        {
            return Vec::new();
        }
        tokio::time::timeout(Duration::from_secs(2), answer)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    /// Legs open, by the hub's directory.
    pub fn open_legs(&self) -> usize {
        self.directory().legs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Relay {
        Relay::start(&RelaySettings {
            bind: "127.0.0.1:0".parse().expect("addr"),
            public_ip: None,
            shards: 1,
        })
        .expect("relay starts")
    }

    #[tokio::test]
    async fn bad_answers_and_stray_datagrams_are_refused_and_calls_go_on() {
        use etahoiva_media::peer::Peer;
        let relay = start();
        let broken = relay
            .open_leg("c-1", Party::Staff("u".into()))
            .await
            .expect("offer");
        for bad in ["", "v=0", "nonsense\r\n", &"a=x\r\n".repeat(5000)] {
            assert!(
                relay.answer(&broken.leg_id, bad).await.is_err(),
                "{bad:.20}"
            );
        }
        assert!(relay.answer("leg-unknown", "v=0").await.is_err());
        // Stray datagrams at the relay's socket: random bytes, a STUN
        // header with a truncated body, an RTP header from nobody.
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("socket");
        let to = relay.addrs()[0];
        let mut stun = vec![0u8, 1, 0, 40, 0x21, 0x12, 0xA4, 0x42];
        stun.extend_from_slice(&[9; 12]);
        for junk in [
            &[0xffu8; 3][..],
            &stun,
            &[0x80, 0x60, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4],
            &[0u8; 1500],
        ] {
            socket.send_to(junk, to).await.expect("send");
        }
        // A proper call on the same relay connects and carries media.
        let a = relay
            .open_leg("c-2", Party::Terminal("d".into()))
            .await
            .expect("offer");
        let b = relay
            .open_leg("c-2", Party::Staff("n".into()))
            .await
            .expect("offer");
        let media = std::sync::Arc::new(
            etahoiva_media::generate::MediaLoop::encode(160, 120, 10, 5, 30, 20).expect("media"),
        );
        let pa = Peer::answer(&a.sdp, Some(media.clone())).await.expect("a");
        let pb = Peer::answer(&b.sdp, Some(media)).await.expect("b");
        relay
            .answer(&a.leg_id, pa.answer_sdp())
            .await
            .expect("answer a");
        relay
            .answer(&b.leg_id, pb.answer_sdp())
            .await
            .expect("answer b");
        relay.open_gate("c-2");
        pa.send_media(true);
        pb.send_media(true);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while pb.report().video_frames_in < 5 || pa.report().audio_packets_in < 10 {
            assert!(
                std::time::Instant::now() < deadline,
                "media flows: {:?}",
                pb.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(relay.forward_stats().forwarded > 0);
        relay.close_call("c-2");
        relay.close_call("c-1");
        assert_eq!(relay.open_legs(), 0);
    }

    #[tokio::test]
    async fn a_participant_without_udp_reaches_the_relay_over_ice_tcp() {
        use etahoiva_media::peer::{Peer, PeerTransport};
        let relay = start();
        let tcp = relay.tcp_addr().expect("ICE-TCP listener");
        let a = relay
            .open_leg("c", Party::Terminal("d".into()))
            .await
            .expect("offer");
        assert!(
            a.sdp.contains(&format!(
                "{} {} typ host tcptype passive",
                tcp.ip(),
                tcp.port()
            )),
            "the offer announces the passive candidate: {}",
            a.sdp
        );
        let b = relay
            .open_leg("c", Party::Staff("n".into()))
            .await
            .expect("offer");
        let media = std::sync::Arc::new(
            etahoiva_media::generate::MediaLoop::encode(160, 120, 10, 5, 30, 20).expect("media"),
        );
        let udp = Peer::answer(&a.sdp, Some(media.clone()))
            .await
            .expect("udp peer");
        let over_tcp = Peer::answer_over(&b.sdp, Some(media), PeerTransport::Tcp)
            .await
            .expect("tcp peer");
        assert!(!over_tcp.answer_sdp().contains(" udp "), "no UDP candidate");
        relay
            .answer(&a.leg_id, udp.answer_sdp())
            .await
            .expect("answer a");
        relay
            .answer(&b.leg_id, over_tcp.answer_sdp())
            .await
            .expect("answer b");
        relay.open_gate("c");
        udp.send_media(true);
        over_tcp.send_media(true);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while over_tcp.report().video_frames_in < 5 || udp.report().video_frames_in < 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "media both ways: tcp {:?} udp {:?}",
                over_tcp.report(),
                udp.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A connection whose first frame names no leg is closed.
        let mut stray = tokio::net::TcpStream::connect(tcp).await.expect("connect");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stray.write_all(&[0, 4, 1, 2, 3, 4]).await.expect("write");
        let mut buf = [0u8; 8];
        let closed = tokio::time::timeout(Duration::from_secs(8), stray.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "closed: {closed:?}"
        );
        relay.close_call("c");
    }

    #[test]
    fn forwarding_delays_are_read_as_quantiles() {
        let c = RelayCounters::default();
        assert_eq!(c.read().forwarded, 0);
        c.record(98, Duration::from_micros(40));
        c.record(1, Duration::from_micros(900));
        c.record(1, Duration::from_secs(3));
        c.record(0, Duration::from_secs(9));
        let s = c.read();
        assert_eq!(s.forwarded, 100);
        assert_eq!(s.delay_p50_us, 40);
        assert_eq!(s.delay_p99_us, 900);
        assert_eq!(s.delay_max_us, 3_000_000);
    }
}
