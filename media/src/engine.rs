//! The media engine behind one trait: a *leg* is one peer connection, either
//! the hub's end of a participant's connection (ICE-lite, always the
//! offerer) or a peer's end (a simulated terminal or console: full ICE, the
//! answerer). The relay, the simulated terminals and the benchmark see only
//! these types, never the engine's own.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Errors of a media engine. Input from the network never panics; it ends
/// up here or is dropped and counted.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the session description was refused: {0}")]
    Sdp(String),
    #[error("the ICE candidate was refused: {0}")]
    Candidate(String),
    #[error("no such track on this leg")]
    NoTrack,
    #[error("the leg is closed")]
    Closed,
    #[error("media engine: {0}")]
    Engine(String),
}

/// Which end of a connection a leg is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The hub: ICE-lite, the offerer, the DTLS server.
    Hub,
    /// A participant's own end: full ICE, the answerer, the DTLS client.
    Peer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    Audio,
    Video,
}

/// A sending track of a leg, in the order the leg's senders were added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u16);

/// ICE credentials of a leg; the hub picks its own so that the ufrag names
/// the leg when a STUN check arrives from an address it has not seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceCreds {
    pub ufrag: String,
    pub pwd: String,
}

impl IceCreds {
    /// Fresh credentials: an 8-character ufrag after `prefix` and a
    /// 24-character password (RFC 8839 asks for at least 4 and 22).
    pub fn random(prefix: &str) -> IceCreds {
        IceCreds {
            ufrag: format!("{prefix}{}", random_token(8)),
            pwd: random_token(24),
        }
    }
}

/// Random characters of the ICE alphabet (letters and digits).
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// How a new leg is set up.
#[derive(Clone, Debug)]
pub struct LegConfig {
    pub role: Role,
    /// The hub's credentials; a peer leg makes its own when None.
    pub ice: Option<IceCreds>,
    /// The host candidate the leg announces: the address its datagrams come
    /// from and go to.
    pub local: SocketAddr,
    /// ICE-TCP (RFC 6544): the hub's passive candidate (where it accepts
    /// connections), or a peer's active one (the address it connects from).
    pub tcp: Option<TcpCandidate>,
    /// Announce the UDP candidate (a peer on a network that blocks UDP does not).
    pub udp: bool,
}

/// An ICE-TCP candidate of a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpCandidate {
    /// Accepts connections at this address (the hub).
    Passive(SocketAddr),
    /// Connects out from this address (a peer).
    Active(std::net::IpAddr),
}

/// An RTP packet received and decrypted on a leg.
#[derive(Clone, Debug)]
pub struct RtpIn {
    pub kind: MediaKind,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// An RTP packet to send on one of a leg's tracks; the engine sets the
/// track's own SSRC and payload type.
#[derive(Clone, Debug)]
pub struct RtpOut {
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// A datagram to send (over TCP: one RFC 4571 frame on the connection to `to`).
#[derive(Clone, Debug)]
pub struct Transmit {
    pub to: SocketAddr,
    pub data: Bytes,
    pub tcp: bool,
}

#[derive(Clone, Debug)]
pub enum LegEvent {
    /// ICE and DTLS done: media can flow. `setup` counts from the leg's creation.
    Connected {
        setup: Duration,
    },
    /// The connection was lost for a moment (ICE disconnected).
    Disconnected,
    /// The connection failed for good.
    Failed,
    Closed,
    Rtp(RtpIn),
    /// The peer asked for a key frame on one of our video tracks.
    KeyframeRequested {
        track: TrackId,
    },
    /// The peer's receiver estimate for what we send (REMB), bits per second.
    RembReceived {
        bps: u64,
    },
    /// The peer's reception report on one of our tracks: the fraction of
    /// packets lost since its last report, in 1/256 (RFC 3550 §6.4.1).
    LossReport {
        track: TrackId,
        fraction_lost: u8,
    },
    /// The peer was reached at this address (a STUN check passed).
    AddressSelected {
        remote: SocketAddr,
    },
}

#[derive(Clone, Debug)]
pub enum LegOutput {
    Transmit(Transmit),
    Event(LegEvent),
}

/// Counters of a leg, as the hub sees them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegStats {
    pub rtt: Option<Duration>,
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub received_bytes: u64,
    pub lost_packets: u64,
    pub keyframe_requests_in: u64,
}

/// A media engine makes legs.
pub trait MediaEngine: Send + Sync + 'static {
    type Leg: Leg;
    fn new_leg(&self, config: &LegConfig, now: Instant) -> Result<Self::Leg, EngineError>;
    /// Shown in `/metrics` and by the benchmark.
    fn name(&self) -> &'static str;
}

/// One peer connection, sans-I/O: the caller owns the socket and the clock.
pub trait Leg: Send {
    /// Adds a sending track before the next offer or answer; `stream` names
    /// whose media it carries (the SDP's msid stream id).
    fn add_sender(&mut self, kind: MediaKind, stream: &str) -> Result<TrackId, EngineError>;
    /// Hub: the offer (a fresh ICE session with `ice_restart`).
    fn create_offer(&mut self, ice_restart: bool, now: Instant) -> Result<String, EngineError>;
    /// Hub: the peer's answer to our last offer.
    fn apply_answer(&mut self, sdp: &str, now: Instant) -> Result<(), EngineError>;
    /// Peer: answers the hub's offer.
    fn accept_offer(&mut self, sdp: &str, now: Instant) -> Result<String, EngineError>;
    /// A trickled candidate of the other side ("" ends the candidates).
    fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), EngineError>;
    /// Our ICE ufrag (the hub's demultiplexing key).
    fn ufrag(&self) -> &str;
    fn handle_datagram(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<(), EngineError>;
    /// One RFC 4571 frame received on an ICE-TCP connection from `from`;
    /// `local` is our end of it.
    fn handle_tcp_frame(
        &mut self,
        from: SocketAddr,
        local: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<(), EngineError>;
    fn handle_timeout(&mut self, now: Instant);
    fn poll_timeout(&mut self) -> Option<Instant>;
    fn poll(&mut self) -> Option<LegOutput>;
    fn send_rtp(&mut self, track: TrackId, rtp: RtpOut, now: Instant) -> Result<(), EngineError>;
    /// Asks the peer for a key frame on what it sends us.
    fn request_keyframe(&mut self, now: Instant);
    /// Tells the peer how much video it may send us, bits per second (REMB).
    fn send_remb(&mut self, bps: u64, now: Instant);
    fn stats(&mut self, now: Instant) -> LegStats;
    fn close(&mut self, now: Instant);
}
