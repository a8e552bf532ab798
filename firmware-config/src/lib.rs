//! Terminal configuration shared by the hub and the home terminal: the
//! profile a terminal runs from, its remotely managed settings, validation
//! with errors that name the field and the fix, the JSON Schema of both, and
//! the provisioning bundle the hub writes for a new terminal.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Shortest and longest heartbeat interval a terminal may use, in seconds.
pub const HEARTBEAT_RANGE: std::ops::RangeInclusive<u64> = 5..=3600;
/// Default heartbeat interval, in seconds.
pub const DEFAULT_HEARTBEAT_SECS: u64 = 30;

/// Everything a terminal needs to run: who it is, where its hub is, and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub device: DeviceSection,
    pub hub: HubSection,
    pub identity: IdentitySection,
    /// Directory for the outbox and the applied settings; relative paths are
    /// taken from the profile's directory.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Settings the hub may change remotely.
    #[serde(default)]
    pub settings: TerminalSettings,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}

/// The terminal's identity as registered at the hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceSection {
    /// Device id issued by the hub (`t-` and 32 hex digits).
    pub id: String,
    /// Human name of the terminal, e.g. "Aino Virtanen, living room".
    pub name: String,
}

/// How to reach the hub and how to recognise it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSection {
    /// The hub's terminal link, `wss://host:port/link`.
    pub url: String,
    /// PEM file of the CA that signed the hub's certificate. Only a hub
    /// with a certificate from this CA is accepted.
    pub ca_cert: PathBuf,
}

/// The terminal's client certificate and key (PEM files).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The settings an administrator manages from the hub. The hub assigns
/// `version`; a terminal reports the version it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TerminalSettings {
    /// Settings version assigned by the hub; 0 for the provisioned settings.
    pub version: u64,
    /// The client living with the terminal.
    pub client: ClientBinding,
    /// Language of the kiosk and voice prompts.
    pub language: Language,
    /// Seconds between heartbeats (5 to 3600).
    pub heartbeat_secs: u64,
    pub auto_answer: AutoAnswer,
    /// Alarm sources wired to the terminal.
    pub alarm_inputs: Vec<AlarmInput>,
    pub kiosk: KioskSettings,
}

impl Default for TerminalSettings {
    fn default() -> Self {
        TerminalSettings {
            version: 0,
            client: ClientBinding::default(),
            language: Language::Fi,
            heartbeat_secs: DEFAULT_HEARTBEAT_SECS,
            auto_answer: AutoAnswer::default(),
            alarm_inputs: Vec::new(),
            kiosk: KioskSettings::default(),
        }
    }
}

/// The client the terminal serves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBinding {
    /// Client id at the hub; empty while the terminal is not yet placed in a home.
    #[serde(default)]
    pub id: Option<String>,
    /// Name shown on the kiosk.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Fi,
    Sv,
    En,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Fi => "fi",
            Language::Sv => "sv",
            Language::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Language> {
        match code {
            "fi" => Some(Language::Fi),
            "sv" => Some(Language::Sv),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

/// Whether the terminal answers nurses' calls by itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AutoAnswer {
    pub enabled: bool,
    /// Seconds the client sees the incoming call before the camera opens (3 to 120).
    pub countdown_secs: u32,
    /// Auto-answer only calls of a scheduled visit, never ad-hoc calls.
    pub scheduled_visits_only: bool,
}

impl Default for AutoAnswer {
    fn default() -> Self {
        AutoAnswer {
            enabled: false,
            countdown_secs: 10,
            scheduled_visits_only: true,
        }
    }
}

/// One alarm source: a wristband receiver, a door or fall sensor, the help button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmInput {
    /// Short name shown to nurses, e.g. "front door".
    pub name: String,
    pub kind: AlarmKind,
    pub source: InputSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    HelpButton,
    Wristband,
    Sensor,
}

/// Where alarm signals come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputSource {
    /// A local Unix socket; each line written to it is one alarm.
    Socket { path: PathBuf },
    /// An MQTT topic on a broker in the home (`mqtt://host:port`).
    Mqtt { broker: String, topic: String },
    /// Generated alarms for demonstrations and load tests.
    Simulated { every_secs: u64 },
}

/// The kiosk page the terminal's own browser shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KioskSettings {
    pub enabled: bool,
    /// Loopback address the kiosk page is served on.
    pub listen: String,
    /// Text size relative to the normal large type (1.0 to 3.0).
    pub font_scale: f32,
    pub high_contrast: bool,
}

impl Default for KioskSettings {
    fn default() -> Self {
        KioskSettings {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
            font_scale: 1.5,
            high_contrast: false,
        }
    }
}

/// One problem in a configuration: where, what, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `settings.heartbeat_secs`.
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.field, self.problem, self.fix)
    }
}

/// All problems found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid profile: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path} has problems:\n{errors}")]
    Invalid {
        path: PathBuf,
        errors: ValidationErrors,
    },
    #[error("settings are not valid: {0}")]
    Settings(String),
}

struct Collector(Vec<FieldError>);

impl Collector {
    fn push(
        &mut self,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(FieldError {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

fn is_loopback_listen(listen: &str) -> bool {
    listen
        .parse::<SocketAddr>()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false)
}

impl TerminalSettings {
    /// Reads settings sent as JSON (an API body or a pushed config), with
    /// the same checks as a profile file.
    pub fn from_json(value: &serde_json::Value) -> Result<TerminalSettings, ConfigError> {
        let settings: TerminalSettings = serde_json::from_value(value.clone())
            .map_err(|e| ConfigError::Settings(e.to_string()))?;
        settings
            .validate()
            .map_err(|e| ConfigError::Settings(format!("\n{e}")))?;
        Ok(settings)
    }

    /// Checks every field; all problems are reported at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut c = Collector(Vec::new());
        self.check("settings", &mut c);
        c.finish()
    }

    fn check(&self, at: &str, c: &mut Collector) {
        if !HEARTBEAT_RANGE.contains(&self.heartbeat_secs) {
            c.push(
                format!("{at}.heartbeat_secs"),
                format!("{} is out of range", self.heartbeat_secs),
                format!(
                    "use {} to {} seconds (default {DEFAULT_HEARTBEAT_SECS})",
                    HEARTBEAT_RANGE.start(),
                    HEARTBEAT_RANGE.end()
                ),
            );
        }
        if let Some(id) = &self.client.id {
            if id.trim().is_empty() || id.len() > 64 {
                c.push(
                    format!("{at}.client.id"),
                    "must be a client id from the hub",
                    "remove it, or copy the id from the client list",
                );
            }
        }
        if let Some(name) = &self.client.name {
            if name.trim().is_empty() || name.chars().count() > 100 {
                c.push(
                    format!("{at}.client.name"),
                    "must be 1 to 100 characters",
                    "remove it or give the client's name",
                );
            }
        }
        let aa = &self.auto_answer;
        if !(3..=120).contains(&aa.countdown_secs) {
            c.push(
                format!("{at}.auto_answer.countdown_secs"),
                format!("{} is out of range", aa.countdown_secs),
                "use 3 to 120 seconds so the client always sees who is calling",
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, input) in self.alarm_inputs.iter().enumerate() {
            let field = format!("{at}.alarm_inputs[{i}]");
            if input.name.trim().is_empty() || input.name.chars().count() > 60 {
                c.push(
                    format!("{field}.name"),
                    "must be 1 to 60 characters",
                    "name the input, e.g. \"front door\"",
                );
            } else if !names.insert(input.name.trim().to_lowercase()) {
                c.push(
                    format!("{field}.name"),
                    format!("{:?} is used by another input", input.name),
                    "give every alarm input its own name",
                );
            }
            match &input.source {
                InputSource::Socket { path } => {
                    if !path.is_absolute() {
                        c.push(
                            format!("{field}.source.path"),
                            "must be an absolute path",
                            "use e.g. /run/etahoiva/help.sock",
                        );
                    }
                }
                InputSource::Mqtt { broker, topic } => {
                    let host = broker.strip_prefix("mqtt://");
                    if host.is_none_or(|h| h.is_empty() || h.contains('/')) {
                        c.push(
                            format!("{field}.source.broker"),
                            format!("{broker:?} is not an MQTT broker address"),
                            "use mqtt://host:port, e.g. mqtt://127.0.0.1:1883",
                        );
                    }
                    if topic.is_empty() || topic.contains(['+', '#']) {
                        c.push(
                            format!("{field}.source.topic"),
                            "must be one concrete topic",
                            "give the topic without wildcards, e.g. home/door",
                        );
                    }
                }
                InputSource::Simulated { every_secs } => {
                    if *every_secs == 0 {
                        c.push(
                            format!("{field}.source.every_secs"),
                            "must be at least 1",
                            "give the seconds between simulated alarms",
                        );
                    }
                }
            }
        }
        let k = &self.kiosk;
        if !is_loopback_listen(&k.listen) {
            c.push(
                format!("{at}.kiosk.listen"),
                format!("{:?} is not a loopback address and port", k.listen),
                "the kiosk is for the terminal's own screen: use 127.0.0.1:PORT or [::1]:PORT",
            );
        }
        if !(1.0..=3.0).contains(&k.font_scale) {
            c.push(
                format!("{at}.kiosk.font_scale"),
                format!("{} is out of range", k.font_scale),
                "use 1.0 to 3.0",
            );
        }
    }
}

impl Profile {
    /// Reads and validates a profile file; relative paths in it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Profile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut profile: Profile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        profile.validate().map_err(|errors| ConfigError::Invalid {
            path: path.to_path_buf(),
            errors,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        profile.resolve_paths(base);
        let mut c = Collector(Vec::new());
        for (field, file) in [
            ("hub.ca_cert", &profile.hub.ca_cert),
            ("identity.cert", &profile.identity.cert),
            ("identity.key", &profile.identity.key),
        ] {
            if !file.is_file() {
                c.push(
                    field,
                    format!("{} does not exist", file.display()),
                    "point it at the file from the provisioning bundle",
                );
            }
        }
        c.finish().map_err(|errors| ConfigError::Invalid {
            path: path.to_path_buf(),
            errors,
        })?;
        Ok(profile)
    }

    /// Makes relative paths absolute against `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.hub.ca_cert,
            &mut self.identity.cert,
            &mut self.identity.key,
            &mut self.state_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks every field without touching the files it names.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut c = Collector(Vec::new());
        let id = &self.device.id;
        let id_ok = id.len() == 34
            && id.starts_with("t-")
            && id[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !id_ok {
            c.push(
                "device.id",
                format!("{id:?} is not a device id issued by a hub"),
                "use the id from `etahoiva devices provision` (t- and 32 hex digits)",
            );
        }
        if self.device.name.trim().is_empty() || self.device.name.chars().count() > 100 {
            c.push(
                "device.name",
                "must be 1 to 100 characters",
                "name the terminal, e.g. the client and the room",
            );
        }
        let url = &self.hub.url;
        let ok_url = url
            .strip_prefix("wss://")
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if !ok_url {
            c.push(
                "hub.url",
                format!("{url:?} is not a secure WebSocket address"),
                "use wss://HOST:PORT/link as printed by the hub at start",
            );
        }
        for (field, p) in [
            ("hub.ca_cert", &self.hub.ca_cert),
            ("identity.cert", &self.identity.cert),
            ("identity.key", &self.identity.key),
            ("state_dir", &self.state_dir),
        ] {
            if p.as_os_str().is_empty() {
                c.push(field, "is empty", "give a file path");
            }
        }
        self.settings.check("settings", &mut c);
        c.finish()
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// The JSON Schema of a profile (with the settings in it).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Profile);
    serde_json::to_value(schema).unwrap_or_default()
}

/// What the hub writes for a newly provisioned terminal.
pub struct Bundle<'a> {
    pub profile: &'a Profile,
    pub device_cert_pem: &'a str,
    pub device_key_pem: &'a str,
    pub hub_ca_pem: &'a str,
}

/// Writes a bundle into `dir` (created if missing; an existing profile is
/// never overwritten). Returns the path of the profile.
pub fn write_bundle(dir: &Path, bundle: &Bundle<'_>) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let profile_path = dir.join("profile.toml");
    if profile_path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", profile_path.display()),
        ));
    }
    let mut profile = bundle.profile.clone();
    profile.hub.ca_cert = PathBuf::from("hub-ca.pem");
    profile.identity.cert = PathBuf::from("device.pem");
    profile.identity.key = PathBuf::from("device-key.pem");
    profile.state_dir = PathBuf::from("state");
    write_file(
        &dir.join("device.pem"),
        bundle.device_cert_pem.as_bytes(),
        0o644,
    )?;
    write_file(
        &dir.join("device-key.pem"),
        bundle.device_key_pem.as_bytes(),
        0o600,
    )?;
    write_file(&dir.join("hub-ca.pem"), bundle.hub_ca_pem.as_bytes(), 0o644)?;
    let text = format!(
        "# Etahoiva terminal profile for {}.\n# Run: etahoiva-edge --profile {}\n{}",
        profile.device.name,
        profile_path.display(),
        profile.to_toml()
    );
    write_file(&profile_path, text.as_bytes(), 0o644)?;
    Ok(profile_path)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            device: DeviceSection {
                id: "t-0123456789abcdef0123456789abcdef".into(),
                name: "Aino Virtanen, olohuone".into(),
            },
            hub: HubSection {
                url: "wss://hub.example:8444/link".into(),
                ca_cert: "hub-ca.pem".into(),
            },
            identity: IdentitySection {
                cert: "device.pem".into(),
                key: "device-key.pem".into(),
            },
            state_dir: "state".into(),
            settings: TerminalSettings::default(),
        }
    }

    fn fields(e: ValidationErrors) -> Vec<String> {
        e.0.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_good_profile_passes_and_round_trips_through_toml() {
        let p = profile();
        p.validate().expect("valid");
        let back: Profile = toml::from_str(&p.to_toml()).expect("parses");
        assert_eq!(back, p);
    }

    #[test]
    fn every_bad_field_is_named_with_a_fix() {
        let mut p = profile();
        p.device.id = "terminal-1".into();
        p.hub.url = "http://hub.example/link".into();
        p.settings.heartbeat_secs = 1;
        p.settings.kiosk.listen = "0.0.0.0:8080".into();
        p.settings.kiosk.font_scale = 9.0;
        p.settings.auto_answer.countdown_secs = 0;
        p.settings.alarm_inputs = vec![
            AlarmInput {
                name: "door".into(),
                kind: AlarmKind::Sensor,
                source: InputSource::Socket {
                    path: "relative.sock".into(),
                },
            },
            AlarmInput {
                name: "Door".into(),
                kind: AlarmKind::Sensor,
                source: InputSource::Mqtt {
                    broker: "tcp://x".into(),
                    topic: "home/#".into(),
                },
            },
        ];
        let errors = p.validate().expect_err("invalid");
        assert!(errors.0.iter().all(|e| !e.fix.is_empty()));
        assert_eq!(
            fields(errors),
            vec![
                "device.id",
                "hub.url",
                "settings.heartbeat_secs",
                "settings.auto_answer.countdown_secs",
                "settings.alarm_inputs[0].source.path",
                "settings.alarm_inputs[1].name",
                "settings.alarm_inputs[1].source.broker",
                "settings.alarm_inputs[1].source.topic",
                "settings.kiosk.listen",
                "settings.kiosk.font_scale",
            ]
        );
    }

    #[test]
    fn settings_from_json_rejects_unknown_fields_and_bad_values() {
        let ok = TerminalSettings::from_json(
            &serde_json::json!({"heartbeat_secs": 60, "language": "sv"}),
        )
        .expect("valid");
        assert_eq!((ok.heartbeat_secs, ok.language), (60, Language::Sv));
        assert_eq!(ok.kiosk, KioskSettings::default());
        let unknown = TerminalSettings::from_json(&serde_json::json!({"heartbeat": 60}));
        assert!(unknown
            .expect_err("unknown")
            .to_string()
            .contains("heartbeat"));
        let range = TerminalSettings::from_json(&serde_json::json!({"heartbeat_secs": 4}));
        assert!(range
            .expect_err("range")
            .to_string()
            .contains("settings.heartbeat_secs"));
        assert!(TerminalSettings::from_json(&serde_json::json!({"language": "de"})).is_err());
    }

    #[test]
    fn load_resolves_paths_and_names_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, profile().to_toml()).expect("write");
        let err = Profile::load(&path).expect_err("files missing");
        let text = err.to_string();
        assert!(
            text.contains("hub.ca_cert") && text.contains("identity.key"),
            "{text}"
        );
        for f in ["hub-ca.pem", "device.pem", "device-key.pem"] {
            std::fs::write(dir.path().join(f), "pem").expect("write");
        }
        let loaded = Profile::load(&path).expect("loads");
        assert_eq!(loaded.state_dir, dir.path().join("state"));
        assert_eq!(loaded.identity.key, dir.path().join("device-key.pem"));
    }

    #[test]
    fn load_reports_syntax_errors_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, "[device\nid = 1").expect("write");
        let err = Profile::load(&path).expect_err("bad toml");
        assert!(matches!(err, ConfigError::Parse { .. }));
        assert!(err.to_string().contains("profile.toml"));
    }

    #[test]
    fn bundles_are_written_once_with_a_private_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("bundle");
        let p = profile();
        let bundle = Bundle {
            profile: &p,
            device_cert_pem: "CERT",
            device_key_pem: "KEY",
            hub_ca_pem: "CA",
        };
        let written = write_bundle(&out, &bundle).expect("written");
        let loaded = Profile::load(&written).expect("loads");
        assert_eq!(loaded.device, p.device);
        assert_eq!(
            std::fs::read_to_string(out.join("device-key.pem")).expect("read"),
            "KEY"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out.join("device-key.pem"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key must not be readable by others");
        }
        let again = write_bundle(&out, &bundle).expect_err("no overwrite");
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn the_committed_schema_matches_the_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/profile.schema.json");
        let generated = json_schema();
        if std::env::var_os("ETAHOIVA_BLESS").is_some() {
            let text = serde_json::to_string_pretty(&generated).expect("json") + "\n";
            std::fs::write(&path, text).expect("write schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let committed: serde_json::Value = serde_json::from_str(&committed).unwrap_or_default();
        assert_eq!(
            committed, generated,
            "the schema is stale: run `ETAHOIVA_BLESS=1 cargo test -p etahoiva-firmware-config`"
        );
    }

    #[test]
    fn example_profiles_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("profiles dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).expect("read");
                let p: Profile =
                    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                p.validate()
                    .unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 2, "expected example profiles in {}", dir.display());
    }
}
