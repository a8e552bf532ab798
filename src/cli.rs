//! The command line of `etahoiva`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::{LogFormat, Overrides};
use crate::store::Role;

#[derive(Parser, Debug)]
#[command(
    name = "etahoiva",
    version,
    about = "Etahoiva: remote home-care video and telecare hub"
)]
pub struct Cli {
    /// TOML configuration file (settings: defaults < file < ETAHOIVA_* env < flags).
    #[arg(long, global = true, env = "ETAHOIVA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database, certificates and other state [default: ./data].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Log output: pretty (for a terminal) or json.
    #[arg(long, global = true, value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the hub.
    Hub(ServeArgs),
    /// Run a demo hub with a seeded organisation on embedded SQLite (data in ./demo-data).
    Demo(DemoArgs),
    /// Measure the hub under load.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage staff accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage home terminals.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand, Debug)]
pub enum DevicesCommand {
    /// Register a terminal, issue its certificate and write its provisioning bundle.
    Provision {
        /// A name for the terminal, e.g. its location.
        #[arg(long)]
        name: String,
        /// The hub's terminal link as the terminal reaches it, e.g. wss://hub.example:8444/link.
        #[arg(long)]
        hub_url: String,
        /// Bind the terminal to this client.
        #[arg(long)]
        client: Option<String>,
        /// fi, sv or en [default: the client's language, else fi].
        #[arg(long)]
        language: Option<String>,
        /// CA certificate (PEM) of the hub's server certificate [default: DATA_DIR/tls/ca.pem].
        #[arg(long)]
        hub_ca: Option<PathBuf>,
        /// Directory to write the bundle into (must not hold a profile yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke a terminal: its certificate stops working, live links close within seconds.
    Revoke { id: String },
    /// List terminals.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address of the HTTPS listener [default: 127.0.0.1:8443].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain; without it a development CA is created in the data directory.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Address of the terminal link listener [default: 127.0.0.1:8444].
    #[arg(long)]
    pub device_listen: Option<SocketAddr>,
    /// UDP address of the video relay [default: 127.0.0.1:3480].
    #[arg(long)]
    pub relay_listen: Option<SocketAddr>,
    /// UDP address of the embedded TURN server [default: 127.0.0.1:3478].
    #[arg(long)]
    pub turn_listen: Option<SocketAddr>,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Simulated home terminals to start, each with its own identity.
    #[arg(long, default_value_t = 20)]
    pub terminals: usize,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Connect many simulated terminals to a hub on loopback and measure it.
    Link(crate::bench::LinkBenchArgs),
    /// Generate and assign a national-size visit schedule and measure it.
    Schedule(crate::bench::schedule::ScheduleBenchArgs),
    /// Send a burst of alarms from many connected terminals and measure delivery to the patrol.
    Alarms(crate::bench::alarms::AlarmBenchArgs),
    /// Run many concurrent video calls through the relay and measure it.
    Relay(crate::bench::relay::RelayBenchArgs),
    /// The relay process `bench relay` measures (a line protocol on stdin and stdout).
    #[command(hide = true)]
    RelayHub(crate::bench::relay::RelayHubArgs),
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create a staff account.
    Add {
        #[arg(long)]
        username: String,
        /// admin, nurse or patrol; repeat or separate with commas for several.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<Role>,
        #[arg(long)]
        display_name: Option<String>,
        /// fi, sv or en.
        #[arg(long)]
        language: Option<String>,
        /// Read the password from the first line of standard input; otherwise one is generated and printed.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List staff accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the documented example configuration file.
    Example,
    /// Print the effective configuration (secrets redacted).
    Show(ServeArgs),
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("unknown log format {other:?}; use pretty or json")),
    }
}

impl Cli {
    /// The flags that override settings.
    pub fn overrides(&self, serve: Option<&ServeArgs>) -> Overrides {
        Overrides {
            listen: serve.and_then(|s| s.listen),
            data_dir: self.data_dir.clone(),
            tls_cert: serve.and_then(|s| s.tls_cert.clone()),
            tls_key: serve.and_then(|s| s.tls_key.clone()),
            log_format: self.log_format,
            device_listen: serve.and_then(|s| s.device_listen),
            relay_listen: serve.and_then(|s| s.relay_listen),
            turn_listen: serve.and_then(|s| s.turn_listen),
        }
    }
}

/// Reads a password from the first line of standard input.
pub fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(password)
}
