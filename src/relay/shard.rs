//! One shard of the relay: a thread with its own UDP socket, its legs, the
//! demultiplexing maps and the forwarding between the legs of its calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use etahoiva_media::tcp_framing::{frame_packet, TcpFrameDecoder};
use std::time::{Duration, Instant};

use bytes::Bytes;
use etahoiva_media::{
    stun, Leg, LegConfig, LegEvent, LegOutput, MediaEngine, MediaKind, Role, RtpOut, TcpCandidate,
    TrackId,
};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};

use super::adapt::{self, Change, Downlink};
use super::forward::{KeyframeGate, SeqRewriter};
use super::{Command, LegQuality, Party, RelayCounters, RelayError, RelayEvent};

/// A leg's number inside the relay.
pub type LegKey = u64;

/// Datagrams read per wake-up before the legs are drained.
const BATCH: usize = 32;
/// Connectivity checks kept for a leg whose answer has not come yet.
const EARLY_CHECKS: usize = 8;

/// What the sound of a call takes of a link's estimate.
const AUDIO_BPS: u64 = 48_000;
/// A source hears its REMB at least this often (and at once on a 5 % change).
const REMB_EVERY: Duration = Duration::from_secs(2);
/// A source is asked for a key frame at most this often.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);

struct Slot<L> {
    leg: L,
    call_id: String,
    leg_id: String,
    party: Party,
    /// What this leg sends its participant: a track per other participant
    /// and kind (free ones carry nothing until somebody joins).
    senders: Vec<Sender>,
    keyframes: KeyframeGate,
    /// The participant's answer was applied.
    answered: bool,
    /// Connectivity checks that came before the answer (the peer starts
    /// checking as soon as it answered): replayed once it is applied,
    /// instead of waiting for the peer to retransmit them.
    early: Vec<(SocketAddr, Bytes, bool)>,
    /// What this participant's downlink carries, and whether it gets video.
    downlink: Downlink,
    /// The last REMB sent to this participant as a source, and when.
    remb_sent: Option<(u64, Instant)>,
    ufrag: String,
    /// Where the participant was reached from (address, over TCP).
    addrs: Vec<(SocketAddr, bool)>,
    connected: bool,
    timeout: Option<Instant>,
}

/// One of a leg's sending tracks, and whose media it carries.
struct Sender {
    kind: MediaKind,
    track: TrackId,
    source: Option<LegKey>,
    rewriter: SeqRewriter,
}

#[derive(Default)]
struct CallLegs {
    legs: Vec<LegKey>,
    /// Media flows only once the client answered.
    open: bool,
}

struct Shard<E: MediaEngine> {
    n: usize,
    engine: E,
    socket: UdpSocket,
    public: SocketAddr,
    legs: HashMap<LegKey, Slot<E::Leg>>,
    calls: HashMap<String, CallLegs>,
    by_addr: HashMap<SocketAddr, LegKey>,
    /// ICE-TCP connections' remote addresses.
    by_tcp: HashMap<SocketAddr, LegKey>,
    by_ufrag: HashMap<String, LegKey>,
    /// Every shard's legs by ufrag, for the ICE-TCP listener.
    ufrags: Arc<Mutex<HashMap<String, usize>>>,
    /// The passive ICE-TCP candidate every leg announces.
    tcp_public: Option<SocketAddr>,
    tcp_in: mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>,
    tcp_out: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    events: broadcast::Sender<RelayEvent>,
    touched: Vec<LegKey>,
    outbox: Vec<(SocketAddr, Bytes, bool)>,
    counters: Arc<RelayCounters>,
    /// Packets forwarded since the last flush.
    forwarded: u64,
}

/// What a shard shares with the rest of the relay.
pub(super) struct Wiring {
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub events: broadcast::Sender<RelayEvent>,
    pub counters: Arc<RelayCounters>,
    pub ufrags: Arc<Mutex<HashMap<String, usize>>>,
    pub tcp_public: Option<SocketAddr>,
}

pub(super) fn spawn<E: MediaEngine + Clone>(
    n: usize,
    engine: E,
    socket: std::net::UdpSocket,
    public: SocketAddr,
    wiring: Wiring,
) {
    let Wiring {
        commands,
        events,
        counters,
        ufrags,
        tcp_public,
    } = wiring;
    let spawned = std::thread::Builder::new()
        .name(format!("relay-{n}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(shard = n, error = %e, "relay shard cannot start");
                    return;
                }
            };
            runtime.block_on(async move {
                let socket = match UdpSocket::from_std(socket) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(shard = n, error = %e, "relay socket");
                        return;
                    }
                };
                let (tcp_in, tcp_rx) = mpsc::unbounded_channel();
                let shard = Shard {
                    by_tcp: HashMap::new(),
                    ufrags,
                    tcp_public,
                    tcp_in,
                    tcp_out: HashMap::new(),
                    n,
                    engine,
                    socket,
                    public,
                    legs: HashMap::new(),
                    calls: HashMap::new(),
                    by_addr: HashMap::new(),
                    by_ufrag: HashMap::new(),
                    events,
                    touched: Vec::new(),
                    outbox: Vec::new(),
                    counters,
                    forwarded: 0,
                };
                shard.run(commands, tcp_rx).await;
            });
        });
    if let Err(e) = spawned {
        tracing::error!(shard = n, error = %e, "relay shard thread");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs an engine call on input from a participant. The engine returns
/// errors for bad input; should it panic instead, the leg is given up and
/// the shard, with every other call on it, goes on.
fn guarded<T>(leg_id: &str, f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            metrics::counter!("etahoiva_relay_engine_panics_total").increment(1);
            tracing::error!(
                leg_id,
                "the media engine failed on a participant's input; the leg is closed"
            );
            None
        }
    }
}

impl Sender {
    fn new(kind: MediaKind, track: TrackId, source: Option<LegKey>) -> Sender {
        Sender {
            kind,
            track,
            source,
            rewriter: SeqRewriter::default(),
        }
    }
}

impl<E: MediaEngine> Shard<E> {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut tcp_frames: mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>,
    ) {
        let mut buf = vec![0u8; 2048];
        loop {
            let next = self.legs.values().filter_map(|s| s.timeout).min();
            let sleep = tokio::time::sleep_until(
                next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
                    .into(),
            );
            let mut arrived = None;
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                Some((peer, frame)) = tcp_frames.recv() => {
                    if frame.is_empty() {
                        self.tcp_closed(peer);
                    } else {
                        let now = Instant::now();
                        arrived = Some(now);
                        self.receive(peer, &frame, true, now);
                    }
                }
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((len, from)) = received {
                        let now = Instant::now();
                        arrived = Some(now);
                        self.datagram(from, &buf[..len], now);
                        for _ in 1..BATCH {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((len, from)) => self.datagram(from, &buf[..len], now),
                                Err(_) => break,
                            }
                        }
                    }
                }
                () = sleep => {
                    let now = Instant::now();
                    let due: Vec<LegKey> = self
                        .legs
                        .iter()
                        .filter(|(_, s)| s.timeout.is_some_and(|t| t <= now))
                        .map(|(k, _)| *k)
                        .collect();
                    for key in due {
                        if let Some(slot) = self.legs.get_mut(&key) {
                            slot.leg.handle_timeout(now);
                            self.touched.push(key);
                        }
                    }
                }
            }
            self.drain();
            self.flush().await;
            let forwarded = std::mem::take(&mut self.forwarded);
            if forwarded > 0 {
                metrics::counter!("etahoiva_relay_forwarded_packets_total").increment(forwarded);
            }
            if let Some(at) = arrived {
                self.counters.record(forwarded, at.elapsed());
            }
        }
        let keys: Vec<LegKey> = self.legs.keys().copied().collect();
        for key in keys {
            self.close_leg(key);
        }
        self.drain();
        self.flush().await;
    }

    fn datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        self.receive(from, data, false, now);
    }

    /// A datagram, or an ICE-TCP frame, from `from`: to its leg, found by
    /// the STUN ufrag or by the address the leg was reached from.
    fn receive(&mut self, from: SocketAddr, data: &[u8], tcp: bool, now: Instant) {
        let by_ufrag = stun::receiver_ufrag(data).and_then(|u| self.by_ufrag.get(u).copied());
        let known = if tcp { &self.by_tcp } else { &self.by_addr };
        let Some(key) = by_ufrag.or_else(|| known.get(&from).copied()) else {
            metrics::counter!("etahoiva_relay_dropped_unknown_total").increment(1);
            return;
        };
        let Some(slot) = self.legs.get_mut(&key) else {
            return;
        };
        if !slot.answered && by_ufrag.is_some() {
            if slot.early.len() < EARLY_CHECKS {
                slot.early.push((from, Bytes::copy_from_slice(data), tcp));
            }
            return;
        }
        let tcp_local = self.tcp_public;
        let handled = guarded(&slot.leg_id, || match (tcp, tcp_local) {
            (true, Some(local)) => slot.leg.handle_tcp_frame(from, local, data, now),
            _ => slot.leg.handle_datagram(from, data, now),
        });
        let Some(handled) = handled else {
            self.drop_broken(key);
            return;
        };
        match handled {
            Ok(()) => {
                let known = if tcp {
                    &mut self.by_tcp
                } else {
                    &mut self.by_addr
                };
                if by_ufrag.is_some() && !known.contains_key(&from) {
                    known.insert(from, key);
                    slot.addrs.push((from, tcp));
                }
            }
            Err(e) => {
                metrics::counter!("etahoiva_relay_refused_datagrams_total").increment(1);
                tracing::trace!(leg_id = %slot.leg_id, error = %e, "datagram refused");
            }
        }
        self.touched.push(key);
    }

    /// An ICE-TCP connection the listener routed here by its first check.
    fn tcp_connection(&mut self, stream: std::net::TcpStream, buffered: Vec<u8>) {
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "ICE-TCP connection lost");
                return;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let (mut read, mut write) = stream.into_split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        self.tcp_out.insert(peer, out_tx);
        let frames_in = self.tcp_in.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut frames = TcpFrameDecoder::new();
            frames.extend_from_slice(&buffered);
            let mut buf = vec![0u8; 4096];
            loop {
                while let Some(frame) = frames.next_packet() {
                    if frame.is_empty() {
                        continue;
                    }
                    if frames_in.send((peer, frame)).is_err() {
                        return;
                    }
                }
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => frames.extend_from_slice(&buf[..n]),
                }
            }
            // An empty frame says the connection closed.
            let _ = frames_in.send((peer, Vec::new()));
        });
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(data) = out_rx.recv().await {
                if write.write_all(&frame_packet(&data)).await.is_err() {
                    break;
                }
            }
        });
    }

    fn tcp_closed(&mut self, peer: SocketAddr) {
        self.tcp_out.remove(&peer);
        self.by_tcp.remove(&peer);
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Open {
                key,
                call_id,
                leg_id,
                party,
                reply,
            } => {
                let result = self.open(key, &call_id, &leg_id, party, now);
                let _ = reply.send(result);
            }
            Command::Answer { key, sdp, reply } => {
                let result = match self.legs.get_mut(&key) {
                    Some(slot) => {
                        match guarded(&slot.leg_id, || slot.leg.apply_answer(&sdp, now)) {
                            Some(r) => r.map_err(RelayError::from),
                            None => {
                                self.drop_broken(key);
                                Err(RelayError::NoLeg)
                            }
                        }
                    }
                    None => Err(RelayError::NoLeg),
                };
                if result.is_ok() {
                    let early = match self.legs.get_mut(&key) {
                        Some(slot) => {
                            slot.answered = true;
                            std::mem::take(&mut slot.early)
                        }
                        None => Vec::new(),
                    };
                    for (from, data, tcp) in early {
                        self.receive(from, &data, tcp, now);
                    }
                }
                self.touched.push(key);
                let _ = reply.send(result);
            }
            Command::Candidate { key, candidate } => {
                if let Some(slot) = self.legs.get_mut(&key) {
                    match guarded(&slot.leg_id, || slot.leg.add_remote_candidate(&candidate)) {
                        Some(Err(e)) => {
                            tracing::debug!(leg_id = %slot.leg_id, error = %e, "candidate refused")
                        }
                        Some(Ok(())) => {}
                        None => {
                            self.drop_broken(key);
                            return;
                        }
                    }
                    self.touched.push(key);
                }
            }
            Command::Restart { key, reply } => {
                let result = match self.legs.get_mut(&key) {
                    Some(slot) => match slot.leg.create_offer(true, now) {
                        Ok(sdp) => {
                            // Checks with the new credentials wait for the answer.
                            slot.answered = false;
                            let ufrag = slot.leg.ufrag().to_string();
                            if ufrag != slot.ufrag {
                                self.by_ufrag.remove(&slot.ufrag);
                                lock(&self.ufrags).remove(&slot.ufrag);
                                self.by_ufrag.insert(ufrag.clone(), key);
                                lock(&self.ufrags).insert(ufrag.clone(), self.n);
                                let mut all = lock(&self.ufrags);
                                all.remove(&slot.ufrag);
                                all.insert(ufrag.clone(), self.n);
                                slot.ufrag = ufrag;
                            }
                            Ok(sdp)
                        }
                        Err(e) => Err(e.into()),
                    },
                    None => Err(RelayError::NoLeg),
                };
                self.touched.push(key);
                let _ = reply.send(result);
            }
            Command::OpenGate { call_id } => {
                let legs = match self.calls.get_mut(&call_id) {
                    Some(call) => {
                        call.open = true;
                        call.legs.clone()
                    }
                    None => return,
                };
                for key in legs {
                    self.ask_keyframe(key, now);
                }
            }
            Command::CloseLeg { key } => self.close_leg(key),
            Command::CloseCall { call_id } => {
                let legs = self
                    .calls
                    .get(&call_id)
                    .map(|c| c.legs.clone())
                    .unwrap_or_default();
                for key in legs {
                    self.close_leg(key);
                }
                self.calls.remove(&call_id);
            }
            Command::Tcp { stream, buffered } => self.tcp_connection(stream, buffered),
            Command::Quality { call_id, reply } => {
                let legs = self
                    .calls
                    .get(&call_id)
                    .map(|c| c.legs.clone())
                    .unwrap_or_default();
                let mut quality = Vec::with_capacity(legs.len());
                for key in legs {
                    if let Some(slot) = self.legs.get_mut(&key) {
                        let s = slot.leg.stats(now);
                        quality.push(LegQuality {
                            leg_id: slot.leg_id.clone(),
                            connected: slot.connected,
                            audio_only: slot.downlink.audio_only(),
                            estimate_bps: slot.downlink.estimate(),
                            sent_packets: s.sent_packets,
                            received_packets: s.received_packets,
                            sent_bytes: s.sent_bytes,
                            received_bytes: s.received_bytes,
                            keyframe_requests_in: s.keyframe_requests_in,
                        });
                    }
                }
                let _ = reply.send(quality);
            }
        }
    }

    fn open(
        &mut self,
        key: LegKey,
        call_id: &str,
        leg_id: &str,
        party: Party,
        now: Instant,
    ) -> Result<String, RelayError> {
        // The engine draws the ICE credentials, fresh again at each restart;
        // the ufrag of each offer is the leg's demultiplexing key.
        let config = LegConfig {
            role: Role::Hub,
            ice: None,
            local: self.public,
            tcp: self.tcp_public.map(TcpCandidate::Passive),
            udp: true,
        };
        let mut leg = self.engine.new_leg(&config, now)?;
        let existing: Vec<(LegKey, String)> = self
            .calls
            .get(call_id)
            .map(|c| c.legs.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|k| self.legs.get(&k).map(|s| (k, s.leg_id.clone())))
            .collect();
        let mut senders = Vec::new();
        let kinds = [MediaKind::Audio, MediaKind::Video];
        if existing.is_empty() {
            // The first in the call: a track of each kind for whoever joins.
            for kind in kinds {
                let track = leg.add_sender(kind, call_id)?;
                senders.push(Sender::new(kind, track, None));
            }
        } else {
            for (source, source_leg) in &existing {
                for kind in kinds {
                    let track = leg.add_sender(kind, source_leg)?;
                    senders.push(Sender::new(kind, track, Some(*source)));
                }
            }
        }
        let sdp = leg.create_offer(false, now)?;
        let ufrag = leg.ufrag().to_string();
        self.by_ufrag.insert(ufrag.clone(), key);
        lock(&self.ufrags).insert(ufrag.clone(), self.n);
        self.calls
            .entry(call_id.to_string())
            .or_default()
            .legs
            .push(key);
        self.legs.insert(
            key,
            Slot {
                leg,
                call_id: call_id.to_string(),
                leg_id: leg_id.to_string(),
                party,
                senders,
                keyframes: KeyframeGate::new(KEYFRAME_INTERVAL),
                answered: false,
                early: Vec::new(),
                downlink: Downlink::default(),
                remb_sent: None,
                ufrag,
                addrs: Vec::new(),
                connected: false,
                timeout: None,
            },
        );
        // Everybody already in the call gets tracks for the newcomer: a free
        // one, or a new one and a new offer (renegotiation).
        for (other, _) in existing {
            let Some(slot) = self.legs.get_mut(&other) else {
                continue;
            };
            let mut renegotiate = false;
            for kind in kinds {
                if let Some(free) = slot
                    .senders
                    .iter_mut()
                    .find(|s| s.kind == kind && s.source.is_none())
                {
                    free.source = Some(key);
                    free.rewriter = SeqRewriter::default();
                    continue;
                }
                match slot.leg.add_sender(kind, leg_id) {
                    Ok(track) => {
                        slot.senders.push(Sender::new(kind, track, Some(key)));
                        renegotiate = true;
                    }
                    Err(e) => {
                        tracing::warn!(leg_id = %slot.leg_id, error = %e, "no track for a new participant")
                    }
                }
            }
            if renegotiate {
                match slot.leg.create_offer(false, now) {
                    Ok(sdp) => {
                        let _ = self.events.send(RelayEvent::Offer {
                            call_id: slot.call_id.clone(),
                            leg_id: slot.leg_id.clone(),
                            party: slot.party.clone(),
                            sdp,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(leg_id = %slot.leg_id, error = %e, "renegotiation failed")
                    }
                }
            }
            self.touched.push(other);
        }
        self.touched.push(key);
        metrics::gauge!("etahoiva_relay_legs", "shard" => self.n.to_string())
            .set(self.legs.len() as f64);
        tracing::debug!(shard = self.n, call_id, leg_id, "leg opened");
        Ok(sdp)
    }

    /// Forgets a leg the engine failed on, without touching it again.
    fn drop_broken(&mut self, key: LegKey) {
        let Some(slot) = self.legs.remove(&key) else {
            return;
        };
        self.by_ufrag.remove(&slot.ufrag);
        lock(&self.ufrags).remove(&slot.ufrag);
        for (addr, tcp) in &slot.addrs {
            let known = if *tcp {
                &mut self.by_tcp
            } else {
                &mut self.by_addr
            };
            if known.get(addr) == Some(&key) {
                known.remove(addr);
            }
        }
        if let Some(call) = self.calls.get_mut(&slot.call_id) {
            call.legs.retain(|k| *k != key);
            if call.legs.is_empty() {
                self.calls.remove(&slot.call_id);
            }
        }
        let _ = self.events.send(RelayEvent::Disconnected {
            call_id: slot.call_id.clone(),
            leg_id: slot.leg_id.clone(),
            party: slot.party.clone(),
            failed: true,
        });
        // Dropping a broken engine value may fail again; contain that too.
        let leg_id = slot.leg_id.clone();
        let _ = guarded(&leg_id, move || drop(slot));
    }

    fn close_leg(&mut self, key: LegKey) {
        let Some(mut slot) = self.legs.remove(&key) else {
            return;
        };
        let now = Instant::now();
        slot.leg.close(now);
        while let Some(out) = slot.leg.poll() {
            if let LegOutput::Transmit(t) = out {
                self.outbox.push((t.to, t.data, t.tcp));
            }
        }
        self.by_ufrag.remove(&slot.ufrag);
        lock(&self.ufrags).remove(&slot.ufrag);
        for (addr, tcp) in &slot.addrs {
            let known = if *tcp {
                &mut self.by_tcp
            } else {
                &mut self.by_addr
            };
            if known.get(addr) == Some(&key) {
                known.remove(addr);
            }
        }
        if let Some(call) = self.calls.get_mut(&slot.call_id) {
            call.legs.retain(|k| *k != key);
            let others = call.legs.clone();
            if call.legs.is_empty() {
                self.calls.remove(&slot.call_id);
            }
            // The tracks that carried this participant fall silent, free
            // for whoever joins next.
            for other in others {
                if let Some(o) = self.legs.get_mut(&other) {
                    for sender in o.senders.iter_mut().filter(|s| s.source == Some(key)) {
                        sender.source = None;
                    }
                }
            }
            let _ = self.events.send(RelayEvent::Left {
                call_id: slot.call_id.clone(),
                leg_id: slot.leg_id.clone(),
                party: slot.party.clone(),
            });
        }
        metrics::gauge!("etahoiva_relay_legs", "shard" => self.n.to_string())
            .set(self.legs.len() as f64);
        tracing::debug!(shard = self.n, call_id = %slot.call_id, leg_id = %slot.leg_id, "leg closed");
    }

    /// Asks a leg's participant for a key frame, if not asked just now.
    fn ask_keyframe(&mut self, key: LegKey, now: Instant) {
        if let Some(slot) = self.legs.get_mut(&key) {
            if slot.keyframes.allow(now) {
                slot.leg.request_keyframe(now);
                self.touched.push(key);
            }
        }
    }

    /// The other legs of a leg's call.
    fn others(&self, key: LegKey) -> (bool, Vec<LegKey>) {
        let Some(slot) = self.legs.get(&key) else {
            return (false, Vec::new());
        };
        match self.calls.get(&slot.call_id) {
            Some(call) => (
                call.open,
                call.legs.iter().copied().filter(|k| *k != key).collect(),
            ),
            None => (false, Vec::new()),
        }
    }

    /// Drains every touched leg: datagrams to send, and events, which may
    /// touch other legs (forwarding).
    fn drain(&mut self) {
        while let Some(key) = self.touched.pop() {
            while let Some(slot) = self.legs.get_mut(&key) {
                let Some(out) = slot.leg.poll() else {
                    slot.timeout = slot.leg.poll_timeout();
                    break;
                };
                match out {
                    LegOutput::Transmit(t) => self.outbox.push((t.to, t.data, t.tcp)),
                    LegOutput::Event(event) => self.event(key, event),
                }
            }
        }
    }

    fn event(&mut self, key: LegKey, event: LegEvent) {
        let now = Instant::now();
        match event {
            LegEvent::Rtp(rtp) => {
                let (open, others) = self.others(key);
                if !open {
                    metrics::counter!("etahoiva_relay_gated_packets_total").increment(1);
                    return;
                }
                let ts_step = match rtp.kind {
                    MediaKind::Audio => 960,
                    MediaKind::Video => 3000,
                };
                for other in others {
                    let Some(dst) = self.legs.get_mut(&other) else {
                        continue;
                    };
                    if !dst.connected {
                        continue;
                    }
                    if rtp.kind == MediaKind::Video && dst.downlink.audio_only() {
                        // The weak link keeps the sound.
                        continue;
                    }
                    let Some(sender) = dst
                        .senders
                        .iter_mut()
                        .find(|s| s.source == Some(key) && s.kind == rtp.kind)
                    else {
                        continue;
                    };
                    let track = sender.track;
                    let (seq, ts) = sender.rewriter.rewrite(key, rtp.seq, rtp.ts, ts_step);
                    let out = RtpOut {
                        seq,
                        ts,
                        marker: rtp.marker,
                        payload: rtp.payload.clone(),
                    };
                    match dst.leg.send_rtp(track, out, now) {
                        Ok(()) => {
                            self.forwarded += 1;
                            self.touched.push(other);
                        }
                        Err(e) => {
                            tracing::trace!(leg_id = %dst.leg_id, error = %e, "not forwarded")
                        }
                    }
                }
            }
            LegEvent::KeyframeRequested { track } => {
                // The participant lost the picture of whoever that track carries.
                let source = self
                    .legs
                    .get(&key)
                    .and_then(|s| s.senders.iter().find(|x| x.track == track))
                    .and_then(|x| x.source);
                match source {
                    Some(source) => self.ask_keyframe(source, now),
                    None => {
                        let (_, others) = self.others(key);
                        for other in others {
                            self.ask_keyframe(other, now);
                        }
                    }
                }
            }
            LegEvent::Connected { setup } => {
                let Some(slot) = self.legs.get_mut(&key) else {
                    return;
                };
                slot.connected = true;
                let event = RelayEvent::Connected {
                    call_id: slot.call_id.clone(),
                    leg_id: slot.leg_id.clone(),
                    party: slot.party.clone(),
                    setup_ms: setup.as_millis() as u64,
                };
                metrics::histogram!("etahoiva_relay_setup_seconds").record(setup.as_secs_f64());
                tracing::info!(call_id = %slot.call_id, leg_id = %slot.leg_id, setup_ms = setup.as_millis() as u64, "leg connected");
                let _ = self.events.send(event);
                // The new receiver needs a picture now, not at the next key frame.
                let (_, others) = self.others(key);
                for other in others {
                    self.ask_keyframe(other, now);
                }
            }
            LegEvent::Disconnected | LegEvent::Failed => {
                let Some(slot) = self.legs.get(&key) else {
                    return;
                };
                let event = RelayEvent::Disconnected {
                    call_id: slot.call_id.clone(),
                    leg_id: slot.leg_id.clone(),
                    party: slot.party.clone(),
                    failed: matches!(event, LegEvent::Failed),
                };
                let _ = self.events.send(event);
            }
            LegEvent::LossReport { fraction_lost, .. } => {
                let change = match self.legs.get_mut(&key) {
                    Some(slot) => slot.downlink.on_loss(fraction_lost),
                    None => return,
                };
                self.downlink_changed(key, change, now);
            }
            LegEvent::RembReceived { bps } => {
                let change = match self.legs.get_mut(&key) {
                    Some(slot) => slot.downlink.on_remb(bps),
                    None => return,
                };
                self.downlink_changed(key, change, now);
            }
            LegEvent::Closed | LegEvent::AddressSelected { .. } => {}
        }
    }

    /// A receiver's downlink estimate moved: tell the sources what they may
    /// send (REMB: the lowest estimate among their receivers), and switch the
    /// receiver to audio only or back.
    fn downlink_changed(&mut self, key: LegKey, change: Change, now: Instant) {
        let Some(call_id) = self.legs.get(&key).map(|s| s.call_id.clone()) else {
            return;
        };
        let legs = self
            .calls
            .get(&call_id)
            .map(|c| c.legs.clone())
            .unwrap_or_default();
        for source in &legs {
            let lowest = legs
                .iter()
                .filter(|r| *r != source)
                .filter_map(|r| self.legs.get(r))
                .map(|r| r.downlink.estimate())
                .min();
            let (Some(bps), Some(slot)) = (lowest, self.legs.get_mut(source)) else {
                continue;
            };
            // The estimate covers the sound too; the rest is the picture's.
            let video = bps.saturating_sub(AUDIO_BPS).max(adapt::MIN_BPS);
            let due = match slot.remb_sent {
                None => true,
                Some((last, at)) => {
                    now.saturating_duration_since(at) >= REMB_EVERY
                        || video.abs_diff(last) * 20 > last
                }
            };
            if due {
                slot.leg.send_remb(video, now);
                slot.remb_sent = Some((video, now));
                self.touched.push(*source);
            }
        }
        let Some(slot) = self.legs.get(&key) else {
            return;
        };
        let (leg_id, party, estimate) = (
            slot.leg_id.clone(),
            slot.party.clone(),
            slot.downlink.estimate(),
        );
        match change {
            Change::None => {}
            Change::AudioOnly | Change::VideoAgain => {
                let audio_only = change == Change::AudioOnly;
                tracing::info!(%call_id, %leg_id, audio_only, estimate, "downlink changed");
                metrics::counter!("etahoiva_relay_audio_only_total", "to" => if audio_only { "audio" } else { "video" })
                    .increment(1);
                let _ = self.events.send(RelayEvent::Quality {
                    call_id,
                    leg_id,
                    party,
                    audio_only,
                    estimate_bps: estimate,
                });
                if !audio_only {
                    // The picture resumes with a key frame from every source.
                    for other in legs.iter().filter(|k| **k != key) {
                        self.ask_keyframe(*other, now);
                    }
                }
            }
        }
    }

    async fn flush(&mut self) {
        for (to, data, tcp) in self.outbox.drain(..) {
            if tcp {
                if let Some(out) = self.tcp_out.get(&to) {
                    let _ = out.send(data.to_vec());
                }
                continue;
            }
            match self.socket.try_send_to(&data, to) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.socket.send_to(&data, to).await {
                        tracing::debug!(%to, error = %e, "relay send");
                    }
                }
                Err(e) => tracing::debug!(%to, error = %e, "relay send"),
            }
        }
    }
}
