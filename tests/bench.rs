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
