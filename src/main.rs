use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use etahoiva::cli::{BenchCommand, Cli, Command, ConfigCommand, DevicesCommand, UsersCommand};
use etahoiva::settings::{Settings, EXAMPLE_CONFIG};
use etahoiva::startup::Hub;
use etahoiva::store::Store;
use etahoiva::{auth, demo, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Bench(BenchCommand::Link(args)) => {
            telemetry::init_logging(etahoiva::settings::LogFormat::Pretty, "warn");
            let report = etahoiva::bench::run_link(args.clone()).await?;
            if report.connected < report.terminals || report.still_connected < report.connected {
                anyhow::bail!(
                    "{} of {} terminals connected, {} stayed connected",
                    report.connected,
                    report.terminals,
                    report.still_connected
                );
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Schedule(args)) => {
            telemetry::init_logging(etahoiva::settings::LogFormat::Pretty, "warn");
            let report = etahoiva::bench::schedule::run(args.clone()).await?;
            if report.violations > 0 {
                anyhow::bail!("{} hard rules broken", report.violations);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Alarms(args)) => {
            telemetry::init_logging(etahoiva::settings::LogFormat::Pretty, "warn");
            let report = etahoiva::bench::alarms::run(args.clone()).await?;
            if !report.ok {
                anyhow::bail!(
                    "{} of {} alarms sent, {} delivered to the patrol, {} stored, {} duplicates, {} stray alerts",
                    report.sent,
                    report.alarms,
                    report.delivered,
                    report.stored,
                    report.duplicates,
                    report.stray_alerts
                );
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Relay(args)) => {
            telemetry::init_logging(etahoiva::settings::LogFormat::Pretty, "warn");
            let json = args.json;
            let report = etahoiva::bench::relay::run(args.clone()).await?;
            etahoiva::bench::relay::print(&report, json)?;
            if !report.ok {
                anyhow::bail!("{}", report.problems.join("; "));
            }
            Ok(())
        }
        Command::Bench(BenchCommand::RelayHub(args)) => {
            telemetry::init_logging(etahoiva::settings::LogFormat::Pretty, "warn");
            etahoiva::bench::relay::relay_hub(args.clone()).await
        }
        Command::Hub(serve) => {
            etahoiva::bench::raise_open_files_limit();
            let settings = Settings::load(cli.config.as_deref(), &cli.overrides(Some(serve)))?;
            telemetry::init_logging(settings.log_format, &settings.log_filter);
            let hub = Hub::build(settings).await?;
            announce(&hub);
            hub.run_until(shutdown_signal()).await
        }
        Command::Demo(args) => {
            let mut overrides = cli.overrides(Some(&args.serve));
            overrides
                .data_dir
                .get_or_insert_with(|| PathBuf::from("./demo-data"));
            let mut settings = Settings::load(cli.config.as_deref(), &overrides)?;
            // The demo always runs on embedded SQLite in its own directory.
            settings.database_url = None;
            telemetry::init_logging(settings.log_format, &settings.log_filter);
            let hub = Hub::build(settings).await?;
            let seeded = demo::seed(&hub.state().store).await?;
            demo::prepare_days(&hub.state().store, &hub.state().settings).await?;
            let terminals = demo::start_terminals(&hub, args.terminals).await?;
            announce(&hub);
            print_demo(&hub, seeded, &terminals);
            let (stop_hub, hub_stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(hub.run_until(async {
                let _ = hub_stopped.await;
            }));
            shutdown_signal().await;
            for terminal in terminals {
                terminal.stop().await;
            }
            let _ = stop_hub.send(());
            server.await?
        }
        Command::Users(command) => {
            let settings = Settings::load(cli.config.as_deref(), &cli.overrides(None))?;
            telemetry::init_logging(settings.log_format, "warn");
            let store = Store::open(settings.database_url.as_deref(), &settings.data_dir)
                .await
                .context("cannot open the store")?;
            let result = users(&store, command).await;
            store.close().await;
            result
        }
        Command::Devices(command) => {
            let settings = Settings::load(cli.config.as_deref(), &cli.overrides(None))?;
            telemetry::init_logging(settings.log_format, "warn");
            let store = Store::open(settings.database_url.as_deref(), &settings.data_dir)
                .await
                .context("cannot open the store")?;
            let result = devices(&store, &settings, command).await;
            store.close().await;
            result
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{EXAMPLE_CONFIG}");
            Ok(())
        }
        Command::Config(ConfigCommand::Show(serve)) => {
            let settings = Settings::load(cli.config.as_deref(), &cli.overrides(Some(serve)))?;
            print!("{}", settings.redacted_toml());
            Ok(())
        }
    }
}

async fn users(store: &Store, command: &UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add {
            username,
            roles,
            display_name,
            language,
            password_stdin,
        } => {
            let (password, generated) = if *password_stdin {
                (etahoiva::cli::read_password_line()?, false)
            } else {
                (auth::new_password(), true)
            };
            let new = etahoiva::api::users::new_user(
                username,
                display_name.as_deref(),
                roles.clone(),
                &password,
                language.as_deref(),
            )
            .map_err(anyhow::Error::msg)?;
            let user = store.create_user(new).await?;
            store
                .audit(Some("cli"), "users.create", Some(&user.id), None)
                .await?;
            let roles: Vec<_> = user.roles.iter().map(|r| r.as_str()).collect();
            println!(
                "created user {} ({}) with roles {}",
                user.username,
                user.id,
                roles.join(",")
            );
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
        UsersCommand::List { json } => {
            let users = store.list_users().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&users)?);
                return Ok(());
            }
            println!(
                "{:<20} {:<20} {:<30} {:<4} STATUS",
                "USERNAME", "ROLES", "NAME", "LANG"
            );
            for user in users {
                let roles: Vec<_> = user.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<20} {:<20} {:<30} {:<4} {}",
                    user.username,
                    roles.join(","),
                    user.display_name,
                    user.language.as_deref().unwrap_or("-"),
                    if user.disabled { "disabled" } else { "active" }
                );
            }
            Ok(())
        }
    }
}

async fn devices(
    store: &Store,
    settings: &Settings,
    command: &DevicesCommand,
) -> anyhow::Result<()> {
    use etahoiva::devices::{self, identity::DeviceCa, ProvisionRequest};
    match command {
        DevicesCommand::Provision {
            name,
            hub_url,
            client,
            language,
            hub_ca,
            out,
        } => {
            let language = match language.as_deref() {
                None => None,
                Some(code) => match etahoiva_firmware_config::Language::parse(code) {
                    Some(l) => Some(l),
                    None => anyhow::bail!("unknown language {code:?}; use fi, sv or en"),
                },
            };
            if hub_ca.is_none() && settings.tls_cert.is_none() {
                // The hub's development CA signs its server certificate: make sure it exists.
                etahoiva::tls::ensure_files(None, &settings.data_dir, settings.listen.ip())?;
            } else if hub_ca.is_none() {
                anyhow::bail!("the hub uses configured certificates: give --hub-ca with the CA that signed them");
            }
            let ca = DeviceCa::load_or_create(&settings.data_dir)?;
            let provisioned = devices::provision(
                store,
                &ca,
                ProvisionRequest {
                    name: name.clone(),
                    hub_url: hub_url.clone(),
                    client_id: client.clone(),
                    language,
                    hub_ca_pem: devices::hub_ca_pem(&settings.data_dir, hub_ca.as_deref())?,
                    out: out.clone(),
                    cert_days: settings.device_cert_days,
                },
            )
            .await?;
            println!("provisioned terminal {} ({name})", provisioned.device_id);
            println!("bundle: {}", provisioned.profile.display());
            println!(
                "run it with: etahoiva-edge --profile {}",
                provisioned.profile.display()
            );
            Ok(())
        }
        DevicesCommand::Revoke { id } => {
            if devices::revoke(store, None, id, "cli").await? {
                println!("revoked terminal {id}; a hub closes its link within seconds");
            } else {
                println!("terminal {id} was already revoked");
            }
            Ok(())
        }
        DevicesCommand::List { json } => {
            let records = store.list_devices().await?;
            if *json {
                let rows: Vec<_> = records
                    .iter()
                    .map(|d| serde_json::json!({
                        "id": d.id, "name": d.name, "client_id": d.client_id,
                        "last_seen": d.last_seen, "revoked": d.revoked_at.is_some(),
                        "config_version": d.applied_version, "desired_config_version": d.settings_version,
                    }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{:<36} {:<24} {:<8} LAST SEEN (ms since epoch)",
                "ID", "NAME", "STATUS"
            );
            for d in records {
                let status = if d.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let seen = d
                    .last_seen
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "never".into());
                println!("{:<36} {:<24} {:<8} {}", d.id, d.name, status, seen);
            }
            Ok(())
        }
    }
}

fn announce(hub: &Hub) {
    let addr = hub.local_addr();
    println!("Etahoiva hub listening on https://{addr}");
    println!(
        "Terminal link on wss://{}{}",
        hub.device_addr(),
        etahoiva_proto::LINK_PATH
    );
    if let Some(turn) = hub.turn_addr() {
        println!("TURN server on {turn} (UDP)");
    }
    let tls = hub.tls_files();
    if let Some(ca) = &tls.dev_ca {
        if tls.created {
            println!(
                "Created a development CA and server certificate in {}",
                ca.parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        println!(
            "Development CA certificate: {} (e.g. curl --cacert {} https://{addr}/healthz)",
            ca.display(),
            ca.display()
        );
    }
}

fn print_demo(hub: &Hub, seeded: bool, terminals: &[etahoiva_edge::agent::Running]) {
    let addr = hub.local_addr();
    let host = if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    println!();
    println!(
        "{}",
        if seeded {
            "Seeded the demo organisation."
        } else {
            "Reusing the demo organisation already in the data directory."
        }
    );
    println!("Consoles:");
    println!("  sign in   https://{host}/login");
    println!("  nurse     https://{host}/console/nurse");
    println!("  patrol    https://{host}/console/patrol");
    println!("  admin     https://{host}/console/admin");
    println!("  API       https://{host}/api/v1/openapi.json");
    println!(
        "Terminals: {} simulated home terminals on the terminal link (bundles in {})",
        terminals.len(),
        hub.state().settings.data_dir.join("terminals").display()
    );
    if let Some(addr) = terminals.iter().find_map(|t| t.kiosk_addr) {
        println!("  kiosk of the first terminal: http://{addr}/");
    }
    println!("Demo logins (password for all: {}):", demo::DEMO_PASSWORD);
    for login in demo::DEMO_LOGINS {
        let roles: Vec<_> = login.roles.iter().map(|r| r.as_str()).collect();
        println!(
            "  {:<8} {:<14} {}",
            login.username,
            roles.join(","),
            login.display_name
        );
    }
    println!("Press Ctrl-C to stop.");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
