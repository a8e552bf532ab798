//! `etahoiva-edge`: runs a home terminal from its provisioned profile.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use etahoiva_firmware_config::Profile;

#[derive(Parser)]
#[command(
    name = "etahoiva-edge",
    version,
    about = "Etahoiva home terminal: the link to the hub, the alarm outbox and the kiosk",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The profile written by `etahoiva devices provision`.
    #[arg(long, env = "ETAHOIVA_EDGE_PROFILE")]
    profile: Option<PathBuf>,
    /// Do not serve the kiosk page.
    #[arg(long)]
    no_kiosk: bool,
    /// Simulate the client and the camera: answer ringing calls after a
    /// moment and send a generated picture and tone.
    #[arg(long)]
    simulate: bool,
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check a profile and the files it names, without connecting.
    Validate { profile: PathBuf },
    /// Print the JSON Schema of terminal profiles.
    Schema,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ETAHOIVA_EDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Schema) => {
            let schema = etahoiva_firmware_config::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Some(Command::Validate { profile }) => validate(&profile),
        None => {
            let Some(profile) = cli.profile else {
                eprintln!("etahoiva-edge: give --profile PATH (see --help)");
                return ExitCode::from(2);
            };
            init_logging(cli.log_format);
            run(&profile, !cli.no_kiosk, cli.simulate)
        }
    }
}

fn validate(path: &std::path::Path) -> ExitCode {
    let profile = match Profile::load(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = etahoiva_edge::tls::client_config(
        &profile.hub.ca_cert,
        &profile.identity.cert,
        &profile.identity.key,
    ) {
        eprintln!("{}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!(
        "{}: valid profile for terminal {} ({}), hub {}",
        path.display(),
        profile.device.id,
        profile.device.name,
        profile.hub.url
    );
    ExitCode::SUCCESS
}

fn run(path: &std::path::Path, kiosk: bool, simulate: bool) -> ExitCode {
    let profile = match Profile::load(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let span = tracing::info_span!("terminal", device_id = %profile.device.id);
    runtime.block_on(tracing::Instrument::instrument(
        async move {
            let options = etahoiva_edge::agent::RunOptions { kiosk, simulate };
            let running = match etahoiva_edge::agent::start(profile, options).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("etahoiva-edge: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(addr) = running.kiosk_addr {
                println!("Kiosk on http://{addr}/");
            }
            println!("Terminal {} running", running.shared.device_id());
            wait_for_signal().await;
            tracing::info!("stopping");
            running.stop().await;
            ExitCode::SUCCESS
        },
        span,
    ))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
