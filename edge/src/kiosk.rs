//! The kiosk page the terminal's own browser shows the client: name,
//! clock, where the client's alarm is ("help is on the way"), messages
//! from the care unit (each with a big OK button), the next scheduled
//! call, the call on now (with big answer, decline and end buttons, and
//! once the client has answered, the caller's picture and sound: the page
//! is the terminal's WebRTC peer of the hub's relay), connection state and
//! one large help button, in the client's language. It is served on
//! loopback by the agent itself, so it keeps working (and says so) when
//! the hub cannot be reached.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use etahoiva_proto::{AlarmProgress, CallKind, CallState};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::agent::MediaOffer;
use crate::alarm::AlarmBoard;
use crate::calls::{Call, CallError, ClientAction, Phase};
use crate::notices::{Dismissed, Notice};
use crate::schedule::{fill, ClientSchedule};

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
    /// Messages for the client from the care unit, newest first, shown
    /// until the client presses OK.
    pub notices: Vec<Notice>,
    /// The client's alarms as the hub reports them. The page gets the one
    /// to show as `alarm` ([`AlarmView`]), worked out at each request so
    /// a handled alarm leaves the screen after a while.
    #[serde(skip)]
    pub alarms: AlarmBoard,
    /// The client's coming visits, from the hub or the terminal's cache.
    /// Not sent to the page as is: the page gets the `next_call` line,
    /// worked out at each request so a finished window drops off.
    #[serde(skip)]
    pub schedule: Option<Arc<ClientSchedule>>,
    /// The call the terminal serves now. The page gets it as `call`
    /// ([`CallView`]), in words.
    #[serde(skip)]
    pub call: Option<Call>,
}

/// The call on the kiosk: what to show and which buttons.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallView {
    /// Sent back with the client's answer, so a press meant for a call
    /// that has just been replaced does not act on the new one.
    pub call_id: String,
    pub kind: CallKind,
    /// `ringing` (answer and decline buttons) or `answered` (end button).
    pub state: CallState,
    /// "Hoitaja Anna soittaa", "Puhelu käynnissä: Anna".
    pub title: String,
    /// Set when this call cut the previous one.
    pub cut: Option<String>,
    /// The first letter of the caller's name, shown in a circle next to
    /// it while the call rings (there are no photos).
    pub initial: Option<String>,
    /// While the call rings and answers by itself: when, milliseconds since
    /// the Unix epoch (the page counts down to it on the same clock).
    pub auto_answer_at: Option<i64>,
}

/// The alarm on the kiosk, in words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmView {
    pub alert_id: String,
    pub progress: AlarmProgress,
    /// "Apu on tulossa."
    pub text: String,
    /// Resolved or cancelled: shown for a while, then the normal screen.
    pub closed: bool,
    /// Hub clock of the step, milliseconds since the Unix epoch.
    pub at: i64,
}

/// Longest caller name shown; the rest is cut.
const MAX_CALLER_CHARS: usize = 60;

/// The caller's name as shown: trimmed, without control characters, bounded.
fn caller_name(caller: &str) -> String {
    caller
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CALLER_CHARS)
        .collect()
}

/// The first letter of a caller's name, in capitals; `None` when the name
/// has no letter or digit.
fn caller_initial(name: &str) -> Option<String> {
    let first = name.chars().find(|c| c.is_alphanumeric())?;
    Some(first.to_uppercase().collect())
}

/// "Puhelu avautuu itsestään 10 sekunnin kuluttua": the countdown of a
/// call that answers by itself, `seconds` before it does, in `lang`.
pub fn countdown_text(lang: &str, seconds: i64) -> String {
    let key = match seconds {
        ..=0 => "kiosk.call_auto_answer_now",
        1 => "kiosk.call_auto_answer_in_one",
        _ => "kiosk.call_auto_answer_in",
    };
    fill(&text(lang, key), &[("n", &seconds.to_string())])
}

/// Whole seconds left until `deadline_ms` at `now_ms`, rounded up.
fn seconds_left(deadline_ms: i64, now_ms: i64) -> i64 {
    let left = deadline_ms.saturating_sub(now_ms).max(0);
    left / 1000 + i64::from(left % 1000 != 0)
}

/// What the kiosk says about `call` in `lang`.
pub fn describe_call(lang: &str, call: &Call) -> CallView {
    let name = caller_name(&call.caller);
    let title_key = match (call.phase, call.kind) {
        (Phase::Answered, _) => "kiosk.call_on",
        (Phase::Ringing, CallKind::ScheduledCare) => "kiosk.call_from_nurse",
        (Phase::Ringing, CallKind::Alarm) => "kiosk.call_from_alarm",
        (Phase::Ringing, _) => "kiosk.call_from",
    };
    let cut = call.cut.map(|_| {
        let key = match call.kind {
            CallKind::ScheduledCare => "kiosk.call_cut_by_nurse",
            CallKind::Alarm => "kiosk.call_cut_by_alarm",
            _ => "kiosk.call_cut_by",
        };
        fill(&text(lang, key), &[("name", &name)])
    });
    let ringing = call.phase == Phase::Ringing;
    CallView {
        call_id: call.id.clone(),
        kind: call.kind,
        state: call.phase.state(),
        title: fill(&text(lang, title_key), &[("name", &name)]),
        cut,
        initial: caller_initial(&name),
        auto_answer_at: call.auto_answer_at.filter(|_| ringing),
    }
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

    /// The call on now, in the page's language.
    pub fn call_view(&self) -> Option<CallView> {
        self.call
            .as_ref()
            .map(|call| describe_call(self.page_language(), call))
    }

    /// The alarm to show at `now_ms`, in the page's language. A handled
    /// alarm gives way as soon as the client asks for help again.
    pub fn alarm_view(&self, now_ms: i64) -> Option<AlarmView> {
        let alarm = self.alarms.shown(now_ms)?;
        if alarm.is_closed() && self.help != HelpStatus::Idle {
            return None;
        }
        Some(AlarmView {
            alert_id: alarm.alert_id.clone(),
            progress: alarm.progress,
            text: crate::alarm::describe(self.page_language(), alarm.progress)?,
            closed: alarm.is_closed(),
            at: alarm.at,
        })
    }
}

/// What `/api/state` answers: the view and the next-call line at the time of the request.
#[derive(Serialize)]
struct StateBody<'a> {
    #[serde(flatten)]
    view: &'a KioskView,
    next_call: Option<String>,
    call: Option<CallView>,
    alarm: Option<AlarmView>,
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

/// The client's answer to a call on the kiosk, answered with the call's
/// state afterwards.
pub struct CallPress {
    pub action: ClientAction,
    pub call_id: String,
    pub reply: oneshot::Sender<Result<CallState, CallError>>,
}

/// The client's OK on a notice, answered with what became of it.
pub struct NoticePress {
    pub id: String,
    pub reply: oneshot::Sender<Dismissed>,
}

/// What the kiosk page asks of the call's media.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaRequest {
    /// The page's answer (SDP) to the hub's offer.
    Answer { sdp: String },
    /// The page's connection failed or its network changed: a new offer
    /// with fresh ICE credentials, please.
    RestartIce,
}

/// A media request of the kiosk page for one leg of the current call,
/// answered with whether it was for the current call's offer (and went
/// to the hub).
pub struct MediaPress {
    pub call_id: String,
    pub leg_id: String,
    pub request: MediaRequest,
    pub reply: oneshot::Sender<bool>,
}

/// The kiosk's side of the call's media: the hub's offers as the agent
/// keeps them, and where the page's answers and restart requests go.
#[derive(Clone)]
pub struct MediaLink {
    pub offers: watch::Receiver<Option<MediaOffer>>,
    pub presses: mpsc::Sender<MediaPress>,
}

#[derive(Clone)]
struct KioskState {
    view: watch::Receiver<KioskView>,
    help: mpsc::Sender<HelpPress>,
    calls: mpsc::Sender<CallPress>,
    notices: mpsc::Sender<NoticePress>,
    media: MediaLink,
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
    "kiosk.call_answer",
    "kiosk.call_decline",
    "kiosk.call_hang_up",
    "kiosk.call_gone",
    "kiosk.call_failed",
    "kiosk.call_auto_answer_in",
    "kiosk.call_auto_answer_in_one",
    "kiosk.call_auto_answer_now",
    "kiosk.notice_ok",
    "kiosk.notice_failed",
    "kiosk.media_connecting",
    "kiosk.media_reconnecting",
    "kiosk.media_failed",
    "kiosk.media_no_camera",
];

/// Labels of the call's picture, said in the page itself.
pub const MEDIA_LABEL_KEYS: &[&str] = &[
    "kiosk.media_label",
    "kiosk.media_remote",
    "kiosk.media_local",
];

/// The call texts (each must exist in fi, sv and en).
pub const CALL_TEXT_KEYS: &[&str] = &[
    "kiosk.call_from_nurse",
    "kiosk.call_from",
    "kiosk.call_from_alarm",
    "kiosk.call_on",
    "kiosk.call_cut_by_nurse",
    "kiosk.call_cut_by_alarm",
    "kiosk.call_cut_by",
    "kiosk.call_answer",
    "kiosk.call_decline",
    "kiosk.call_hang_up",
    "kiosk.call_gone",
    "kiosk.call_failed",
    "kiosk.call_auto_answer_in",
    "kiosk.call_auto_answer_in_one",
    "kiosk.call_auto_answer_now",
];

/// The kiosk's routes.
pub fn router(
    view: watch::Receiver<KioskView>,
    help: mpsc::Sender<HelpPress>,
    calls: mpsc::Sender<CallPress>,
    notices: mpsc::Sender<NoticePress>,
    media: MediaLink,
) -> Router {
    router_with_clock(
        view,
        help,
        calls,
        notices,
        media,
        Arc::new(crate::agent::now_ms),
    )
}

fn router_with_clock(
    view: watch::Receiver<KioskView>,
    help: mpsc::Sender<HelpPress>,
    calls: mpsc::Sender<CallPress>,
    notices: mpsc::Sender<NoticePress>,
    media: MediaLink,
    now: Clock,
) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/state", get(state))
        .route("/api/help", post(press_help))
        .route("/api/call/accept", post(call_accept))
        .route("/api/call/decline", post(call_decline))
        .route("/api/call/hang-up", post(call_hang_up))
        .route("/api/notice/dismiss", post(dismiss_notice))
        .route("/api/media", get(media_offer))
        .route(
            "/api/media/answer",
            post(media_answer).layer(DefaultBodyLimit::max(MAX_MEDIA_BODY_BYTES)),
        )
        .route(
            "/api/media/restart",
            post(media_restart).layer(DefaultBodyLimit::max(MAX_MEDIA_BODY_BYTES)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn(loopback_only))
        .with_state(KioskState {
            view,
            help,
            calls,
            notices,
            media,
            now,
        })
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

/// The notices as the page shows them without JavaScript: each text with
/// an OK button in a plain form, so the client can dismiss it either way.
fn render_notices(lang: &str, notices: &[Notice]) -> String {
    let ok = escape(&text(lang, "kiosk.notice_ok"));
    notices
        .iter()
        .enumerate()
        .map(|(i, notice)| {
            format!(
                r#"<div class="notice" data-id="{id}">
<p class="notice-text" id="notice-text-{i}">{text}</p>
<form method="post" action="/api/notice/dismiss"><input type="hidden" name="id" value="{id}"><button type="submit" class="ok" aria-describedby="notice-text-{i}">{ok}</button></form>
</div>
"#,
                id = escape(&notice.id),
                text = escape(&notice.text),
            )
        })
        .collect()
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

/// The page's part of a call's picture and sound, inside the page's script
/// (it uses `T` and `el`). The page is the terminal's WebRTC peer: the hub
/// offers (the agent keeps the offer at `/api/media`), the page answers
/// once the client has answered the call, by a press or by itself. The
/// camera and microphone open only then, and close when the call ends.
const MEDIA_SCRIPT: &str = r#"
  var media = null;
  // For inspection (tests, support): the connection and the camera.
  window.etahoivaKioskCall = {
    get pc() { return media ? media.pc : null; },
    get local() { return media ? media.local : null; },
    get callId() { return media ? media.callId : null; },
    get legId() { return media ? media.legId : null; },
    get state() { return media ? media.state : "idle"; },
    restartIce: function () { restartIce(); }
  };
  function mediaSay(m, state) {
    if (media !== m) { return; }
    m.state = state;
    var words = state === "connected" ? "" : T["kiosk.media_" + state];
    if (m.noCamera) { words = words ? words + " " + T["kiosk.media_no_camera"] : T["kiosk.media_no_camera"]; }
    var line = el("media-status");
    if (line.textContent !== words) { line.textContent = words; }
  }
  function stopTracks(stream) {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
  }
  function openCamera() {
    var devices = navigator.mediaDevices;
    if (!devices || !devices.getUserMedia) { return Promise.resolve(null); }
    return devices.getUserMedia({ audio: true, video: true })
      // Without a camera the client can still be heard.
      .catch(function () { return devices.getUserMedia({ audio: true }); })
      .catch(function () { return null; });
  }
  function play(element) {
    var playing = element.play();
    if (playing && playing.catch) { playing.catch(function () {}); }
  }
  function startMedia(id) {
    var m = { callId: id, pc: null, legId: null, sdp: null, answered: false, local: null,
      noCamera: false, ready: false, busy: false, fetching: false, retryAt: 0,
      restartTimer: null, watchdog: null, state: "connecting", remote: new MediaStream() };
    media = m;
    el("call-media").hidden = false;
    mediaSay(m, "connecting");
    openCamera().then(function (stream) {
      // The call may have ended while the camera was opening.
      if (media !== m) { stopTracks(stream); return; }
      m.local = stream;
      m.noCamera = !stream || stream.getVideoTracks().length === 0 || stream.getAudioTracks().length === 0;
      if (stream) { el("local-video").srcObject = stream; play(el("local-video")); }
      m.ready = true;
      mediaSay(m, m.state);
      fetchOffer(m);
    });
  }
  function stopMedia() {
    var m = media;
    if (!m) { return; }
    media = null;
    clearTimeout(m.restartTimer);
    clearTimeout(m.watchdog);
    if (m.pc) { m.pc.close(); }
    stopTracks(m.local);
    ["remote-video", "local-video", "remote-audio"].forEach(function (id) { el(id).srcObject = null; });
    el("media-status").textContent = "";
    el("call-media").hidden = true;
  }
  // Media follows the call: on once it is answered, off when it ends or
  // another call takes its place.
  function syncMedia(call) {
    var on = !!call && call.state === "answered";
    if (media && (!on || media.callId !== call.call_id)) { stopMedia(); }
    if (on && !media) { startMedia(call.call_id); }
  }
  function newConnection(m, iceServers) {
    var pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require", iceServers: iceServers || [] });
    pc.ontrack = function (event) {
      if (media !== m) { return; }
      if (event.track.kind === "audio") {
        el("remote-audio").srcObject = new MediaStream([event.track]);
        play(el("remote-audio"));
      } else {
        m.remote.getVideoTracks().forEach(function (old) { m.remote.removeTrack(old); });
        m.remote.addTrack(event.track);
        el("remote-video").srcObject = m.remote;
        play(el("remote-video"));
      }
    };
    pc.onconnectionstatechange = function () {
      if (media !== m || m.pc !== pc) { return; }
      var s = pc.connectionState;
      if (s === "connected") {
        clearTimeout(m.restartTimer);
        clearTimeout(m.watchdog);
        m.restartTimer = m.watchdog = null;
        mediaSay(m, "connected");
      } else if (s === "disconnected") {
        // A moment's loss recovers by itself; a longer one needs fresh ICE.
        mediaSay(m, "reconnecting");
        clearTimeout(m.restartTimer);
        m.restartTimer = setTimeout(restartIce, 2000);
      } else if (s === "failed") {
        mediaSay(m, "reconnecting");
        restartIce();
      }
    };
    return pc;
  }
  function attachLocalTracks(m) {
    m.pc.getTransceivers().forEach(function (transceiver) {
      var kind = transceiver.receiver.track.kind;
      var track = m.local && m.local.getTracks().filter(function (x) { return x.kind === kind; })[0];
      if (track) {
        transceiver.sender.replaceTrack(track);
        transceiver.direction = "sendrecv";
      } else {
        transceiver.direction = "recvonly";
      }
    });
  }
  // The page does not trickle candidates: its answer carries those gathered.
  function gathered(pc) {
    if (pc.iceGatheringState === "complete") { return Promise.resolve(); }
    return new Promise(function (resolve) {
      var timer = setTimeout(done, 3000);
      function check() { if (pc.iceGatheringState === "complete") { done(); } }
      function done() {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }
  function post(path, body) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }
  function applyOffer(m, offer) {
    // A new offer for the leg already answered is an ICE restart: same
    // connection, fresh credentials. Anything else is a new connection.
    var restart = !!m.pc && m.answered && m.legId === offer.leg_id;
    if (!restart) {
      if (m.pc) { m.pc.close(); }
      m.pc = newConnection(m, offer.ice_servers);
      m.legId = offer.leg_id;
      m.answered = false;
    }
    var pc = m.pc;
    m.sdp = offer.sdp;
    m.busy = true;
    pc.setRemoteDescription({ type: "offer", sdp: offer.sdp })
      .then(function () {
        if (!restart) { attachLocalTracks(m); }
        return pc.createAnswer();
      })
      .then(function (answer) { return pc.setLocalDescription(answer); })
      .then(function () { return gathered(pc); })
      .then(function () {
        if (media !== m || m.pc !== pc) { return; }
        return post("/api/media/answer", { call_id: m.callId, leg_id: offer.leg_id, sdp: pc.localDescription.sdp })
          .then(function (r) {
            // 409: the offer is no longer the call's; a newer one is fetched.
            if (r.ok) {
              m.answered = true;
              if (pc.connectionState === "connected") { mediaSay(m, "connected"); }
            }
            else if (r.status !== 409) { throw new Error(String(r.status)); }
          });
      })
      .catch(function () {
        // Tried again in a moment.
        m.sdp = null;
        m.retryAt = Date.now() + 3000;
        mediaSay(m, "failed");
      })
      .then(function () { m.busy = false; });
  }
  function fetchOffer(m) {
    if (media !== m || !m.ready || m.busy || m.fetching || Date.now() < m.retryAt) { return; }
    m.fetching = true;
    fetch("/api/media", { cache: "no-store" })
      .then(function (r) { return r.status === 200 ? r.json() : null; })
      .then(function (offer) {
        m.fetching = false;
        if (media === m && offer && offer.call_id === m.callId && offer.sdp !== m.sdp && !m.busy) {
          applyOffer(m, offer);
        }
      }, function () { m.fetching = false; });
  }
  function restartIce() {
    var m = media;
    if (!m || !m.legId) { return; }
    clearTimeout(m.restartTimer);
    m.restartTimer = null;
    if (!m.pc || m.pc.connectionState !== "connected") { mediaSay(m, "reconnecting"); }
    // The new offer comes to /api/media; until the connection is back, ask again now and then.
    post("/api/media/restart", { call_id: m.callId, leg_id: m.legId }).catch(function () {});
    clearTimeout(m.watchdog);
    m.watchdog = setTimeout(function () {
      if (media === m && m.pc && m.pc.connectionState !== "connected") { restartIce(); }
    }, 10000);
  }
  window.addEventListener("online", restartIce);
  setInterval(function () { if (media) { fetchOffer(media); } }, 1000);
"#;

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
    let call = view.call_view();
    let ringing = call.as_ref().is_some_and(|c| c.state == CallState::Ringing);
    let answered = call
        .as_ref()
        .is_some_and(|c| c.state == CallState::Answered);
    let hidden = |shown: bool| if shown { "" } else { " hidden" };
    let call_title = call.as_ref().map(|c| c.title.as_str()).unwrap_or("");
    let call_cut = call.as_ref().and_then(|c| c.cut.as_deref()).unwrap_or("");
    let avatar = call
        .as_ref()
        .filter(|_| ringing)
        .and_then(|c| c.initial.as_deref())
        .unwrap_or("");
    let counting = call
        .as_ref()
        .and_then(|c| Some((c.call_id.as_str(), c.auto_answer_at?)));
    let countdown = counting
        .map(|(_, at)| countdown_text(lang, seconds_left(at, now_ms)))
        .unwrap_or_default();
    let alarm = view.alarm_view(now_ms);
    let alarm_class = if alarm.as_ref().is_some_and(|a| a.closed) {
        "alarm-text closed"
    } else {
        "alarm-text"
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
<noscript><meta http-equiv="refresh" content="30"></noscript>
<style>
:root {{ --bg: #ffffff; --fg: #111111; --ok: #0a5c2b; --bad: #9b0000; --btn: #8a0000; --btn-fg: #ffffff; --focus: #1a4fd6;
  --answer: #0a5c2b; --answer-fg: #ffffff; --end: #8a0000; --end-fg: #ffffff;
  --alarm: #8a0000; --alarm-bg: #fff4d6; --ok-btn: #0a5c2b; --ok-btn-fg: #ffffff; --avatar: #1a4fd6; --avatar-fg: #ffffff; }}
html.contrast {{ --bg: #000000; --fg: #ffffff; --ok: #7dff9b; --bad: #ffd400; --btn: #ffd400; --btn-fg: #000000; --focus: #00e5ff;
  --answer: #7dff9b; --answer-fg: #000000; --end: #ffd400; --end-fg: #000000;
  --alarm: #ffd400; --alarm-bg: #000000; --ok-btn: #7dff9b; --ok-btn-fg: #000000; --avatar: #ffffff; --avatar-fg: #000000; }}
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
.call-title {{ font-size: 1.8rem; font-weight: 800; margin: .5rem 0; }}
.call-caller {{ display: flex; align-items: center; gap: 1rem; }}
.avatar {{ flex: none; display: flex; align-items: center; justify-content: center; width: 4.5rem; height: 4.5rem;
  border-radius: 50%; font-size: 2.6rem; font-weight: 800; line-height: 1; color: var(--avatar-fg); background: var(--avatar);
  border: 6px solid var(--fg); }}
.call-countdown {{ font-size: 1.5rem; font-weight: 800; margin: .25rem 0 .5rem; padding: .5rem .75rem; border: 6px solid var(--answer);
  border-radius: 1rem; font-variant-numeric: tabular-nums; }}
.call-cut {{ font-size: 1.2rem; font-weight: 700; margin: 0 0 .5rem; padding: .25rem 0 .25rem .75rem; border-left: 8px solid currentColor; }}
.call-buttons {{ display: flex; gap: 1.25rem; margin: 1rem 0; }}
.call-buttons button {{ flex: 1; min-height: 25vh; font: inherit; font-size: max(44px, 1.8rem); font-weight: 800;
  border: 6px solid var(--fg); border-radius: 1.5rem; cursor: pointer; }}
button.answer {{ color: var(--answer-fg); background: var(--answer); }}
button.decline, button.hang-up {{ color: var(--end-fg); background: var(--end); }}
.call-buttons button:disabled {{ opacity: .85; }}
.call-media {{ position: relative; margin: .5rem 0; background: #000000; border: 6px solid var(--fg); border-radius: 1rem; overflow: hidden; }}
.remote-video {{ display: block; width: 100%; height: 50vh; object-fit: contain; background: #000000; }}
.local-video {{ position: absolute; right: .75rem; bottom: .75rem; width: 24%; max-height: 40%; object-fit: cover;
  border: 4px solid #ffffff; border-radius: .5rem; background: #333333; transform: scaleX(-1); }}
.media-status {{ position: absolute; left: 0; right: 0; top: 0; margin: 0; padding: .5rem .75rem; font-size: 1.3rem; font-weight: 800;
  color: #ffffff; background: rgba(0, 0, 0, .7); }}
.media-status:empty {{ display: none; }}
.alarm-text {{ font-size: 2rem; font-weight: 800; margin: .5rem 0 1rem; padding: .75rem 1rem; color: var(--fg);
  background: var(--alarm-bg); border: 8px solid var(--alarm); border-radius: 1rem; }}
.alarm-text.closed {{ border-color: var(--ok); background: var(--bg); }}
.notice {{ margin: .5rem 0 1rem; padding: .75rem 1rem; border: 6px solid var(--fg); border-radius: 1rem; }}
.notice-text {{ font-size: 1.4rem; font-weight: 700; margin: 0 0 .75rem; white-space: pre-line; overflow-wrap: anywhere; }}
.notice form {{ margin: 0; }}
button.ok {{ min-width: 40vw; min-height: 96px; font: inherit; font-size: max(40px, 1.6rem); font-weight: 800;
  color: var(--ok-btn-fg); background: var(--ok-btn); border: 6px solid var(--fg); border-radius: 1rem; cursor: pointer; }}
button.ok:disabled {{ opacity: .85; }}
[hidden] {{ display: none !important; }}
.visually-hidden {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }}
</style>
</head>
<body>
<main>
<h1 id="greeting">{greeting}</h1>
<div class="alarm" id="alarm" aria-live="assertive" aria-atomic="true">
<p class="{alarm_class}" id="alarm-text"{alarm_hidden}>{alarm_text}</p>
</div>
<section class="notices" id="notices" aria-label="{notices_label}" aria-live="polite">
{notices}</section>
<div id="call-lines" aria-live="polite" aria-atomic="true">
<div class="call-caller">
<span class="avatar" id="call-avatar" aria-hidden="true"{avatar_hidden}>{avatar}</span>
<p class="call-title" id="call-title"{call_title_hidden}>{call_title}</p>
</div>
<p class="call-cut" id="call-cut"{call_cut_hidden}>{call_cut}</p>
</div>
<div class="call-countdown-lines" aria-live="polite">
<p class="call-countdown" id="call-countdown" aria-hidden="true"{countdown_hidden}>{countdown}</p>
<p class="visually-hidden" id="call-countdown-said">{countdown}</p>
</div>
<div class="call-buttons" id="call-ringing"{ringing_hidden}>
<button type="button" class="answer" id="call-answer" aria-describedby="call-title">{call_answer}</button>
<button type="button" class="decline" id="call-decline" aria-describedby="call-title">{call_decline}</button>
</div>
<section class="call-media" id="call-media" aria-label="{media_label}" hidden>
<video class="remote-video" id="remote-video" autoplay playsinline aria-label="{media_remote}"></video>
<video class="local-video" id="local-video" autoplay playsinline muted aria-label="{media_local}"></video>
<audio id="remote-audio" autoplay></audio>
<p class="media-status" id="media-status" role="status" aria-live="polite"></p>
</section>
<div class="call-buttons" id="call-answered"{answered_hidden}>
<button type="button" class="hang-up" id="call-hang-up" aria-describedby="call-title">{call_hang_up}</button>
</div>
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
  var callId = {call_id_json};
  var focusNext = null;
  // The call that answers by itself and when: the page counts down on its own clock.
  var countdown = {countdown_json};
{media_script}
  function countdownWords(at) {{
    var n = Math.max(0, Math.ceil((at - Date.now()) / 1000));
    var key = n === 0 ? "kiosk.call_auto_answer_now" : n === 1 ? "kiosk.call_auto_answer_in_one" : "kiosk.call_auto_answer_in";
    return T[key].replace("%{{n}}", String(n));
  }}
  // The number changes on screen every second; a screen reader hears the
  // line once, as the countdown starts (the visible line is hidden from it).
  function tickCountdown() {{
    if (!countdown) {{ return; }}
    var line = el("call-countdown");
    var words = countdownWords(countdown.at);
    if (line.textContent !== words) {{ line.textContent = words; }}
  }}
  function showCountdown(call) {{
    var at = call && call.state === "ringing" && call.auto_answer_at ? call.auto_answer_at : null;
    if (!at) {{
      countdown = null;
      el("call-countdown").hidden = true;
      el("call-countdown").textContent = "";
      el("call-countdown-said").textContent = "";
      return;
    }}
    var fresh = !countdown || countdown.call_id !== call.call_id;
    countdown = {{ call_id: call.call_id, at: at }};
    tickCountdown();
    el("call-countdown").hidden = false;
    if (fresh) {{ el("call-countdown-said").textContent = el("call-countdown").textContent; }}
  }}
  function showCall(call) {{
    syncMedia(call);
    callId = call ? call.call_id : null;
    var initial = call && call.state === "ringing" && call.initial ? call.initial : "";
    if (el("call-avatar").textContent !== initial) {{ el("call-avatar").textContent = initial; }}
    el("call-avatar").hidden = !initial;
    showCountdown(call);
    el("call-title").textContent = call ? call.title : "";
    el("call-title").hidden = !call;
    el("call-cut").textContent = call && call.cut ? call.cut : "";
    el("call-cut").hidden = !(call && call.cut);
    el("call-ringing").hidden = !(call && call.state === "ringing");
    el("call-answered").hidden = !(call && call.state === "answered");
  }}
  function showAlarm(alarm) {{
    var line = el("alarm-text");
    var words = alarm ? alarm.text : "";
    // Only a change is announced: the same words are not repeated every poll.
    if (line.textContent !== words) {{ line.textContent = words; }}
    line.hidden = !alarm;
    line.className = alarm && alarm.closed ? "alarm-text closed" : "alarm-text";
  }}
  var noticeSeq = 0;
  function noticeElement(notice) {{
    noticeSeq += 1;
    var box = document.createElement("div");
    box.className = "notice";
    box.setAttribute("data-id", notice.id);
    var words = document.createElement("p");
    words.className = "notice-text";
    words.id = "notice-js-" + noticeSeq;
    words.textContent = notice.text;
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/api/notice/dismiss";
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "id";
    input.value = notice.id;
    var ok = document.createElement("button");
    ok.type = "submit";
    ok.className = "ok";
    ok.setAttribute("aria-describedby", words.id);
    ok.textContent = T["kiosk.notice_ok"];
    form.appendChild(input);
    form.appendChild(ok);
    box.appendChild(words);
    box.appendChild(form);
    return box;
  }}
  function showNotices(list) {{
    var section = el("notices");
    var wanted = {{}};
    list.forEach(function (n) {{ wanted[n.id] = n; }});
    var nodes = {{}};
    Array.prototype.slice.call(section.querySelectorAll(".notice")).forEach(function (node) {{
      var id = node.getAttribute("data-id");
      var n = wanted[id];
      if (!n) {{ section.removeChild(node); return; }}
      nodes[id] = node;
      var words = node.querySelector(".notice-text");
      if (words.textContent !== n.text) {{ words.textContent = n.text; }}
    }});
    // Newest first; notices already on screen are left where they are when in order.
    var cursor = section.firstElementChild;
    list.forEach(function (n) {{
      var node = nodes[n.id];
      if (node && node === cursor) {{ cursor = cursor.nextElementSibling; return; }}
      section.insertBefore(node || noticeElement(n), cursor);
    }});
  }}
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
    showCall(view.call);
    el("pending").textContent = view.pending_events > 0 ? T["kiosk.pending"].replace("%{{count}}", String(view.pending_events)) : "";
    showAlarm(view.alarm);
    showNotices(view.notices || []);
    var message = el("message");
    if (view.help === "delivered") {{ message.textContent = T["kiosk.help_delivered"]; }}
    else if (view.help === "idle" && view.alarm &&
      (message.textContent === T["kiosk.help_delivered"] || message.textContent === T["kiosk.help_saved"])) {{
      // The alarm's progress above says it better now.
      message.textContent = "";
    }}
    document.documentElement.className = view.high_contrast ? "contrast" : "";
    document.documentElement.style.fontSize = Math.round(28 * Math.min(3, Math.max(1, view.font_scale))) + "px";
  }}
  function agentDown() {{
    el("status").className = "status offline";
    el("status-icon").textContent = "\u2716";
    el("status-text").textContent = T["kiosk.agent_down"];
  }}
  function poll() {{
    return fetch("/api/state", {{ cache: "no-store" }})
      .then(function (r) {{ if (!r.ok) {{ throw new Error(String(r.status)); }} return r.json(); }})
      .then(show, agentDown);
  }}
  function callAction(path, button, then) {{
    if (!callId) {{ return; }}
    button.disabled = true;
    fetch("/api/call/" + path, {{ method: "POST", headers: {{ "Content-Type": "application/json" }}, body: JSON.stringify({{ call_id: callId }}) }})
      .then(function (r) {{
        if (r.ok) {{ focusNext = then; return; }}
        el("message").textContent = r.status === 409 ? T["kiosk.call_gone"] : T["kiosk.call_failed"];
      }}, function () {{ el("message").textContent = T["kiosk.call_failed"]; }})
      .then(function () {{ button.disabled = false; return poll(); }})
      .then(function () {{
        var next = focusNext && el(focusNext);
        focusNext = null;
        if (next && !next.closest("[hidden]")) {{ next.focus(); }}
      }});
  }}
  el("call-answer").addEventListener("click", function () {{ callAction("accept", el("call-answer"), "call-hang-up"); }});
  el("call-decline").addEventListener("click", function () {{ callAction("decline", el("call-decline"), "help"); }});
  el("call-hang-up").addEventListener("click", function () {{ callAction("hang-up", el("call-hang-up"), "help"); }});
  el("notices").addEventListener("submit", function (event) {{
    event.preventDefault();
    var form = event.target;
    var ok = form.querySelector("button");
    ok.disabled = true;
    fetch("/api/notice/dismiss", {{ method: "POST", headers: {{ "Content-Type": "application/json" }}, body: JSON.stringify({{ id: form.elements.namedItem("id").value }}) }})
      .then(function (r) {{
        // 404: it is gone already.
        if (!r.ok && r.status !== 404) {{ throw new Error(String(r.status)); }}
        return poll().then(function () {{
          var next = el("notices").querySelector("button.ok") || el("help");
          next.focus();
        }});
      }})
      .catch(function () {{ ok.disabled = false; el("message").textContent = T["kiosk.notice_failed"]; }});
  }});
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
  tickCountdown(); setInterval(tickCountdown, 250);
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
        call_title_hidden = hidden(call.is_some()),
        call_title = escape(call_title),
        call_cut_hidden = hidden(!call_cut.is_empty()),
        call_cut = escape(call_cut),
        avatar_hidden = hidden(!avatar.is_empty()),
        avatar = escape(avatar),
        countdown_hidden = hidden(counting.is_some()),
        countdown = escape(&countdown),
        countdown_json = script_json(&match counting {
            Some((call_id, at)) => serde_json::json!({ "call_id": call_id, "at": at }),
            None => serde_json::Value::Null,
        }),
        ringing_hidden = hidden(ringing),
        answered_hidden = hidden(answered),
        call_answer = escape(&text(lang, "kiosk.call_answer")),
        call_decline = escape(&text(lang, "kiosk.call_decline")),
        call_hang_up = escape(&text(lang, "kiosk.call_hang_up")),
        call_id_json = script_json(&match &call {
            Some(c) => serde_json::Value::String(c.call_id.clone()),
            None => serde_json::Value::Null,
        }),
        help_message = escape(&help_text(view)),
        alarm_class = alarm_class,
        alarm_hidden = hidden(alarm.is_some()),
        alarm_text = escape(alarm.as_ref().map(|a| a.text.as_str()).unwrap_or("")),
        notices_label = escape(&text(lang, "kiosk.notices")),
        media_label = escape(&text(lang, "kiosk.media_label")),
        media_remote = escape(&text(lang, "kiosk.media_remote")),
        media_local = escape(&text(lang, "kiosk.media_local")),
        media_script = MEDIA_SCRIPT,
        notices = render_notices(lang, &view.notices),
        texts = script_json(&serde_json::Value::Object(texts)),
        lang_json = script_json(&serde_json::Value::String(lang.to_string())),
    )
}

async fn state(State(state): State<KioskState>) -> Response {
    let view = state.view.borrow().clone();
    let now = (state.now)();
    let body = StateBody {
        view: &view,
        next_call: view.next_call(now),
        call: view.call_view(),
        alarm: view.alarm_view(now),
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

/// The body of the call endpoints.
#[derive(Deserialize)]
struct CallRequest {
    call_id: String,
}

/// Call ids are the hub's UUIDs; anything far longer is not one.
const MAX_CALL_ID_BYTES: usize = 128;

async fn call_accept(
    State(state): State<KioskState>,
    body: Result<Json<CallRequest>, JsonRejection>,
) -> Response {
    press_call(state, ClientAction::Accept, body).await
}

async fn call_decline(
    State(state): State<KioskState>,
    body: Result<Json<CallRequest>, JsonRejection>,
) -> Response {
    press_call(state, ClientAction::Decline, body).await
}

async fn call_hang_up(
    State(state): State<KioskState>,
    body: Result<Json<CallRequest>, JsonRejection>,
) -> Response {
    press_call(state, ClientAction::HangUp, body).await
}

fn error_body(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn press_call(
    state: KioskState,
    action: ClientAction,
    body: Result<Json<CallRequest>, JsonRejection>,
) -> Response {
    let call_id = match body {
        Ok(Json(request)) => request.call_id,
        Err(rejection) => return error_body(rejection.status(), rejection.body_text()),
    };
    if call_id.is_empty() || call_id.len() > MAX_CALL_ID_BYTES {
        return error_body(StatusCode::BAD_REQUEST, "call_id: not a call id".into());
    }
    let (reply, answer) = oneshot::channel();
    let press = CallPress {
        action,
        call_id,
        reply,
    };
    if state.calls.send(press).await.is_err() {
        return error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "the terminal is shutting down".into(),
        );
    }
    match tokio::time::timeout(HELP_TIMEOUT, answer).await {
        Ok(Ok(Ok(call_state))) => (
            StatusCode::OK,
            Json(serde_json::json!({ "state": call_state })),
        )
            .into_response(),
        Ok(Ok(Err(e))) => error_body(StatusCode::CONFLICT, e.to_string()),
        Ok(Err(_)) => error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "the terminal did not answer".into(),
        ),
        Err(_) => error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "the terminal did not answer in time".into(),
        ),
    }
}

/// The body of the notice endpoint, as JSON from the page's script or as
/// a plain form from the page without JavaScript.
#[derive(Deserialize)]
struct NoticeRequest {
    id: String,
}

async fn dismiss_notice(
    State(state): State<KioskState>,
    request: axum::extract::Request,
) -> Response {
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let id = if form {
        // A form can be posted from anywhere; browsers name its origin,
        // which the loopback check has already verified. Without one it
        // is not taken.
        if !request.headers().contains_key(header::ORIGIN) {
            return error_body(
                StatusCode::FORBIDDEN,
                "a form post must name its origin".into(),
            );
        }
        match axum::Form::<NoticeRequest>::from_request(request, &()).await {
            Ok(axum::Form(body)) => body.id,
            Err(rejection) => return error_body(rejection.status(), rejection.body_text()),
        }
    } else {
        match Json::<NoticeRequest>::from_request(request, &()).await {
            Ok(Json(body)) => body.id,
            Err(rejection) => return error_body(rejection.status(), rejection.body_text()),
        }
    };
    if id.is_empty() || id.len() > crate::notices::MAX_ID_BYTES {
        return error_body(StatusCode::BAD_REQUEST, "id: not a notice id".into());
    }
    let (reply, answer) = oneshot::channel();
    if state.notices.send(NoticePress { id, reply }).await.is_err() {
        return error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "the terminal is shutting down".into(),
        );
    }
    let outcome = match tokio::time::timeout(HELP_TIMEOUT, answer).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) | Err(_) => {
            return error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "the terminal did not answer".into(),
            )
        }
    };
    if form {
        // Back to the page, which shows what is left.
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    }
    match outcome {
        Dismissed::Dismissed | Dismissed::AlreadyDismissed => (
            StatusCode::OK,
            Json(serde_json::json!({ "dismissed": true })),
        )
            .into_response(),
        Dismissed::Unknown => error_body(StatusCode::NOT_FOUND, "no such notice".into()),
    }
}

/// Largest body of the media endpoints: one link frame.
const MAX_MEDIA_BODY_BYTES: usize = etahoiva_proto::MAX_FRAME_BYTES;
/// Leg ids are the hub's UUIDs, like call ids.
const MAX_LEG_ID_BYTES: usize = MAX_CALL_ID_BYTES;

/// The current call's media offer: what `/api/media` answers; `None`
/// when the offer kept is for another call, or there is none.
fn current_offer(state: &KioskState) -> Option<MediaOffer> {
    let offer = state.media.offers.borrow().clone()?;
    let current = state
        .view
        .borrow()
        .call
        .as_ref()
        .is_some_and(|c| c.id == offer.call_id);
    current.then_some(offer)
}

/// `GET /api/media`: the hub's offer for the current call, which the page
/// answers once the client has answered the call; 204 when there is none.
async fn media_offer(State(state): State<KioskState>) -> Response {
    match current_offer(&state) {
        Some(offer) => ([(header::CACHE_CONTROL, "no-store")], Json(offer)).into_response(),
        None => (
            StatusCode::NO_CONTENT,
            [(header::CACHE_CONTROL, "no-store")],
        )
            .into_response(),
    }
}

/// The body of `/api/media/answer`.
#[derive(Deserialize)]
struct MediaAnswerRequest {
    call_id: String,
    leg_id: String,
    sdp: String,
}

/// The body of `/api/media/restart`.
#[derive(Deserialize)]
struct MediaRestartRequest {
    call_id: String,
    leg_id: String,
}

/// Why the ids of a media request are not a call's and a leg's, if they are not.
fn leg_refusal(call_id: &str, leg_id: &str) -> Option<Response> {
    let why = if call_id.is_empty() || call_id.len() > MAX_CALL_ID_BYTES {
        "call_id: not a call id"
    } else if leg_id.is_empty() || leg_id.len() > MAX_LEG_ID_BYTES {
        "leg_id: not a leg id"
    } else {
        return None;
    };
    Some(error_body(StatusCode::BAD_REQUEST, why.into()))
}

/// `POST /api/media/answer`: the page's answer to the current call's offer,
/// sent on to the hub.
async fn media_answer(
    State(state): State<KioskState>,
    body: Result<Json<MediaAnswerRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return error_body(rejection.status(), rejection.body_text()),
    };
    if let Some(refused) = leg_refusal(&request.call_id, &request.leg_id) {
        return refused;
    }
    if !request.sdp.starts_with("v=0") {
        return error_body(
            StatusCode::BAD_REQUEST,
            "sdp: not a session description".into(),
        );
    }
    // The answer goes on to the hub in one link frame.
    let frame = etahoiva_proto::EdgeToHub::MediaAnswer {
        call_id: request.call_id.clone(),
        leg_id: request.leg_id.clone(),
        sdp: request.sdp.clone(),
    };
    let fits = serde_json::to_vec(&frame).is_ok_and(|f| f.len() <= etahoiva_proto::MAX_FRAME_BYTES);
    if !fits {
        return error_body(StatusCode::PAYLOAD_TOO_LARGE, "sdp: too long".into());
    }
    let MediaAnswerRequest {
        call_id,
        leg_id,
        sdp,
    } = request;
    press_media(state, call_id, leg_id, MediaRequest::Answer { sdp }).await
}

/// `POST /api/media/restart`: the page asks for a new offer with fresh ICE
/// credentials; it comes to `/api/media` with a new `sdp`.
async fn media_restart(
    State(state): State<KioskState>,
    body: Result<Json<MediaRestartRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return error_body(rejection.status(), rejection.body_text()),
    };
    if let Some(refused) = leg_refusal(&request.call_id, &request.leg_id) {
        return refused;
    }
    press_media(
        state,
        request.call_id,
        request.leg_id,
        MediaRequest::RestartIce,
    )
    .await
}

async fn press_media(
    state: KioskState,
    call_id: String,
    leg_id: String,
    request: MediaRequest,
) -> Response {
    let stale = || {
        error_body(
            StatusCode::CONFLICT,
            "not the current call's media offer".into(),
        )
    };
    // A page still on an earlier call or leg is told so here; the agent
    // checks again against the offer it keeps.
    if !current_offer(&state).is_some_and(|o| o.call_id == call_id && o.leg_id == leg_id) {
        return stale();
    }
    let (reply, answer) = oneshot::channel();
    let press = MediaPress {
        call_id,
        leg_id,
        request,
        reply,
    };
    if state.media.presses.send(press).await.is_err() {
        return error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "the terminal is shutting down".into(),
        );
    }
    match tokio::time::timeout(HELP_TIMEOUT, answer).await {
        Ok(Ok(true)) => (StatusCode::OK, Json(serde_json::json!({ "sent": true }))).into_response(),
        Ok(Ok(false)) => stale(),
        Ok(Err(_)) | Err(_) => error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "the terminal did not answer".into(),
        ),
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
            notices: Vec::new(),
            alarms: AlarmBoard::default(),
            schedule: None,
            call: None,
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
        let (calls, _calls_rx) = mpsc::channel(1);
        let clock = clock.clone();
        router_with_clock(
            view,
            tx,
            calls,
            no_notices(),
            no_media(),
            Arc::new(move || clock.load(std::sync::atomic::Ordering::Relaxed)),
        )
    }

    /// A call sender whose agent is gone.
    fn no_calls() -> mpsc::Sender<CallPress> {
        mpsc::channel(1).0
    }

    /// A notice sender whose agent is gone.
    fn no_notices() -> mpsc::Sender<NoticePress> {
        mpsc::channel(1).0
    }

    /// No media offer, and an agent that is gone.
    fn no_media() -> MediaLink {
        MediaLink {
            offers: watch::channel(None).1,
            presses: mpsc::channel(1).0,
        }
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
            let (status, body) = call(
                router(rx, tx, no_calls(), no_notices(), no_media()),
                get("/"),
            )
            .await;
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
        let app = router(rx, tx, no_calls(), no_notices(), no_media());
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
        let app = router(rx, tx, no_calls(), no_notices(), no_media());
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(body.contains(r#"<p class="next-call" id="next-call" hidden></p>"#));
        assert!(!body.contains("Next call"));
        assert_eq!(next_call_in_state(app).await, serde_json::Value::Null);
    }

    #[tokio::test]
    async fn help_presses_report_what_the_agent_answers() {
        let (_keep, rx) = watch::channel(view("en"));
        let (tx, mut presses) = mpsc::channel::<HelpPress>(4);
        let app = router(rx, tx, no_calls(), no_notices(), no_media());
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
        let app = router(rx, tx, no_calls(), no_notices(), no_media());
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

    fn a_call(kind: CallKind, caller: &str, phase: Phase, cut: Option<CallKind>) -> Call {
        Call {
            id: "c-1".into(),
            kind,
            caller: caller.into(),
            visit_id: None,
            phase,
            cut,
            auto_answer_at: None,
        }
    }

    fn with_call(lang: &str, c: Call) -> KioskView {
        let mut v = view(lang);
        v.call = Some(c);
        v
    }

    async fn call_in_state(app: Router) -> serde_json::Value {
        let (status, body) = call_app(app, get("/api/state")).await;
        assert_eq!(status, StatusCode::OK);
        let state: serde_json::Value = serde_json::from_str(&body).expect("json");
        state["call"].clone()
    }

    async fn call_app(app: Router, request: Request<Body>) -> (StatusCode, String) {
        call(app, request).await
    }

    fn post_json(path: &str, body: &str) -> Request<Body> {
        Request::post(path)
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "http://127.0.0.1:8080")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    }

    #[test]
    fn every_call_and_schedule_text_exists_in_every_language() {
        for key in CALL_TEXT_KEYS
            .iter()
            .chain(TEXT_KEYS)
            .chain(MEDIA_LABEL_KEYS)
            .chain(crate::alarm::TEXT_KEYS)
            .chain(crate::schedule::TEXT_KEYS)
            .chain(&["kiosk.notices", "kiosk.title", "kiosk.clock"])
        {
            for lang in ["fi", "sv", "en"] {
                // Asked without the English fallback, so a missing
                // translation shows up here instead of on a kiosk.
                let own = crate::_RUST_I18N_BACKEND.translate(lang, key);
                assert!(
                    own.is_some_and(|t| !t.is_empty()),
                    "{key} missing in {lang}"
                );
            }
        }
    }

    #[test]
    fn calls_are_described_in_the_clients_language() {
        let care = a_call(CallKind::ScheduledCare, " Anna ", Phase::Ringing, None);
        let relative = a_call(CallKind::Relative, "Anna", Phase::Ringing, None);
        let alarm = a_call(CallKind::Alarm, "Turvapuhelin", Phase::Ringing, None);
        let on = a_call(CallKind::ScheduledCare, "Anna", Phase::Answered, None);
        for (lang, care_t, relative_t, alarm_t, on_t) in [
            (
                "fi",
                "Hoitaja Anna soittaa",
                "Anna soittaa",
                "Turvapuhelin soittaa hälytyksesi vuoksi",
                "Puhelu käynnissä: Anna",
            ),
            (
                "sv",
                "Vårdaren Anna ringer",
                "Anna ringer",
                "Turvapuhelin ringer om ditt larm",
                "Samtal pågår: Anna",
            ),
            (
                "en",
                "Nurse Anna is calling",
                "Anna is calling",
                "Turvapuhelin is calling about your alarm",
                "Call in progress: Anna",
            ),
        ] {
            assert_eq!(describe_call(lang, &care).title, care_t);
            assert_eq!(describe_call(lang, &relative).title, relative_t);
            assert_eq!(describe_call(lang, &alarm).title, alarm_t);
            let shown = describe_call(lang, &on);
            assert_eq!(shown.title, on_t);
            assert_eq!(shown.state, CallState::Answered);
            assert_eq!(shown.cut, None);
        }
        let cut_by_care = a_call(
            CallKind::ScheduledCare,
            "Anna",
            Phase::Answered,
            Some(CallKind::Relative),
        );
        let cut_by_alarm = a_call(
            CallKind::Alarm,
            "Turvapuhelin",
            Phase::Answered,
            Some(CallKind::ScheduledCare),
        );
        let cut_by_professional = a_call(
            CallKind::Professional,
            "Dr Virtanen",
            Phase::Ringing,
            Some(CallKind::Relative),
        );
        for (lang, care_t, alarm_t, professional_t) in [
            (
                "fi",
                "Edellinen puhelu katkaistiin: hoitaja soittaa",
                "Edellinen puhelu katkaistiin hälytyksesi vuoksi",
                "Edellinen puhelu katkaistiin: Dr Virtanen soittaa",
            ),
            (
                "sv",
                "Det förra samtalet avbröts: vårdaren ringer",
                "Det förra samtalet avbröts på grund av ditt larm",
                "Det förra samtalet avbröts: Dr Virtanen ringer",
            ),
            (
                "en",
                "The previous call was cut: the nurse is calling",
                "The previous call was cut because of your alarm",
                "The previous call was cut: Dr Virtanen is calling",
            ),
        ] {
            assert_eq!(
                describe_call(lang, &cut_by_care).cut.as_deref(),
                Some(care_t)
            );
            assert_eq!(
                describe_call(lang, &cut_by_alarm).cut.as_deref(),
                Some(alarm_t)
            );
            assert_eq!(
                describe_call(lang, &cut_by_professional).cut.as_deref(),
                Some(professional_t)
            );
        }
        // A name with markup or control characters stays a name, bounded.
        let odd = a_call(
            CallKind::Relative,
            &format!("Anna\u{7}%{{name}}{}", "x".repeat(200)),
            Phase::Ringing,
            None,
        );
        let title = describe_call("en", &odd).title;
        assert!(title.starts_with("Anna%{name}x"), "{title}");
        assert!(title.chars().count() < 100, "{title}");
    }

    #[tokio::test]
    async fn a_ringing_call_shows_two_big_buttons_and_follows_the_state() {
        let ringing = a_call(CallKind::ScheduledCare, "Anna <i>", Phase::Ringing, None);
        let (keep, rx) = watch::channel(with_call("fi", ringing));
        let (tx, _rx) = mpsc::channel(1);
        let app = router(rx, tx, no_calls(), no_notices(), no_media());
        let (status, body) = call_app(app.clone(), get("/")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(
            r#"<p class="call-title" id="call-title">Hoitaja Anna &lt;i&gt; soittaa</p>"#
        ));
        assert!(!body.contains("Anna <i>"), "raw name in page");
        assert!(body.contains(r#"<div class="call-buttons" id="call-ringing">"#));
        assert!(body.contains(r#"<div class="call-buttons" id="call-answered" hidden>"#));
        assert!(body.contains(
            r#"<button type="button" class="answer" id="call-answer" aria-describedby="call-title">Vastaa</button>"#
        ));
        assert!(body.contains(">Hylkää</button>"));
        assert!(body.contains(r#"<p class="call-cut" id="call-cut" hidden></p>"#));
        assert!(body.contains(r#"var callId = "c-1";"#));
        let shown = call_in_state(app.clone()).await;
        assert_eq!(shown["call_id"], "c-1");
        assert_eq!(shown["state"], "ringing");
        assert_eq!(shown["kind"], "scheduled_care");
        assert_eq!(shown["title"], "Hoitaja Anna <i> soittaa");
        assert!(shown["cut"].is_null());

        // Cut in by an alarm call, answered by itself.
        keep.send_modify(|v| {
            v.language = "sv".into();
            v.call = Some(a_call(
                CallKind::Alarm,
                "Larmcentralen",
                Phase::Answered,
                Some(CallKind::ScheduledCare),
            ));
        });
        let shown = call_in_state(app.clone()).await;
        assert_eq!(shown["state"], "answered");
        assert_eq!(shown["title"], "Samtal pågår: Larmcentralen");
        assert_eq!(
            shown["cut"],
            "Det förra samtalet avbröts på grund av ditt larm"
        );
        let (_, body) = call_app(app.clone(), get("/")).await;
        assert!(body.contains(r#"<div class="call-buttons" id="call-ringing" hidden>"#));
        assert!(body.contains(r#"<div class="call-buttons" id="call-answered">"#));
        assert!(body.contains(">Avsluta samtalet</button>"));

        // No call: nothing shown, no buttons.
        keep.send_modify(|v| v.call = None);
        assert!(call_in_state(app.clone()).await.is_null());
        let (_, body) = call_app(app, get("/")).await;
        assert!(body.contains(r#"<p class="call-title" id="call-title" hidden></p>"#));
        assert!(body.contains(r#"<div class="call-buttons" id="call-ringing" hidden>"#));
        assert!(body.contains(r#"<div class="call-buttons" id="call-answered" hidden>"#));
        assert!(body.contains("var callId = null;"));
    }

    #[test]
    fn the_countdown_is_said_in_the_clients_language() {
        for (lang, ten, one, now) in [
            (
                "fi",
                "Puhelu avautuu itsestään 10 sekunnin kuluttua",
                "Puhelu avautuu itsestään 1 sekunnin kuluttua",
                "Puhelu avautuu nyt",
            ),
            (
                "sv",
                "Samtalet öppnas automatiskt om 10 sekunder",
                "Samtalet öppnas automatiskt om 1 sekund",
                "Samtalet öppnas nu",
            ),
            (
                "en",
                "The call opens by itself in 10 seconds",
                "The call opens by itself in 1 second",
                "The call is opening now",
            ),
        ] {
            assert_eq!(countdown_text(lang, 10), ten);
            assert_eq!(countdown_text(lang, 1), one);
            assert_eq!(countdown_text(lang, 0), now);
        }
        assert_eq!(seconds_left(10_000, 0), 10);
        assert_eq!(seconds_left(10_000, 1), 10, "rounded up");
        assert_eq!(seconds_left(10_000, 9_001), 1);
        assert_eq!(seconds_left(10_000, 10_000), 0);
        assert_eq!(seconds_left(10_000, 20_000), 0);
        assert_eq!(caller_initial("Anna"), Some("A".into()));
        assert_eq!(caller_initial("  ärla"), Some("Ä".into()));
        assert_eq!(caller_initial("<i>"), Some("I".into()));
        assert_eq!(caller_initial("…"), None);
    }

    #[tokio::test]
    async fn a_call_that_answers_by_itself_counts_down_on_the_page() {
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(1_000_000));
        for (lang, line, nurse) in [
            (
                "fi",
                "Puhelu avautuu itsestään 10 sekunnin kuluttua",
                "Hoitaja anna soittaa",
            ),
            (
                "sv",
                "Samtalet öppnas automatiskt om 10 sekunder",
                "Vårdaren anna ringer",
            ),
            (
                "en",
                "The call opens by itself in 10 seconds",
                "Nurse anna is calling",
            ),
        ] {
            let mut ringing = a_call(CallKind::ScheduledCare, "anna", Phase::Ringing, None);
            ringing.auto_answer_at = Some(1_010_000);
            let (keep, rx) = watch::channel(with_call(lang, ringing));
            let app = router_at(rx, &clock);
            let (status, body) = call_app(app.clone(), get("/")).await;
            assert_eq!(status, StatusCode::OK);
            // The line on screen counts; screen readers hear it once, politely.
            assert!(
                body.contains(&format!(
                    r#"<p class="call-countdown" id="call-countdown" aria-hidden="true">{line}</p>"#
                )),
                "{lang}: {body}"
            );
            assert!(body.contains(&format!(
                r#"<p class="visually-hidden" id="call-countdown-said">{line}</p>"#
            )));
            assert!(body.contains(r#"<div class="call-countdown-lines" aria-live="polite">"#));
            assert!(body.contains(r#"var countdown = {"at":1010000,"call_id":"c-1"};"#));
            // The caller's initial in a circle next to the name, for the eye only.
            assert!(body
                .contains(r#"<span class="avatar" id="call-avatar" aria-hidden="true">A</span>"#));
            assert!(body.contains(&format!(
                r#"<p class="call-title" id="call-title">{nurse}</p>"#
            )));
            // The big buttons are there: the client may answer or decline first.
            assert!(body.contains(r#"<div class="call-buttons" id="call-ringing">"#));
            // Every text the script counts with is in the page's language.
            for key in [
                "kiosk.call_auto_answer_in",
                "kiosk.call_auto_answer_in_one",
                "kiosk.call_auto_answer_now",
            ] {
                let words = script_json(&serde_json::Value::String(text(lang, key)));
                assert!(body.contains(&format!(r#""{key}":{words}"#)), "{key}");
            }
            let shown = call_in_state(app.clone()).await;
            assert_eq!(shown["auto_answer_at"], 1_010_000);
            assert_eq!(shown["initial"], "A");

            // Later the page is rendered with what is left.
            clock.store(1_006_500, std::sync::atomic::Ordering::Relaxed);
            let (_, body) = call_app(app.clone(), get("/")).await;
            let left = countdown_text(lang, 4);
            assert!(body.contains(&format!(r#"aria-hidden="true">{left}</p>"#)));
            clock.store(1_000_000, std::sync::atomic::Ordering::Relaxed);

            // Answered: no countdown, no circle.
            keep.send_modify(|v| {
                if let Some(c) = v.call.as_mut() {
                    c.phase = Phase::Answered;
                }
            });
            let shown = call_in_state(app.clone()).await;
            assert!(shown["auto_answer_at"].is_null());
            let (_, body) = call_app(app, get("/")).await;
            assert!(body.contains(
                r#"<p class="call-countdown" id="call-countdown" aria-hidden="true" hidden></p>"#
            ));
            assert!(body.contains(r#"<p class="visually-hidden" id="call-countdown-said"></p>"#));
            assert!(body.contains(
                r#"<span class="avatar" id="call-avatar" aria-hidden="true" hidden></span>"#
            ));
            assert!(body.contains("var countdown = null;"));
        }
    }

    #[tokio::test]
    async fn call_buttons_reach_the_agent_and_report_its_answer() {
        let (_keep, rx) = watch::channel(view("en"));
        let (tx, _help) = mpsc::channel(1);
        let (calls, mut presses) = mpsc::channel::<CallPress>(4);
        let app = router(rx, tx, calls, no_notices(), no_media());
        let agent = tokio::spawn(async move {
            let mut seen = Vec::new();
            for reply in [
                Ok(CallState::Answered),
                Err(CallError::UnknownCall("old".into())),
                Ok(CallState::Ended),
                Ok(CallState::Declined),
            ] {
                let press = presses.recv().await.expect("press");
                seen.push((press.action, press.call_id));
                let _ = press.reply.send(reply);
            }
            seen
        });
        let (status, body) = call_app(
            app.clone(),
            post_json("/api/call/accept", r#"{"call_id":"c-1"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).expect("json")["state"],
            "answered"
        );
        let (status, body) = call_app(
            app.clone(),
            post_json("/api/call/decline", r#"{"call_id":"old"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(body.contains("not the current call"), "{body}");
        let (status, _) = call_app(
            app.clone(),
            post_json("/api/call/hang-up", r#"{"call_id":"c-1"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call_app(
            app.clone(),
            post_json("/api/call/decline", r#"{"call_id":"c-2"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            agent.await.expect("agent"),
            [
                (ClientAction::Accept, "c-1".to_string()),
                (ClientAction::Decline, "old".to_string()),
                (ClientAction::HangUp, "c-1".to_string()),
                (ClientAction::Decline, "c-2".to_string()),
            ]
        );
        // The agent is gone: the press cannot be taken.
        let (status, _) =
            call_app(app, post_json("/api/call/accept", r#"{"call_id":"c-1"}"#)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn call_endpoints_refuse_bad_bodies_and_foreign_origins() {
        let (_keep, rx) = watch::channel(view("fi"));
        let (tx, _help) = mpsc::channel(1);
        let (calls, mut presses) = mpsc::channel::<CallPress>(4);
        let app = router(rx, tx, calls, no_notices(), no_media());
        for path in ["/api/call/accept", "/api/call/decline", "/api/call/hang-up"] {
            let foreign = Request::post(path)
                .header(header::HOST, "127.0.0.1:8080")
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"call_id":"c-1"}"#))
                .expect("request");
            assert_eq!(
                call_app(app.clone(), foreign).await.0,
                StatusCode::FORBIDDEN
            );
            let rebound = Request::post(path)
                .header(header::HOST, "evil.example")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"call_id":"c-1"}"#))
                .expect("request");
            assert_eq!(
                call_app(app.clone(), rebound).await.0,
                StatusCode::MISDIRECTED_REQUEST
            );
            // A plain form post (no JSON content type) is not taken.
            let (status, _) = call_app(app.clone(), post(path)).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
            for bad in ["not json", "{}", r#"{"call_id":""}"#, r#"{"call_id":7}"#] {
                let (status, _) = call_app(app.clone(), post_json(path, bad)).await;
                assert!(status.is_client_error(), "{path} {bad}: {status}");
            }
            let long = format!(r#"{{"call_id":"{}"}}"#, "x".repeat(MAX_CALL_ID_BYTES + 1));
            let (status, _) = call_app(app.clone(), post_json(path, &long)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        // None of them reached the agent.
        assert!(presses.try_recv().is_err());
    }

    fn with_alarm(lang: &str, progress: AlarmProgress, seen_at: i64) -> KioskView {
        let mut v = view(lang);
        v.alarms.apply(
            crate::alarm::AlarmStatus {
                alert_id: "a-1".into(),
                event_keys: vec!["k-1".into()],
                progress,
                at: 1_000,
            },
            seen_at,
        );
        v
    }

    #[tokio::test]
    async fn the_alarm_is_said_in_big_words_and_announced_at_once() {
        use std::sync::atomic::Ordering;
        let now = ms("2026-11-24T22:00:00Z");
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(now));
        for (lang, words) in [
            ("fi", "Apu on tulossa."),
            ("sv", "Hjälpen är på väg."),
            ("en", "Help is on the way."),
        ] {
            let (_keep, rx) = watch::channel(with_alarm(lang, AlarmProgress::EnRoute, now));
            let app = router_at(rx, &clock);
            let (_, body) = call(app.clone(), get("/")).await;
            assert!(
                body.contains(&format!(
                    r#"<div class="alarm" id="alarm" aria-live="assertive" aria-atomic="true">
<p class="alarm-text" id="alarm-text">{words}</p>"#
                )),
                "{lang}: {body}"
            );
            let (_, state) = call(app, get("/api/state")).await;
            let state: serde_json::Value = serde_json::from_str(&state).expect("json");
            assert_eq!(state["alarm"]["text"], words);
            assert_eq!(state["alarm"]["progress"], "en_route");
            assert_eq!(state["alarm"]["closed"], false);
            assert_eq!(state["alarm"]["at"], 1_000);
            // The board itself is not sent to the page.
            assert!(state.get("alarms").is_none(), "{state}");
        }
        // Without an alarm the line is there, empty and hidden, so the live
        // region exists before anything is announced in it.
        clock.store(now, Ordering::Relaxed);
        let (_keep, rx) = watch::channel(view("fi"));
        let app = router_at(rx, &clock);
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(body.contains(r#"<p class="alarm-text" id="alarm-text" hidden></p>"#));
        assert!(next_call_in_state(app).await.is_null());
    }

    #[tokio::test]
    async fn the_all_clear_is_shown_for_a_while_then_the_normal_screen() {
        use std::sync::atomic::Ordering;
        let now = ms("2026-11-24T22:00:00Z");
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(now));
        let (keep, rx) = watch::channel(with_alarm("fi", AlarmProgress::Resolved, now));
        let app = router_at(rx, &clock);
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(body
            .contains(r#"<p class="alarm-text closed" id="alarm-text">Hälytys on hoidettu.</p>"#));
        let (_, state) = call(app.clone(), get("/api/state")).await;
        let state: serde_json::Value = serde_json::from_str(&state).expect("json");
        assert_eq!(state["alarm"]["closed"], true);
        // Without JavaScript the page reloads itself to follow.
        assert!(body.contains(r#"<noscript><meta http-equiv="refresh" content="30"></noscript>"#));

        clock.store(now + crate::alarm::CLOSED_SHOWN_MS - 1, Ordering::Relaxed);
        let (_, state) = call(app.clone(), get("/api/state")).await;
        assert!(state.contains("Hälytys on hoidettu."));
        clock.store(now + crate::alarm::CLOSED_SHOWN_MS, Ordering::Relaxed);
        let (_, state) = call(app.clone(), get("/api/state")).await;
        let state: serde_json::Value = serde_json::from_str(&state).expect("json");
        assert!(state["alarm"].is_null(), "{state}");
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(body.contains(r#"<p class="alarm-text" id="alarm-text" hidden></p>"#));

        // A new call for help replaces the all-clear at once; an open
        // alarm stays shown while the client presses again.
        clock.store(now, Ordering::Relaxed);
        keep.send_modify(|v| v.help = HelpStatus::Saved);
        let (_, body) = call(app.clone(), get("/")).await;
        assert!(!body.contains("Hälytys on hoidettu."));
        keep.send_modify(|v| *v = with_alarm("fi", AlarmProgress::OnSite, now));
        keep.send_modify(|v| v.help = HelpStatus::Saved);
        let (_, body) = call(app, get("/")).await;
        assert!(body.contains(r#"id="alarm-text">Auttaja on perillä.</p>"#));
    }

    fn with_notices(lang: &str) -> KioskView {
        let mut board = crate::notices::NoticeBoard::default();
        board.receive("n-1", "Hoitoyksikölle on kerrottu katkoksesta.", 1);
        board.receive("n\"2<", "Rivi <b>1</b>\nRivi 2", 2);
        let mut v = view(lang);
        v.notices = board.shown();
        v
    }

    #[tokio::test]
    async fn notices_have_a_big_ok_button_that_works_without_javascript() {
        let (keep, rx) = watch::channel(with_notices("sv"));
        let app = router(rx, mpsc::channel(1).0, no_calls(), no_notices(), no_media());
        let (_, body) = call(app.clone(), get("/")).await;
        let first = body
            .find("Rivi &lt;b&gt;1&lt;/b&gt;\nRivi 2")
            .expect("newest shown");
        let second = body
            .find("Hoitoyksikölle on kerrottu katkoksesta.")
            .expect("older shown");
        assert!(first < second, "newest first");
        assert!(body.contains(r#"<div class="notice" data-id="n&quot;2&lt;">"#));
        assert!(body.contains(
            r#"<form method="post" action="/api/notice/dismiss"><input type="hidden" name="id" value="n-1"><button type="submit" class="ok" aria-describedby="notice-text-1">OK</button></form>"#
        ));
        assert!(body.contains(r#"aria-label="Meddelanden" aria-live="polite""#));
        assert!(!body.contains("<b>1</b>"), "raw markup in page");
        let (_, state) = call(app.clone(), get("/api/state")).await;
        let state: serde_json::Value = serde_json::from_str(&state).expect("json");
        assert_eq!(state["notices"][0]["id"], "n\"2<");
        assert_eq!(
            state["notices"][1]["text"],
            "Hoitoyksikölle on kerrottu katkoksesta."
        );
        keep.send_modify(|v| v.notices.clear());
        let (_, body) = call(app, get("/")).await;
        assert!(!body.contains(r#"class="notice""#));
    }

    fn post_form(path: &str, body: &str, origin: Option<&str>) -> Request<Body> {
        let mut request = Request::post(path)
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.body(Body::from(body.to_string())).expect("request")
    }

    #[tokio::test]
    async fn the_ok_button_reaches_the_agent_from_the_script_or_a_form() {
        let (_keep, rx) = watch::channel(view("fi"));
        let (notices, mut presses) = mpsc::channel::<NoticePress>(4);
        let app = router(rx, mpsc::channel(1).0, no_calls(), notices, no_media());
        let agent = tokio::spawn(async move {
            let mut seen = Vec::new();
            for outcome in [
                Dismissed::Dismissed,
                Dismissed::AlreadyDismissed,
                Dismissed::Unknown,
                Dismissed::Dismissed,
            ] {
                let press = presses.recv().await.expect("press");
                seen.push(press.id);
                let _ = press.reply.send(outcome);
            }
            // Nothing else reaches the agent.
            assert!(presses.recv().await.is_none());
            seen
        });
        let (status, body) = call(
            app.clone(),
            post_json("/api/notice/dismiss", r#"{"id":"n-1"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = call(
            app.clone(),
            post_json("/api/notice/dismiss", r#"{"id":"n-1"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "pressed twice");
        let (status, _) = call(
            app.clone(),
            post_json("/api/notice/dismiss", r#"{"id":"n-9"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The page without JavaScript posts a form and is sent back to the page.
        let response = app
            .clone()
            .oneshot(post_form(
                "/api/notice/dismiss",
                "id=n%202",
                Some("http://127.0.0.1:8080"),
            ))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/");

        // Refused before reaching the agent.
        let refused = [
            post_form("/api/notice/dismiss", "id=n-1", None),
            post_form(
                "/api/notice/dismiss",
                "id=n-1",
                Some("https://evil.example"),
            ),
            post_form("/api/notice/dismiss", "id=", Some("http://localhost:8080")),
            post_json("/api/notice/dismiss", "{}"),
            post_json("/api/notice/dismiss", r#"{"id":""}"#),
            post_json(
                "/api/notice/dismiss",
                &format!(r#"{{"id":"{}"}}"#, "x".repeat(200)),
            ),
            post("/api/notice/dismiss"),
            Request::post("/api/notice/dismiss")
                .header(header::HOST, "evil.example")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"id":"n-1"}"#))
                .expect("request"),
        ];
        for request in refused {
            let (status, body) = call(app.clone(), request).await;
            assert!(status.is_client_error(), "{status}: {body}");
        }
        drop(app);
        assert_eq!(agent.await.expect("agent"), ["n-1", "n-1", "n-9", "n 2"]);
    }

    fn offer(call_id: &str, leg_id: &str, sdp: &str) -> Option<MediaOffer> {
        Some(MediaOffer {
            call_id: call_id.into(),
            leg_id: leg_id.into(),
            sdp: sdp.into(),
            ice_servers: Vec::new(),
        })
    }

    const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    #[tokio::test]
    async fn the_media_offer_is_the_current_calls_or_none() {
        let (keep, rx) = watch::channel(view("fi"));
        let (offers, offers_rx) = watch::channel(None);
        let media = MediaLink {
            offers: offers_rx,
            presses: mpsc::channel(1).0,
        };
        let app = router(rx, mpsc::channel(1).0, no_calls(), no_notices(), media);
        // No call, no offer: nothing to answer.
        let (status, body) = call(app.clone(), get("/api/media")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(body.is_empty());
        // An offer for a call the terminal does not serve is not shown.
        offers.send_replace(offer("c-1", "l-1", SDP));
        assert_eq!(
            call(app.clone(), get("/api/media")).await.0,
            StatusCode::NO_CONTENT
        );
        // The current call's offer, ringing or answered.
        keep.send_modify(|v| v.call = Some(a_call(CallKind::Alarm, "Pekka", Phase::Ringing, None)));
        let response = app
            .clone()
            .oneshot(get("/api/media"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let (_, body) = call(app.clone(), get("/api/media")).await;
        let shown: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            shown,
            serde_json::json!({"call_id": "c-1", "leg_id": "l-1", "sdp": SDP, "ice_servers": []})
        );
        // An ICE restart replaces the offer: the page sees the new sdp.
        let restarted = SDP.replace("o=- 1 2", "o=- 1 3");
        offers.send_replace(offer("c-1", "l-1", &restarted));
        let (_, body) = call(app.clone(), get("/api/media")).await;
        let shown: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(shown["sdp"], restarted.as_str());
        // The call ended: its offer is gone with it.
        keep.send_modify(|v| v.call = None);
        assert_eq!(
            call(app.clone(), get("/api/media")).await.0,
            StatusCode::NO_CONTENT
        );
        // Only the terminal's own browser reads it.
        let rebound = Request::get("/api/media")
            .header(header::HOST, "evil.example")
            .body(Body::empty())
            .expect("request");
        assert_eq!(call(app, rebound).await.0, StatusCode::MISDIRECTED_REQUEST);
    }

    #[tokio::test]
    async fn media_answers_and_restarts_reach_the_agent_for_the_current_offer_only() {
        let (_keep, rx) = watch::channel(with_call(
            "fi",
            a_call(CallKind::Alarm, "Pekka", Phase::Answered, None),
        ));
        let (_offers, offers_rx) = watch::channel(offer("c-1", "l-1", SDP));
        let (presses, mut agent_rx) = mpsc::channel::<MediaPress>(4);
        let media = MediaLink {
            offers: offers_rx,
            presses,
        };
        let app = router(rx, mpsc::channel(1).0, no_calls(), no_notices(), media);
        let agent = tokio::spawn(async move {
            let mut seen = Vec::new();
            // The agent takes the first two and finds the third stale.
            for sent in [true, true, false] {
                let press = agent_rx.recv().await.expect("press");
                seen.push((press.call_id, press.leg_id, press.request));
                let _ = press.reply.send(sent);
            }
            seen
        });
        let answer = format!(
            r#"{{"call_id":"c-1","leg_id":"l-1","sdp":{}}}"#,
            serde_json::json!(SDP)
        );
        let (status, body) = call(app.clone(), post_json("/api/media/answer", &answer)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let restart = r#"{"call_id":"c-1","leg_id":"l-1"}"#;
        let (status, body) = call(app.clone(), post_json("/api/media/restart", restart)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // An answer for another call or another leg is refused here.
        for (call_id, leg_id) in [("c-0", "l-1"), ("c-1", "l-0"), ("c-0", "l-0")] {
            let stale = format!(
                r#"{{"call_id":"{call_id}","leg_id":"{leg_id}","sdp":{}}}"#,
                serde_json::json!(SDP)
            );
            let (status, body) = call(app.clone(), post_json("/api/media/answer", &stale)).await;
            assert_eq!(status, StatusCode::CONFLICT, "{call_id} {leg_id}");
            assert!(body.contains("not the current call"), "{body}");
            let stale = format!(r#"{{"call_id":"{call_id}","leg_id":"{leg_id}"}}"#);
            let (status, _) = call(app.clone(), post_json("/api/media/restart", &stale)).await;
            assert_eq!(status, StatusCode::CONFLICT, "{call_id} {leg_id}");
        }
        // ...and by the agent, when the call moved on meanwhile.
        let (status, _) = call(app.clone(), post_json("/api/media/answer", &answer)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            agent.await.expect("agent"),
            [
                (
                    "c-1".to_string(),
                    "l-1".to_string(),
                    MediaRequest::Answer { sdp: SDP.into() }
                ),
                (
                    "c-1".to_string(),
                    "l-1".to_string(),
                    MediaRequest::RestartIce
                ),
                (
                    "c-1".to_string(),
                    "l-1".to_string(),
                    MediaRequest::Answer { sdp: SDP.into() }
                ),
            ]
        );
        // The agent is gone.
        let (status, _) = call(app, post_json("/api/media/answer", &answer)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn media_endpoints_refuse_malformed_oversized_and_foreign_bodies() {
        let (_keep, rx) = watch::channel(with_call(
            "en",
            a_call(CallKind::Alarm, "Pekka", Phase::Answered, None),
        ));
        let (_offers, offers_rx) = watch::channel(offer("c-1", "l-1", SDP));
        let (presses, mut agent_rx) = mpsc::channel::<MediaPress>(4);
        let media = MediaLink {
            offers: offers_rx,
            presses,
        };
        let app = router(rx, mpsc::channel(1).0, no_calls(), no_notices(), media);
        let with_sdp = |sdp: &str| {
            format!(
                r#"{{"call_id":"c-1","leg_id":"l-1","sdp":{}}}"#,
                serde_json::json!(sdp)
            )
        };
        for bad in [
            "not json".to_string(),
            "{}".into(),
            r#"{"call_id":"c-1","leg_id":"l-1"}"#.into(),
            r#"{"call_id":"c-1","leg_id":"l-1","sdp":7}"#.into(),
            r#"{"call_id":"","leg_id":"l-1","sdp":"v=0"}"#.into(),
            r#"{"call_id":"c-1","leg_id":"","sdp":"v=0"}"#.into(),
            format!(
                r#"{{"call_id":"c-1","leg_id":"{}","sdp":"v=0"}}"#,
                "x".repeat(MAX_LEG_ID_BYTES + 1)
            ),
            with_sdp(""),
            with_sdp("<html>"),
        ] {
            let (status, body) = call(app.clone(), post_json("/api/media/answer", &bad)).await;
            assert!(status.is_client_error(), "{bad}: {status} {body}");
            assert_ne!(status, StatusCode::CONFLICT, "{bad}");
        }
        for bad in ["not json", "{}", r#"{"call_id":"c-1","leg_id":7}"#] {
            let (status, _) = call(app.clone(), post_json("/api/media/restart", bad)).await;
            assert!(status.is_client_error(), "{bad}: {status}");
        }
        // A session description is well below a link frame; a body above
        // one is refused before it is read...
        let huge = with_sdp(&format!("v=0\r\n{}", "a=x\r\n".repeat(20_000)));
        assert!(huge.len() > etahoiva_proto::MAX_FRAME_BYTES);
        let (status, _) = call(app.clone(), post_json("/api/media/answer", &huge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // ...and one that would not fit in a frame to the hub is too.
        let filler = etahoiva_proto::MAX_FRAME_BYTES - with_sdp("v=0\r\n").len() - 4;
        let edge = with_sdp(&format!("v=0\r\n{}", "a".repeat(filler)));
        assert!(edge.len() <= etahoiva_proto::MAX_FRAME_BYTES);
        let (status, _) = call(app.clone(), post_json("/api/media/answer", &edge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // JSON only, from the terminal's own browser only.
        let (status, _) = call(app.clone(), post("/api/media/answer")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let foreign = Request::post("/api/media/answer")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "https://evil.example")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(with_sdp(SDP)))
            .expect("request");
        assert_eq!(call(app.clone(), foreign).await.0, StatusCode::FORBIDDEN);
        let rebound = Request::post("/api/media/restart")
            .header(header::HOST, "evil.example")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"call_id":"c-1","leg_id":"l-1"}"#))
            .expect("request");
        assert_eq!(call(app, rebound).await.0, StatusCode::MISDIRECTED_REQUEST);
        // None of them reached the agent.
        assert!(agent_rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn the_page_has_the_calls_picture_and_opens_no_camera_before_an_answer() {
        let ringing = a_call(CallKind::ScheduledCare, "Anna", Phase::Ringing, None);
        for (lang, remote, local) in [
            ("fi", "Soittajan kuva", "Oma kuvasi"),
            ("sv", "Bild av den som ringer", "Din egen bild"),
            ("en", "The caller&#39;s picture", "Your own picture"),
        ] {
            let (_keep, rx) = watch::channel(with_call(lang, ringing.clone()));
            let app = router(rx, mpsc::channel(1).0, no_calls(), no_notices(), no_media());
            let (_, body) = call(app, get("/")).await;
            // Hidden until the call is answered; labelled for screen readers.
            assert!(body.contains(&format!(
                r#"<section class="call-media" id="call-media" aria-label="{}" hidden>"#,
                escape(&text(lang, "kiosk.media_label"))
            )));
            assert!(
                body.contains(&format!(
                    r#"id="remote-video" autoplay playsinline aria-label="{remote}""#
                )),
                "{lang}"
            );
            assert!(
                body.contains(&format!(
                    r#"id="local-video" autoplay playsinline muted aria-label="{local}""#
                )),
                "{lang}"
            );
            assert!(body.contains(
                r#"<p class="media-status" id="media-status" role="status" aria-live="polite">"#
            ));
            // The camera is opened in one place only, once the call is answered.
            assert_eq!(
                body.matches("getUserMedia(").count(),
                2,
                "video and the audio-only fallback"
            );
            assert_eq!(body.matches("openCamera().then").count(), 1);
            assert!(body.contains(r#"var on = !!call && call.state === "answered";"#));
            assert!(body.contains("window.etahoivaKioskCall"));
        }
    }
}
