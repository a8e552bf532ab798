//! The alarm engine of a hub: stores alarms from terminals in batches (one
//! transaction for whatever arrived together), routes them, runs the
//! escalation timers kept in the store (so they survive a restart), applies
//! staff actions and tells everybody who must know: consoles and patrol
//! phones over the live feed, the client on the terminal.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use etahoiva_proto::HubToEdge;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::lifecycle::{self, Action, Timer};
use super::routing::{Roster, ServiceHours};
use super::supervision::{self, SupervisionClass};
use super::{AlertsError, Kind, Priority, Status};
use crate::devices::registry::{Outbound, Registry};
use crate::i18n::Lang;
use crate::settings::Settings;
use crate::store::alerts::{AlarmInput, AlertChange, AlertView, Intake, IntakeRules};
use crate::store::{now_ms, Role, Store, StoreError};

/// Alarms stored in one transaction at most.
const BATCH: usize = 512;
/// Alerts the timer handles per pass.
const TIMER_PASS: i64 = 500;

/// The timings of alarm handling.
#[derive(Clone, Debug)]
pub struct Timings {
    pub ack_ms: i64,
    pub merge_ms: i64,
    pub stall_ms: i64,
}

impl Timings {
    pub fn from_settings(s: &Settings) -> Timings {
        let ms = |secs: u64| (secs.min(i64::MAX as u64 / 1000) * 1000) as i64;
        Timings {
            ack_ms: ms(s.alarm_ack_secs),
            merge_ms: ms(s.alarm_merge_secs),
            stall_ms: ms(s.alarm_stall_secs),
        }
    }
}

struct IntakeRequest {
    input: AlarmInput,
    reply: oneshot::Sender<Result<Intake, AlertsError>>,
}

/// The alarm engine. Cheap to share (`Arc`).
pub struct Engine {
    store: Store,
    devices: Arc<Registry>,
    timings: Timings,
    hours: ServiceHours,
    roster: RwLock<Arc<Roster>>,
    intake: mpsc::Sender<IntakeRequest>,
    live: broadcast::Sender<Arc<AlertView>>,
    started_at: i64,
}

impl Engine {
    /// Loads the roster and starts the intake writer.
    pub async fn start(
        store: Store,
        devices: Arc<Registry>,
        settings: &Settings,
    ) -> Result<Arc<Engine>, AlertsError> {
        let tz = jiff::tz::TimeZone::get(&settings.unit_time_zone)
            .map_err(|e| AlertsError::NoTeam(format!("unit_time_zone: {e}")))?;
        let hours = ServiceHours::parse(&settings.alarm_day_start, &settings.alarm_day_end, tz)
            .map_err(AlertsError::NoTeam)?;
        let (teams, duty, rostered) = store.roster(now_ms() - 86_400_000).await?;
        let (intake_tx, intake_rx) = mpsc::channel(8192);
        let (live, _) = broadcast::channel(8192);
        let engine = Arc::new(Engine {
            store,
            devices,
            timings: Timings::from_settings(settings),
            roster: RwLock::new(Arc::new(Roster {
                teams,
                duty,
                rostered,
                hours: hours.clone(),
            })),
            hours,
            intake: intake_tx,
            live,
            started_at: now_ms(),
        });
        tokio::spawn(intake_writer(Arc::downgrade(&engine), intake_rx));
        Ok(engine)
    }

    pub fn roster(&self) -> Arc<Roster> {
        self.roster
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the teams and rosters again (after an administrator changed them).
    pub async fn reload_roster(&self) -> Result<(), AlertsError> {
        let (teams, duty, rostered) = self.store.roster(now_ms() - 86_400_000).await?;
        let roster = Arc::new(Roster {
            teams,
            duty,
            rostered,
            hours: self.hours.clone(),
        });
        *self.roster.write().unwrap_or_else(|p| p.into_inner()) = roster;
        Ok(())
    }

    pub fn is_day(&self, now: i64) -> bool {
        self.hours.is_day(now)
    }

    /// Every change of every alert, for live feeds.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AlertView>> {
        self.live.subscribe()
    }

    /// Stores an alarm from a terminal; answers once it is durable (the
    /// terminal may then forget it).
    pub async fn intake(&self, input: AlarmInput) -> Result<Intake, AlertsError> {
        let (reply, answer) = oneshot::channel();
        self.intake
            .send(IntakeRequest { input, reply })
            .await
            .map_err(|_| AlertsError::ShuttingDown)?;
        answer.await.map_err(|_| AlertsError::ShuttingDown)?
    }

    /// Tells consoles and the alert's terminal about a change.
    async fn publish(&self, view: AlertView, event_keys: Vec<String>) {
        if let (Some(device), Ok(status)) = (view.device_id.clone(), view.status()) {
            let kind = view.kind();
            if kind.is_some_and(Kind::is_alarm) {
                self.tell_terminal(&device, &view.id, status, event_keys, view.updated_at)
                    .await;
            }
        }
        let _ = self.live.send(Arc::new(view));
    }

    async fn tell_terminal(
        &self,
        device_id: &str,
        alert_id: &str,
        status: Status,
        event_keys: Vec<String>,
        at: i64,
    ) {
        let protocol = self.devices.presence(device_id).map(|p| p.protocol);
        if protocol.is_some_and(|p| p >= 3) {
            let keys = if event_keys.is_empty() {
                self.store
                    .alert_event_keys(alert_id)
                    .await
                    .unwrap_or_default()
            } else {
                event_keys
            };
            self.devices.send(
                device_id,
                Outbound::Send(HubToEdge::AlarmStatus {
                    alert_id: alert_id.to_string(),
                    event_keys: keys,
                    progress: status.progress(),
                    at,
                }),
            );
        }
    }

    /// A member of staff acts on an alert. The action is checked by the
    /// lifecycle, applied only if nobody changed the alert meanwhile, put
    /// on its timeline and in the audit trail, and published.
    pub async fn act(
        &self,
        alert_id: &str,
        actor: &str,
        action: &Action,
    ) -> Result<AlertView, AlertsError> {
        // What the person acted on: a retry after a concurrent change is
        // only made if none of this changed (a new press merged in, or
        // somebody else moved the alert on, must be seen first).
        let mut seen: Option<(String, String, i32, Option<i64>)> = None;
        for _ in 0..3 {
            let view = self.store.alert_view(alert_id).await?;
            let shape = (
                view.status.clone(),
                view.priority.clone(),
                view.count,
                view.last_raised_at,
            );
            match &seen {
                Some(first) if *first != shape => return Err(AlertsError::Concurrent),
                Some(_) => {}
                None => seen = Some(shape),
            }
            let facts = view.facts()?;
            let Some(step) = lifecycle::apply(&facts, actor, action)? else {
                return Ok(view);
            };
            let now = now_ms();
            let mut change = AlertChange {
                actor: Some(actor.to_string()),
                action: action.name().to_string(),
                detail: (!step.detail.is_empty()).then(|| step.detail.clone()),
                audit: Some(format!("alert.{}", action.name())),
                ..AlertChange::default()
            };
            if let Some(status) = step.status {
                change.set_text("status", Some(status.as_str().into()));
            }
            if let Some(priority) = step.priority {
                change.set_text("priority", Some(priority.as_str().into()));
            }
            if let Some(claim) = &step.claimed_by {
                change.set_text("claimed_by", claim.clone());
            }
            if let Some(contact) = step.contact {
                change.set_text("contact", Some(contact.as_str().into()));
            }
            if step.answered {
                change.set_int("answered_at", Some(now));
                change.set_text("answered_by", Some(actor.to_string()));
            }
            if step.acknowledged {
                change.set_int("acknowledged_at", Some(now));
            }
            if step.en_route {
                change.set_int("en_route_at", Some(now));
            }
            let mut timer = Some(now + self.timings.stall_ms);
            if step.on_site {
                change.set_int("on_site_at", Some(now));
                timer = None;
            }
            if let Some(wanted) = &step.dispatch {
                let roster = self.roster();
                let team = match roster.dispatch(wanted.as_deref(), view.area_id.as_deref(), now) {
                    Ok(team) => team,
                    // An unclear situation is never refused for want of a
                    // roster: the area's patrol (on duty or not), else any patrol.
                    Err(_) if matches!(action, Action::Answer { .. }) => {
                        roster.any_patrol(view.area_id.as_deref()).ok_or_else(|| {
                            AlertsError::NoTeam("no patrol team exists to send".into())
                        })?
                    }
                    Err(e) => return Err(AlertsError::NoTeam(e)),
                };
                change.set_text("team_id", Some(team.id.clone()));
                change.set_text("escalated_team_id", None);
                change.set_int("level", Some(0));
                change.set_int("dispatched_at", Some(now));
                change.set_int("routed_at", Some(now));
                let to = format!("to {}", team.name);
                change.detail = Some(match change.detail.take() {
                    Some(d) => format!("{to}: {d}"),
                    None => to,
                });
                timer = Some(now + self.timings.ack_ms);
            }
            if let Some(close) = &step.close {
                change.set_int("closed_at", Some(now));
                change.set_text("outcome", close.outcome.map(|o| o.as_str().to_string()));
                change.set_text("note", close.note.clone());
                timer = None;
            }
            change.set_int("escalate_at", timer);
            if self
                .store
                .change_alert(alert_id, view.updated_at, now, &change)
                .await?
            {
                metrics::counter!("etahoiva_alert_actions_total", "action" => action.name())
                    .increment(1);
                let view = self.store.alert_view(alert_id).await?;
                tracing::info!(alert_id, action = action.name(), status = %view.status, "alert changed");
                self.publish(view.clone(), Vec::new()).await;
                return Ok(view);
            }
        }
        Err(AlertsError::Concurrent)
    }

    /// One pass of the timers: routes alerts not yet routed, escalates the
    /// unacknowledged, tells supervisors of stalled ones. Returns how many
    /// alerts it changed.
    pub async fn run_timers(&self, now: i64) -> Result<usize, AlertsError> {
        let due = self.store.alerts_due(now, TIMER_PASS).await?;
        let mut changed = 0;
        for view in due {
            match self.timer_step(&view, now).await {
                Ok(true) => changed += 1,
                Ok(false) => {}
                // One alert that cannot be handled must not stop the others.
                Err(e) => tracing::warn!(alert_id = %view.id, error = %e, "alert timer failed"),
            }
        }
        Ok(changed)
    }

    /// Runs the expired timer of one alert; true when it changed the alert.
    async fn timer_step(&self, view: &AlertView, now: i64) -> Result<bool, AlertsError> {
        {
            let status = view.status()?;
            let roster = self.roster();
            let mut change = AlertChange {
                actor: Some("system".into()),
                ..AlertChange::default()
            };
            let back_online = view.kind() == Some(Kind::TerminalSilent)
                && view
                    .device_id
                    .as_deref()
                    .is_some_and(|d| self.devices.presence(d).is_some());
            let timer = if back_online && status.is_unacknowledged() {
                None
            } else {
                Some(lifecycle::on_timer(status, view.level))
            };
            match timer {
                None => {
                    change.action = "resolve".into();
                    change.audit = Some("alert.resolve".into());
                    change.detail = Some("the terminal is connected again".into());
                    change.set_text("status", Some(Status::Resolved.as_str().into()));
                    change.set_int("closed_at", Some(now));
                    change.set_text("outcome", Some("connection_restored".into()));
                    change.set_int("escalate_at", None);
                }
                Some(timer) => match timer {
                    Timer::Route => {
                        let route = roster.primary(view.area_id.as_deref(), now);
                        change.action = "routed".into();
                        change.detail = Some(route.detail);
                        change.set_text("status", Some(Status::Routed.as_str().into()));
                        change.set_int("level", Some(if route.team_id.is_some() { 0 } else { 2 }));
                        change.set_text("team_id", route.team_id);
                        change.set_int("routed_at", Some(now));
                        change.set_int("escalate_at", Some(now + self.timings.ack_ms));
                    }
                    Timer::Escalate { level } => {
                        let (level, detail) = if level == 1 {
                            let next =
                                roster.next(view.team_id.as_deref(), view.area_id.as_deref(), now);
                            match next.team_id {
                                Some(team) => {
                                    change.set_text("escalated_team_id", Some(team));
                                    (1, next.detail)
                                }
                                None => (2, next.detail),
                            }
                        } else if view.level >= 2 {
                            (
                                2,
                                "still not acknowledged: reminder to everybody who has it".into(),
                            )
                        } else {
                            (2, "not acknowledged: to the supervisors".into())
                        };
                        change.action = if view.level >= 2 {
                            "reminder"
                        } else {
                            "escalated"
                        }
                        .into();
                        change.audit = Some("alert.escalated".into());
                        change.detail = Some(detail);
                        change.set_int("level", Some(level.into()));
                        change.set_int("escalate_at", Some(now + self.timings.ack_ms));
                        metrics::counter!("etahoiva_alert_escalations_total").increment(1);
                    }
                    Timer::Stalled => {
                        change.action = "stalled".into();
                        change.audit = Some("alert.stalled".into());
                        change.detail = Some(format!(
                            "no progress for {} min: shown to the supervisors",
                            self.timings.stall_ms / 60_000
                        ));
                        change.set_int("level", Some(view.level.max(2).into()));
                        change.set_int("escalate_at", Some(now + self.timings.stall_ms));
                    }
                    Timer::Clear => {
                        change.action = "timer_cleared".into();
                        change.set_int("escalate_at", None);
                    }
                },
            }
            if self
                .store
                .change_alert(&view.id, view.updated_at, now, &change)
                .await?
            {
                tracing::info!(alert_id = %view.id, action = %change.action, "alert timer");
                if let Ok(view) = self.store.alert_view(&view.id).await {
                    self.publish(view, Vec::new()).await;
                }
                return Ok(true);
            }
            Ok(false)
        }
    }

    /// One supervision pass: every terminal silent for longer than its
    /// client's class allows raises one alert, and the client, the relative
    /// and the technicians are told.
    pub async fn supervise(&self, now: i64) -> Result<usize, AlertsError> {
        let night = !self.is_day(now);
        let mut raised = 0;
        // Terminals already known to be silent are not looked at again.
        let known = self.store.devices_with_open_silence().await?;
        let mut technicians = None;
        for s in self.store.supervised_devices().await? {
            if known.contains(&s.device_id) {
                continue;
            }
            let last = match self.devices.presence(&s.device_id) {
                Some(p) => Some(p.last_seen),
                None => s.last_seen,
            };
            let since = supervision::silent_since(last, self.started_at);
            let class = SupervisionClass::parse(&s.supervision_class)
                .unwrap_or(SupervisionClass::H25)
                .effective(s.high_risk, night);
            if !supervision::is_silent(since, now, class) {
                continue;
            }
            let priority = if s.high_risk || class <= SupervisionClass::S180 {
                Priority::High
            } else {
                Priority::Normal
            };
            let client_lang = Lang::parse(&s.client_language).unwrap_or(Lang::Fi);
            let when = crate::schedule::ts(since)
                .to_zoned(self.hours.tz.clone())
                .strftime("%H.%M")
                .to_string();
            let fill = |lang: Lang, key: &str| {
                lang.t(key)
                    .replace("{client}", &s.client_name)
                    .replace("{since}", &when)
            };
            let mut notices: Vec<(&str, Option<String>, String, String)> = vec![(
                "client",
                None,
                client_lang.code().to_string(),
                fill(client_lang, "notice.outage.client"),
            )];
            if let Some(contact) = s.relative_contact.clone().filter(|c| !c.trim().is_empty()) {
                notices.push((
                    "relative",
                    Some(contact),
                    client_lang.code().to_string(),
                    fill(client_lang, "notice.outage.relative"),
                ));
            }
            if technicians.is_none() {
                technicians = Some(self.store.technicians().await?);
            }
            for (username, language) in technicians.iter().flatten() {
                let lang = language
                    .as_deref()
                    .and_then(Lang::parse)
                    .unwrap_or(Lang::Fi);
                notices.push((
                    "technician",
                    Some(username.clone()),
                    lang.code().to_string(),
                    fill(lang, "notice.outage.technician"),
                ));
            }
            let detail = format!(
                "no sign of life since {when} (class {}, {} min)",
                class.as_str(),
                class.limit_ms() / 60_000
            );
            if let Some(id) = self
                .store
                .raise_silent(&s, priority, since, now, &detail, &notices)
                .await?
            {
                raised += 1;
                metrics::counter!("etahoiva_alerts_raised_total", "kind" => "terminal_silent")
                    .increment(1);
                tracing::warn!(alert_id = %id, device_id = %s.device_id, client_id = %s.client_id, "terminal silent");
            }
        }
        if raised > 0 {
            // Route at once rather than at the next timer pass.
            self.run_timers(now).await?;
        }
        Ok(raised)
    }

    /// A terminal came back: its open silence alert closes if nobody has
    /// taken it yet (else its timeline says so); the terminal is told where
    /// its open alarms are and gets the notices waiting for the client.
    #[tracing::instrument(skip(self))]
    pub async fn device_connected(&self, device_id: &str, protocol: u32) {
        let now = now_ms();
        // Open alarms, and those closed lately so a terminal that was away
        // stops saying help is on the way.
        let open = match self
            .store
            .device_alerts(device_id, now - 12 * 3_600_000)
            .await
        {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the terminal's open alerts");
                return;
            }
        };
        for view in open {
            let Ok(status) = view.status() else { continue };
            if view.kind() == Some(Kind::TerminalSilent) && status.is_open() {
                let mut change = AlertChange {
                    actor: Some("system".into()),
                    action: "back_online".into(),
                    detail: Some("the terminal is connected again".into()),
                    ..AlertChange::default()
                };
                if status.is_unacknowledged() {
                    change.action = "resolve".into();
                    change.audit = Some("alert.resolve".into());
                    change.set_text("status", Some(Status::Resolved.as_str().into()));
                    change.set_int("closed_at", Some(now));
                    change.set_text("outcome", Some("connection_restored".into()));
                    change.set_int("escalate_at", None);
                }
                // The timer may move the alert at the same moment: read again and retry.
                let mut current = view.clone();
                for _ in 0..3 {
                    match self
                        .store
                        .change_alert(&current.id, current.updated_at, now, &change)
                        .await
                    {
                        Ok(true) => {
                            if let Ok(view) = self.store.alert_view(&current.id).await {
                                let _ = self.live.send(Arc::new(view));
                            }
                            break;
                        }
                        Ok(false) => match self.store.alert_view(&current.id).await {
                            Ok(again) if again.status().is_ok_and(|s| s.is_open()) => {
                                if change.action == "resolve"
                                    && !again.status().is_ok_and(|s| s.is_unacknowledged())
                                {
                                    // Somebody took it meanwhile: only note the return.
                                    change = AlertChange {
                                        actor: Some("system".into()),
                                        action: "back_online".into(),
                                        detail: Some("the terminal is connected again".into()),
                                        ..AlertChange::default()
                                    };
                                }
                                current = again;
                            }
                            _ => break,
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot note the terminal's return");
                            break;
                        }
                    }
                }
            } else if protocol >= 3 && view.kind().is_some_and(Kind::is_alarm) {
                self.tell_terminal(device_id, &view.id, status, Vec::new(), view.updated_at)
                    .await;
            }
        }
        if protocol >= 3 {
            match self.store.client_notices(device_id).await {
                Ok(notices) => {
                    for n in notices {
                        let sent = self.devices.send(
                            device_id,
                            Outbound::Send(HubToEdge::Notice {
                                id: n.id.clone(),
                                text: n.text.clone(),
                            }),
                        );
                        if sent {
                            let _ = self.store.notice_sent(&n.id, now).await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read notices for the client"),
            }
        }
    }

    /// Puts a step on the alert's timeline without changing it (a call to
    /// the home, what the terminal did with it).
    pub async fn note(
        &self,
        alert_id: &str,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), AlertsError> {
        let change = AlertChange {
            actor: Some(actor.to_string()),
            action: action.to_string(),
            detail: Some(detail.to_string()),
            ..AlertChange::default()
        };
        for _ in 0..3 {
            let view = self.store.alert_view(alert_id).await?;
            if self
                .store
                .change_alert(alert_id, view.updated_at, now_ms(), &change)
                .await?
            {
                if let Ok(view) = self.store.alert_view(alert_id).await {
                    let _ = self.live.send(Arc::new(view));
                }
                return Ok(());
            }
        }
        Err(AlertsError::Concurrent)
    }

    /// Records that a user's device showed the alert (once per user).
    pub async fn seen(&self, alert_id: &str, user_id: &str) -> Result<(), AlertsError> {
        if self.store.alert_seen(alert_id, user_id, now_ms()).await? {
            tracing::debug!(alert_id, user_id, "alert seen");
        }
        Ok(())
    }
}

/// Who may see an alert: nurses, supervisors and administrators all; a
/// patrol member the alerts of their teams and those they took.
pub fn visible(view: &AlertView, user_id: &str, roles: &[Role], teams: &[String]) -> bool {
    if roles
        .iter()
        .any(|r| matches!(r, Role::Nurse | Role::Supervisor | Role::Admin))
    {
        return true;
    }
    if !roles.contains(&Role::Patrol) {
        return false;
    }
    view.claimed_by.as_deref() == Some(user_id)
        || [&view.team_id, &view.escalated_team_id]
            .into_iter()
            .flatten()
            .any(|t| teams.contains(t))
}

/// Takes alarms off the queue in batches and stores each batch in one
/// transaction, then answers every terminal and publishes the alerts.
async fn intake_writer(engine: std::sync::Weak<Engine>, mut rx: mpsc::Receiver<IntakeRequest>) {
    let mut batch: Vec<IntakeRequest> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        store_batch(&engine, std::mem::take(&mut batch)).await;
    }
}

async fn store_batch(engine: &Engine, batch: Vec<IntakeRequest>) {
    let now = now_ms();
    let rules = IntakeRules {
        now,
        merge_ms: engine.timings.merge_ms,
        ack_ms: engine.timings.ack_ms,
    };
    let roster = engine.roster();
    let route = |area: Option<&str>| roster.primary(area, now);
    let inputs: Vec<AlarmInput> = batch.iter().map(|r| r.input.clone()).collect();
    let mut result = engine.store.store_alarms(&inputs, rules, &route).await;
    if matches!(&result, Err(e) if e.is_transient()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        result = engine.store.store_alarms(&inputs, rules, &route).await;
    }
    let results: Vec<Result<Intake, String>> = match result {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if inputs.len() > 1 && !e.is_transient() => {
            // One alarm the store refuses must not hold back the others:
            // each is stored on its own, and only the refused one fails.
            tracing::warn!(error = %e, alarms = inputs.len(), "a batch of alarms failed; storing them one by one");
            let mut each = Vec::with_capacity(inputs.len());
            for input in &inputs {
                each.push(
                    match engine
                        .store
                        .store_alarms(std::slice::from_ref(input), rules, &route)
                        .await
                    {
                        Ok(mut one) => one.pop().ok_or_else(|| "nothing stored".to_string()),
                        Err(e) => Err(e.to_string()),
                    },
                );
            }
            each
        }
        Err(e) => inputs.iter().map(|_| Err(e.to_string())).collect(),
    };
    let mut outcomes = Vec::with_capacity(results.len());
    let mut stored = Vec::with_capacity(results.len());
    for (request, result) in batch.into_iter().zip(results) {
        match result {
            Ok(outcome) => {
                outcomes.push(outcome.clone());
                stored.push(request.input.clone());
                let _ = request.reply.send(Ok(outcome));
            }
            Err(message) => {
                tracing::error!(device_id = %request.input.device_id, event_key = %request.input.event.key, error = %message,
                    "cannot store an alarm; the terminal keeps it and sends again");
                metrics::counter!("etahoiva_alarm_store_failures_total").increment(1);
                let _ = request
                    .reply
                    .send(Err(AlertsError::Store(StoreError::Unavailable(message))));
            }
        }
    }
    metrics::histogram!("etahoiva_alarm_batch_size").record(stored.len() as f64);
    // Keys per alert, so the terminal can match its presses.
    let mut keys: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut ids: Vec<String> = Vec::new();
    for (input, outcome) in stored.iter().zip(&outcomes) {
        if let Some(id) = outcome.alert_id() {
            let entry = keys.entry(id.to_string()).or_default();
            if entry.is_empty() {
                ids.push(id.to_string());
            }
            entry.push(input.event.key.clone());
        }
        let outcome_name = match outcome {
            Intake::New(_) => "new",
            Intake::Merged(_) => "merged",
            Intake::Duplicate(_) => "duplicate",
        };
        metrics::counter!("etahoiva_alarms_total", "outcome" => outcome_name).increment(1);
        match outcome {
            Intake::New(id) => {
                tracing::warn!(alert_id = %id, device_id = %input.device_id, kind = input.kind.as_str(), "alarm raised")
            }
            Intake::Merged(id) => {
                tracing::info!(alert_id = %id, device_id = %input.device_id, "alarm pressed again; merged")
            }
            Intake::Duplicate(_) => {
                tracing::debug!(device_id = %input.device_id, "alarm sent again; stored before")
            }
        }
    }
    match engine.store.alert_views(&ids).await {
        Ok(views) => {
            for view in views {
                let k = keys.remove(&view.id).unwrap_or_default();
                engine.publish(view, k).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "alarms stored but cannot be read back for the live feed")
        }
    }
}

/// Runs the escalation timers and the supervision of terminals until the task is dropped.
pub async fn run(engine: Arc<Engine>, supervision_every: Duration) {
    let mut timers = tokio::time::interval(Duration::from_secs(1));
    timers.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut supervision = tokio::time::interval(supervision_every);
    supervision.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut roster = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = timers.tick() => {
                if let Err(e) = engine.run_timers(now_ms()).await {
                    tracing::warn!(error = %e, "alert timers failed; retrying");
                }
            }
            _ = supervision.tick() => {
                if let Err(e) = engine.supervise(now_ms()).await {
                    tracing::warn!(error = %e, "supervision pass failed; retrying");
                }
            }
            _ = roster.tick() => {
                if let Err(e) = engine.reload_roster().await {
                    tracing::warn!(error = %e, "cannot reload the roster");
                }
            }
        }
    }
}
