//! Benchmarks users can run for capacity planning.
//!
//! `etahoiva bench link`: connects many simulated terminals to one hub on
//! loopback over the real terminal link, and measures connect time, the
//! hub's memory per connected terminal and its CPU at the heartbeat rate.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::devices::identity::DeviceCa;
use crate::store::{NewDevice, Store};

pub mod alarms;
pub mod relay;
pub mod schedule;
use etahoiva_proto::{decode, encode, EdgeToHub, HubToEdge, PROTOCOL_VERSION};

/// What `etahoiva bench link` was asked to do.
#[derive(Clone, Debug, clap::Args)]
pub struct LinkBenchArgs {
    /// Simulated terminals to connect.
    #[arg(long, default_value_t = 10_000)]
    pub terminals: usize,
    /// Heartbeat interval of every terminal, in seconds.
    #[arg(long, default_value_t = 30)]
    pub heartbeat_secs: u64,
    /// How long to measure the hub's CPU once everyone is connected, in seconds.
    #[arg(long, default_value_t = 90)]
    pub measure_secs: u64,
    /// Terminals connecting at the same time.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Keep the benchmark's data directory here instead of a temporary one.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// The figures a run produced.
#[derive(Debug, serde::Serialize)]
pub struct LinkBenchReport {
    pub terminals: usize,
    pub connected: usize,
    pub failed: usize,
    pub connect_total_secs: f64,
    pub connect_p50_ms: f64,
    pub connect_p99_ms: f64,
    pub hub_rss_before_mb: f64,
    pub hub_rss_connected_mb: f64,
    pub hub_rss_peak_mb: f64,
    pub hub_kb_per_terminal: f64,
    pub hub_cpu_percent: f64,
    pub measure_secs: u64,
    pub heartbeat_secs: u64,
    pub heartbeats_sent: u64,
    pub still_connected: usize,
}

/// A simulated terminal's identity: its id and a TLS client configuration
/// holding its certificate.
pub(crate) struct Identity {
    pub(crate) device_id: String,
    config: Arc<rustls::ClientConfig>,
}

/// Lets this process hold as many sockets as the system allows.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

pub(crate) fn proc_field_kb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// User plus system CPU time of a process, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks.max(1.0))
}

pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:<22} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

pub(crate) fn client_config(
    roots: &rustls::RootCertStore,
    cert_pem: &str,
    key_pem: &str,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let chain: Vec<_> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The development CA of the hub in `data_dir` (created if missing), as
/// trust roots for clients of its listeners.
pub(crate) fn hub_roots(data_dir: &Path) -> anyhow::Result<rustls::RootCertStore> {
    crate::tls::ensure_files(None, data_dir, std::net::Ipv4Addr::LOCALHOST.into())?;
    let mut roots = rustls::RootCertStore::empty();
    let hub_ca = std::fs::read_to_string(data_dir.join("tls/ca.pem"))?;
    for cert in CertificateDer::pem_slice_iter(hub_ca.as_bytes()) {
        roots.add(cert?)?;
    }
    Ok(roots)
}

/// Registers `count` terminals in the store and issues their certificates.
/// Terminal `i` is bound to client `clients[i]` when there is one.
pub(crate) async fn provision(
    data_dir: &Path,
    database_url: Option<&str>,
    count: usize,
    heartbeat_secs: u64,
    clients: &[String],
) -> anyhow::Result<Vec<Identity>> {
    let roots = hub_roots(data_dir)?;
    let store = Store::open(database_url, data_dir).await?;
    let ca = DeviceCa::load_or_create(data_dir)?;
    let settings = serde_json::json!({ "heartbeat_secs": heartbeat_secs }).to_string();
    let progress = bar(count as u64, "provisioning");
    let mut identities = Vec::with_capacity(count);
    for i in 0..count {
        let device_id = format!("t-{}", uuid::Uuid::new_v4().simple());
        let issued = ca.issue_for_days(&device_id, 30)?;
        store
            .create_device(&NewDevice {
                id: device_id.clone(),
                name: format!("bench terminal {}", i + 1),
                client_id: clients.get(i).cloned(),
                cert_fingerprint: issued.fingerprint.clone(),
                cert_not_after: issued.not_after_ms,
                settings_json: settings.clone(),
            })
            .await?;
        identities.push(Identity {
            device_id,
            config: client_config(&roots, &issued.cert_pem, &issued.key_pem)?,
        });
        progress.inc(1);
    }
    progress.finish();
    store.close().await;
    Ok(identities)
}

/// The hub under test, as its own process.
pub(crate) struct HubChild {
    pub(crate) child: tokio::process::Child,
    pub(crate) pid: u32,
    /// `host:port` of the HTTPS listener (API and consoles).
    pub(crate) api_addr: String,
    /// `host:port` of the terminal link.
    pub(crate) link_addr: String,
}

/// How to run the hub under test beyond the defaults.
#[derive(Default)]
pub(crate) struct HubOptions {
    /// PostgreSQL instead of SQLite in the data directory.
    pub(crate) database_url: Option<String>,
    /// More `ETAHOIVA_*` settings.
    pub(crate) env: Vec<(&'static str, String)>,
    /// Write the hub's log here instead of this process's standard error.
    pub(crate) log_file: Option<PathBuf>,
}

async fn start_hub(data_dir: &Path) -> anyhow::Result<HubChild> {
    start_hub_with(data_dir, &HubOptions::default()).await
}

pub(crate) async fn start_hub_with(
    data_dir: &Path,
    options: &HubOptions,
) -> anyhow::Result<HubChild> {
    let exe = std::env::current_exe().context("cannot find the etahoiva binary")?;
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("hub")
        .args([
            "--listen",
            "127.0.0.1:0",
            "--device-listen",
            "127.0.0.1:0",
            "--relay-listen",
            "127.0.0.1:0",
            "--turn-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("ETAHOIVA_LOG", "warn")
        .envs(options.env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(url) = &options.database_url {
        command.env("DATABASE_URL", url);
    }
    if let Some(path) = &options.log_file {
        command.stderr(std::fs::File::create(path).context("cannot create the hub's log")?);
    }
    let mut child = command.spawn().context("cannot start the hub")?;
    let pid = child.id().context("the hub exited at once")?;
    let stdout = child.stdout.take().context("no hub output")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut api_addr = String::new();
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .context("the hub did not start in 60 s")??
            .context("the hub exited before listening")?;
        if let Some(url) = line.strip_prefix("Etahoiva hub listening on https://") {
            api_addr = url.trim().to_string();
        }
        if let Some(url) = line.strip_prefix("Terminal link on wss://") {
            let link_addr = url.split('/').next().unwrap_or_default().to_string();
            // Keep draining the hub's output so it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(HubChild {
                child,
                pid,
                api_addr,
                link_addr,
            });
        }
    }
}

pub(crate) type Link =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect_one(
    addr: &str,
    identity: &Identity,
    heartbeat_secs: u64,
) -> anyhow::Result<Link> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let tls = tokio_rustls::TlsConnector::from(identity.config.clone())
        .connect(ServerName::try_from(host.to_string())?, tcp)
        .await?;
    let request = format!("wss://{addr}{}", etahoiva_proto::LINK_PATH).into_client_request()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut link, _) =
        tokio_tungstenite::client_async_with_config(request, tls, Some(config)).await?;
    let hello = EdgeToHub::Hello {
        protocol: PROTOCOL_VERSION,
        device_id: identity.device_id.clone(),
        agent_version: format!("bench-{}", env!("CARGO_PKG_VERSION")),
        config_version: 0,
        heartbeat_secs: Some(heartbeat_secs),
    };
    link.send(Message::Text(encode(&hello).into())).await?;
    match tokio::time::timeout(Duration::from_secs(30), link.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => match decode::<HubToEdge>(text.as_str()) {
            Ok(HubToEdge::Welcome { .. }) => Ok(link),
            other => bail!("expected a welcome, got {other:?}"),
        },
        other => bail!("no welcome: {other:?}"),
    }
}

/// A terminal's heartbeat clock, at a random phase: real terminals are
/// spread over the interval.
pub(crate) fn heartbeat_ticker(heartbeat_secs: u64) -> tokio::time::Interval {
    let period = Duration::from_secs(heartbeat_secs.max(1));
    let offset = Duration::from_millis(rand::random::<u64>() % period.as_millis().max(1) as u64);
    tokio::time::interval_at(tokio::time::Instant::now() + offset, period)
}

/// Keeps one terminal heartbeating until `stop`; true if it stayed connected.
pub(crate) async fn keep_alive(
    mut link: Link,
    heartbeat_secs: u64,
    sent: Arc<std::sync::atomic::AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> bool {
    let mut tick = heartbeat_ticker(heartbeat_secs);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = link.close(None).await;
                return true;
            }
            _ = tick.tick() => {
                seq += 1;
                if link.send(Message::Text(encode(&EdgeToHub::Heartbeat { seq }).into())).await.is_err() {
                    return false;
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            frame = link.next() => match frame {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return false,
                Some(Ok(_)) => {}
            }
        }
    }
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// What connecting the terminals came to.
pub(crate) struct Connected {
    /// Connect time of each terminal that connected, in ms.
    pub(crate) latencies_ms: Vec<f64>,
    pub(crate) failures: Vec<String>,
    pub(crate) total: Duration,
}

/// Connects every terminal, `concurrency` at a time, and hands each link
/// with its terminal's index to `on_link` as soon as it is up (so it can
/// start heartbeating while the others connect).
pub(crate) async fn connect_all(
    identities: Vec<Identity>,
    link_addr: &str,
    heartbeat_secs: u64,
    concurrency: usize,
    mut on_link: impl FnMut(usize, Link),
) -> Connected {
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let progress = bar(identities.len() as u64, "connecting");
    let started = Instant::now();
    let mut connecting = tokio::task::JoinSet::new();
    for (index, identity) in identities.into_iter().enumerate() {
        let gate = gate.clone();
        let addr = link_addr.to_string();
        let progress = progress.clone();
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let begun = Instant::now();
            let result = connect_one(&addr, &identity, heartbeat_secs).await;
            progress.inc(1);
            result.map(|link| (index, link, begun.elapsed()))
        });
    }
    let mut latencies_ms = Vec::with_capacity(connecting.len());
    let mut failures = Vec::new();
    while let Some(joined) = connecting.join_next().await {
        match joined {
            Ok(Ok((index, link, took))) => {
                latencies_ms.push(took.as_secs_f64() * 1000.0);
                on_link(index, link);
            }
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let total = started.elapsed();
    progress.finish();
    if let Some(first) = failures.first() {
        eprintln!(
            "{} terminals failed to connect; first error: {first}",
            failures.len()
        );
    }
    Connected {
        latencies_ms,
        failures,
        total,
    }
}

/// Runs the benchmark and prints a summary table.
pub async fn run_link(args: LinkBenchArgs) -> anyhow::Result<LinkBenchReport> {
    let open_files = raise_open_files_limit();
    if (open_files as usize) < args.terminals + 256 {
        bail!(
            "this process may open only {open_files} files; {} terminals need more (raise `ulimit -n`)",
            args.terminals
        );
    }
    let temp;
    let data_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile_dir()?;
            temp.path().to_path_buf()
        }
    };
    let identities = provision(&data_dir, None, args.terminals, args.heartbeat_secs, &[]).await?;
    let mut hub = start_hub(&data_dir).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = proc_field_kb(hub.pid, "VmRSS:").unwrap_or(0.0);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut alive = tokio::task::JoinSet::new();
    let connecting = connect_all(
        identities,
        &hub.link_addr,
        args.heartbeat_secs,
        args.concurrency,
        |_, link| {
            alive.spawn(keep_alive(
                link,
                args.heartbeat_secs,
                sent.clone(),
                stop_rx.clone(),
            ));
        },
    )
    .await;
    let connect_total = connecting.total;
    let mut latencies = connecting.latencies_ms;
    let failures = connecting.failures;

    // Let the connection burst settle, then measure a steady state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_connected = proc_field_kb(hub.pid, "VmRSS:").unwrap_or(0.0);
    let cpu_start = cpu_seconds(hub.pid).unwrap_or(0.0);
    let sent_start = sent.load(std::sync::atomic::Ordering::Relaxed);
    let measuring = bar(args.measure_secs, "measuring hub CPU");
    let measure_started = Instant::now();
    for _ in 0..args.measure_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        measuring.inc(1);
    }
    measuring.finish();
    let measured = measure_started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(hub.pid).unwrap_or(cpu_start) - cpu_start) / measured * 100.0;
    let rss_peak = proc_field_kb(hub.pid, "VmHWM:").unwrap_or(0.0);
    let heartbeats = sent.load(std::sync::atomic::Ordering::Relaxed) - sent_start;
    let still_connected = alive.len() - count_finished(&mut alive);

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while alive.join_next().await.is_some() {}
    })
    .await;
    let _ = hub.child.kill().await;

    latencies.sort_by(f64::total_cmp);
    let connected = latencies.len();
    let report = LinkBenchReport {
        terminals: args.terminals,
        connected,
        failed: failures.len(),
        connect_total_secs: connect_total.as_secs_f64(),
        connect_p50_ms: percentile(&latencies, 0.5),
        connect_p99_ms: percentile(&latencies, 0.99),
        hub_rss_before_mb: rss_before / 1024.0,
        hub_rss_connected_mb: rss_connected / 1024.0,
        hub_rss_peak_mb: rss_peak / 1024.0,
        hub_kb_per_terminal: if connected > 0 {
            (rss_connected - rss_before) / connected as f64
        } else {
            0.0
        },
        hub_cpu_percent: cpu,
        measure_secs: args.measure_secs,
        heartbeat_secs: args.heartbeat_secs,
        heartbeats_sent: heartbeats,
        still_connected,
    };
    print_report(&report);
    Ok(report)
}

/// Terminals whose keep-alive task already ended (their link broke).
fn count_finished(set: &mut tokio::task::JoinSet<bool>) -> usize {
    let mut finished = 0;
    while let Some(result) = set.try_join_next() {
        if !matches!(result, Ok(true)) {
            finished += 1;
        }
    }
    finished
}

pub(crate) fn tempfile_dir() -> anyhow::Result<TempDir> {
    let path =
        std::env::temp_dir().join(format!("etahoiva-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir(path))
}

/// A directory removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn print_report(r: &LinkBenchReport) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!();
    println!("Terminal link benchmark");
    println!("{:-<72}", "");
    println!(
        "{:<28} {} of {} ({} failed)",
        "terminals connected", r.connected, r.terminals, r.failed
    );
    println!(
        "{:<28} {:.1} s in all; per terminal p50 {:.0} ms, p99 {:.0} ms",
        "connect time", r.connect_total_secs, r.connect_p50_ms, r.connect_p99_ms
    );
    println!(
        "{:<28} {:.1} MB idle, {:.1} MB connected, {:.1} MB peak",
        "hub resident memory", r.hub_rss_before_mb, r.hub_rss_connected_mb, r.hub_rss_peak_mb
    );
    println!(
        "{:<28} {:.1} KB",
        "hub memory per terminal", r.hub_kb_per_terminal
    );
    println!(
        "{:<28} {:.1} % of one core over {} s at {} s heartbeats ({} heartbeats)",
        "hub CPU", r.hub_cpu_percent, r.measure_secs, r.heartbeat_secs, r.heartbeats_sent
    );
    println!("{:<28} {}", "still connected at the end", r.still_connected);
    println!("{:-<72}", "");
    println!(
        "{:<28} resident memory under 400 MB: {}; CPU under 25 %: {}",
        "targets",
        verdict(r.hub_rss_connected_mb < 400.0 && r.hub_rss_peak_mb < 400.0),
        verdict(r.hub_cpu_percent < 25.0)
    );
}
