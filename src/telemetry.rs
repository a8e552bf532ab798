//! Logs (human-readable or JSON), request spans with ids, and Prometheus metrics.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Installs the global log subscriber once; later calls are ignored.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = std::env::var("ETAHOIVA_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(quiet_media_engine(&spec)).ok())
        .or_else(|| EnvFilter::try_new(quiet_media_engine(filter)).ok())
        .unwrap_or_else(|| EnvFilter::new(quiet_media_engine("info")));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    let _ = result;
}

/// The media engine's crates report ordinary moments of a connection (a
/// check it cannot answer yet, a retransmitted packet, a replaced
/// interceptor) as warnings; the relay logs and counts what matters itself.
/// They speak at error level unless the filter names them.
const MEDIA_ENGINE_TARGETS: &[&str] = &[
    "rtc",
    "rtc_dtls",
    "rtc_ice",
    "rtc_interceptor",
    "rtc_srtp",
    "rtc_sctp",
    "rtc_rtp",
    "rtc_rtcp",
];

/// `spec` with the media engine's crates at error level, unless it names them.
fn quiet_media_engine(spec: &str) -> String {
    if spec.contains("rtc") {
        return spec.to_string();
    }
    let mut out = spec.trim().to_string();
    for target in MEDIA_ENGINE_TARGETS {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(target);
        out.push_str("=error");
    }
    out
}

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process.
pub fn init_metrics() {
    METRICS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        Some(handle)
    });
}

/// The metrics in Prometheus text format.
pub fn render_metrics() -> String {
    match METRICS.get() {
        Some(Some(handle)) => handle.render(),
        _ => String::new(),
    }
}

/// Counts requests and their durations by method, route template and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("etahoiva_http_requests_total", &labels).increment(1);
    metrics::histogram!("etahoiva_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_engine_is_quiet_unless_asked_for() {
        let quiet = quiet_media_engine("info");
        assert!(quiet.starts_with("info,rtc=error,rtc_dtls=error"));
        assert!(EnvFilter::try_new(&quiet).is_ok());
        assert_eq!(
            quiet_media_engine("info,rtc_ice=trace"),
            "info,rtc_ice=trace"
        );
        assert!(quiet_media_engine("").starts_with("rtc=error"));
    }
}
