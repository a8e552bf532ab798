//! The kiosk page the terminal's own browser shows the client: name,
//! clock, the next scheduled call, connection state and one large help
//! button, in the client's language. It is served on loopback by the agent itself, so it keeps
//! working (and says so) when the hub cannot be reached.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::schedule::ClientSchedule;

/// What the kiosk shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KioskView {
    pub client_name: Option<String>,
    /// `fi`, `sv` or `en`.
    pub language: String,
    /// Linked to the hub now.
    pub connected: bool,
    /// Last frame from the hub, milliseconds since the Unix epoch.
    pub last_contact_ms: Option<i64>,
    /// Events on disk waiting for the hub.
    pub pending_events: usize,
    pub help: HelpStatus,
    pub font_scale: f32,
    pub high_contrast: bool,
    pub notice: Option<String>,
    /// The client's coming visits, from the hub or the terminal's cache.
    /// Not sent to the page as is: the page gets the `next_call` line,
    /// worked out at each request so a finished window drops off.
    #[serde(skip)]
    pub schedule: Option<Arc<ClientSchedule>>,
}

impl KioskView {
    /// The language the page is shown in (`fi` unless `sv` or `en`).
    pub fn page_language(&self) -> &'static str {
        match self.language.as_str() {
            "sv" => "sv",
            "en" => "en",
            _ => "fi",
        }
    }

    /// The line about the next coming call at `now_ms`, in the page's
    /// language; `None` when no call is coming or no schedule is known.
    pub fn next_call(&self, now_ms: i64) -> Option<String> {
        self.schedule
            .as_ref()?
            .next_call_text(self.page_language(), now_ms)
    }
}

/// What `/api/state` answers: the view and the next-call line at the time of the request.
#[derive(Serialize)]
struct StateBody<'a> {
    #[serde(flatten)]
    view: &'a KioskView,
    next_call: Option<String>,
}

/// Milliseconds since the Unix epoch; the kiosk's notion of now.
type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Where the client's latest call for help is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HelpStatus {
    Idle,
    /// In the outbox, fsynced.
    Saved,
    /// Stored by the hub.
    Delivered,
}

/// A press of the kiosk's help button, answered with the event key once
/// the event is safe on disk.
pub struct HelpPress {
    pub reply: oneshot::Sender<Result<String, String>>,
}

#[derive(Clone)]
struct KioskState {
    view: watch::Receiver<KioskView>,
    help: mpsc::Sender<HelpPress>,
    now: Clock,
}

const HELP_TIMEOUT: Duration = Duration::from_secs(10);

/// A translated kiosk text.
pub fn text(lang: &str, key: &str) -> String {
    rust_i18n::t!(key, locale = lang).into_owned()
}

const TEXT_KEYS: &[&str] = &[
    "kiosk.greeting",
    "kiosk.greeting_plain",
    "kiosk.online",
    "kiosk.offline",
    "kiosk.agent_down",
    "kiosk.pending",
    "kiosk.help_button",
    "kiosk.help_saved",
    "kiosk.help_delivered",
    "kiosk.help_failed",
    "kiosk.sending",
];

/// The kiosk's routes.
pub fn router(view: watch::Receiver<KioskView>, help: mpsc::Sender<HelpPress>) -> Router {
    router_with_clock(view, help, Arc::new(crate::agent::now_ms))
}

fn router_with_clock(
    view: watch::Receiver<KioskView>,
    help: mpsc::Sender<HelpPress>,
    now: Clock,
) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/state", get(state))
        .route("/api/help", post(press_help))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn(loopback_only))
        .with_state(KioskState { view, help, now })
}

/// Serves the kiosk until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => {
                return ip == "::1";
            }
            _ => return false,
        }
    } else {
        host.split(':').next().unwrap_or("")
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1"
}

/// Only the terminal's own browser may use the kiosk: other Host names
/// (DNS rebinding) and posts from foreign origins are refused.
async fn loopback_only(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !is_loopback_host(host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "the kiosk answers on loopback only",
        )
            .into_response();
    }
    if request.method() == axum::http::Method::POST {
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let ok = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .is_some_and(is_loopback_host);
            if !ok {
                return (StatusCode::FORBIDDEN, "foreign origin").into_response();
            }
        }
    }
    next.run(request).await
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script>` element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn greeting(lang: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => text(lang, "kiosk.greeting").replace("%{name}", name),
        None => text(lang, "kiosk.greeting_plain"),
    }
}

fn status_text(view: &KioskView) -> String {
    let lang = view.language.as_str();
    if view.connected {
        text(lang, "kiosk.online")
    } else {
        text(lang, "kiosk.offline")
    }
}

fn help_text(view: &KioskView) -> String {
    match view.help {
        HelpStatus::Idle => String::new(),
        HelpStatus::Saved => text(&view.language, "kiosk.help_saved"),
        HelpStatus::Delivered => text(&view.language, "kiosk.help_delivered"),
    }
}

fn security_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                 form-action 'self'; frame-ancestors 'none'",
            ),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

async fn page(State(state): State<KioskState>) -> Response {
    let view = state.view.borrow().clone();
    let now = (state.now)();
    (security_headers(), Html(render_page(&view, now))).into_response()
}

fn render_page(view: &KioskView, now_ms: i64) -> String {
    let lang = view.page_language();
    let next_call = view.next_call(now_ms);
    let texts: serde_json::Map<String, serde_json::Value> = TEXT_KEYS
        .iter()
        .map(|k| (k.to_string(), serde_json::Value::String(text(lang, k))))
        .collect();
    let font_px = (28.0 * view.font_scale.clamp(1.0, 3.0)).round();
    let pending = if view.pending_events > 0 {
        text(lang, "kiosk.pending").replace("%{count}", &view.pending_events.to_string())
    } else {
        String::new()
    };
    let (icon, state_class) = if view.connected {
        ("✔", "online")
    } else {
        ("✖", "offline")
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="{lang}" class="{theme}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
:root {{ --bg: #ffffff; --fg: #111111; --ok: #0a5c2b; --bad: #9b0000; --btn: #8a0000; --btn-fg: #ffffff; --focus: #1a4fd6; }}
html.contrast {{ --bg: #000000; --fg: #ffffff; --ok: #7dff9b; --bad: #ffd400; --btn: #ffd400; --btn-fg: #000000; --focus: #00e5ff; }}
html {{ font-size: {font_px}px; }}
body {{ margin: 0; padding: 1rem 1.5rem; background: var(--bg); color: var(--fg);
  font-family: system-ui, "DejaVu Sans", sans-serif; line-height: 1.35; }}
h1 {{ font-size: 1.6rem; margin: 0 0 .5rem; }}
.clock {{ font-size: 3rem; font-weight: 700; margin: 0; font-variant-numeric: tabular-nums; }}
.date {{ font-size: 1.1rem; margin: 0 0 1rem; }}
.next-call {{ font-size: 1.3rem; font-weight: 700; margin: 0 0 1rem; padding: .25rem 0 .25rem .75rem; border-left: 8px solid currentColor; }}
.next-call[hidden] {{ display: none; }}
.status {{ font-size: 1.1rem; font-weight: 700; padding: .5rem .75rem; border: 4px solid currentColor; border-radius: .5rem; }}
.status.online {{ color: var(--ok); }}
.status.offline {{ color: var(--bad); }}
.pending {{ font-size: 1rem; }}
button.help {{ display: block; width: 100%; min-height: 30vh; margin: 1.25rem 0; font: inherit; font-size: max(48px, 2rem);
  font-weight: 800; color: var(--btn-fg); background: var(--btn); border: 6px solid var(--fg); border-radius: 1.5rem; cursor: pointer; }}
button.help:disabled {{ opacity: .85; }}
:focus-visible {{ outline: 6px solid var(--focus); outline-offset: 6px; }}
.message {{ font-size: 1.2rem; font-weight: 700; min-height: 64px; }}
.visually-hidden {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }}
</style>
</head>
<body>
<main>
<h1 id="greeting">{greeting}</h1>
<p class="clock"><span class="visually-hidden">{clock_label} </span><time id="clock"></time></p>
<p class="date" id="date"></p>
<p class="next-call" id="next-call"{next_call_hidden}>{next_call}</p>
<h2 class="status {state_class}" id="status"><span aria-hidden="true" id="status-icon">{icon}</span> <span id="status-text">{status}</span></h2>
<p class="pending" id="pending">{pending}</p>
<button type="button" class="help" id="help">{help_button}</button>
<p class="message" id="message" role="status" aria-live="polite">{help_message}</p>
</main>
<script>
(function () {{
  "use strict";
  var T = {texts};
  var lang = {lang_json};
  var el = function (id) {{ return document.getElementById(id); }};
  function tick() {{
    var now = new Date();
    el("clock").textContent = now.toLocaleTimeString(lang, {{ hour: "2-digit", minute: "2-digit" }});
    el("date").textContent = now.toLocaleDateString(lang, {{ weekday: "long", day: "numeric", month: "long", year: "numeric" }});
  }}
  function show(view) {{
    el("greeting").textContent = view.client_name ? T["kiosk.greeting"].replace("%{{name}}", view.client_name) : T["kiosk.greeting_plain"];
    var status = el("status");
    status.className = "status " + (view.connected ? "online" : "offline");
    el("status-icon").textContent = view.connected ? "\u2714" : "\u2716";
    el("status-text").textContent = view.connected ? T["kiosk.online"] : T["kiosk.offline"];
    el("next-call").textContent = view.next_call || "";
    el("next-call").hidden = !view.next_call;
    el("pending").textContent = view.pending_events > 0 ? T["kiosk.pending"].replace("%{{count}}", String(view.pending_events)) : "";
    if (view.help === "delivered") {{ el("message").textContent = T["kiosk.help_delivered"]; }}
    document.documentElement.className = view.high_contrast ? "contrast" : "";
    document.documentElement.style.fontSize = Math.round(28 * Math.min(3, Math.max(1, view.font_scale))) + "px";
  }}
  function agentDown() {{
    el("status").className = "status offline";
    el("status-icon").textContent = "\u2716";
    el("status-text").textContent = T["kiosk.agent_down"];
  }}
  function poll() {{
    fetch("/api/state", {{ cache: "no-store" }})
      .then(function (r) {{ if (!r.ok) {{ throw new Error(String(r.status)); }} return r.json(); }})
      .then(show, agentDown);
  }}
  el("help").addEventListener("click", function () {{
    var button = el("help");
    button.disabled = true;
    el("message").textContent = T["kiosk.sending"];
    fetch("/api/help", {{ method: "POST" }})
      .then(function (r) {{ if (r.status !== 201) {{ throw new Error(String(r.status)); }} el("message").textContent = T["kiosk.help_saved"]; }})
      .catch(function () {{ el("message").textContent = T["kiosk.help_failed"]; }})
      .then(function () {{ button.disabled = false; poll(); }});
  }});
  tick(); setInterval(tick, 1000);
  poll(); setInterval(poll, 2000);
}}());
</script>
</body>
</html>
"#,
        lang = lang,
        theme = if view.high_contrast { "contrast" } else { "" },
        title = escape(&text(lang, "kiosk.title")),
        font_px = font_px,
        greeting = escape(&greeting(lang, view.client_name.as_deref())),
        clock_label = escape(&text(lang, "kiosk.clock")),
        state_class = state_class,
        icon = icon,
        status = escape(&status_text(view)),
        pending = escape(&pending),
        next_call_hidden = if next_call.is_some() { "" } else { " hidden" },
        next_call = escape(next_call.as_deref().unwrap_or("")),
        help_button = escape(&text(lang, "kiosk.help_button")),
        help_message = escape(&help_text(view)),
        texts = script_json(&serde_json::Value::Object(texts)),
        lang_json = script_json(&serde_json::Value::String(lang.to_string())),
    )
}

async fn state(State(state): State<KioskState>) -> Response {
    let view = state.view.borrow().clone();
    let next_call = view.next_call((state.now)());
    let body = StateBody {
        view: &view,
        next_call,
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn press_help(State(state): State<KioskState>, _headers: HeaderMap) -> Response {
    let (reply, answer) = oneshot::channel();
    let unavailable = |message: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": message })),
        )
            .into_response()
    };
    if state.help.send(HelpPress { reply }).await.is_err() {
        return unavailable("the terminal is shutting down".into());
    }
    match tokio::time::timeout(HELP_TIMEOUT, answer).await {
        Ok(Ok(Ok(key))) => {
            (StatusCode::CREATED, Json(serde_json::json!({ "key": key }))).into_response()
        }
        Ok(Ok(Err(message))) => unavailable(message),
        Ok(Err(_)) => unavailable("the terminal did not answer".into()),
        Err(_) => unavailable("saving the call for help timed out".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn view(lang: &str) -> KioskView {
        KioskView {
            client_name: Some("Aino <b>&".into()),
            language: lang.into(),
            connected: true,
            last_contact_ms: None,
            pending_events: 0,
            help: HelpStatus::Idle,
            font_scale: 1.5,
            high_contrast: false,
            notice: None,
            schedule: None,
        }
    }

    /// Milliseconds of a UTC instant written as RFC 3339.
    fn ms(utc: &str) -> i64 {
        utc.parse::<jiff::Timestamp>()
            .expect("timestamp")
            .as_millisecond()
    }

    fn visit(id: &str, starts: &str, nurse: Option<&str>) -> etahoiva_proto::ScheduledVisit {
        let starts_at = ms(starts);
        etahoiva_proto::ScheduledVisit {
            id: id.into(),
            starts_at,
            window_start: starts_at - 15 * 60_000,
            window_end: starts_at + 30 * 60_000,
            length_min: 15,
            purpose: "Lääkehoidon seuranta".into(),
            nurse_name: nurse.map(String::from),
            status: "planned".into(),
        }
    }

    /// Two calls in Helsinki: Tuesday 24 November 2026 at 14:00 with
    /// Anna, Wednesday at 8:00 with Liisa.
    fn with_schedule(mut v: KioskView) -> KioskView {
        let schedule = etahoiva_proto::Schedule {
            time_zone: "Europe/Helsinki".into(),
            generated_at: 1,
            visits: vec![
                visit("v1", "2026-11-24T12:00:00Z", Some("Anna")),
                visit("v2", "2026-11-25T06:00:00Z", Some("Liisa <i>")),
            ],
        };
        v.schedule = Some(Arc::new(ClientSchedule::new(schedule)));
        v
    }

    /// A router whose clock the test sets.
    fn router_at(
        view: watch::Receiver<KioskView>,
        clock: &Arc<std::sync::atomic::AtomicI64>,
    ) -> Router {
        let (tx, _rx) = mpsc::channel(1);
        let clock = clock.clone();
        router_with_clock(
            view,
            tx,
            Arc::new(move || clock.load(std::sync::atomic::Ordering::Relaxed)),
        )
    }

    async fn next_call_in_state(app: Router) -> serde_json::Value {
        let (status, body) = call(app, get("/api/state")).await;
        assert_eq!(status, StatusCode::OK);
        let state: serde_json::Value = serde_json::from_str(&body).expect("json");
        state["next_call"].clone()
    }

    async fn call(app: Router, request: Request<Body>) -> (StatusCode, String) {
        let response = app.oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path)
            .header(header::HOST, "127.0.0.1:8080")
            .body(Body::empty())
            .expect("request")
    }

    fn post(path: &str) -> Request<Body> {
        Request::post(path)
            .header(header::HOST, "localhost:8080")
            .body(Body::empty())
            .expect("request")
    }

    #[tokio::test]
    async fn the_page_speaks_the_clients_language_and_escapes_names() {
        for (lang, phrase) in [
            ("fi", "Hyvää päivää, Aino &lt;b&gt;&amp;"),
            ("sv", "God dag, Aino &lt;b&gt;&amp;"),
            ("en", "Good day, Aino &lt;b&gt;&amp;"),
        ] {
            let (_keep, rx) = watch::channel(view(lang));
            let (tx, _rx) = mpsc::channel(1);
            let (status, body) = call(router(rx, tx), get("/")).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains(&format!("<html lang=\"{lang}\"")), "{lang}");
            assert!(body.contains(phrase), "{lang}: greeting missing");
            assert!(body.contains(&text(lang, "kiosk.online")));
            assert!(!body.contains("Aino <b>"), "raw name in page");
            assert!(!body.contains("</script><"), "script context broken");
        }
        assert_ne!(
            text("fi", "kiosk.help_button"),
            text("sv", "kiosk.help_button")
        );
        assert_ne!(
            text("sv", "kiosk.help_button"),
            text("en", "kiosk.help_button")
        );
    }

    #[tokio::test]
    async fn offline_state_is_shown_and_followed() {
        let mut offline = view("fi");
        offline.connected = false;
        offline.pending_events = 2;
        let (keep, rx) = watch::channel(offline);
        let (tx, _rx) = mpsc::channel(1);
        let app = router(rx, tx);
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(body.contains(&escape(&text("fi", "kiosk.offline"))));
        assert!(body.contains("Lähettämättä: 2"));
        keep.send_modify(|v| {
            v.connected = true;
            v.help = HelpStatus::Delivered;
        });
        let (status, body) = call(app, get("/api/state")).await;
        assert_eq!(status, StatusCode::OK);
        let state: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(state["connected"], true);
        assert_eq!(state["help"], "delivered");
        assert_eq!(state["pending_events"], 2);
    }

    #[tokio::test]
    async fn the_next_call_is_on_the_first_page_and_follows_the_clock() {
        use std::sync::atomic::{AtomicI64, Ordering};
        // Tuesday 24 November 2026, 9:00 in Helsinki.
        let clock = Arc::new(AtomicI64::new(ms("2026-11-24T07:00:00Z")));
        let (_keep, rx) = watch::channel(with_schedule(view("fi")));
        let app = router_at(rx, &clock);
        let (status, body) = call(app.clone(), get("/")).await;
        assert_eq!(status, StatusCode::OK);
        let line = "Seuraava puhelu tänään klo 14.00, hoitaja Anna";
        assert!(
            body.contains(&format!(
                r#"<p class="next-call" id="next-call">{line}</p>"#
            )),
            "next call not rendered on the first load"
        );
        assert_eq!(next_call_in_state(app.clone()).await, line);
        // The care plan itself stays on the terminal.
        let (_, state) = call(app.clone(), get("/api/state")).await;
        assert!(!state.contains("Lääkehoidon") && !state.contains("\"visits\""));

        // Anna's window ends at 14:30: Liisa's call tomorrow is next.
        clock.store(ms("2026-11-24T12:30:00Z"), Ordering::Relaxed);
        assert_eq!(
            next_call_in_state(app.clone()).await,
            "Seuraava puhelu huomenna klo 8.00, hoitaja Liisa <i>"
        );
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(body.contains("huomenna klo 8.00, hoitaja Liisa &lt;i&gt;</p>"));
        assert!(!body.contains("Liisa <i>"), "raw name in page");

        // After midnight the same call is today.
        clock.store(ms("2026-11-24T22:30:00Z"), Ordering::Relaxed);
        assert_eq!(
            next_call_in_state(app.clone()).await,
            "Seuraava puhelu tänään klo 8.00, hoitaja Liisa <i>"
        );

        // Nothing left: no line, and the empty paragraph is hidden.
        clock.store(ms("2026-11-25T06:30:00Z"), Ordering::Relaxed);
        assert_eq!(
            next_call_in_state(app.clone()).await,
            serde_json::Value::Null
        );
        let (_, body) = call(app, get("/")).await;
        assert!(body.contains(r#"<p class="next-call" id="next-call" hidden></p>"#));
    }

    #[tokio::test]
    async fn the_next_call_speaks_the_clients_language() {
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(ms(
            "2026-11-23T07:00:00Z",
        )));
        for (lang, line) in [
            ("fi", "Seuraava puhelu huomenna klo 14.00, hoitaja Anna"),
            ("sv", "Nästa samtal i morgon kl. 14.00, skötare Anna"),
            ("en", "Next call tomorrow at 14:00, nurse Anna"),
        ] {
            let (keep, rx) = watch::channel(with_schedule(view(lang)));
            let app = router_at(rx, &clock);
            let (_, body) = call(app.clone(), get("/")).await;
            assert!(body.contains(&format!(">{line}</p>")), "{lang}");
            assert_eq!(next_call_in_state(app.clone()).await, line, "{lang}");
            // The language changes with pushed settings.
            keep.send_modify(|v| v.language = "sv".into());
            let now_sv = next_call_in_state(app).await;
            assert!(now_sv
                .as_str()
                .is_some_and(|t| t.starts_with("Nästa samtal")));
        }
    }

    #[tokio::test]
    async fn the_next_call_stays_while_offline() {
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(ms(
            "2026-11-24T07:00:00Z",
        )));
        let mut offline = with_schedule(view("sv"));
        offline.connected = false;
        let (_keep, rx) = watch::channel(offline);
        let app = router_at(rx, &clock);
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(body.contains(&escape(&text("sv", "kiosk.offline"))));
        assert!(body.contains(">Nästa samtal i dag kl. 14.00, skötare Anna</p>"));
        let (_, state) = call(app, get("/api/state")).await;
        let state: serde_json::Value = serde_json::from_str(&state).expect("json");
        assert_eq!(state["connected"], false);
        assert_eq!(
            state["next_call"],
            "Nästa samtal i dag kl. 14.00, skötare Anna"
        );
    }

    #[tokio::test]
    async fn without_a_schedule_there_is_no_next_call_line() {
        let (_keep, rx) = watch::channel(view("en"));
        let (tx, _rx) = mpsc::channel(1);
        let app = router(rx, tx);
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(body.contains(r#"<p class="next-call" id="next-call" hidden></p>"#));
        assert!(!body.contains("Next call"));
        assert_eq!(next_call_in_state(app).await, serde_json::Value::Null);
    }

    #[tokio::test]
    async fn help_presses_report_what_the_agent_answers() {
        let (_keep, rx) = watch::channel(view("en"));
        let (tx, mut presses) = mpsc::channel::<HelpPress>(4);
        let app = router(rx, tx);
        let agent = tokio::spawn(async move {
            let first = presses.recv().await.expect("press");
            let _ = first.reply.send(Ok("k-1".into()));
            let second = presses.recv().await.expect("press");
            let _ = second.reply.send(Err("the outbox disk is full".into()));
        });
        let (status, body) = call(app.clone(), post("/api/help")).await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(body.contains("k-1"));
        let (status, body) = call(app.clone(), post("/api/help")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("full"));
        agent.await.expect("agent");
        // The agent is gone: the press cannot be taken.
        let (status, _) = call(app, post("/api/help")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn only_loopback_hosts_and_origins_are_served() {
        let (_keep, rx) = watch::channel(view("fi"));
        let (tx, _rx) = mpsc::channel(1);
        let app = router(rx, tx);
        let rebound = Request::get("/")
            .header(header::HOST, "evil.example:8080")
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            call(app.clone(), rebound).await.0,
            StatusCode::MISDIRECTED_REQUEST
        );
        let v6 = Request::get("/healthz")
            .header(header::HOST, "[::1]:8080")
            .body(Body::empty())
            .expect("request");
        assert_eq!(call(app.clone(), v6).await.0, StatusCode::OK);
        let foreign = Request::post("/api/help")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .expect("request");
        assert_eq!(call(app, foreign).await.0, StatusCode::FORBIDDEN);
        assert!(!is_loopback_host("127.0.0.1.evil.example"));
        assert!(!is_loopback_host("[::2]:80"));
    }
}
