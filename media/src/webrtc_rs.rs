//! The `rtc` adapter: webrtc-rs' sans-I/O core (`rtc` 0.21) behind
//! [`Leg`]. The peer connection is a plain value owned by the leg and
//! dropped with it; [`legs_alive`] proves it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::BytesMut;
use rtc::interceptor::{
    Attribute, Interceptor, NackResponderBuilder, Packet as InterceptorPacket, Registry, Slot,
    StreamInfo, TaggedPacket,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine as RtcMediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use rtc::ice::tcp_type::TcpType;

use crate::engine::{
    EngineError, Leg, LegConfig, LegEvent, LegOutput, LegStats, MediaEngine, MediaKind, Role,
    RtpIn, RtpOut, TcpCandidate, TrackId, Transmit,
};

/// Payload types the hub offers: Opus and VP8, one codec per kind, so a
/// forwarded packet keeps its codec on every leg.
pub const OPUS_PT: u8 = 111;
pub const VP8_PT: u8 = 96;

static LIVE_LEGS: AtomicUsize = AtomicUsize::new(0);

/// Legs of this engine not yet dropped, in this process.
pub fn legs_alive() -> usize {
    LIVE_LEGS.load(Ordering::Relaxed)
}

/// Sent packets kept per stream to answer NACKs.
const NACK_HISTORY: u16 = 128;

/// Where [`FeedbackToRelay`] sits: after every interceptor of the engine,
/// before the end of the inbound RTCP path.
const FEEDBACK_SLOT: usize = 20_000;

/// The engine's interceptors keep inbound RTCP to themselves; a relay must
/// see key frame requests (PLI, FIR) and receiver estimates (REMB) to pass
/// them to the source, so this marks those for delivery.
#[derive(Default)]
struct FeedbackToRelay {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

fn is_feedback(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>()
        || any.is::<FullIntraRequest>()
        || any.is::<ReceiverEstimatedMaximumBitrate>()
        || any.is::<ReceiverReport>()
        || any.is::<SenderReport>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackToRelay {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let InterceptorPacket::Rtcp(packets) = &msg.message.packet {
            if packets.iter().any(|p| is_feedback(p.as_ref())) {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }

    fn handle_event(&mut self, _: ()) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn handle_timeout(&mut self, _: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn close(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Interceptor for FeedbackToRelay {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// The `rtc` engine.
#[derive(Clone, Debug, Default)]
pub struct RtcEngine;

impl MediaEngine for RtcEngine {
    type Leg = RtcLeg;

    fn new_leg(&self, config: &LegConfig, now: Instant) -> Result<RtcLeg, EngineError> {
        RtcLeg::new(config, now)
    }

    fn name(&self) -> &'static str {
        "rtc"
    }
}

fn engine_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Engine(e.to_string())
}

fn codec(kind: MediaKind) -> RTCRtpCodecParameters {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    match kind {
        MediaKind::Audio => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![feedback("transport-cc", "")],
            },
            payload_type: OPUS_PT,
        },
        MediaKind::Video => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![
                    feedback("goog-remb", ""),
                    feedback("ccm", "fir"),
                    feedback("nack", ""),
                    feedback("nack", "pli"),
                    feedback("transport-cc", ""),
                ],
            },
            payload_type: VP8_PT,
        },
    }
}

fn rtc_kind(kind: MediaKind) -> RtpCodecKind {
    match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    }
}

struct Sender {
    id: RTCRtpSenderId,
    kind: MediaKind,
    ssrc: u32,
    pt: u8,
}

struct Receiver {
    id: RTCRtpReceiverId,
    kind: MediaKind,
    ssrc: u32,
}

/// One peer connection on the `rtc` engine.
pub struct RtcLeg {
    pc: RTCPeerConnection,
    role: Role,
    local: SocketAddr,
    ufrag: String,
    created: Instant,
    senders: Vec<Sender>,
    /// Incoming tracks by the engine's track id.
    receivers: HashMap<String, Receiver>,
    out: VecDeque<LegOutput>,
    connected: bool,
    closed: bool,
    stats: LegStats,
}

impl Drop for RtcLeg {
    fn drop(&mut self) {
        LIVE_LEGS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RtcLeg {
    fn new(config: &LegConfig, now: Instant) -> Result<RtcLeg, EngineError> {
        let mut media = RtcMediaEngine::default();
        for kind in [MediaKind::Audio, MediaKind::Video] {
            media
                .register_codec(codec(kind), rtc_kind(kind))
                .map_err(engine_err)?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media)
            .map_err(engine_err)?
            // The engine keeps 1,024 sent packets per stream for retransmission;
            // 128 (about a second of 1 Mbit/s video) answers any NACK that can
            // still help a live picture (later, a key frame does) and keeps a
            // call under 1 MB in the hub.
            .with(
                Slot::NackResponder,
                NackResponderBuilder::new().with_size(NACK_HISTORY).build(),
            )
            .with(Slot::Custom(FEEDBACK_SLOT), FeedbackToRelay::default());
        let mut settings = SettingEngineBuilder::new().with_include_loopback_candidate(true);
        // Credentials given here stay the same across ICE restarts; without
        // them the engine draws fresh ones at each restart, as RFC 8839 asks.
        if let Some(creds) = &config.ice {
            settings = settings.with_ice_credentials(creds.ufrag.clone(), creds.pwd.clone());
        }
        settings = match config.role {
            Role::Hub => settings
                .with_lite(true)
                .with_answering_dtls_role(RTCDtlsRole::Server),
            Role::Peer => settings.with_answering_dtls_role(RTCDtlsRole::Client),
        };
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings.build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(engine_err)?;
        if config.udp {
            let host = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: config.local.ip().to_string(),
                    port: config.local.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()
            .map_err(engine_err)?;
            let init = RTCIceCandidate::from(&host).to_json().map_err(engine_err)?;
            pc.add_local_candidate(init).map_err(engine_err)?;
        }
        if let Some(tcp) = config.tcp {
            let (address, port, tcp_type) = match tcp {
                TcpCandidate::Passive(addr) => (addr.ip(), addr.port(), TcpType::Passive),
                // Active candidates do not listen: port 9 by convention (RFC 6544 §4.5).
                TcpCandidate::Active(ip) => (ip, 9, TcpType::Active),
            };
            let host = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "tcp".to_owned(),
                    address: address.to_string(),
                    port,
                    component: 1,
                    ..Default::default()
                },
                tcp_type,
            }
            .new_candidate_host()
            .map_err(engine_err)?;
            let init = RTCIceCandidate::from(&host).to_json().map_err(engine_err)?;
            pc.add_local_candidate(init).map_err(engine_err)?;
        }
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(engine_err)?;
        LIVE_LEGS.fetch_add(1, Ordering::Relaxed);
        Ok(RtcLeg {
            pc,
            role: config.role,
            local: config.local,
            ufrag: config
                .ice
                .as_ref()
                .map(|c| c.ufrag.clone())
                .unwrap_or_default(),
            created: now,
            senders: Vec::new(),
            receivers: HashMap::new(),
            out: VecDeque::new(),
            connected: false,
            closed: false,
            stats: LegStats::default(),
        })
    }

    /// Something received from the network, over UDP or ICE-TCP.
    fn read(
        &mut self,
        from: SocketAddr,
        local: SocketAddr,
        protocol: TransportProtocol,
        data: &[u8],
        now: Instant,
    ) -> Result<(), EngineError> {
        if self.closed {
            return Err(EngineError::Closed);
        }
        let result = self.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: from,
                ecn: None,
                transport_protocol: protocol,
            },
            message: BytesMut::from(data),
        });
        self.pump();
        result.map_err(engine_err)
    }

    fn remember_ufrag(&mut self, sdp: &str) {
        if let Some(ufrag) = sdp
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        {
            self.ufrag = ufrag.to_owned();
        }
    }

    /// Moves everything the peer connection has for us into `out`.
    fn pump(&mut self) {
        while let Some(w) = self.pc.poll_write() {
            self.out.push_back(LegOutput::Transmit(Transmit {
                to: w.transport.peer_addr,
                tcp: w.transport.transport_protocol == TransportProtocol::TCP,
                data: w.message.freeze(),
            }));
        }
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    let mapped = match state {
                        RTCPeerConnectionState::Connected if !self.connected => {
                            self.connected = true;
                            let setup = Instant::now().saturating_duration_since(self.created);
                            Some(LegEvent::Connected { setup })
                        }
                        RTCPeerConnectionState::Disconnected => Some(LegEvent::Disconnected),
                        RTCPeerConnectionState::Failed => Some(LegEvent::Failed),
                        RTCPeerConnectionState::Closed => Some(LegEvent::Closed),
                        _ => None,
                    };
                    if let Some(e) = mapped {
                        self.out.push_back(LegOutput::Event(e));
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let kind = self
                        .pc
                        .rtp_receiver(init.receiver_id)
                        .map(|r| r.track().kind());
                    let kind = match kind {
                        Some(RtpCodecKind::Audio) => MediaKind::Audio,
                        Some(RtpCodecKind::Video) => MediaKind::Video,
                        _ => continue,
                    };
                    self.receivers.insert(
                        init.track_id,
                        Receiver {
                            id: init.receiver_id,
                            kind,
                            ssrc: init.ssrc,
                        },
                    );
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track)) => {
                    self.receivers.remove(&track);
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(track, packet) => {
                    let Some(receiver) = self.receivers.get(&track) else {
                        continue;
                    };
                    self.stats.received_packets += 1;
                    self.stats.received_bytes += packet.payload.len() as u64;
                    self.out.push_back(LegOutput::Event(LegEvent::Rtp(RtpIn {
                        kind: receiver.kind,
                        ssrc: packet.header.ssrc,
                        seq: packet.header.sequence_number,
                        ts: packet.header.timestamp,
                        marker: packet.header.marker,
                        payload: packet.payload,
                    })));
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in packets {
                        let any = p.as_any();
                        let media_ssrc =
                            if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                                Some(pli.media_ssrc)
                            } else {
                                any.downcast_ref::<FullIntraRequest>()
                                    .map(|fir| fir.fir.first().map_or(fir.media_ssrc, |e| e.ssrc))
                            };
                        if let Some(ssrc) = media_ssrc {
                            self.stats.keyframe_requests_in += 1;
                            let track =
                                self.senders
                                    .iter()
                                    .position(|s| s.ssrc == ssrc)
                                    .or_else(|| {
                                        self.senders.iter().position(|s| s.kind == MediaKind::Video)
                                    });
                            if let Some(i) = track {
                                self.out
                                    .push_back(LegOutput::Event(LegEvent::KeyframeRequested {
                                        track: TrackId(i as u16),
                                    }));
                            }
                        } else if let Some(remb) =
                            any.downcast_ref::<ReceiverEstimatedMaximumBitrate>()
                        {
                            self.out.push_back(LegOutput::Event(LegEvent::RembReceived {
                                bps: remb.bitrate.max(0.0) as u64,
                            }));
                        } else {
                            let reports: &[ReceptionReport] =
                                if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                                    &rr.reports
                                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                                    &sr.reports
                                } else {
                                    &[]
                                };
                            for report in reports {
                                if let Some(i) =
                                    self.senders.iter().position(|s| s.ssrc == report.ssrc)
                                {
                                    self.out.push_back(LegOutput::Event(LegEvent::LossReport {
                                        track: TrackId(i as u16),
                                        fraction_lost: report.fraction_lost,
                                    }));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

impl Leg for RtcLeg {
    fn add_sender(&mut self, kind: MediaKind, stream: &str) -> Result<TrackId, EngineError> {
        let ssrc = rand::random::<u32>();
        let params = codec(kind);
        let n = self.senders.len();
        let track = MediaStreamTrack::new(
            stream.to_string(),
            format!("etahoiva-{kind:?}-{n}").to_lowercase(),
            format!("{kind:?}").to_lowercase(),
            rtc_kind(kind),
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: params.rtp_codec.clone(),
                ..Default::default()
            }],
        );
        let id = self.pc.add_track(track).map_err(engine_err)?;
        self.senders.push(Sender {
            id,
            kind,
            ssrc,
            pt: params.payload_type,
        });
        Ok(TrackId(n as u16))
    }

    fn create_offer(&mut self, ice_restart: bool, now: Instant) -> Result<String, EngineError> {
        if ice_restart {
            self.pc.restart_ice();
        }
        let offer = self
            .pc
            .create_offer(None)
            .map_err(|e| EngineError::Sdp(e.to_string()))?;
        self.pc
            .set_local_description(now, offer.clone())
            .map_err(|e| EngineError::Sdp(e.to_string()))?;
        self.remember_ufrag(&offer.sdp);
        self.pump();
        Ok(offer.sdp)
    }

    fn apply_answer(&mut self, sdp: &str, now: Instant) -> Result<(), EngineError> {
        let answer = RTCSessionDescription::answer(sdp.to_owned())
            .map_err(|e| EngineError::Sdp(e.to_string()))?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(|e| EngineError::Sdp(e.to_string()))?;
        self.pump();
        Ok(())
    }

    fn accept_offer(&mut self, sdp: &str, now: Instant) -> Result<String, EngineError> {
        let offer = RTCSessionDescription::offer(sdp.to_owned())
            .map_err(|e| EngineError::Sdp(e.to_string()))?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(|e| EngineError::Sdp(e.to_string()))?;
        let answer = self
            .pc
            .create_answer(None)
            .map_err(|e| EngineError::Sdp(e.to_string()))?;
        self.pc
            .set_local_description(now, answer.clone())
            .map_err(|e| EngineError::Sdp(e.to_string()))?;
        self.remember_ufrag(&answer.sdp);
        self.pump();
        Ok(answer.sdp)
    }

    fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), EngineError> {
        if self.role == Role::Hub {
            // ICE-lite: the peer's checks tell us its addresses.
            return Ok(());
        }
        self.pc
            .add_remote_candidate(RTCIceCandidateInit {
                candidate: candidate.to_owned(),
                ..Default::default()
            })
            .map_err(|e| EngineError::Candidate(e.to_string()))
    }

    fn ufrag(&self) -> &str {
        &self.ufrag
    }

    fn handle_datagram(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<(), EngineError> {
        let local = self.local;
        self.read(from, local, TransportProtocol::UDP, data, now)
    }

    fn handle_tcp_frame(
        &mut self,
        from: SocketAddr,
        local: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<(), EngineError> {
        self.read(from, local, TransportProtocol::TCP, data, now)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(error = %e, "media engine timeout");
        }
        self.pump();
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.pc.poll_timeout()
    }

    fn poll(&mut self) -> Option<LegOutput> {
        if self.out.is_empty() {
            self.pump();
        }
        self.out.pop_front()
    }

    fn send_rtp(&mut self, track: TrackId, rtp: RtpOut, now: Instant) -> Result<(), EngineError> {
        let sender = self
            .senders
            .get(track.0 as usize)
            .ok_or(EngineError::NoTrack)?;
        let (id, ssrc, pt) = (sender.id, sender.ssrc, sender.pt);
        let len = rtp.payload.len() as u64;
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: rtp.marker,
                payload_type: pt,
                sequence_number: rtp.seq,
                timestamp: rtp.ts,
                ssrc,
                ..Default::default()
            },
            payload: rtp.payload,
        };
        let mut sender = self.pc.rtp_sender(id).ok_or(EngineError::NoTrack)?;
        sender.write_rtp(now, packet).map_err(engine_err)?;
        self.stats.sent_packets += 1;
        self.stats.sent_bytes += len;
        Ok(())
    }

    fn request_keyframe(&mut self, now: Instant) {
        let video: Vec<(RTCRtpReceiverId, u32)> = self
            .receivers
            .values()
            .filter(|r| r.kind == MediaKind::Video)
            .map(|r| (r.id, r.ssrc))
            .collect();
        for (id, media_ssrc) in video {
            if let Some(mut receiver) = self.pc.rtp_receiver(id) {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                if let Err(e) = receiver.write_rtcp(now, vec![Box::new(pli)]) {
                    tracing::debug!(error = %e, "key frame request not sent");
                }
            }
        }
        self.pump();
    }

    fn send_remb(&mut self, bps: u64, now: Instant) {
        let video: Vec<(RTCRtpReceiverId, u32)> = self
            .receivers
            .values()
            .filter(|r| r.kind == MediaKind::Video)
            .map(|r| (r.id, r.ssrc))
            .collect();
        for (id, ssrc) in video {
            if let Some(mut receiver) = self.pc.rtp_receiver(id) {
                let remb = ReceiverEstimatedMaximumBitrate {
                    sender_ssrc: 0,
                    bitrate: bps as f32,
                    ssrcs: vec![ssrc],
                };
                if let Err(e) = receiver.write_rtcp(now, vec![Box::new(remb)]) {
                    tracing::debug!(error = %e, "REMB not sent");
                }
            }
        }
        self.pump();
    }

    fn stats(&mut self, _now: Instant) -> LegStats {
        self.stats.clone()
    }

    fn close(&mut self, _now: Instant) {
        if !self.closed {
            if let Err(e) = self.pc.close() {
                tracing::debug!(error = %e, "closing a leg");
            }
            self.pump();
            self.closed = true;
        }
    }
}
