//! A simulated participant: a peer leg on its own UDP socket, driven by a
//! task, answering the hub's offer and, while told to, sending a media loop
//! (VP8 at the loop's frame rate, Opus every 20 ms). What it receives is
//! counted. Simulated terminals, tests and the relay benchmark use it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::shared::tcp_framing::{frame_packet, TcpFrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

use crate::engine::{EngineError, Leg, LegConfig, LegEvent, LegOutput, MediaEngine, MediaKind};
use crate::engine::{Role, RtpOut, TcpCandidate};
use crate::generate::{vp8_packets, MediaLoop};
use crate::webrtc_rs::RtcEngine;

/// What a peer received and sent.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MediaReport {
    pub connected: bool,
    pub setup_ms: Option<u64>,
    pub audio_packets_in: u64,
    pub video_packets_in: u64,
    /// Video frames whose first packet arrived (VP8 start of partition).
    pub video_frames_in: u64,
    pub audio_packets_out: u64,
    pub video_packets_out: u64,
    pub video_frames_out: u64,
    pub keyframe_requests_in: u64,
    /// Distinct video streams received (one per other participant).
    pub video_sources_in: u64,
}

/// The hub's address for media: the first UDP host candidate of its offer.
pub fn offered_address(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|line| {
        let c = line.trim().strip_prefix("a=candidate:")?;
        let fields: Vec<&str> = c.split_whitespace().collect();
        // foundation component transport priority address port typ host
        if fields.len() < 8 || !fields[2].eq_ignore_ascii_case("udp") {
            return None;
        }
        let ip: std::net::IpAddr = fields[4].parse().ok()?;
        let port: u16 = fields[5].parse().ok()?;
        Some(SocketAddr::new(ip, port))
    })
}

/// The hub's passive ICE-TCP candidate in an offer.
pub fn offered_tcp_address(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|line| {
        let c = line.trim().strip_prefix("a=candidate:")?;
        let fields: Vec<&str> = c.split_whitespace().collect();
        let passive = fields
            .windows(2)
            .any(|w| w[0] == "tcptype" && w[1] == "passive");
        if fields.len() < 8 || !fields[2].eq_ignore_ascii_case("tcp") || !passive {
            return None;
        }
        let ip: std::net::IpAddr = fields[4].parse().ok()?;
        let port: u16 = fields[5].parse().ok()?;
        Some(SocketAddr::new(ip, port))
    })
}

/// How a simulated participant reaches the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerTransport {
    Udp,
    /// ICE-TCP only, as on a network that blocks UDP.
    Tcp,
}

/// The participant's end of the connection.
enum Socket {
    Udp(UdpSocket),
    Tcp {
        read: tokio::net::tcp::OwnedReadHalf,
        write: tokio::net::tcp::OwnedWriteHalf,
        hub: SocketAddr,
        local: SocketAddr,
        frames: TcpFrameDecoder,
    },
}

impl Socket {
    /// The next datagram (or frame), with who sent it and whether over TCP;
    /// None when the connection closed.
    async fn recv(&mut self, buf: &mut [u8]) -> Option<(Vec<u8>, SocketAddr, bool)> {
        match self {
            // A UDP socket's errors (an ICMP error from a previous send) are
            // not the end of the connection.
            Socket::Udp(s) => loop {
                if let Ok((n, from)) = s.recv_from(buf).await {
                    return Some((buf[..n].to_vec(), from, false));
                }
            },
            Socket::Tcp {
                read, hub, frames, ..
            } => loop {
                if let Some(frame) = frames.next_packet() {
                    return Some((frame, *hub, true));
                }
                let n = read.read(buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                frames.extend_from_slice(&buf[..n]);
            },
        }
    }

    async fn send(&mut self, data: &[u8], to: SocketAddr) {
        match self {
            Socket::Udp(s) => {
                let _ = s.send_to(data, to).await;
            }
            Socket::Tcp { write, .. } => {
                let _ = write.write_all(&frame_packet(data)).await;
            }
        }
    }

    fn tcp_local(&self) -> Option<SocketAddr> {
        match self {
            Socket::Tcp { local, .. } => Some(*local),
            Socket::Udp(_) => None,
        }
    }
}

/// Whether a VP8 RTP payload starts a frame (RFC 7741: S bit, partition 0).
pub fn vp8_starts_frame(payload: &[u8]) -> bool {
    payload
        .first()
        .is_some_and(|b| b & 0x10 != 0 && b & 0x0f == 0)
}

/// A running simulated participant.
pub struct Peer {
    answer: String,
    report: watch::Receiver<MediaReport>,
    sending: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    offers: mpsc::Sender<Renegotiation>,
    loss: Arc<AtomicU8>,
}

/// A new offer of the hub for a running connection, and where its answer goes.
type Renegotiation = (String, oneshot::Sender<Result<String, EngineError>>);

impl Peer {
    /// Answers the hub's offer from a fresh socket and starts driving the
    /// connection. Media is sent only after [`Peer::send_media`]`(true)`.
    pub async fn answer(offer: &str, media: Option<Arc<MediaLoop>>) -> Result<Peer, EngineError> {
        Peer::answer_over(offer, media, PeerTransport::Udp).await
    }

    /// Like [`Peer::answer`], over UDP or, as on a network that blocks UDP,
    /// over ICE-TCP only (a connection to the hub's passive candidate).
    pub async fn answer_over(
        offer: &str,
        media: Option<Arc<MediaLoop>>,
        transport: PeerTransport,
    ) -> Result<Peer, EngineError> {
        let io = |e: std::io::Error| EngineError::Engine(e.to_string());
        let (socket, config) = match transport {
            PeerTransport::Udp => {
                let hub = offered_address(offer)
                    .ok_or_else(|| EngineError::Sdp("the offer has no UDP candidate".into()))?;
                let any = if hub.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let socket = UdpSocket::bind(any).await.map_err(io)?;
                // Connected to the hub, the socket knows which of our addresses it uses.
                socket.connect(hub).await.map_err(io)?;
                let local = socket.local_addr().map_err(io)?;
                let config = LegConfig {
                    role: Role::Peer,
                    ice: None,
                    local,
                    tcp: None,
                    udp: true,
                };
                (Socket::Udp(socket), config)
            }
            PeerTransport::Tcp => {
                let hub = offered_tcp_address(offer).ok_or_else(|| {
                    EngineError::Sdp("the offer has no passive TCP candidate".into())
                })?;
                let stream = TcpStream::connect(hub).await.map_err(io)?;
                stream.set_nodelay(true).map_err(io)?;
                let local = stream.local_addr().map_err(io)?;
                let config = LegConfig {
                    role: Role::Peer,
                    ice: None,
                    local,
                    tcp: Some(TcpCandidate::Active(local.ip())),
                    udp: false,
                };
                let (read, write) = stream.into_split();
                (
                    Socket::Tcp {
                        read,
                        write,
                        hub,
                        local,
                        frames: TcpFrameDecoder::new(),
                    },
                    config,
                )
            }
        };
        let now = Instant::now();
        let mut leg = RtcEngine.new_leg(&config, now)?;
        let audio = leg.add_sender(MediaKind::Audio, "peer")?;
        let video = leg.add_sender(MediaKind::Video, "peer")?;
        let answer = leg.accept_offer(offer, now)?;
        let (report_tx, report) = watch::channel(MediaReport::default());
        let (sending, sending_rx) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let (offers, offers_rx) = mpsc::channel(4);
        let loss = Arc::new(AtomicU8::new(0));
        let driver = Driver {
            offers: offers_rx,
            loss: loss.clone(),
            leg,
            socket,
            audio,
            video,
            media,
            report: report_tx,
            sending: sending_rx,
            stop: stop_rx,
        };
        tokio::spawn(driver.run());
        Ok(Peer {
            answer,
            report,
            sending,
            stop,
            offers,
            loss,
        })
    }

    /// Simulates a lossy downlink: drops this percentage of the media
    /// packets that arrive (RTP only; checks, DTLS and RTCP pass).
    pub fn set_receive_loss(&self, percent: u8) {
        self.loss.store(percent.min(100), Ordering::Relaxed);
    }

    /// Answers a new offer of the hub on the running connection (somebody
    /// joined, or an ICE restart).
    pub async fn renegotiate(&self, offer: &str) -> Result<String, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.offers
            .send((offer.to_string(), tx))
            .await
            .map_err(|_| EngineError::Closed)?;
        rx.await.map_err(|_| EngineError::Closed)?
    }

    /// Our answer, for the hub.
    pub fn answer_sdp(&self) -> &str {
        &self.answer
    }

    /// Starts or stops sending the media loop.
    pub fn send_media(&self, on: bool) {
        self.sending.send_replace(on);
    }

    pub fn report(&self) -> MediaReport {
        self.report.borrow().clone()
    }

    /// Closes the connection (DTLS close, then the socket).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Whether the driving task ended (stopped, or the connection failed).
    pub fn ended(&self) -> bool {
        self.report.has_changed().is_err()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

struct Driver<L: Leg> {
    leg: L,
    socket: Socket,
    audio: crate::engine::TrackId,
    video: crate::engine::TrackId,
    media: Option<Arc<MediaLoop>>,
    report: watch::Sender<MediaReport>,
    sending: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    offers: mpsc::Receiver<Renegotiation>,
    loss: Arc<AtomicU8>,
}

/// Whether a datagram is RTP (not RTCP, STUN or DTLS; RFC 7983, RFC 5761).
fn is_rtp(data: &[u8]) -> bool {
    data.len() >= 12 && (128..=191).contains(&data[0]) && !(192..=223).contains(&data[1])
}

impl<L: Leg> Driver<L> {
    async fn run(mut self) {
        let fps = self.media.as_ref().map_or(15, |m| m.fps.max(1));
        let mut video_tick = tokio::time::interval(Duration::from_micros(1_000_000 / fps as u64));
        let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
        video_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        audio_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut vseq = rand::random::<u16>();
        let mut aseq = rand::random::<u16>();
        let (mut frame, mut packet) = (0u32, 0u32);
        let started = Instant::now();
        let mut report = MediaReport::default();
        let mut video_sources = std::collections::HashSet::new();
        let mut buf = vec![0u8; 2048];
        loop {
            let timeout = self
                .leg
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let sending = *self.sending.borrow() && report.connected && self.media.is_some();
            tokio::select! {
                _ = self.stop.changed() => break,
                Some((offer, reply)) = self.offers.recv() => {
                    let _ = reply.send(self.leg.accept_offer(&offer, Instant::now()));
                }
                received = self.socket.recv(&mut buf) => {
                    let Some((data, from, tcp)) = received else { break };
                    let loss = self.loss.load(Ordering::Relaxed);
                    let dropped = loss > 0
                        && is_rtp(&data)
                        && rand::random::<u8>() % 100 < loss;
                    if !dropped {
                        let now = Instant::now();
                        let _ = match (tcp, self.socket.tcp_local()) {
                            (true, Some(local)) => self.leg.handle_tcp_frame(from, local, &data, now),
                            _ => self.leg.handle_datagram(from, &data, now),
                        };
                    }
                }
                () = tokio::time::sleep_until(timeout.into()) => self.leg.handle_timeout(Instant::now()),
                _ = self.sending.changed() => {}
                _ = video_tick.tick(), if sending => {
                    if let Some(m) = &self.media {
                        let f = &m.video[frame as usize % m.video.len()];
                        let ts = (started.elapsed().as_micros() as u64 * 9 / 100) as u32;
                        let packets = vp8_packets(f, frame as u16);
                        let last = packets.len().saturating_sub(1);
                        let now = Instant::now();
                        for (i, p) in packets.into_iter().enumerate() {
                            let out = RtpOut { seq: vseq, ts, marker: i == last, payload: p };
                            vseq = vseq.wrapping_add(1);
                            if self.leg.send_rtp(self.video, out, now).is_ok() {
                                report.video_packets_out += 1;
                            }
                        }
                        frame += 1;
                        report.video_frames_out += 1;
                    }
                }
                _ = audio_tick.tick(), if sending => {
                    if let Some(m) = &self.media {
                        let p = m.audio[packet as usize % m.audio.len()].clone();
                        let out = RtpOut {
                            seq: aseq,
                            ts: packet.wrapping_mul(960),
                            marker: packet == 0,
                            payload: p,
                        };
                        aseq = aseq.wrapping_add(1);
                        packet += 1;
                        if self.leg.send_rtp(self.audio, out, Instant::now()).is_ok() {
                            report.audio_packets_out += 1;
                        }
                    }
                }
            }
            let mut failed = false;
            while let Some(out) = self.leg.poll() {
                match out {
                    LegOutput::Transmit(t) => self.socket.send(&t.data, t.to).await,
                    LegOutput::Event(LegEvent::Connected { setup }) => {
                        report.connected = true;
                        report.setup_ms = Some(setup.as_millis() as u64);
                    }
                    LegOutput::Event(LegEvent::Rtp(rtp)) => match rtp.kind {
                        MediaKind::Audio => report.audio_packets_in += 1,
                        MediaKind::Video => {
                            report.video_packets_in += 1;
                            if video_sources.insert(rtp.ssrc) {
                                report.video_sources_in = video_sources.len() as u64;
                            }
                            if vp8_starts_frame(&rtp.payload) {
                                report.video_frames_in += 1;
                            }
                        }
                    },
                    // Every frame of the loop is a key frame already.
                    LegOutput::Event(LegEvent::KeyframeRequested { .. }) => {
                        report.keyframe_requests_in += 1
                    }
                    LegOutput::Event(LegEvent::Failed | LegEvent::Closed) => failed = true,
                    LegOutput::Event(_) => {}
                }
            }
            if *self.report.borrow() != report {
                self.report.send_replace(report.clone());
            }
            if failed {
                break;
            }
        }
        self.leg.close(Instant::now());
        while let Some(out) = self.leg.poll() {
            if let LegOutput::Transmit(t) = out {
                self.socket.send(&t.data, t.to).await;
            }
        }
        self.report.send_replace(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hubs_udp_candidate_is_found() {
        let sdp = "v=0\r\na=candidate:1 1 tcp 1 10.0.0.1 9 typ host\r\na=candidate:2 1 udp 2130706431 127.0.0.1 3480 typ host\r\n";
        assert_eq!(
            offered_address(sdp),
            Some("127.0.0.1:3480".parse().unwrap())
        );
        assert_eq!(offered_address("v=0\r\n"), None);
        assert_eq!(
            offered_address("a=candidate:1 1 udp 1 notanip 1 typ host"),
            None
        );
    }

    #[test]
    fn frame_starts_are_recognised() {
        assert!(vp8_starts_frame(&[0x90, 0x80]));
        assert!(vp8_starts_frame(&[0x10]));
        assert!(!vp8_starts_frame(&[0x80, 0x80]));
        assert!(!vp8_starts_frame(&[]));
    }
}
