//! The terminal agent: its state shared by the link, the alarm inputs and
//! the kiosk, and the task that runs them all.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etahoiva_firmware_config::{Profile, TerminalSettings};
use etahoiva_proto::{CallState, EdgeToHub, Event, EventKind, Schedule};
use tokio::sync::{mpsc, watch, Notify};

use crate::alarm::{AlarmBoard, AlarmStatus, Applied};
use crate::calls::{CallError, CallSlot, ClientAction, Offer, Phase};
use crate::kiosk::{
    CallPress, HelpPress, HelpStatus, KioskView, MediaLink, MediaPress, MediaRequest, NoticePress,
};
use crate::notices::{Dismissed, Notice, NoticeBoard, Received};
use crate::outbox::{Outbox, OutboxError};
use crate::schedule::ClientSchedule;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("cannot use the state directory {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serve the kiosk on {addr}: {source}")]
    Kiosk {
        addr: String,
        source: std::io::Error,
    },
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// State shared by the parts of a running terminal.
pub struct Shared {
    pub profile: Profile,
    pub tls: Arc<rustls::ClientConfig>,
    settings: RwLock<TerminalSettings>,
    outbox: Arc<Mutex<Outbox>>,
    /// Woken when an event enters the outbox.
    pub outbox_changed: Notify,
    connected: AtomicBool,
    last_contact: AtomicI64,
    view: watch::Sender<KioskView>,
    last_help: Mutex<Option<String>>,
    /// Bumped whenever new settings are applied.
    applied: watch::Sender<u64>,
    /// A kiosk listener bound for newly applied settings, for the kiosk task.
    kiosk_rebind: Mutex<Option<std::net::TcpListener>>,
    /// This process serves the kiosk page.
    serves_kiosk: AtomicBool,
    /// The schedule shown is the one in `state/schedule.json`.
    schedule_cached: AtomicBool,
    /// The one call the terminal serves.
    calls: Mutex<CallSlot>,
    /// The client's alarms as the hub reports them (`state/alarm.json`).
    alarms: Arc<Mutex<AlarmBoard>>,
    /// Messages for the client (`state/notices.json`).
    notices: Arc<Mutex<NoticeBoard>>,
    /// Live frames for the link (call updates from the kiosk): sent on
    /// the current connection or dropped, never replayed.
    live_tx: mpsc::Sender<EdgeToHub>,
    live_rx: tokio::sync::Mutex<mpsc::Receiver<EdgeToHub>>,
    /// The agent is the client and the media peer itself (`--simulate`).
    simulate: AtomicBool,
    pub(crate) sim_calls: crate::media::SimCalls,
    /// The hub's latest media offer, for the kiosk page's WebRTC peer.
    media_offer: watch::Sender<Option<MediaOffer>>,
}

/// A media offer of the hub for the kiosk page (the fields of `HubToEdge::MediaOffer`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MediaOffer {
    pub call_id: String,
    pub leg_id: String,
    pub sdp: String,
    /// TURN servers for the kiosk page's connection.
    pub ice_servers: Vec<etahoiva_proto::IceServer>,
}

/// How many live frames may wait for the link task.
const LIVE_QUEUE: usize = 32;

/// Logs a live frame that will not reach the hub (ids and states only).
pub(crate) fn log_dropped(message: &EdgeToHub, why: &str) {
    match message {
        EdgeToHub::CallUpdate { call_id, state, .. } => {
            tracing::warn!(%call_id, ?state, "{why}: the call update is dropped")
        }
        _ => tracing::warn!("{why}: a live frame is dropped"),
    }
}

fn call_updates(updates: Vec<(String, CallState)>) -> Vec<EdgeToHub> {
    updates
        .into_iter()
        .map(|(call_id, state)| EdgeToHub::CallUpdate {
            call_id,
            state,
            detail: None,
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a call the terminal may answer by itself rings first.
fn auto_answer_countdown(settings: &TerminalSettings) -> Duration {
    Duration::from_secs(settings.auto_answer.countdown_secs.into())
}

fn settings_file(state_dir: &Path) -> PathBuf {
    state_dir.join("settings.json")
}

/// Settings applied from the hub earlier, if newer than the profile's.
fn load_applied_settings(profile: &Profile) -> TerminalSettings {
    let path = settings_file(&profile.state_dir);
    let stored = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|value| TerminalSettings::from_json(&value).ok());
    match stored {
        Some(s) if s.version > profile.settings.version => {
            tracing::info!(version = s.version, "running settings applied from the hub");
            s
        }
        _ => profile.settings.clone(),
    }
}

/// Replaces `path` with `bytes` so that after a crash it holds either the
/// old or the new content: temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Runs `f` on a board kept in the state directory and, when it says the
/// board changed, saves it to `path` before the lock is released, so saves
/// happen in the order of the changes. Returns `f`'s result and the board.
async fn update_saved<B, T>(
    board: Arc<Mutex<B>>,
    path: PathBuf,
    what: &'static str,
    f: impl FnOnce(&mut B) -> (T, bool) + Send + 'static,
) -> (T, B)
where
    B: Clone + serde::Serialize + Send + 'static,
    T: Send + 'static,
{
    let job = tokio::task::spawn_blocking(move || {
        let mut board = lock(&board);
        let (result, changed) = f(&mut board);
        if changed {
            if let Err(e) = crate::state_file::save(&path, &*board) {
                tracing::error!(error = %e,
                    "cannot save the {what} on the terminal; shown until the agent restarts");
            }
        }
        (result, board.clone())
    });
    match job.await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Shared {
    /// Opens the outbox and the applied settings of `profile`.
    pub fn open(profile: Profile) -> Result<Arc<Shared>, AgentError> {
        std::fs::create_dir_all(&profile.state_dir).map_err(|source| AgentError::State {
            path: profile.state_dir.clone(),
            source,
        })?;
        let tls = crate::tls::client_config(
            &profile.hub.ca_cert,
            &profile.identity.cert,
            &profile.identity.key,
        )?;
        let (outbox, quarantined) = Outbox::open(&profile.state_dir.join("outbox"))?;
        for q in &quarantined {
            tracing::error!(path = %q.path.display(), reason = %q.reason,
                "an outbox file is damaged; it was set aside and the other events are kept");
        }
        let settings = load_applied_settings(&profile);
        let schedule = crate::schedule::load(&profile.state_dir)
            .into_schedule()
            .map(|s| {
                tracing::info!(
                    visits = s.visits.len(),
                    "showing the cached schedule until the hub sends a new one"
                );
                Arc::new(ClientSchedule::new(s))
            });
        let cached = schedule.is_some();
        let alarms =
            crate::state_file::load::<AlarmBoard>(&crate::alarm::alarm_file(&profile.state_dir))
                .into_value("alarm progress")
                .unwrap_or_default();
        if let Some(alarm) = alarms.shown(now_ms()) {
            tracing::info!(alert_id = %alarm.alert_id, progress = ?alarm.progress,
                "showing the saved progress of the client's alarm");
        }
        let notices = crate::state_file::load::<NoticeBoard>(&crate::notices::notices_file(
            &profile.state_dir,
        ))
        .into_value("notices")
        .unwrap_or_default();
        let view = KioskView {
            client_name: settings.client.name.clone(),
            language: settings.language.code().to_string(),
            connected: false,
            last_contact_ms: None,
            pending_events: outbox.len(),
            help: HelpStatus::Idle,
            font_scale: settings.kiosk.font_scale,
            high_contrast: settings.kiosk.high_contrast,
            notices: notices.shown(),
            alarms: alarms.clone(),
            schedule,
            call: None,
        };
        let (live_tx, live_rx) = mpsc::channel(LIVE_QUEUE);
        let mut calls = CallSlot::new();
        calls.set_countdown(auto_answer_countdown(&settings));
        Ok(Arc::new(Shared {
            profile,
            tls,
            settings: RwLock::new(settings),
            outbox: Arc::new(Mutex::new(outbox)),
            outbox_changed: Notify::new(),
            connected: AtomicBool::new(false),
            last_contact: AtomicI64::new(0),
            view: watch::Sender::new(view),
            last_help: Mutex::new(None),
            applied: watch::Sender::new(0),
            kiosk_rebind: Mutex::new(None),
            serves_kiosk: AtomicBool::new(false),
            schedule_cached: AtomicBool::new(cached),
            calls: Mutex::new(calls),
            alarms: Arc::new(Mutex::new(alarms)),
            notices: Arc::new(Mutex::new(notices)),
            live_tx,
            live_rx: tokio::sync::Mutex::new(live_rx),
            simulate: AtomicBool::new(false),
            sim_calls: Default::default(),
            media_offer: watch::Sender::new(None),
        }))
    }

    pub fn device_id(&self) -> &str {
        &self.profile.device.id
    }

    /// The settings the terminal runs now.
    pub fn settings(&self) -> TerminalSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn kiosk_view(&self) -> watch::Receiver<KioskView> {
        self.view.subscribe()
    }

    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
        self.view.send_if_modified(|v| {
            let changed = v.connected != connected;
            v.connected = connected;
            changed
        });
    }

    /// The hub accepted the link.
    pub fn welcomed(&self, client_name: Option<String>) {
        self.heard_from_hub();
        let name = client_name.or_else(|| self.settings().client.name);
        self.view.send_modify(|v| {
            v.client_name = name;
            v.connected = true;
        });
        self.connected.store(true, Ordering::Relaxed);
    }

    pub fn heard_from_hub(&self) {
        let now = now_ms();
        let before = self.last_contact.swap(now, Ordering::Relaxed);
        // The kiosk shows minutes; updating it every few seconds is plenty.
        if now - before > 5_000 {
            self.view.send_modify(|v| v.last_contact_ms = Some(now));
        }
    }

    /// The schedule the kiosk shows now (from the hub or the cache).
    pub fn schedule(&self) -> Option<Schedule> {
        self.view
            .borrow()
            .schedule
            .as_ref()
            .map(|s| s.schedule().clone())
    }

    /// The hub sent the client's coming visits: show them and cache them
    /// in `state/schedule.json` for restarts while the hub is unreachable.
    /// The list replaces the previous one. If it cannot be cached it is
    /// still shown, and the error is logged.
    pub async fn schedule_received(&self, schedule: Schedule) {
        let unchanged = self
            .view
            .borrow()
            .schedule
            .as_ref()
            .is_some_and(|s| *s.schedule() == schedule);
        if unchanged && self.schedule_cached.load(Ordering::Relaxed) {
            // Sent again after a reconnect: spare the flash a rewrite.
            tracing::debug!(visits = schedule.visits.len(), "schedule unchanged");
            return;
        }
        let visits = schedule.visits.len();
        let shown = Arc::new(ClientSchedule::new(schedule));
        self.view.send_modify(|v| v.schedule = Some(shown.clone()));
        let state_dir = self.profile.state_dir.clone();
        let saved = tokio::task::spawn_blocking(move || {
            crate::schedule::save(&state_dir, shown.schedule())
        })
        .await;
        let cached = matches!(saved, Ok(Ok(())));
        self.schedule_cached.store(cached, Ordering::Relaxed);
        match saved {
            Ok(Ok(())) => tracing::info!(visits, "schedule received and cached"),
            Ok(Err(e)) => tracing::error!(visits, error = %e,
                "cannot cache the schedule on the terminal; it is shown until the agent restarts"),
            Err(e) => tracing::error!(error = %e, "caching the schedule failed"),
        }
    }

    /// The hub reports a step of one of this terminal's alarms: shown on
    /// the kiosk and saved, unless older than what the kiosk shows.
    pub async fn alarm_status(&self, status: AlarmStatus) -> Applied {
        let alert_id = status.alert_id.clone();
        let progress = status.progress;
        let keys = status.event_keys.clone();
        let now = now_ms();
        let (applied, board) = update_saved(
            self.alarms.clone(),
            crate::alarm::alarm_file(&self.profile.state_dir),
            "alarm progress",
            move |board| {
                let applied = board.apply(status, now);
                (applied, applied.changed())
            },
        )
        .await;
        if !applied.changed() {
            tracing::debug!(%alert_id, ?progress, ?applied, "alarm status not shown");
            return applied;
        }
        tracing::info!(%alert_id, ?progress, "alarm status");
        // The alarm's progress takes over from "the nurses have your call for help".
        let covers_help = {
            let mut last = lock(&self.last_help);
            let covered = last.as_ref().is_some_and(|key| keys.contains(key));
            if covered {
                *last = None;
            }
            covered
        };
        self.view.send_modify(|v| {
            v.alarms = board;
            if covers_help {
                v.help = HelpStatus::Idle;
            }
        });
        applied
    }

    /// The client's alarms as the kiosk knows them.
    pub fn alarms(&self) -> AlarmBoard {
        lock(&self.alarms).clone()
    }

    /// A message for the client from the hub: shown until dismissed, saved.
    pub async fn notice_received(&self, id: String, text: String) -> Received {
        let now = now_ms();
        let notice_id = id.clone();
        let (received, board) = update_saved(
            self.notices.clone(),
            crate::notices::notices_file(&self.profile.state_dir),
            "notices",
            move |board| {
                let received = board.receive(&id, &text, now);
                (received, received.changed())
            },
        )
        .await;
        tracing::info!(notice_id = %notice_id, ?received, "notice");
        if received.changed() {
            self.view.send_modify(|v| v.notices = board.shown());
        }
        received
    }

    /// The client pressed OK on a notice: it leaves the kiosk for good.
    pub async fn dismiss_notice(&self, id: String) -> Dismissed {
        let notice_id = id.clone();
        let (dismissed, board) = update_saved(
            self.notices.clone(),
            crate::notices::notices_file(&self.profile.state_dir),
            "notices",
            move |board| {
                let dismissed = board.dismiss(&id);
                (dismissed, dismissed == Dismissed::Dismissed)
            },
        )
        .await;
        tracing::info!(notice_id = %notice_id, ?dismissed, "the client dismissed a notice");
        if dismissed == Dismissed::Dismissed {
            self.view.send_modify(|v| v.notices = board.shown());
        }
        dismissed
    }

    /// The notices the kiosk shows, newest first.
    pub fn notices(&self) -> Vec<Notice> {
        lock(&self.notices).shown()
    }

    /// Runs `f` on the call slot and shows the resulting call on the kiosk.
    fn with_calls<T>(&self, f: impl FnOnce(&mut CallSlot) -> T) -> T {
        let mut slot = lock(&self.calls);
        let result = f(&mut slot);
        let shown = slot.current().cloned();
        self.view.send_if_modified(|v| {
            let changed = v.call != shown;
            v.call = shown;
            changed
        });
        result
    }

    /// The call the terminal serves now.
    pub fn current_call(&self) -> Option<crate::calls::Call> {
        lock(&self.calls).current().cloned()
    }

    /// The hub offers a call: returns the updates to send back, in order.
    /// A new call that may answer by itself is answered at its deadline
    /// unless the client has answered or declined it by then.
    pub fn call_offered(self: &Arc<Self>, offer: Offer) -> Vec<EdgeToHub> {
        let (call_id, kind) = (offer.call_id.clone(), offer.kind);
        let now = now_ms();
        let (updates, deadline) = self.with_calls(|slot| {
            let known = slot.current().is_some_and(|c| c.id == call_id);
            let updates = slot.offer(offer, now);
            // A repeated offer keeps the countdown already running.
            let deadline = slot
                .current()
                .filter(|c| !known && c.id == call_id && c.phase == Phase::Ringing)
                .and_then(|c| c.auto_answer_at);
            (updates, deadline)
        });
        if let Some(deadline) = deadline {
            tracing::info!(%call_id, ?kind, in_ms = deadline - now,
                "the call answers by itself after the countdown");
            let shared = self.clone();
            let id = call_id.clone();
            let wait = Duration::from_millis(deadline.saturating_sub(now).max(0) as u64);
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                shared.answer_by_itself(&id);
            });
        }
        if self.simulates()
            && updates
                .iter()
                .any(|(id, state)| *id == call_id && *state == CallState::Ringing)
        {
            // The simulated client answers after a moment, as a person would.
            let shared = self.clone();
            let id = call_id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(SIMULATED_ANSWER_DELAY).await;
                if let Err(e) = shared.call_action(ClientAction::Accept, &id) {
                    tracing::debug!(call_id = %id, error = %e, "simulated answer not taken");
                }
            });
        }
        for (id, state) in &updates {
            tracing::info!(offered = %call_id, ?kind, call_id = %id, ?state, "call offer");
        }
        call_updates(updates)
    }

    /// The countdown of a call that may answer by itself is over: if the
    /// call is still the one ringing, it is answered as if the client had
    /// pressed answer. A call declined, answered, ended or cut meanwhile is
    /// left alone.
    fn answer_by_itself(&self, call_id: &str) {
        let ringing = self.current_call().is_some_and(|c| {
            c.id == call_id && c.phase == Phase::Ringing && c.auto_answer_at.is_some()
        });
        if !ringing {
            tracing::debug!(%call_id, "the call no longer counts down");
            return;
        }
        tracing::info!(%call_id, "the countdown is over: the call answers by itself");
        if let Err(e) = self.call_action(ClientAction::Accept, call_id) {
            // Declined or replaced in the same moment.
            tracing::debug!(%call_id, error = %e, "the call did not answer by itself");
        }
    }

    /// The hub ended a call: clear it from the terminal.
    pub fn call_ended(&self, call_id: &str) {
        self.sim_calls.stop(call_id);
        if self.with_calls(|slot| slot.end(call_id)) {
            tracing::info!(%call_id, "the hub ended the call");
        } else {
            tracing::debug!(%call_id, "the hub ended a call that is not on the terminal");
        }
    }

    /// The client answered, declined or hung up on the kiosk: apply it and
    /// send the updates to the hub. The state on the terminal changes even
    /// when the link is down; the updates are then dropped (calls are live,
    /// nothing is replayed). Returns the call's state afterwards.
    pub fn call_action(&self, action: ClientAction, call_id: &str) -> Result<CallState, CallError> {
        let (updates, state) = self.with_calls(|slot| {
            let updates = slot.act(action, call_id)?;
            let state = match slot.current() {
                Some(call) if call.id == call_id => call.phase.state(),
                _ => match action {
                    ClientAction::Decline => CallState::Declined,
                    _ => CallState::Ended,
                },
            };
            Ok::<_, CallError>((updates, state))
        })?;
        tracing::info!(%call_id, ?action, ?state, "the client acted on the call");
        for update in call_updates(updates) {
            self.send_live(update);
        }
        Ok(state)
    }

    /// The hub offers media for a call: kept for the kiosk page, if the call
    /// is the one the terminal serves.
    pub fn media_offer(
        &self,
        call_id: String,
        leg_id: String,
        sdp: String,
        ice_servers: Vec<etahoiva_proto::IceServer>,
    ) {
        let current = self.current_call().is_some_and(|c| c.id == call_id);
        if !current {
            tracing::info!(%call_id, "media offer for a call the terminal does not serve");
            return;
        }
        self.media_offer.send_replace(Some(MediaOffer {
            call_id,
            leg_id,
            sdp,
            ice_servers,
        }));
    }

    /// The media offer of the current call, for the kiosk page.
    pub fn current_media_offer(&self) -> Option<MediaOffer> {
        let offer = self.media_offer.borrow().clone()?;
        self.current_call()
            .is_some_and(|c| c.id == offer.call_id)
            .then_some(offer)
    }

    /// The hub's media offers as they come, for the kiosk (which shows the
    /// current call's: see [`Shared::current_media_offer`]).
    pub fn media_offers(&self) -> watch::Receiver<Option<MediaOffer>> {
        self.media_offer.subscribe()
    }

    /// The kiosk page's answer to the media offer: sent to the hub if it
    /// answers the current call's offer.
    pub fn kiosk_media_answer(&self, call_id: &str, leg_id: &str, sdp: String) -> bool {
        let matches = self
            .current_media_offer()
            .is_some_and(|o| o.call_id == call_id && o.leg_id == leg_id);
        if matches {
            self.send_live(EdgeToHub::MediaAnswer {
                call_id: call_id.to_string(),
                leg_id: leg_id.to_string(),
                sdp,
            });
        }
        matches
    }

    /// The kiosk page saw its network change: ask the hub for a new offer.
    pub fn kiosk_ice_restart(&self, call_id: &str, leg_id: &str) -> bool {
        let matches = self
            .current_media_offer()
            .is_some_and(|o| o.call_id == call_id && o.leg_id == leg_id);
        if matches {
            self.send_live(EdgeToHub::IceRestartRequest {
                call_id: call_id.to_string(),
                leg_id: leg_id.to_string(),
            });
        }
        matches
    }

    /// Whether the agent simulates the client and the camera.
    pub fn simulates(&self) -> bool {
        self.simulate.load(Ordering::Relaxed)
    }

    /// Keeps what the simulated call's media did in `state/media.json`.
    pub(crate) fn write_media_report(&self, report: &crate::media::CallMedia) {
        let path = self.profile.state_dir.join("media.json");
        if let Err(e) = crate::state_file::save(&path, report) {
            tracing::debug!(error = %e, "media report not written");
        }
    }

    /// Queues a live frame for the link if it is up; otherwise drops it with a log line.
    pub(crate) fn send_live(&self, message: EdgeToHub) {
        if !self.is_connected() {
            log_dropped(&message, "the link is down");
            return;
        }
        if let Err(e) = self.live_tx.try_send(message) {
            let message = match e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
            };
            log_dropped(&message, "the link is not taking frames");
        }
    }

    /// The queue of live frames, for the link task (one at a time).
    pub(crate) async fn live_frames(
        &self,
    ) -> tokio::sync::MutexGuard<'_, mpsc::Receiver<EdgeToHub>> {
        self.live_rx.lock().await
    }

    async fn with_outbox<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Outbox) -> T + Send + 'static,
    ) -> T {
        let outbox = self.outbox.clone();
        let job = tokio::task::spawn_blocking(move || f(&mut lock(&outbox)));
        match job.await {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    fn show_pending(&self, pending: usize) {
        self.view.send_if_modified(|v| {
            let changed = v.pending_events != pending;
            v.pending_events = pending;
            changed
        });
    }

    /// Accepts an event from a local source: it is on disk and fsynced
    /// when this returns its idempotency key.
    pub async fn accept(
        &self,
        kind: EventKind,
        detail: serde_json::Value,
    ) -> Result<String, OutboxError> {
        let key = uuid::Uuid::now_v7().simple().to_string();
        let event = Event {
            key: key.clone(),
            kind: kind.clone(),
            occurred_at: now_ms(),
            detail,
        };
        let (result, pending) = self
            .with_outbox(move |outbox| {
                let result = outbox.push(event);
                (result, outbox.len())
            })
            .await;
        result?;
        tracing::info!(event_key = %key, kind = kind.as_str(), "event accepted");
        self.show_pending(pending);
        self.outbox_changed.notify_one();
        Ok(key)
    }

    /// The hub stored the event: remove it from the outbox.
    pub async fn acknowledged(&self, key: String) {
        let (result, pending) = {
            let key = key.clone();
            self.with_outbox(move |outbox| {
                let result = outbox.ack(&key);
                (result, outbox.len())
            })
            .await
        };
        match result {
            Ok(true) => tracing::debug!(event_key = %key, "event delivered"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(event_key = %key, error = %e, "cannot remove a delivered event")
            }
        }
        self.show_pending(pending);
        if lock(&self.last_help).as_deref() == Some(key.as_str()) {
            self.view.send_modify(|v| v.help = HelpStatus::Delivered);
        }
    }

    /// Events waiting for the hub, oldest first.
    pub async fn pending(&self) -> Vec<Event> {
        self.with_outbox(|outbox| outbox.pending()).await
    }

    pub async fn pending_count(&self) -> usize {
        self.with_outbox(|outbox| outbox.len()).await
    }

    /// Validates, stores and applies settings pushed by the hub. On error
    /// the running settings stay as they are.
    pub async fn apply_settings(
        &self,
        version: u64,
        value: &serde_json::Value,
    ) -> Result<(), String> {
        let mut settings = TerminalSettings::from_json(value).map_err(|e| e.to_string())?;
        settings.version = version;
        let current = self.settings();
        if version <= current.version {
            // Already running it (a repeated push after a reconnect).
            return if version == current.version {
                Ok(())
            } else {
                Err(format!(
                    "version {version} is older than the running version {}",
                    current.version
                ))
            };
        }
        self.check_locally(&current, &settings)?;
        let rebind = if self.serves_kiosk.load(Ordering::Relaxed)
            && settings.kiosk.enabled
            && (settings.kiosk.listen != current.kiosk.listen || !current.kiosk.enabled)
        {
            let listener = std::net::TcpListener::bind(&settings.kiosk.listen).map_err(|e| {
                format!(
                    "settings.kiosk.listen: cannot listen on {}: {e}",
                    settings.kiosk.listen
                )
            })?;
            Some(listener)
        } else {
            None
        };
        let bytes = serde_json::to_vec_pretty(&settings).map_err(|e| e.to_string())?;
        let path = settings_file(&self.profile.state_dir);
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot save the settings on the terminal: {e}"))?;
        *lock(&self.kiosk_rebind) = rebind;
        lock(&self.calls).set_countdown(auto_answer_countdown(&settings));
        let view_settings = settings.clone();
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
        self.view.send_modify(|v| {
            v.language = view_settings.language.code().to_string();
            v.font_scale = view_settings.kiosk.font_scale;
            v.high_contrast = view_settings.kiosk.high_contrast;
            if view_settings.client.name.is_some() {
                v.client_name = view_settings.client.name.clone();
            }
        });
        self.applied.send_modify(|n| *n += 1);
        tracing::info!(version, "settings applied");
        Ok(())
    }

    /// Checks what only the terminal can know: that the files and
    /// devices the settings name exist here.
    fn check_locally(
        &self,
        _current: &TerminalSettings,
        next: &TerminalSettings,
    ) -> Result<(), String> {
        for (i, input) in next.alarm_inputs.iter().enumerate() {
            if let etahoiva_firmware_config::InputSource::Socket { path } = &input.source {
                let dir = path.parent().unwrap_or(Path::new("/"));
                if !dir.is_dir() {
                    return Err(format!(
                        "settings.alarm_inputs[{i}].source.path: the directory {} does not exist on this terminal",
                        dir.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// A receiver that changes whenever new settings are applied.
    pub fn applied_changes(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    fn take_kiosk_rebind(&self) -> Option<std::net::TcpListener> {
        lock(&self.kiosk_rebind).take()
    }

    async fn press_help(&self, source: &str) -> Result<String, String> {
        match self
            .accept(
                EventKind::HelpButton,
                serde_json::json!({ "input": source }),
            )
            .await
        {
            Ok(key) => {
                *lock(&self.last_help) = Some(key.clone());
                self.view.send_modify(|v| v.help = HelpStatus::Saved);
                Ok(key)
            }
            Err(e) => {
                tracing::error!(error = %e, "the help press could not be saved");
                Err(e.to_string())
            }
        }
    }
}

/// How long a simulated client takes to answer a ringing call.
const SIMULATED_ANSWER_DELAY: Duration = Duration::from_millis(1500);

/// Options of a running terminal beyond its profile.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Serve the kiosk (when the settings enable it).
    pub kiosk: bool,
    /// Be the client too: answer ringing calls after a moment and send a
    /// generated picture and tone.
    pub simulate: bool,
}

/// A started terminal.
pub struct Running {
    pub shared: Arc<Shared>,
    /// Where the kiosk listens, if it does.
    pub kiosk_addr: Option<std::net::SocketAddr>,
    tasks: tokio::task::JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Running {
    /// Stops every part of the terminal and waits for them.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts a terminal: the link, the alarm inputs and the kiosk.
pub async fn start(profile: Profile, options: RunOptions) -> Result<Running, AgentError> {
    let shared = Shared::open(profile)?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut kiosk_addr = None;
    let settings = shared.settings();
    shared.simulate.store(options.simulate, Ordering::Relaxed);
    if options.kiosk {
        shared.serves_kiosk.store(true, Ordering::Relaxed);
        let first = if settings.kiosk.enabled {
            let listener =
                std::net::TcpListener::bind(&settings.kiosk.listen).map_err(|source| {
                    AgentError::Kiosk {
                        addr: settings.kiosk.listen.clone(),
                        source,
                    }
                })?;
            kiosk_addr = listener.local_addr().ok();
            Some(listener)
        } else {
            None
        };
        tasks.spawn(run_kiosk(shared.clone(), first, stop_rx.clone()));
    }
    tasks.spawn(crate::link::run(shared.clone(), stop_rx.clone()));
    tasks.spawn(crate::inputs::run(shared.clone(), stop_rx));
    Ok(Running {
        shared,
        kiosk_addr,
        tasks,
        stop,
    })
}

/// Serves the kiosk, moving to a new address when settings change it and
/// stopping or starting it when settings turn it off or on.
async fn run_kiosk(
    shared: Arc<Shared>,
    first: Option<std::net::TcpListener>,
    mut stop: watch::Receiver<bool>,
) {
    let (help_tx, mut help_rx) = mpsc::channel::<HelpPress>(16);
    let presses = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(press) = help_rx.recv().await {
                let result = shared.press_help("kiosk").await;
                let _ = press.reply.send(result);
            }
        })
    };
    let (notice_tx, mut notice_rx) = mpsc::channel::<NoticePress>(16);
    let notice_presses = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(press) = notice_rx.recv().await {
                let outcome = shared.dismiss_notice(press.id).await;
                let _ = press.reply.send(outcome);
            }
        })
    };
    let (call_tx, mut call_rx) = mpsc::channel::<CallPress>(16);
    let call_presses = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(press) = call_rx.recv().await {
                let result = shared.call_action(press.action, &press.call_id);
                let _ = press.reply.send(result);
            }
        })
    };
    let (media_tx, mut media_rx) = mpsc::channel::<MediaPress>(16);
    let media_presses = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(press) = media_rx.recv().await {
                let (call_id, leg_id) = (press.call_id.as_str(), press.leg_id.as_str());
                let sent = match press.request {
                    MediaRequest::Answer { sdp } => {
                        let sent = shared.kiosk_media_answer(call_id, leg_id, sdp);
                        tracing::info!(%call_id, %leg_id, sent, "the kiosk answered the media offer");
                        sent
                    }
                    MediaRequest::RestartIce => {
                        let sent = shared.kiosk_ice_restart(call_id, leg_id);
                        tracing::info!(%call_id, %leg_id, sent, "the kiosk asked for an ICE restart");
                        sent
                    }
                };
                let _ = press.reply.send(sent);
            }
        })
    };
    let mut applied = shared.applied_changes();
    let mut next = first;
    loop {
        let server = match next.take().map(|l| (l.local_addr(), l)) {
            None => None,
            Some((addr, listener)) => {
                match listener
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::TcpListener::from_std(listener))
                {
                    Ok(listener) => {
                        if let Ok(addr) = addr {
                            tracing::info!(%addr, "kiosk serving");
                        }
                        let (quit_tx, quit_rx) = tokio::sync::oneshot::channel::<()>();
                        let router = crate::kiosk::router(
                            shared.kiosk_view(),
                            help_tx.clone(),
                            call_tx.clone(),
                            notice_tx.clone(),
                            MediaLink {
                                offers: shared.media_offers(),
                                presses: media_tx.clone(),
                            },
                        );
                        let task = tokio::spawn(crate::kiosk::serve(listener, router, async {
                            let _ = quit_rx.await;
                        }));
                        Some((quit_tx, task))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot serve the kiosk");
                        None
                    }
                }
            }
        };
        let stopping = loop {
            tokio::select! {
                _ = stop.changed() => break true,
                changed = applied.changed() => {
                    if changed.is_err() {
                        break true;
                    }
                    if let Some(listener) = shared.take_kiosk_rebind() {
                        next = Some(listener);
                        break false;
                    }
                    if server.is_some() && !shared.settings().kiosk.enabled {
                        tracing::info!("kiosk turned off by settings");
                        break false;
                    }
                }
            }
        };
        if let Some((quit, task)) = server {
            let _ = quit.send(());
            let _ = task.await;
        }
        if stopping {
            break;
        }
    }
    presses.abort();
    call_presses.abort();
    notice_presses.abort();
    media_presses.abort();
}
