//! `etahoiva bench relay`: N concurrent 1:1 calls through the hub's relay on
//! loopback, each with a simulated terminal and a simulated console sending
//! realistic media both ways (VP8 at about `--video-kbps` and `--fps`, Opus
//! every 20 ms). The relay runs in a process of its own (`etahoiva bench
//! relay-hub`, the hub's relay module behind a line protocol on stdin and
//! stdout), so its CPU time and memory are measured alone; the load
//! generator is this process. With `--cycles K` it then opens and closes K
//! calls (ICE, DTLS, media, close) and checks that every leg was freed and
//! memory stayed flat.

use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use etahoiva_media::generate::{video_frame, MediaLoop};
use etahoiva_media::peer::{MediaReport, Peer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::{cpu_seconds, percentile, proc_field_kb};
use crate::relay::{Party, Relay, RelaySettings};

#[derive(Clone, Debug, clap::Args)]
pub struct RelayBenchArgs {
    /// Concurrent 1:1 calls (0: only the open/close cycles).
    #[arg(long, default_value_t = 50)]
    pub calls: usize,
    /// Steady-state measurement after the ramp, in seconds.
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Video bitrate each way per call, kbit/s (the encoder's quality is
    /// chosen to come close).
    #[arg(long, default_value_t = 1_000)]
    pub video_kbps: u32,
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Open/close cycles after the steady state: each call connects (ICE and
    /// DTLS), carries media for a moment and closes.
    #[arg(long, default_value_t = 0)]
    pub cycles: usize,
    /// Calls opened at the same time during the cycles.
    #[arg(long, default_value_t = 20)]
    pub cycle_batch: usize,
    /// Relay threads of the hub.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Pin the relay to this CPU core, and the load generator to the other ones.
    #[arg(long)]
    pub hub_core: Option<usize>,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The relay process: `etahoiva bench relay-hub`.
#[derive(Clone, Debug, clap::Args)]
pub struct RelayHubArgs {
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
}

/// The figures of a run.
#[derive(Debug, Default, serde::Serialize)]
pub struct RelayBenchReport {
    pub engine: String,
    pub calls: usize,
    pub connected_calls: usize,
    pub video_kbps_target: u32,
    pub video_kbps_sent: f64,
    pub fps: u32,
    pub measured_secs: f64,
    pub forwarded_packets: u64,
    pub forwarded_per_sec: f64,
    pub hub_cpu_secs: f64,
    /// CPU time of the load generator (the simulated participants) meanwhile.
    pub load_cpu_secs: f64,
    pub hub_cpu_us_per_packet: f64,
    pub packets_per_sec_per_core: f64,
    pub calls_per_core: f64,
    pub delay_p50_us: u64,
    pub delay_p99_us: u64,
    pub delay_max_us: u64,
    pub sent_packets: u64,
    pub received_packets: u64,
    pub loss_pct: f64,
    pub setup_p50_ms: f64,
    pub setup_p99_ms: f64,
    pub rss_idle_mb: f64,
    pub rss_with_calls_mb: f64,
    pub memory_per_call_kb: f64,
    pub rss_after_close_mb: f64,
    pub cycles: usize,
    pub cycles_connected: usize,
    pub rss_after_first_cycles_mb: f64,
    pub rss_after_cycles_mb: f64,
    pub legs_alive_after: u64,
    pub open_legs_after: u64,
    pub ok: bool,
    pub problems: Vec<String>,
}

// --- The relay process ---------------------------------------------------

/// Runs the relay behind a line protocol: one JSON command per line on
/// stdin, one JSON answer per line on stdout.
pub async fn relay_hub(args: RelayHubArgs) -> anyhow::Result<()> {
    let relay = Relay::start(&RelaySettings {
        bind: "127.0.0.1:0".parse()?,
        public_ip: None,
        shards: args.shards,
    })?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", json!({"ready": true, "pid": std::process::id()}))?;
    out.flush()?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(command) => relay_command(&relay, &command).await,
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

async fn relay_command(relay: &Relay, c: &Value) -> Value {
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    match c["op"].as_str().unwrap_or_default() {
        "open" => {
            let call = s("call");
            let mut legs = Vec::new();
            for party in [
                Party::Terminal(format!("terminal-{call}")),
                Party::Staff(format!("nurse-{call}")),
            ] {
                match relay.open_leg(&call, party).await {
                    Ok(o) => legs.push(json!({"leg_id": o.leg_id, "sdp": o.sdp})),
                    Err(e) => return json!({"ok": false, "error": e.to_string()}),
                }
            }
            json!({"ok": true, "legs": legs})
        }
        "answer" => match relay.answer(&s("leg"), &s("sdp")).await {
            Ok(()) => json!({"ok": true}),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        },
        "gate" => {
            relay.open_gate(&s("call"));
            json!({"ok": true})
        }
        "close" => {
            relay.close_call(&s("call"));
            json!({"ok": true})
        }
        "stats" => {
            let f = relay.forward_stats();
            json!({"ok": true, "engine": relay.engine(), "forwarded": f.forwarded,
                   "delay_p50_us": f.delay_p50_us, "delay_p99_us": f.delay_p99_us,
                   "delay_max_us": f.delay_max_us,
                   "legs_alive": etahoiva_media::legs_alive(), "open_legs": relay.open_legs()})
        }
        other => json!({"ok": false, "error": format!("unknown op {other:?}")}),
    }
}

// --- The load generator --------------------------------------------------

struct RelayProcess {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl RelayProcess {
    async fn start(shards: usize, core: Option<usize>) -> anyhow::Result<RelayProcess> {
        let exe = std::env::current_exe()?;
        let mut child = tokio::process::Command::new(exe)
            .args(["bench", "relay-hub", "--shards", &shards.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the relay process")?;
        let stdin = child.stdin.take().context("relay stdin")?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the relay did not start")??
            .context("the relay exited")?;
        let ready: Value = serde_json::from_str(&ready)?;
        let pid = ready["pid"].as_u64().context("relay pid")? as u32;
        if let Some(core) = core {
            pin(pid, &[core]);
        }
        Ok(RelayProcess {
            child,
            pid,
            stdin,
            lines,
        })
    }

    async fn ask(&mut self, command: Value) -> anyhow::Result<Value> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .context("the relay did not answer")??
            .context("the relay exited")?;
        let answer: Value = serde_json::from_str(&line)?;
        if answer["ok"] != true {
            bail!("relay refused {command}: {}", answer["error"]);
        }
        Ok(answer)
    }
}

/// Pins a process (0: this one) to CPU cores.
fn pin(pid: u32, cores: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for core in cores {
            libc::CPU_SET(*core, &mut set);
        }
        let _ = libc::sched_setaffinity(pid as i32, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// One call of the load: the terminal's and the console's peers.
struct LoadCall {
    id: String,
    terminal: Peer,
    console: Peer,
}

async fn open_call(
    relay: &mut RelayProcess,
    id: String,
    media: &Arc<MediaLoop>,
) -> anyhow::Result<LoadCall> {
    let opened = relay.ask(json!({"op": "open", "call": id})).await?;
    let legs = opened["legs"].as_array().context("legs")?;
    let mut peers = Vec::with_capacity(2);
    for leg in legs {
        let sdp = leg["sdp"].as_str().context("sdp")?;
        let peer = Peer::answer(sdp, Some(media.clone())).await?;
        relay
            .ask(json!({"op": "answer", "leg": leg["leg_id"], "sdp": peer.answer_sdp()}))
            .await?;
        peers.push(peer);
    }
    relay.ask(json!({"op": "gate", "call": id})).await?;
    let console = peers.pop().context("console peer")?;
    let terminal = peers.pop().context("terminal peer")?;
    Ok(LoadCall {
        id,
        terminal,
        console,
    })
}

fn connected(call: &LoadCall) -> bool {
    call.terminal.report().connected && call.console.report().connected
}

async fn wait_connected(calls: &[LoadCall], limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let n = calls.iter().filter(|c| connected(c)).count();
        if n == calls.len() || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rss_mb(pid: u32) -> f64 {
    proc_field_kb(pid, "VmRSS:").unwrap_or(0.0) / 1024.0
}

/// A media loop at about `kbps` and `fps`: the quality whose first frame
/// comes closest to the frame size the bitrate allows.
fn media_for(kbps: u32, fps: u32) -> anyhow::Result<MediaLoop> {
    let (w, h) = (640, 360);
    let want = (kbps as f64 * 1000.0 / 8.0 / fps.max(1) as f64) as i64;
    let mut best = (i64::MAX, 50u8);
    for quality in (10..=90).step_by(10) {
        let size = video_frame(w, h, 0, 60, quality as u8)?.len() as i64;
        if (size - want).abs() < best.0 {
            best = ((size - want).abs(), quality as u8);
        }
    }
    Ok(MediaLoop::encode(w, h, fps, fps * 2, best.1, 100)?)
}

fn sum(reports: &[MediaReport], f: impl Fn(&MediaReport) -> u64) -> u64 {
    reports.iter().map(f).sum()
}

pub async fn run(args: RelayBenchArgs) -> anyhow::Result<RelayBenchReport> {
    let mut report = RelayBenchReport {
        calls: args.calls,
        video_kbps_target: args.video_kbps,
        fps: args.fps,
        cycles: args.cycles,
        ..Default::default()
    };
    eprintln!(
        "encoding the media loop ({} kbit/s at {} fps)…",
        args.video_kbps, args.fps
    );
    let media = Arc::new(
        tokio::task::spawn_blocking({
            let (kbps, fps) = (args.video_kbps, args.fps);
            move || media_for(kbps, fps)
        })
        .await??,
    );
    let frame_bytes: usize =
        media.video.iter().map(|f| f.len()).sum::<usize>() / media.video.len().max(1);
    report.video_kbps_sent = frame_bytes as f64 * 8.0 * args.fps as f64 / 1000.0;
    let mut relay = RelayProcess::start(args.shards, args.hub_core).await?;
    if let Some(core) = args.hub_core {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let others: Vec<usize> = (0..cores).filter(|c| *c != core).collect();
        if !others.is_empty() {
            pin(0, &others);
        }
    }
    report.engine = relay.ask(json!({"op": "stats"})).await?["engine"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    report.rss_idle_mb = rss_mb(relay.pid);

    if args.calls > 0 {
        eprintln!("opening {} calls…", args.calls);
        let mut calls = Vec::with_capacity(args.calls);
        for n in 0..args.calls {
            calls.push(open_call(&mut relay, format!("call-{n}"), &media).await?);
        }
        report.connected_calls = wait_connected(&calls, Duration::from_secs(30)).await;
        let mut setups: Vec<f64> = calls
            .iter()
            .flat_map(|c| [c.terminal.report().setup_ms, c.console.report().setup_ms])
            .flatten()
            .map(|ms| ms as f64)
            .collect();
        setups.sort_by(|a, b| a.total_cmp(b));
        report.setup_p50_ms = percentile(&setups, 50.0);
        report.setup_p99_ms = percentile(&setups, 99.0);
        for c in &calls {
            c.terminal.send_media(true);
            c.console.send_media(true);
        }
        // Ramp: every sender running, buffers and caches warm.
        tokio::time::sleep(Duration::from_secs(3)).await;
        eprintln!("measuring for {} s…", args.duration_secs);
        let before = relay.ask(json!({"op": "stats"})).await?;
        let cpu0 = cpu_seconds(relay.pid).unwrap_or(0.0);
        let load0 = cpu_seconds(std::process::id()).unwrap_or(0.0);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.duration_secs)).await;
        let cpu1 = cpu_seconds(relay.pid).unwrap_or(0.0);
        let after = relay.ask(json!({"op": "stats"})).await?;
        // Memory in the steady state: retransmission buffers full.
        report.rss_with_calls_mb = rss_mb(relay.pid);
        report.memory_per_call_kb =
            (report.rss_with_calls_mb - report.rss_idle_mb) * 1024.0 / args.calls as f64;
        report.load_cpu_secs = cpu_seconds(std::process::id()).unwrap_or(0.0) - load0;
        report.measured_secs = t0.elapsed().as_secs_f64();
        report.forwarded_packets =
            after["forwarded"].as_u64().unwrap_or(0) - before["forwarded"].as_u64().unwrap_or(0);
        report.forwarded_per_sec = report.forwarded_packets as f64 / report.measured_secs;
        report.hub_cpu_secs = cpu1 - cpu0;
        if report.forwarded_packets > 0 {
            report.hub_cpu_us_per_packet =
                report.hub_cpu_secs * 1e6 / report.forwarded_packets as f64;
        }
        if report.hub_cpu_secs > 0.0 {
            report.packets_per_sec_per_core = report.forwarded_packets as f64 / report.hub_cpu_secs;
            let per_call = report.forwarded_per_sec / args.calls as f64;
            report.calls_per_core = report.packets_per_sec_per_core / per_call.max(1.0);
        }
        report.delay_p50_us = after["delay_p50_us"].as_u64().unwrap_or(0);
        report.delay_p99_us = after["delay_p99_us"].as_u64().unwrap_or(0);
        report.delay_max_us = after["delay_max_us"].as_u64().unwrap_or(0);
        // Stop the senders, let the last packets land, then count.
        for c in &calls {
            c.terminal.send_media(false);
            c.console.send_media(false);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let terminals: Vec<MediaReport> = calls.iter().map(|c| c.terminal.report()).collect();
        let consoles: Vec<MediaReport> = calls.iter().map(|c| c.console.report()).collect();
        let out =
            |r: &[MediaReport]| sum(r, |x| x.audio_packets_out) + sum(r, |x| x.video_packets_out);
        let inn =
            |r: &[MediaReport]| sum(r, |x| x.audio_packets_in) + sum(r, |x| x.video_packets_in);
        report.sent_packets = out(&terminals) + out(&consoles);
        report.received_packets = inn(&terminals) + inn(&consoles);
        if report.sent_packets > 0 {
            report.loss_pct = 100.0
                * report.sent_packets.saturating_sub(report.received_packets) as f64
                / report.sent_packets as f64;
        }
        for c in &calls {
            relay.ask(json!({"op": "close", "call": c.id})).await?;
            c.terminal.stop();
            c.console.stop();
        }
        drop(calls);
        tokio::time::sleep(Duration::from_secs(1)).await;
        report.rss_after_close_mb = rss_mb(relay.pid);
    }

    if args.cycles > 0 {
        eprintln!("opening and closing {} calls…", args.cycles);
        let first = args.cycles.min(100);
        let mut done = 0;
        while done < args.cycles {
            let batch = args.cycle_batch.max(1).min(args.cycles - done);
            let mut calls = Vec::with_capacity(batch);
            for n in 0..batch {
                calls.push(open_call(&mut relay, format!("cycle-{}", done + n), &media).await?);
            }
            report.cycles_connected += wait_connected(&calls, Duration::from_secs(20)).await;
            for c in &calls {
                c.terminal.send_media(true);
                c.console.send_media(true);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            for c in &calls {
                relay.ask(json!({"op": "close", "call": c.id})).await?;
                c.terminal.stop();
                c.console.stop();
            }
            drop(calls);
            done += batch;
            if done == first {
                tokio::time::sleep(Duration::from_millis(500)).await;
                report.rss_after_first_cycles_mb = rss_mb(relay.pid);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        report.rss_after_cycles_mb = rss_mb(relay.pid);
    }
    let stats = relay.ask(json!({"op": "stats"})).await?;
    report.legs_alive_after = stats["legs_alive"].as_u64().unwrap_or(u64::MAX);
    report.open_legs_after = stats["open_legs"].as_u64().unwrap_or(u64::MAX);
    let _ = relay.child.start_kill();

    if args.calls > 0 {
        if report.connected_calls < args.calls {
            report.problems.push(format!(
                "{} of {} calls connected",
                report.connected_calls, args.calls
            ));
        }
        if report.received_packets == 0 {
            report.problems.push("no media arrived".into());
        }
    }
    if args.cycles > 0 {
        if report.cycles_connected < args.cycles {
            report.problems.push(format!(
                "{} of {} cycled calls connected",
                report.cycles_connected, args.cycles
            ));
        }
        // Flat: after the first cycles warmed the allocator, what is left
        // must not grow with the calls (a leak of even 10 KB a call shows).
        let growth = report.rss_after_cycles_mb - report.rss_after_first_cycles_mb;
        let allowed = 8.0 + 0.004 * args.cycles as f64;
        if args.cycles > 100 && growth > allowed {
            report.problems.push(format!(
                "memory grew by {growth:.1} MB over {} cycles (allowed {allowed:.1} MB)",
                args.cycles - 100
            ));
        }
    }
    if report.legs_alive_after != 0 || report.open_legs_after != 0 {
        report.problems.push(format!(
            "{} legs alive and {} open after every call closed",
            report.legs_alive_after, report.open_legs_after
        ));
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}

pub fn print(report: &RelayBenchReport, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!("relay benchmark ({} engine, loopback)", report.engine);
    if report.calls > 0 {
        println!(
            "  calls                      {} ({} connected), video {:.0} kbit/s at {} fps each way plus Opus",
            report.calls, report.connected_calls, report.video_kbps_sent, report.fps
        );
        println!(
            "  forwarded                  {:.0} packets/s over {:.0} s",
            report.forwarded_per_sec, report.measured_secs
        );
        println!(
            "  hub CPU per packet         {:.2} us   (target: SRTP plus the kernel's send path cost 4-6 us)",
            report.hub_cpu_us_per_packet
        );
        println!(
            "  CPU used                   hub {:.2} s, load generator {:.2} s of {:.0} s",
            report.hub_cpu_secs, report.load_cpu_secs, report.measured_secs
        );
        println!(
            "  packets/s per core         {:.0}   (target 45,000; LiveKit publishes about 38,000 per vCPU)",
            report.packets_per_sec_per_core
        );
        println!(
            "  calls per core             {:.0}   (target 150)",
            report.calls_per_core
        );
        println!(
            "  added delay in the hub     p50 {} us, p99 {} us, max {} us   (target p99 < 2 ms)",
            report.delay_p50_us, report.delay_p99_us, report.delay_max_us
        );
        println!(
            "  loss                       {:.3} % ({} of {} packets arrived)",
            report.loss_pct, report.received_packets, report.sent_packets
        );
        println!(
            "  setup (ICE + DTLS)         p50 {:.0} ms, p99 {:.0} ms",
            report.setup_p50_ms, report.setup_p99_ms
        );
        println!(
            "  hub memory                 {:.1} MB idle, {:.1} MB with the calls: {:.0} KB per call (target < 1 MB); {:.1} MB after closing",
            report.rss_idle_mb, report.rss_with_calls_mb, report.memory_per_call_kb, report.rss_after_close_mb
        );
    }
    if report.cycles > 0 {
        println!(
            "  open/close cycles          {} ({} connected): {:.1} MB after the first 100, {:.1} MB after all",
            report.cycles, report.cycles_connected, report.rss_after_first_cycles_mb, report.rss_after_cycles_mb
        );
    }
    println!(
        "  legs alive after closing   {} (engine), {} (relay)",
        report.legs_alive_after, report.open_legs_after
    );
    for p in &report.problems {
        println!("  PROBLEM: {p}");
    }
    Ok(())
}
