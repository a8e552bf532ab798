use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use etahoiva::cli::{Cli, Command, ConfigCommand, UsersCommand};
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
        Command::Hub(serve) => {
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
            announce(&hub);
            print_demo(&hub, seeded);
            hub.run_until(shutdown_signal()).await
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

fn announce(hub: &Hub) {
    let addr = hub.local_addr();
    println!("Etahoiva hub listening on https://{addr}");
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

fn print_demo(hub: &Hub, seeded: bool) {
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
