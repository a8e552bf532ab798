//! Etahoiva media: the WebRTC engine the hub's relay, the simulated
//! terminals and the relay benchmark share, behind one trait
//! ([`engine::MediaEngine`], [`engine::Leg`]), and the generated media of
//! simulated terminals.

pub mod engine;
pub mod generate;
pub mod peer;
pub mod stun;
pub mod webrtc_rs;

pub use engine::{
    EngineError, IceCreds, Leg, LegConfig, LegEvent, LegOutput, LegStats, MediaEngine, MediaKind,
    Role, RtpIn, RtpOut, TrackId, Transmit,
};
pub use webrtc_rs::{legs_alive, RtcEngine, RtcLeg};
