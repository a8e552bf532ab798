//! Wire messages of the terminal link, shared by the hub and `etahoiva-edge`.
//!
//! One WebSocket over mutually authenticated TLS carries JSON text frames,
//! each one [`EdgeToHub`] or [`HubToEdge`] message tagged by `"type"`.
//! The first frame from the terminal is [`EdgeToHub::Hello`]; the hub answers
//! with [`HubToEdge::Welcome`] or [`HubToEdge::Error`] and closes.
//! Both enums are `#[non_exhaustive]` and unknown message types are answered
//! with an error frame, so newer and older peers can talk.

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
/// Version 2 added [`HubToEdge::Schedule`] and the call messages
/// ([`HubToEdge::CallOffer`], [`HubToEdge::CallEnd`], [`EdgeToHub::CallUpdate`]).
/// Version 3 added [`HubToEdge::AlarmStatus`] and [`HubToEdge::Notice`].
/// Version 4 added media through the hub's relay: [`HubToEdge::MediaOffer`],
/// [`EdgeToHub::MediaAnswer`], [`EdgeToHub::IceCandidate`] and
/// [`EdgeToHub::IceRestartRequest`].
pub const PROTOCOL_VERSION: u32 = 4;
/// A TURN server and its credentials, as `RTCPeerConnection` takes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// The first protocol version with media.
pub const MEDIA_PROTOCOL_VERSION: u32 = 4;
/// The oldest protocol version the hub still accepts.
pub const MIN_PROTOCOL_VERSION: u32 = 1;
/// Largest frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Path of the WebSocket endpoint on the hub's device listener.
pub const LINK_PATH: &str = "/link";
/// Prefix of the URI subject-alternative name that carries a device id in its certificate.
pub const DEVICE_URI_PREFIX: &str = "urn:etahoiva:device:";

/// Messages from the terminal to the hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EdgeToHub {
    /// First frame: who the terminal says it is and what it runs.
    Hello {
        protocol: u32,
        device_id: String,
        agent_version: String,
        /// Version of the terminal settings it runs (0 for the provisioned ones).
        config_version: u64,
        /// Seconds between the heartbeats it will send.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heartbeat_secs: Option<u64>,
    },
    /// Sign of life, sent at the configured interval.
    Heartbeat { seq: u64 },
    /// Something that happened on the terminal; stored once by `key`.
    Event(Event),
    /// The pushed settings were validated and are now in use.
    ConfigApplied { version: u64 },
    /// The pushed settings were refused; the previous ones stay in use.
    ConfigRejected { version: u64, reason: String },
    /// What became of a call on the terminal.
    CallUpdate {
        call_id: String,
        state: CallState,
        /// Why, in words for the log (never personal data).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The terminal's answer (SDP) to the hub's [`HubToEdge::MediaOffer`].
    MediaAnswer {
        call_id: String,
        leg_id: String,
        sdp: String,
    },
    /// A candidate the terminal gathered ("" ends its candidates).
    IceCandidate {
        call_id: String,
        leg_id: String,
        candidate: String,
    },
    /// The terminal's network changed: it asks for a new offer with fresh
    /// ICE credentials; the call carries on.
    IceRestartRequest { call_id: String, leg_id: String },
    /// Outcome of a [`HubToEdge::Command`].
    CommandResult {
        id: String,
        ok: bool,
        detail: String,
    },
}

/// An event accepted on the terminal and kept in its outbox until acknowledged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Idempotency key, unique per device; resending the same key is harmless.
    pub key: String,
    pub kind: EventKind,
    /// When it happened on the terminal, milliseconds since the Unix epoch.
    pub occurred_at: i64,
    /// Kind-specific details.
    #[serde(default)]
    pub detail: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The help button of the terminal or the kiosk.
    HelpButton,
    /// An alarm from a wristband.
    Wristband,
    /// An alarm or reading from a sensor (door, fall, smoke, bed...).
    Sensor,
    /// A record of a call on the terminal.
    CallLog,
    /// Something the terminal reports about itself (power, storage...).
    Status,
}

impl EventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::HelpButton => "help_button",
            EventKind::Wristband => "wristband",
            EventKind::Sensor => "sensor",
            EventKind::CallLog => "call_log",
            EventKind::Status => "status",
        }
    }
}

/// Messages from the hub to the terminal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HubToEdge {
    /// The hello was accepted.
    Welcome {
        protocol: u32,
        device_id: String,
        /// Heartbeat interval the hub expects, in seconds.
        heartbeat_secs: u64,
        /// Hub clock, milliseconds since the Unix epoch.
        server_time: i64,
        /// Display name of the client at this terminal, if bound.
        client_name: Option<String>,
    },
    /// The event with this key is stored; the terminal may delete it.
    Ack { key: String },
    /// New terminal settings (the `settings` table of a profile) to validate and apply.
    ConfigPush {
        version: u64,
        settings: serde_json::Value,
    },
    /// An instruction to the terminal.
    Command { id: String, command: Command },
    /// The client's coming scheduled visits: the whole list, replacing the
    /// previous one. Sent after the welcome and whenever the plan changes
    /// (protocol 2 and later).
    Schedule(Schedule),
    /// Somebody calls the client. The terminal serves one call at a time:
    /// a call of a higher [`CallKind`] pre-empts a lower one, a lower or
    /// equal one gets `busy`.
    CallOffer {
        call_id: String,
        kind: CallKind,
        /// Who calls, as the client sees it ("Anna").
        caller: String,
        /// The scheduled visit the call belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visit_id: Option<String>,
        /// The hub checked the right to open the camera without the client's
        /// touch (consent, assigned nurse, window): answer by itself.
        auto_answer: bool,
    },
    /// The caller hung up or the hub ended the call.
    CallEnd { call_id: String, reason: String },
    /// The hub's media offer (SDP) for a call (protocol 4): sent with the
    /// [`HubToEdge::CallOffer`] so the connection is ready when the client
    /// answers, and again with fresh ICE credentials on a restart. The
    /// terminal answers with [`EdgeToHub::MediaAnswer`]; it sends its camera
    /// and microphone only once the call is answered.
    MediaOffer {
        call_id: String,
        leg_id: String,
        sdp: String,
        #[serde(default)]
        ice_restart: bool,
        /// TURN servers with short-lived credentials, for networks that
        /// block UDP to the relay (the W3C `RTCIceServer` dictionary).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// Where the client's alarm is (protocol 3 and later): sent when the
    /// alarm is stored and at every step of its handling, so the terminal
    /// can tell the client that help is on the way.
    AlarmStatus {
        alert_id: String,
        /// Keys of the terminal's events merged into this alarm.
        #[serde(default)]
        event_keys: Vec<String>,
        progress: AlarmProgress,
        /// Hub clock of the step, milliseconds since the Unix epoch.
        at: i64,
    },
    /// A message for the client, already in the client's language
    /// (protocol 3 and later), e.g. that the care unit was told of an outage.
    Notice { id: String, text: String },
    /// Something was wrong with a frame or the link; `fatal` errors are followed by a close.
    Error {
        code: ErrorCode,
        message: String,
        fatal: bool,
    },
}

/// Who is calling. Declared from the lowest priority to the highest, so
/// `Ord` is the priority: an alarm call pre-empts a scheduled care call,
/// which pre-empts another professional's, which pre-empts a relative's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Relative,
    Professional,
    ScheduledCare,
    Alarm,
}

/// The state of a call on the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallState {
    /// The terminal rings; the client may answer.
    Ringing,
    /// The client answered, or the terminal answered by itself.
    Answered,
    /// The client declined.
    Declined,
    /// Another call of the same or higher priority is on.
    Busy,
    /// The call ended on the terminal.
    Ended,
    /// A call of higher priority cut this one.
    Preempted,
}

/// How far the handling of an alarm has come, as the client is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlarmProgress {
    /// Stored at the hub and sent to the staff on duty.
    Received,
    /// A nurse or a patrol member took it.
    Acknowledged,
    /// A patrol is on its way to the home.
    EnRoute,
    /// The patrol is at the home.
    OnSite,
    /// Handled and closed.
    Resolved,
    /// Cancelled (a false alarm, or taken back).
    Cancelled,
}

/// The coming visits of the client at a terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// IANA time zone of the client's home; times are shown in it.
    pub time_zone: String,
    /// Hub clock when the list was made, milliseconds since the Unix epoch.
    pub generated_at: i64,
    /// Coming visits in time order (those not yet done, missed or cancelled).
    pub visits: Vec<ScheduledVisit>,
}

/// One coming visit as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledVisit {
    pub id: String,
    /// Planned start of the call, milliseconds since the Unix epoch.
    pub starts_at: i64,
    /// The window the call is made in.
    pub window_start: i64,
    pub window_end: i64,
    /// Planned length in minutes.
    pub length_min: u32,
    /// What the visit is for, as written in the care plan.
    pub purpose: String,
    /// First name of the nurse who will call, once assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nurse_name: Option<String>,
    /// `planned`, `due`, `calling`, `in_progress` or `no_answer`.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Answer with a `CommandResult` (a liveness check from the console).
    Ping,
    /// Send the outbox now.
    FlushOutbox,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not valid JSON of a known message.
    Malformed,
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    TooLarge,
    /// The peer speaks a protocol version this side does not.
    UnsupportedProtocol,
    /// The first frame was not a hello, or a hello came twice.
    UnexpectedMessage,
    /// The certificate does not belong to the device that says hello.
    IdentityMismatch,
    /// The device is unknown or revoked.
    Revoked,
    /// The hub could not store something; the terminal keeps it and retries.
    Unavailable,
    /// Another connection of the same device replaced this one.
    Replaced,
}

/// Why a frame could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge(usize),
    Malformed(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge(n) => write!(
                f,
                "frame of {n} bytes exceeds the limit of {MAX_FRAME_BYTES}"
            ),
            DecodeError::Malformed(e) => write!(f, "malformed frame: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads one frame, enforcing the size limit first.
pub fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Writes one frame.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Serialising these types cannot fail: every field is a plain JSON value.
    serde_json::to_string(message).unwrap_or_else(|e| {
        format!("{{\"type\":\"error\",\"code\":\"malformed\",\"message\":\"cannot encode: {e}\",\"fatal\":false}}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_explicit_tags() {
        let hello = EdgeToHub::Hello {
            protocol: PROTOCOL_VERSION,
            device_id: "d1".into(),
            agent_version: "0.1.0".into(),
            config_version: 3,
            heartbeat_secs: Some(30),
        };
        let text = encode(&hello);
        assert!(text.contains("\"type\":\"hello\""), "{text}");
        assert_eq!(decode::<EdgeToHub>(&text), Ok(hello));
        let event = EdgeToHub::Event(Event {
            key: "k1".into(),
            kind: EventKind::HelpButton,
            occurred_at: 1,
            detail: serde_json::json!({"source": "kiosk"}),
        });
        let text = encode(&event);
        assert!(text.contains("\"kind\":\"help_button\""), "{text}");
        assert_eq!(decode::<EdgeToHub>(&text), Ok(event));
        let schedule = HubToEdge::Schedule(Schedule {
            time_zone: "Europe/Helsinki".into(),
            generated_at: 7,
            visits: vec![ScheduledVisit {
                id: "v1".into(),
                starts_at: 1_000,
                window_start: 0,
                window_end: 2_000,
                length_min: 10,
                purpose: "Lääkkeet".into(),
                nurse_name: Some("Anna".into()),
                status: "planned".into(),
            }],
        });
        let text = encode(&schedule);
        assert!(text.contains("\"type\":\"schedule\""), "{text}");
        assert_eq!(decode::<HubToEdge>(&text), Ok(schedule));
        let offer = HubToEdge::CallOffer {
            call_id: "c1".into(),
            kind: CallKind::ScheduledCare,
            caller: "Anna".into(),
            visit_id: Some("v1".into()),
            auto_answer: true,
        };
        let text = encode(&offer);
        assert!(text.contains("\"kind\":\"scheduled_care\""), "{text}");
        assert_eq!(decode::<HubToEdge>(&text), Ok(offer));
        let update = EdgeToHub::CallUpdate {
            call_id: "c1".into(),
            state: CallState::Preempted,
            detail: None,
        };
        assert_eq!(decode::<EdgeToHub>(&encode(&update)), Ok(update));
        assert!(CallKind::Alarm > CallKind::ScheduledCare);
        assert!(CallKind::ScheduledCare > CallKind::Professional);
        assert!(CallKind::Professional > CallKind::Relative);
        let push = HubToEdge::Command {
            id: "c".into(),
            command: Command::Ping,
        };
        assert_eq!(decode::<HubToEdge>(&encode(&push)), Ok(push));
    }

    #[test]
    fn unknown_and_oversized_frames_are_errors_not_panics() {
        assert!(matches!(
            decode::<EdgeToHub>("{\"type\":\"teleport\"}"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode::<EdgeToHub>("not json"),
            Err(DecodeError::Malformed(_))
        ));
        let huge = format!(
            "{{\"type\":\"heartbeat\",\"seq\":1,\"pad\":\"{}\"}}",
            "x".repeat(MAX_FRAME_BYTES)
        );
        assert!(matches!(
            decode::<EdgeToHub>(&huge),
            Err(DecodeError::TooLarge(_))
        ));
        // An event without detail still parses (older terminals).
        let old = r#"{"type":"event","key":"a","kind":"sensor","occurred_at":5}"#;
        assert!(matches!(decode::<EdgeToHub>(old), Ok(EdgeToHub::Event(_))));
    }
}
