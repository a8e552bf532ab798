//! The load tool itself: a small run connects every terminal and reports.

mod common;

#[test]
fn bench_link_connects_every_terminal_and_prints_a_summary() {
    let (ok, out, err) = common::run_cli(
        &[
            "bench",
            "link",
            "--terminals",
            "25",
            "--heartbeat-secs",
            "5",
            "--measure-secs",
            "6",
        ],
        None,
        &[],
    );
    assert!(ok, "bench failed: {out} {err}");
    assert!(out.contains("25 of 25 (0 failed)"), "{out}");
    assert!(out.contains("still connected at the end   25"), "{out}");
    assert!(out.contains("hub memory per terminal"), "{out}");
    // Every terminal heartbeated at least once during the measurement.
    let heartbeats: u64 = out
        .lines()
        .find(|l| l.starts_with("hub CPU"))
        .and_then(|l| l.rsplit_once('(').map(|(_, r)| r.to_string()))
        .and_then(|r| r.split_whitespace().next().map(str::to_string))
        .and_then(|n| n.parse().ok())
        .expect("heartbeat count in the summary");
    assert!(heartbeats >= 25, "{out}");
}

#[test]
fn bench_alarms_delivers_every_alarm_to_the_patrol_and_stores_it_once() {
    let (ok, out, err) = common::run_cli(
        &[
            "bench",
            "alarms",
            "--terminals",
            "50",
            "--alarms",
            "20",
            "--burst-secs",
            "0.5",
            "--heartbeat-secs",
            "5",
            "--json",
        ],
        None,
        &[],
    );
    assert!(ok, "bench failed: {out} {err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["connected"], 50, "{out}");
    assert_eq!(report["sent"], 20, "{out}");
    assert_eq!(report["acked"], 20, "{out}");
    assert_eq!(report["delivered"], 20, "{out}");
    assert_eq!(report["stored"], 20, "{out}");
    assert_eq!(report["duplicates"], 0, "{out}");
    assert_eq!(report["stray_alerts"], 0, "{out}");
    assert_eq!(report["feed_messages"], 20, "{out}");
    assert_eq!(report["ok"], true, "{out}");
    let p50 = report["delivery_p50_ms"].as_f64().expect("p50");
    let max = report["delivery_max_ms"].as_f64().expect("max");
    assert!(p50 > 0.0 && p50 <= max, "{out}");
}

/// A thousand calls opened and closed through the relay: every peer
/// connection freed, the relay's memory flat; and a few concurrent calls
/// carry media both ways without loss on loopback.
#[test]
fn bench_relay_carries_calls_and_1000_open_close_cycles_leave_memory_flat() {
    let (ok, out, err) = common::run_cli(
        &[
            "bench",
            "relay",
            "--calls",
            "4",
            "--duration-secs",
            "3",
            "--video-kbps",
            "300",
            "--fps",
            "15",
            "--cycles",
            "1000",
            "--cycle-batch",
            "50",
            "--json",
        ],
        None,
        &[],
    );
    assert!(ok, "bench failed: {out} {err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json report");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["connected_calls"], 4, "{report}");
    assert!(
        report["forwarded_packets"].as_u64().unwrap_or(0) > 500,
        "{report}"
    );
    assert_eq!(report["loss_pct"].as_f64(), Some(0.0), "{report}");
    assert_eq!(report["cycles_connected"], 1000, "{report}");
    assert_eq!(report["legs_alive_after"], 0, "every leg freed: {report}");
    assert_eq!(report["open_legs_after"], 0, "{report}");
    let first = report["rss_after_first_cycles_mb"].as_f64().unwrap_or(0.0);
    let last = report["rss_after_cycles_mb"].as_f64().unwrap_or(f64::MAX);
    assert!(first > 0.0, "{report}");
    assert!(
        last - first < 12.0,
        "the relay's memory stays flat over 900 more calls: {first:.1} MB -> {last:.1} MB"
    );
}
