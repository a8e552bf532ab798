//! Layered settings: defaults < TOML file < `ETAHOIVA_*` environment < flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The example configuration shipped with the product, shown by `etahoiva config example`.
pub const EXAMPLE_CONFIG: &str = include_str!("../deploy/etahoiva.example.toml");

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The keys that `ETAHOIVA_<KEY>` environment variables may set.
pub const SETTING_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "tls_cert",
    "tls_key",
    "log_format",
    "log_filter",
    "session_ttl_secs",
    "login_max_failures",
    "login_window_secs",
    "login_lockout_secs",
    "metrics_token",
    "max_body_bytes",
    "device_listen",
    "missed_heartbeats",
    "device_cert_days",
    "unit_time_zone",
    "schedule_horizon_days",
    "visit_max_tries",
    "visit_retry_secs",
    "visit_ring_secs",
    "call_turnaround_secs",
    "alarm_day_start",
    "alarm_day_end",
    "alarm_ack_secs",
    "alarm_merge_secs",
    "alarm_stall_secs",
    "supervision_check_secs",
    "call_auto_answer_margin_secs",
    "relay_listen",
    "relay_public_ip",
    "relay_shards",
    "turn_enabled",
    "turn_listen",
    "turn_secret_file",
    "turn_urls",
];

/// Every setting of the hub. `Debug` and `redacted()` hide secrets.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address of the HTTPS listener (API, consoles, health, metrics).
    pub listen: SocketAddr,
    /// Directory for the SQLite database, development certificates and other state.
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; `sqlite://…` a given SQLite file; unset, `DATA_DIR/etahoiva.db`.
    pub database_url: Option<String>,
    /// PEM certificate chain of the HTTPS listener; unset, a development CA is created.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the HTTPS listener.
    pub tls_key: Option<PathBuf>,
    pub log_format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `etahoiva=debug,sqlx=warn`.
    pub log_filter: String,
    /// Lifetime of a staff session token in seconds.
    pub session_ttl_secs: u64,
    /// Failed logins for one user name or address inside the window before it is throttled.
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    /// First lockout in seconds; doubles with every further failure, up to the window.
    pub login_lockout_secs: u64,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Address of the terminal link listener (mutual TLS, WebSocket at `/link`).
    pub device_listen: SocketAddr,
    /// A terminal silent for this many heartbeat intervals is offline.
    pub missed_heartbeats: u32,
    /// Validity of newly issued terminal certificates, in days.
    pub device_cert_days: i64,
    /// IANA zone of the central unit: its working days and shifts.
    pub unit_time_zone: String,
    /// Days of visits generated ahead from the care plans.
    pub schedule_horizon_days: u32,
    /// Calls tried before a visit counts as missed.
    pub visit_max_tries: u32,
    /// Seconds between an unanswered call and the next try.
    pub visit_retry_secs: u64,
    /// A call ringing this many seconds without an answer counts as unanswered.
    pub visit_ring_secs: u64,
    /// Seconds the planner keeps free between two calls of a nurse (notes).
    pub call_turnaround_secs: u64,
    /// Service hours of the central unit's alarm queue ("HH:MM" in
    /// `unit_time_zone`); outside them alarms go to the patrol on duty.
    /// Equal start and end: the central unit never takes alarms.
    pub alarm_day_start: String,
    pub alarm_day_end: String,
    /// An alert nobody acknowledges in this many seconds escalates.
    pub alarm_ack_secs: u64,
    /// A press while the same terminal has an open alarm raised within this
    /// many seconds merges into it.
    pub alarm_merge_secs: u64,
    /// An acknowledged alert without progress this long is shown to the supervisors.
    pub alarm_stall_secs: u64,
    /// How often terminals' silence is checked against their supervision class.
    pub supervision_check_secs: u64,
    /// The assigned nurse's call may open the camera by itself this many
    /// seconds before or after the visit's window (with the client's consent).
    pub call_auto_answer_margin_secs: u64,
    /// UDP address of the video relay; shard n listens on port + n.
    pub relay_listen: SocketAddr,
    /// The address participants reach the relay at (behind NAT, the public
    /// one); unset, the relay's or else the HTTPS listener's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_public_ip: Option<std::net::IpAddr>,
    /// Relay threads; 0 means one per core, at most 8.
    pub relay_shards: usize,
    /// Runs the embedded TURN server (UDP) for networks that block UDP to the
    /// relay's ports; off when an external TURN server (coturn) is used.
    pub turn_enabled: bool,
    /// UDP address of the embedded TURN server (port 0: any free port, for tests).
    pub turn_listen: SocketAddr,
    /// File holding the TURN shared secret (coturn's `static-auth-secret`);
    /// unset, one is generated once and kept in `DATA_DIR/turn.secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_secret_file: Option<PathBuf>,
    /// TURN URLs handed to participants with their credentials; unset, the
    /// embedded server's `turn:<announced ip>:<port>?transport=udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_urls: Option<Vec<String>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            tls_cert: None,
            tls_key: None,
            log_format: LogFormat::Pretty,
            log_filter: "info".into(),
            session_ttl_secs: 12 * 3600,
            login_max_failures: 5,
            login_window_secs: 900,
            login_lockout_secs: 60,
            metrics_token: None,
            max_body_bytes: 1024 * 1024,
            device_listen: SocketAddr::from(([127, 0, 0, 1], 8444)),
            missed_heartbeats: 3,
            device_cert_days: 5 * 365,
            unit_time_zone: "Europe/Helsinki".into(),
            schedule_horizon_days: 14,
            visit_max_tries: 3,
            visit_retry_secs: 300,
            visit_ring_secs: 60,
            call_turnaround_secs: 120,
            alarm_day_start: "07:00".into(),
            alarm_day_end: "21:00".into(),
            alarm_ack_secs: 120,
            alarm_merge_secs: 300,
            alarm_stall_secs: 1800,
            supervision_check_secs: 10,
            call_auto_answer_margin_secs: 0,
            relay_listen: SocketAddr::from(([127, 0, 0, 1], 3480)),
            relay_public_ip: None,
            relay_shards: 0,
            turn_enabled: true,
            turn_listen: SocketAddr::from(([127, 0, 0, 1], 3478)),
            turn_secret_file: None,
            turn_urls: None,
        }
    }
}

/// Values given as command-line flags; only those that were given override.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_listen: Option<SocketAddr>,
}

impl Settings {
    /// Loads settings from an optional file, the process environment and flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Settings, SettingsError> {
        Self::load_from(file, overrides, Env::prefixed("ETAHOIVA_"), Env::raw())
    }

    fn load_from(
        file: Option<&Path>,
        overrides: &Overrides,
        prefixed: Env,
        raw: Env,
    ) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(raw.only(&["DATABASE_URL"]).map(|_| "database_url".into()))
            .merge(prefixed.only(SETTING_KEYS))
            .merge(Serialized::defaults(overrides));
        let settings: Settings = figment
            .extract()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(SettingsError::Invalid(
                "tls_cert and tls_key must be given together".into(),
            ));
        }
        if self.session_ttl_secs == 0 {
            return Err(SettingsError::Invalid(
                "session_ttl_secs must be at least 1".into(),
            ));
        }
        if self.missed_heartbeats == 0 {
            return Err(SettingsError::Invalid(
                "missed_heartbeats must be at least 1".into(),
            ));
        }
        if !(1..=3650).contains(&self.device_cert_days) {
            return Err(SettingsError::Invalid(
                "device_cert_days must be between 1 and 3650".into(),
            ));
        }
        if jiff::tz::TimeZone::get(&self.unit_time_zone).is_err() {
            return Err(SettingsError::Invalid(format!(
                "unit_time_zone {:?} is not a known IANA time zone",
                self.unit_time_zone
            )));
        }
        if !(1..=366).contains(&self.schedule_horizon_days) {
            return Err(SettingsError::Invalid(
                "schedule_horizon_days must be between 1 and 366".into(),
            ));
        }
        if !(1..=20).contains(&self.visit_max_tries) {
            return Err(SettingsError::Invalid(
                "visit_max_tries must be between 1 and 20".into(),
            ));
        }
        if self.visit_ring_secs == 0 || self.visit_retry_secs == 0 {
            return Err(SettingsError::Invalid(
                "visit_ring_secs and visit_retry_secs must be at least 1".into(),
            ));
        }
        for (name, value) in [
            ("alarm_day_start", &self.alarm_day_start),
            ("alarm_day_end", &self.alarm_day_end),
        ] {
            crate::alerts::routing::parse_time(value)
                .map_err(|e| SettingsError::Invalid(format!("{name}: {e}")))?;
        }
        if self.alarm_ack_secs == 0
            || self.alarm_stall_secs == 0
            || self.supervision_check_secs == 0
        {
            return Err(SettingsError::Invalid(
                "alarm_ack_secs, alarm_stall_secs and supervision_check_secs must be at least 1"
                    .into(),
            ));
        }
        if let Some(urls) = &self.turn_urls {
            if let Some(bad) = urls
                .iter()
                .find(|u| !(u.starts_with("turn:") || u.starts_with("turns:")))
            {
                return Err(SettingsError::Invalid(format!(
                    "turn_urls: {bad:?} is not a TURN URL (turn:host:port?transport=udp or turns:host:port?transport=tcp)"
                )));
            }
        }
        if self.max_body_bytes < 1024 {
            return Err(SettingsError::Invalid(
                "max_body_bytes must be at least 1024".into(),
            ));
        }
        Ok(())
    }

    /// The settings as TOML with secrets replaced by `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = shown.database_url.as_deref().map(redact_url);
        shown.metrics_token = shown.metrics_token.map(|_| "<redacted>".into());
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    }
}

/// Hides the password of a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:<redacted>{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults_where_set() {
        let parsed: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(EXAMPLE_CONFIG))
            .extract()
            .expect("example config must be valid");
        assert_eq!(parsed.listen, Settings::default().listen);
        assert_eq!(parsed.session_ttl_secs, 43200);
    }

    #[test]
    fn url_password_is_redacted() {
        assert_eq!(
            redact_url("postgres://hub:s3cret@db:5432/etahoiva"),
            "postgres://hub:<redacted>@db:5432/etahoiva"
        );
        assert_eq!(
            redact_url("postgres://hub@db/etahoiva"),
            "postgres://hub@db/etahoiva"
        );
        let s = Settings {
            database_url: Some("postgres://a:pw@h/d".into()),
            metrics_token: Some("tok".into()),
            ..Settings::default()
        };
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("pw@") && !dbg.contains("tok\""), "{dbg}");
        assert!(!s.redacted_toml().contains(":pw@"));
    }

    #[test]
    fn turn_urls_must_be_turn_urls() {
        let ok = Settings {
            turn_urls: Some(vec![
                "turns:turn.example.fi:443?transport=tcp".into(),
                "turn:turn.example.fi:3478?transport=udp".into(),
            ]),
            ..Settings::default()
        };
        assert!(ok.validate().is_ok());
        let bad = Settings {
            turn_urls: Some(vec!["https://turn.example.fi".into()]),
            ..Settings::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn mismatched_tls_pair_is_refused() {
        let s = Settings {
            tls_cert: Some("a.pem".into()),
            ..Settings::default()
        };
        assert!(s.validate().is_err());
    }
}
