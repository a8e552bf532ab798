//! `etahoiva bench alarms`: many terminals connected to one hub on loopback,
//! a burst of help-button alarms from distinct terminals, and the time from
//! each press to the patrol's live feed (and to the terminal's
//! acknowledgement, i.e. durable storage). Checks that every alarm reached
//! the patrol and was stored exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{
    bar, connect_all, cpu_seconds, heartbeat_ticker, keep_alive, percentile, proc_field_kb,
    provision, raise_open_files_limit, start_hub_with, tempfile_dir, HubOptions, Link,
};
use crate::store::{new_id, now_ms, BulkImport, Client, NewClient, Role, Store};
use etahoiva_proto::{decode, encode, EdgeToHub, Event, EventKind, HubToEdge};

/// What `etahoiva bench alarms` was asked to do.
#[derive(Clone, Debug, clap::Args)]
pub struct AlarmBenchArgs {
    /// Simulated terminals connected to the hub, each bound to its own client.
    #[arg(long, default_value_t = 10_000)]
    pub terminals: usize,
    /// Help-button alarms in the burst, each from a different terminal.
    #[arg(long, default_value_t = 1_000)]
    pub alarms: usize,
    /// The burst's length: the alarms are spread evenly over it, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub burst_secs: f64,
    /// Heartbeat interval of every terminal, in seconds.
    #[arg(long, default_value_t = 30)]
    pub heartbeat_secs: u64,
    /// Terminals connecting at the same time.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to wait after the burst for the last acknowledgement and delivery, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
    /// Run the hub on this PostgreSQL database (an empty one) instead of SQLite.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The figures a run produced. Latencies in ms.
#[derive(Debug, serde::Serialize)]
pub struct AlarmBenchReport {
    pub database: &'static str,
    pub terminals: usize,
    pub connected: usize,
    pub connect_secs: f64,
    pub alarms: usize,
    pub burst_secs: f64,
    /// Alarms the terminals sent.
    pub sent: usize,
    /// Alarms the hub acknowledged to their terminal (stored durably).
    pub acked: usize,
    /// Alarms with an alert in the store.
    pub stored: usize,
    /// Alerts stored beyond one per alarm, plus presses counted twice.
    pub duplicates: usize,
    /// Alerts in the store from terminals that raised no alarm.
    pub stray_alerts: usize,
    /// Alarms whose alert reached the patrol's live feed.
    pub delivered: usize,
    /// `alert` messages on the patrol's feed in all.
    pub feed_messages: usize,
    pub delivery_p50_ms: f64,
    pub delivery_p99_ms: f64,
    pub delivery_max_ms: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_max_ms: f64,
    /// From the press to the hub's intake writer taking it (the alert's
    /// `raised_at`; ms resolution): link and intake queue.
    pub intake_p50_ms: f64,
    pub intake_p99_ms: f64,
    pub intake_max_ms: f64,
    /// Time from the first alarm sent to the last one delivered.
    pub drain_secs: f64,
    /// The hub's CPU from the burst to the last delivery, % of one core.
    pub hub_cpu_percent: f64,
    pub hub_rss_connected_mb: f64,
    pub hub_rss_after_mb: f64,
    pub hub_rss_peak_mb: f64,
    /// Every alarm delivered to the patrol and stored exactly once.
    pub ok: bool,
}

/// What a terminal that raises an alarm reports.
enum Mark {
    /// Sent at this instant and wall-clock time (ms since the epoch).
    Sent(usize, Instant, f64),
    Acked(usize, Instant),
}

/// A plain HTTPS client for the few API calls of the setup.
struct Api {
    addr: String,
    tls: Arc<rustls::ClientConfig>,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let tcp = tokio::net::TcpStream::connect(&self.addr).await?;
        let mut tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(ServerName::try_from(host_of(&self.addr).to_string())?, tcp)
            .await?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if !body.is_empty() {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        tls.write_all(request.as_bytes()).await?;
        tls.flush().await?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw).await {
            Ok(_) => {}
            // Servers may close without a TLS close_notify after `Connection: close`.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e.into()),
        }
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("{method} {path}: no HTTP response"))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{method} {path}: bad status line"))?;
        let chunked = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        if !(200..300).contains(&status) {
            bail!("{method} {path}: HTTP {status}: {body}");
        }
        if body.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&body).with_context(|| format!("{method} {path}: not JSON"))
    }

    async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let answer = self
            .call(
                "POST",
                "/api/v1/login",
                None,
                Some(serde_json::json!({ "username": username, "password": password })),
            )
            .await?;
        answer["token"]
            .as_str()
            .map(str::to_string)
            .context("no token in the sign-in answer")
    }
}

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr)
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16);
        match size {
            Ok(n) if n > 0 && after.len() >= n => {
                out.push_str(&after[..n]);
                rest = after[n..].trim_start_matches("\r\n");
            }
            _ => break,
        }
    }
    out
}

/// One terminal that raises a help-button alarm at `offset` after the
/// burst starts, and otherwise heartbeats like the others until `stop`.
#[allow(clippy::too_many_arguments)]
async fn alarm_terminal(
    mut link: Link,
    index: usize,
    offset: Duration,
    heartbeat_secs: u64,
    mut burst: watch::Receiver<Option<tokio::time::Instant>>,
    marks: mpsc::UnboundedSender<Mark>,
    sent_heartbeats: Arc<std::sync::atomic::AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let key = format!("bench-alarm-{index}");
    let mut tick = heartbeat_ticker(heartbeat_secs);
    let mut seq = 0u64;
    let mut fire_at: Option<tokio::time::Instant> = None;
    let mut fired = false;
    loop {
        let due = async {
            match fire_at {
                Some(at) if !fired => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = burst.changed(), if fire_at.is_none() => {
                if changed.is_err() {
                    return false;
                }
                fire_at = burst.borrow().map(|start| start + offset);
            }
            _ = due => {
                fired = true;
                let event = EdgeToHub::Event(Event {
                    key: key.clone(),
                    kind: EventKind::HelpButton,
                    occurred_at: now_ms(),
                    detail: serde_json::json!({ "input": "bench" }),
                });
                let text = encode(&event);
                let at = Instant::now();
                let wall = wall_ms();
                if link.send(Message::Text(text.into())).await.is_err() {
                    return false;
                }
                let _ = marks.send(Mark::Sent(index, at, wall));
            }
            _ = stop.changed() => {
                let _ = link.close(None).await;
                return true;
            }
            _ = tick.tick() => {
                seq += 1;
                if link.send(Message::Text(encode(&EdgeToHub::Heartbeat { seq }).into())).await.is_err() {
                    return false;
                }
                sent_heartbeats.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            frame = link.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let at = Instant::now();
                    if let Ok(HubToEdge::Ack { key: acked }) = decode::<HubToEdge>(text.as_str()) {
                        if acked == key {
                            let _ = marks.send(Mark::Acked(index, at));
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return false,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// An `alert` message on the live feed: which terminal, when it arrived.
struct Delivery {
    device_id: String,
    at: Instant,
    /// When the hub took the alarm in (the alert's `raised_at`).
    raised_at: Option<i64>,
}

/// Wall-clock time in ms since the epoch, with a fraction.
fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Opens the patrol's live feed with a bearer token, waits for its
/// snapshot, then reports every `alert` message until `stop`.
async fn open_feed(
    api: &Api,
    token: &str,
    out: mpsc::UnboundedSender<Delivery>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(usize, tokio::task::JoinHandle<()>)> {
    let tcp = tokio::net::TcpStream::connect(&api.addr).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(api.tls.clone())
        .connect(ServerName::try_from(host_of(&api.addr).to_string())?, tcp)
        .await?;
    let mut request = format!("wss://{}/api/v1/alerts/live", api.addr).into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut feed, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .context("cannot open the live feed")?;
    let snapshot = loop {
        match tokio::time::timeout(Duration::from_secs(30), feed.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: serde_json::Value = serde_json::from_str(text.as_str())?;
                if message["type"] == "snapshot" {
                    break message["alerts"].as_array().map_or(0, Vec::len);
                }
            }
            Ok(Some(Ok(_))) => {}
            other => bail!("no snapshot on the live feed: {other:?}"),
        }
    };
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = feed.close(None).await;
                    return;
                }
                frame = feed.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        let at = Instant::now();
                        let Ok(message) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                            continue;
                        };
                        if message["type"] == "alert" {
                            let alert = &message["alert"];
                            let _ = out.send(Delivery {
                                device_id: alert["device_id"].as_str().unwrap_or_default().to_string(),
                                at,
                                raised_at: alert["raised_at"].as_i64(),
                            });
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        eprintln!("the live feed closed");
                        return;
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
    });
    Ok((snapshot, task))
}

/// The organisation of the benchmark, written to the store before the hub
/// starts: an administrator and a patrol member, one area, a client per terminal.
struct Setup {
    admin: (String, String),
    patrol: (String, String, String),
    area_id: String,
    clients: Vec<String>,
    suffix: String,
}

async fn prepare_store(store: &Store, terminals: usize) -> anyhow::Result<Setup> {
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let password = crate::auth::new_password();
    let make = |name: &str, role: Role| {
        let user = crate::api::users::new_user(
            &format!("bench-{name}-{suffix}"),
            Some(&format!("Bench {name}")),
            vec![role],
            &password,
            Some("fi"),
        )
        .map_err(anyhow::Error::msg);
        async move { anyhow::Ok(store.create_user(user?).await?) }
    };
    let admin = make("admin", Role::Admin).await?;
    let patrol = make("patrol", Role::Patrol).await?;
    let area_id = new_id();
    let now = now_ms();
    let clients: Vec<Client> = (0..terminals)
        .map(|i| {
            Client::from_new(
                NewClient {
                    name: format!("Asiakas {i:05}"),
                    language: "fi".into(),
                    area_id: area_id.clone(),
                    address: format!("Kotikatu {}", i + 1),
                    named_nurse_id: None,
                    consent_auto_answer: false,
                    time_zone: None,
                },
                now,
            )
        })
        .collect();
    let ids = clients.iter().map(|c| c.id.clone()).collect();
    store
        .bulk_import(&BulkImport {
            areas: vec![(area_id.clone(), format!("Bench area {suffix}"))],
            nurses: Vec::new(),
            shifts: Vec::new(),
            clients,
            rules: Vec::new(),
        })
        .await
        .context("cannot import the clients")?;
    Ok(Setup {
        admin: (admin.username, password.clone()),
        patrol: (patrol.username, password, patrol.id),
        area_id,
        clients: ids,
        suffix,
    })
}

fn stats(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        values.last().copied().unwrap_or(0.0),
    )
}

/// Runs the benchmark and prints a table (or JSON).
pub async fn run(args: AlarmBenchArgs) -> anyhow::Result<AlarmBenchReport> {
    if args.alarms == 0 || args.alarms > args.terminals {
        bail!("--alarms must be between 1 and --terminals: each alarm comes from its own terminal");
    }
    if !(args.burst_secs >= 0.0 && args.burst_secs.is_finite()) {
        bail!("--burst-secs must be 0 or more");
    }
    let open_files = raise_open_files_limit();
    if (open_files as usize) < args.terminals + 256 {
        bail!(
            "this process may open only {open_files} files; {} terminals need more (raise `ulimit -n`)",
            args.terminals
        );
    }
    let dir = tempfile_dir()?;
    let data_dir = dir.path().to_path_buf();
    let database_url = args.database_url.as_deref();

    eprintln!(
        "preparing {} clients and terminals ({})",
        args.terminals,
        if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let store = Store::open(database_url, &data_dir)
        .await
        .context("cannot open the store")?;
    let setup = prepare_store(&store, args.terminals).await;
    store.close().await;
    let setup = setup?;
    let identities = provision(
        &data_dir,
        database_url,
        args.terminals,
        args.heartbeat_secs,
        &setup.clients,
    )
    .await?;

    // Night everywhere (so alarms go to the area's patrol on duty), and no
    // escalation while the benchmark runs.
    let log_file = data_dir.join("hub.log");
    let mut hub = start_hub_with(
        &data_dir,
        &HubOptions {
            database_url: args.database_url.clone(),
            env: vec![
                ("ETAHOIVA_ALARM_DAY_START", "00:00".into()),
                ("ETAHOIVA_ALARM_DAY_END", "00:00".into()),
                ("ETAHOIVA_ALARM_ACK_SECS", "3600".into()),
            ],
            log_file: Some(log_file.clone()),
        },
    )
    .await?;
    let roots = super::hub_roots(&data_dir)?;
    let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let api = Api {
        addr: hub.api_addr.clone(),
        tls: Arc::new(tls),
    };
    let result = measure(&args, &setup, &api, &hub, identities).await;
    let _ = hub.child.kill().await;
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            print_log_tail(&log_file);
            return Err(e);
        }
    };
    if !report.ok {
        print_log_tail(&log_file);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(report)
}

fn print_log_tail(path: &std::path::Path) {
    if let Ok(log) = std::fs::read_to_string(path) {
        let lines: Vec<&str> = log.lines().collect();
        if !lines.is_empty() {
            eprintln!("last lines of the hub's log:");
            for line in &lines[lines.len().saturating_sub(20)..] {
                eprintln!("  {line}");
            }
        }
    }
}

async fn measure(
    args: &AlarmBenchArgs,
    setup: &Setup,
    api: &Api,
    hub: &super::HubChild,
    identities: Vec<super::Identity>,
) -> anyhow::Result<AlarmBenchReport> {
    // The patrol team of the area, on duty now, through the API (which
    // also reloads the hub's roster).
    let admin = api.login(&setup.admin.0, &setup.admin.1).await?;
    let team = api
        .call(
            "POST",
            "/api/v1/teams",
            Some(&admin),
            Some(serde_json::json!({
                "name": format!("Bench night patrol {}", setup.suffix),
                "kind": "patrol",
                "area_id": setup.area_id,
                "members": [setup.patrol.2],
            })),
        )
        .await?;
    let team_id = team["id"].as_str().context("no team id")?.to_string();
    let now = jiff::Timestamp::now();
    api.call(
        "POST",
        &format!("/api/v1/teams/{team_id}/duty"),
        Some(&admin),
        Some(serde_json::json!({
            "starts_at": (now - jiff::SignedDuration::from_hours(1)).to_string(),
            "ends_at": (now + jiff::SignedDuration::from_hours(12)).to_string(),
        })),
    )
    .await?;
    let patrol = api.login(&setup.patrol.0, &setup.patrol.1).await?;

    // The alarm terminals, spread over the whole fleet.
    let alarm_offsets: HashMap<usize, (usize, Duration)> = (0..args.alarms)
        .map(|k| {
            let terminal = k * args.terminals / args.alarms;
            let offset = Duration::from_secs_f64(args.burst_secs * k as f64 / args.alarms as f64);
            (terminal, (k, offset))
        })
        .collect();
    let alarm_devices: Vec<String> = {
        let mut devices = vec![String::new(); args.alarms];
        for (terminal, (k, _)) in &alarm_offsets {
            devices[*k] = identities[*terminal].device_id.clone();
        }
        devices
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let (burst_tx, burst_rx) = watch::channel(None);
    let (marks_tx, mut marks) = mpsc::unbounded_channel();
    let heartbeats = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut alive = tokio::task::JoinSet::new();
    let connected = connect_all(
        identities,
        &hub.link_addr,
        args.heartbeat_secs,
        args.concurrency,
        |index, link| match alarm_offsets.get(&index) {
            Some((k, offset)) => {
                alive.spawn(alarm_terminal(
                    link,
                    *k,
                    *offset,
                    args.heartbeat_secs,
                    burst_rx.clone(),
                    marks_tx.clone(),
                    heartbeats.clone(),
                    stop_rx.clone(),
                ));
            }
            None => {
                alive.spawn(keep_alive(
                    link,
                    args.heartbeat_secs,
                    heartbeats.clone(),
                    stop_rx.clone(),
                ));
            }
        },
    )
    .await;
    drop(marks_tx);

    // Let the connection burst settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_connected = proc_field_kb(hub.pid, "VmRSS:").unwrap_or(0.0);

    let (deliveries_tx, mut deliveries) = mpsc::unbounded_channel();
    let (snapshot, feed) = open_feed(api, &patrol, deliveries_tx, stop_rx.clone()).await?;
    if snapshot > 0 {
        eprintln!("note: the patrol's feed started with {snapshot} open alerts");
    }

    let index_of: HashMap<&str, usize> = alarm_devices
        .iter()
        .enumerate()
        .map(|(k, d)| (d.as_str(), k))
        .collect();
    let mut sent_at: Vec<Option<Instant>> = vec![None; args.alarms];
    let mut sent_wall: Vec<f64> = vec![0.0; args.alarms];
    let mut intake_ms: Vec<f64> = Vec::with_capacity(args.alarms);
    let mut acked_at: Vec<Option<Instant>> = vec![None; args.alarms];
    let mut delivered_at: Vec<Option<Instant>> = vec![None; args.alarms];
    let mut feed_messages = 0usize;

    let cpu_start = cpu_seconds(hub.pid).unwrap_or(0.0);
    let started = Instant::now();
    let _ = burst_tx.send(Some(
        tokio::time::Instant::now() + Duration::from_millis(100),
    ));
    let progress = bar(args.alarms as u64, "alarms delivered");
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs_f64(args.burst_secs + 0.1)
        + Duration::from_secs(args.wait_secs);
    let (mut sent, mut acked, mut delivered) = (0usize, 0usize, 0usize);
    let mut marks_open = true;
    while sent < args.alarms || acked < sent || delivered < sent {
        tokio::select! {
            mark = marks.recv(), if marks_open => match mark {
                Some(Mark::Sent(k, at, wall)) => {
                    if sent_at[k].replace(at).is_none() {
                        sent += 1;
                        sent_wall[k] = wall;
                    }
                }
                Some(Mark::Acked(k, at)) => {
                    if acked_at[k].replace(at).is_none() {
                        acked += 1;
                    }
                }
                None => marks_open = false,
            },
            delivery = deliveries.recv() => match delivery {
                Some(d) => {
                    feed_messages += 1;
                    if let Some(&k) = index_of.get(d.device_id.as_str()) {
                        if delivered_at[k].is_none() {
                            delivered_at[k] = Some(d.at);
                            if let (Some(raised), true) = (d.raised_at, sent_wall[k] > 0.0) {
                                // raised_at has ms resolution.
                                intake_ms.push((raised as f64 - sent_wall[k]).max(0.0));
                            }
                            delivered += 1;
                            progress.inc(1);
                        }
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
        if !marks_open && sent < args.alarms {
            // Some alarm terminal lost its link: it will never send.
            break;
        }
    }
    let drained = started.elapsed();
    progress.finish();
    let cpu_used = cpu_seconds(hub.pid).unwrap_or(cpu_start) - cpu_start;
    let rss_after = proc_field_kb(hub.pid, "VmRSS:").unwrap_or(0.0);
    let rss_peak = proc_field_kb(hub.pid, "VmHWM:").unwrap_or(0.0);

    // A moment for late or repeated feed messages, then what the store holds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(_extra) = deliveries.try_recv() {
        feed_messages += 1;
    }
    let alerts = api
        .call("GET", "/api/v1/alerts?open=true", Some(&admin), None)
        .await?;
    let alerts = alerts.as_array().context("alerts are not a list")?;
    let mut per_alarm = vec![(0usize, 0i64); args.alarms];
    let mut stray_alerts = 0;
    for alert in alerts {
        let device = alert["device_id"].as_str().unwrap_or_default();
        match index_of.get(device) {
            Some(&k) => {
                per_alarm[k].0 += 1;
                per_alarm[k].1 += alert["count"].as_i64().unwrap_or(1);
            }
            None => stray_alerts += 1,
        }
    }
    let stored = per_alarm.iter().filter(|(n, _)| *n > 0).count();
    let duplicates: usize = per_alarm
        .iter()
        .map(|(n, presses)| n.saturating_sub(1) + (*presses - *n as i64).max(0) as usize)
        .sum();

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while alive.join_next().await.is_some() {}
    })
    .await;
    let _ = feed.await;

    let since_sent = |at: &[Option<Instant>]| -> Vec<f64> {
        sent_at
            .iter()
            .zip(at)
            .filter_map(|(s, a)| Some(a.as_ref()?.duration_since(*s.as_ref()?)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect()
    };
    let (delivery_p50_ms, delivery_p99_ms, delivery_max_ms) = stats(since_sent(&delivered_at));
    let (ack_p50_ms, ack_p99_ms, ack_max_ms) = stats(since_sent(&acked_at));
    let (intake_p50_ms, intake_p99_ms, intake_max_ms) = stats(intake_ms);
    let first_sent = sent_at.iter().flatten().min().copied();
    let last_delivered = delivered_at.iter().flatten().max().copied();
    let drain_secs = match (first_sent, last_delivered) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => drained.as_secs_f64(),
    };
    Ok(AlarmBenchReport {
        database: if args.database_url.is_some() {
            "postgresql"
        } else {
            "sqlite"
        },
        terminals: args.terminals,
        connected: connected.latencies_ms.len(),
        connect_secs: connected.total.as_secs_f64(),
        alarms: args.alarms,
        burst_secs: args.burst_secs,
        sent,
        acked,
        stored,
        duplicates,
        stray_alerts,
        delivered,
        feed_messages,
        delivery_p50_ms,
        delivery_p99_ms,
        delivery_max_ms,
        ack_p50_ms,
        ack_p99_ms,
        ack_max_ms,
        intake_p50_ms,
        intake_p99_ms,
        intake_max_ms,
        drain_secs,
        hub_cpu_percent: cpu_used / drained.as_secs_f64().max(0.001) * 100.0,
        hub_rss_connected_mb: rss_connected / 1024.0,
        hub_rss_after_mb: rss_after / 1024.0,
        hub_rss_peak_mb: rss_peak / 1024.0,
        ok: sent == args.alarms
            && delivered == sent
            && stored == sent
            && duplicates == 0
            && stray_alerts == 0,
    })
}

fn print_report(r: &AlarmBenchReport) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!();
    println!("Alarm burst benchmark ({})", r.database);
    println!("{:-<72}", "");
    println!(
        "{:<28} {} of {} in {:.1} s",
        "terminals connected", r.connected, r.terminals, r.connect_secs
    );
    println!(
        "{:<28} {} of {} help-button alarms over {:.2} s, each from its own terminal",
        "alarms sent", r.sent, r.alarms, r.burst_secs
    );
    println!(
        "{:<28} {} stored, {} duplicates, {} stray",
        "in the store", r.stored, r.duplicates, r.stray_alerts
    );
    println!(
        "{:<28} {} of {} ({} feed messages)",
        "delivered to the patrol", r.delivered, r.sent, r.feed_messages
    );
    println!(
        "{:<28} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        "alarm -> patrol feed", r.delivery_p50_ms, r.delivery_p99_ms, r.delivery_max_ms
    );
    println!(
        "{:<28} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} acknowledged)",
        "alarm -> stored (ack)", r.ack_p50_ms, r.ack_p99_ms, r.ack_max_ms, r.acked
    );
    println!(
        "{:<28} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        "alarm -> hub intake", r.intake_p50_ms, r.intake_p99_ms, r.intake_max_ms
    );
    println!(
        "{:<28} {:.2} s from the first alarm to the last delivery",
        "drained in", r.drain_secs
    );
    println!(
        "{:<28} {:.0} % of one core during the burst",
        "hub CPU", r.hub_cpu_percent
    );
    println!(
        "{:<28} {:.1} MB connected, {:.1} MB after, {:.1} MB peak",
        "hub resident memory", r.hub_rss_connected_mb, r.hub_rss_after_mb, r.hub_rss_peak_mb
    );
    println!("{:-<72}", "");
    println!(
        "{:<28} every alarm delivered and stored once: {}; p99 < 100 ms: {}; max < 1 s: {}",
        "targets",
        verdict(r.ok),
        verdict(r.delivery_p99_ms < 100.0),
        verdict(r.delivery_max_ms < 1000.0)
    );
}
