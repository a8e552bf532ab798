//! Helpers shared by the black-box tests: real processes, random ports,
//! temporary directories, fresh databases.
#![allow(dead_code)]

pub mod alarm;
pub mod api;
pub mod browser;
pub mod calls;
pub mod edge;
pub mod feed;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const HUB_BIN: &str = env!("CARGO_BIN_EXE_etahoiva");

/// A running `etahoiva` process, killed on drop.
pub struct HubProcess {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub stdout: Vec<String>,
}

impl HubProcess {
    /// The terminal link address the hub printed, `wss://…/link`.
    pub fn link_url(&self) -> String {
        self.stdout
            .iter()
            .find_map(|l| l.strip_prefix("Terminal link on "))
            .expect("the hub prints its terminal link address")
            .to_string()
    }

    /// `host:port` of the embedded TURN server (UDP) the hub printed.
    pub fn turn_addr(&self) -> std::net::SocketAddr {
        self.stdout
            .iter()
            .find_map(|l| l.strip_prefix("TURN server on "))
            .and_then(|rest| rest.split(' ').next())
            .expect("the hub prints its TURN address")
            .parse()
            .expect("a socket address")
    }

    /// `host:port` of the terminal link listener.
    pub fn link_addr(&self) -> String {
        let url = self.link_url();
        url.trim_start_matches("wss://")
            .split('/')
            .next()
            .expect("address")
            .to_string()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HubProcess {
    pub fn client(&self) -> reqwest::Client {
        client_for(&self.data_dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the hub with SIGTERM and waits for it to exit.
    pub fn stop(mut self) {
        self.terminate(Duration::from_secs(10));
    }

    /// Sends SIGTERM, as a service manager would, and waits up to `limit`
    /// for the hub to exit; whether it did.
    pub fn terminate(&mut self, limit: Duration) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

/// An HTTPS client that trusts the hub's development CA in `data_dir`.
pub fn client_for(data_dir: &Path) -> reqwest::Client {
    let pem = std::fs::read(data_dir.join("tls/ca.pem")).expect("development CA exists");
    let ca = reqwest::Certificate::from_pem(&pem).expect("CA parses");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// Starts `etahoiva <args> --listen 127.0.0.1:0 --data-dir <dir>` and waits for its address.
pub fn spawn_hub_in(
    data_dir: &Path,
    subcommand: &str,
    extra_args: &[&str],
    env: &[(&str, &str)],
) -> HubProcess {
    let mut command = Command::new(HUB_BIN);
    command
        .arg(subcommand)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra_args)
        .args(if extra_args.contains(&"--device-listen") {
            &[][..]
        } else {
            &["--device-listen", "127.0.0.1:0"][..]
        })
        .args(if extra_args.contains(&"--relay-listen") {
            &[][..]
        } else {
            &["--relay-listen", "127.0.0.1:0"][..]
        })
        .args(if extra_args.contains(&"--turn-listen") {
            &[][..]
        } else {
            &["--turn-listen", "127.0.0.1:0"][..]
        })
        .env_remove("DATABASE_URL")
        .env("ETAHOIVA_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    launch(command, data_dir, Duration::from_secs(60))
        .unwrap_or_else(|lines| panic!("hub did not report its address; output so far: {lines:?}"))
}

/// Starts the hub `command` describes (its output is read here) and waits up
/// to `limit` for it to say where it listens. When it does not, it is
/// stopped and its output so far returned.
pub fn launch(
    mut command: Command,
    data_dir: &Path,
    limit: Duration,
) -> Result<HubProcess, Vec<String>> {
    // Hubs of parallel tests never share the default TURN port.
    if !command.get_envs().any(|(k, _)| k == "ETAHOIVA_TURN_LISTEN") {
        command.env("ETAHOIVA_TURN_LISTEN", "127.0.0.1:0");
    }
    let mut child = command.stdout(Stdio::piped()).spawn().expect("hub starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line
                    .strip_prefix("Etahoiva hub listening on ")
                    .map(str::to_string);
                lines.push(line);
                if let Some(base) = found {
                    // Keep reading the rest of the banner in the background.
                    let mut hub = HubProcess {
                        child,
                        base,
                        data_dir: data_dir.to_path_buf(),
                        stdout: lines,
                    };
                    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                        hub.stdout.push(line);
                    }
                    return Ok(hub);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(lines);
            }
        }
    }
}

/// Runs `etahoiva` to completion and returns (success, stdout, stderr).
pub fn run_cli(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> (bool, String, String) {
    use std::io::Write;
    let mut command = Command::new(HUB_BIN);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("ETAHOIVA_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("cli starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("cli finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Adds a user through the CLI.
pub fn add_user(data_dir: &Path, username: &str, roles: &str, password: &str) {
    let dir = data_dir.to_str().expect("utf-8 path");
    let (ok, out, err) = run_cli(
        &[
            "users",
            "add",
            "--data-dir",
            dir,
            "--username",
            username,
            "--role",
            roles,
            "--password-stdin",
        ],
        Some(&format!("{password}\n")),
        &[],
    );
    assert!(ok, "users add failed: {out} {err}");
}

/// Signs in through the API and returns the bearer token.
pub async fn login(
    client: &reqwest::Client,
    hub: &HubProcess,
    username: &str,
    password: &str,
) -> String {
    let response = client
        .post(hub.url("/api/v1/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login request");
    assert_eq!(response.status(), 200, "login of {username} failed");
    let body: serde_json::Value = response.json().await.expect("json");
    body["token"].as_str().expect("token").to_string()
}

/// PostgreSQL admin URL for tests, or None (after saying the tests are skipped).
/// In CI (`CI=true`) a missing PostgreSQL is a failure, not a skip.
pub fn postgres_admin_url(test: &str) -> Option<String> {
    match std::env::var("ETAHOIVA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: ETAHOIVA_TEST_POSTGRES_URL is not set in CI; PostgreSQL tests must run");
            }
            // Written past the test harness's capture so the skip shows in every run.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: PostgreSQL not configured; set ETAHOIVA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres to run it"
            );
            None
        }
    }
}

/// A database created for one test and dropped afterwards.
pub struct TempPgDatabase {
    pub admin_url: String,
    pub name: String,
    pub url: String,
}

impl TempPgDatabase {
    pub async fn create(admin_url: &str) -> TempPgDatabase {
        use sqlx::Connection;
        let name = format!("etahoiva_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("PostgreSQL reachable at ETAHOIVA_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url);
        let url = format!("{base}/{name}");
        TempPgDatabase {
            admin_url: admin_url.to_string(),
            name,
            url,
        }
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
            let _ = admin.close().await;
        }
    }
}
