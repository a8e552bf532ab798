//! Etahoiva media: the WebRTC engine the hub's relay, the simulated
//! terminals and the relay benchmark share, behind one trait
//! ([`engine::MediaEngine`], [`engine::Leg`]), and the generated media of
//! simulated terminals.

pub mod engine;
pub mod generate;
pub mod peer;
pub mod stun;
pub mod webrtc_rs;

/// RFC 4571 framing of ICE-TCP connections.
pub mod tcp_framing {
    pub use rtc::shared::tcp_framing::{frame_packet, TcpFrameDecoder};
}

pub use engine::{
    EngineError, IceCreds, Leg, LegConfig, LegEvent, LegOutput, LegStats, MediaEngine, MediaKind,
    Role, RtpIn, RtpOut, TcpCandidate, TrackId, Transmit,
};
pub use webrtc_rs::{legs_alive, RtcEngine, RtcLeg};
