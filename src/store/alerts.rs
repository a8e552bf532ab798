//! Alerts: alarms from terminals stored exactly once (merged when one
//! terminal presses again soon), their routing, timers and timeline, the
//! rosters routing reads, and notices to people outside the hub.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{execute, new_id, with_pool, Store, StoreError, StoreResult, TeamKind};
use crate::alerts::lifecycle::{Contact, Facts};
use crate::alerts::routing::{Duty, RosterTeam, Route};
use crate::alerts::{Kind, Priority, Status};

/// An alert as consoles and patrol phones see it: the alert, its client's
/// home and who has it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct AlertView {
    pub id: String,
    /// `help_button`, `wristband`, `sensor`, `missed_visit`, `terminal_silent`.
    pub kind: String,
    /// `critical`, `high`, `normal`.
    pub priority: String,
    /// `raised`, `routed`, `acknowledged`, `en_route`, `on_site`, `resolved`, `cancelled`.
    pub status: String,
    /// Presses merged into this alert.
    pub count: i32,
    /// 0 = first team, 1 = next team, 2 = supervisors.
    pub level: i32,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub client_address: Option<String>,
    pub client_language: Option<String>,
    pub door_instructions: Option<String>,
    pub care_notes: Option<String>,
    pub area_id: Option<String>,
    pub area_name: Option<String>,
    pub device_id: Option<String>,
    pub visit_id: Option<String>,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    pub escalated_team_id: Option<String>,
    pub escalated_team_name: Option<String>,
    pub raised_at: i64,
    pub last_raised_at: Option<i64>,
    pub routed_at: Option<i64>,
    /// When the running timer expires (escalation or stall), if one runs.
    pub escalate_at: Option<i64>,
    /// First answer or acknowledgement: the time to answer is `answered_at - raised_at`.
    pub answered_at: Option<i64>,
    pub answered_by: Option<String>,
    /// `reached`, `not_reached`, `unclear`.
    pub contact: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub claimed_by: Option<String>,
    pub claimed_by_name: Option<String>,
    pub dispatched_at: Option<i64>,
    pub en_route_at: Option<i64>,
    pub on_site_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub detail: String,
    pub updated_at: i64,
}

impl AlertView {
    pub fn status(&self) -> Result<Status, StoreError> {
        Status::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("alert status {:?}", self.status)))
    }

    pub fn kind(&self) -> Option<Kind> {
        Kind::parse(&self.kind)
    }

    pub fn priority(&self) -> Priority {
        Priority::parse(&self.priority).unwrap_or(Priority::High)
    }

    /// What the lifecycle decides on.
    pub fn facts(&self) -> Result<Facts, StoreError> {
        Ok(Facts {
            status: self.status()?,
            priority: self.priority(),
            contact: self.contact.as_deref().and_then(Contact::parse),
            claimed_by: self.claimed_by.clone(),
            claimed_by_name: self.claimed_by_name.clone(),
            answered: self.answered_at.is_some(),
            acknowledged: self.acknowledged_at.is_some(),
            dispatched: self.dispatched_at.is_some(),
            on_site: self.on_site_at.is_some(),
        })
    }
}

/// One step in an alert's timeline.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct AlertEvent {
    pub at: i64,
    /// User id, device id or `system`.
    pub actor: Option<String>,
    pub actor_name: Option<String>,
    /// `raised`, `merged`, `routed`, `escalated`, `stalled`, `seen`, or a staff action.
    pub action: String,
    /// The status after the step.
    pub status: String,
    pub detail: Option<String>,
}

/// A message for somebody outside the hub (a relative, the technician, the
/// client), waiting for the gateway that delivers it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Notice {
    pub id: String,
    pub alert_id: Option<String>,
    /// `client`, `relative`, `technician`.
    pub recipient: String,
    /// Phone number, e-mail or user name, as configured.
    pub address: Option<String>,
    pub language: String,
    pub text: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// An alarm event from a terminal, to be stored.
#[derive(Clone, Debug)]
pub struct AlarmInput {
    pub device_id: String,
    pub client_id: Option<String>,
    pub event: etahoiva_proto::Event,
    pub kind: Kind,
    pub priority: Priority,
}

/// What storing an alarm event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intake {
    /// A new alert.
    New(String),
    /// Another press merged into an open alert.
    Merged(String),
    /// The event was stored before (the terminal sent it again).
    Duplicate(Option<String>),
}

impl Intake {
    pub fn alert_id(&self) -> Option<&str> {
        match self {
            Intake::New(id) | Intake::Merged(id) => Some(id),
            Intake::Duplicate(id) => id.as_deref(),
        }
    }
}

/// How alarms are stored: the clock, merge window and first timer.
#[derive(Clone, Copy, Debug)]
pub struct IntakeRules {
    pub now: i64,
    pub merge_ms: i64,
    pub ack_ms: i64,
}

/// A change to one alert, applied only if nobody changed it since it was read.
#[derive(Clone, Debug, Default)]
pub struct AlertChange {
    pub sets: Vec<(&'static str, Value)>,
    pub actor: Option<String>,
    pub action: String,
    pub detail: Option<String>,
    /// Written to the audit trail in the same transaction.
    pub audit: Option<String>,
}

/// A column value of an [`AlertChange`].
#[derive(Clone, Debug)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl AlertChange {
    pub fn set_int(&mut self, column: &'static str, v: Option<i64>) {
        self.sets.push((column, Value::Int(v)));
    }
    pub fn set_text(&mut self, column: &'static str, v: Option<String>) {
        self.sets.push((column, Value::Text(v)));
    }
    fn status(&self) -> Option<&str> {
        self.sets.iter().find_map(|(c, v)| match (c, v) {
            (&"status", Value::Text(Some(s))) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// A terminal under supervision.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Supervised {
    pub device_id: String,
    pub client_id: String,
    pub last_seen: Option<i64>,
    pub supervision_class: String,
    pub high_risk: bool,
    pub client_language: String,
    pub client_name: String,
    pub relative_contact: Option<String>,
}

/// Answer and arrival times of one alarm, for the report.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ResponseTimes {
    pub raised_at: i64,
    pub answered_at: Option<i64>,
    pub on_site_at: Option<i64>,
}

const VIEW_SELECT: &str = "SELECT a.id, a.kind, a.priority, a.status, a.count, a.level, a.client_id, \
    c.name AS client_name, c.address AS client_address, c.language AS client_language, \
    c.door_instructions, c.care_notes, c.area_id, ar.name AS area_name, a.device_id, a.visit_id, \
    a.team_id, t.name AS team_name, a.escalated_team_id, et.name AS escalated_team_name, \
    a.raised_at, a.last_raised_at, a.routed_at, a.escalate_at, a.answered_at, a.answered_by, \
    a.contact, a.acknowledged_at, a.claimed_by, u.display_name AS claimed_by_name, \
    a.dispatched_at, a.en_route_at, a.on_site_at, a.closed_at, a.outcome, a.note, a.detail, \
    a.updated_at \
    FROM alerts a LEFT JOIN clients c ON c.id = a.client_id LEFT JOIN areas ar ON ar.id = c.area_id \
    LEFT JOIN teams t ON t.id = a.team_id LEFT JOIN teams et ON et.id = a.escalated_team_id \
    LEFT JOIN users u ON u.id = a.claimed_by";

const OPEN: &str = "a.status IN ('raised', 'routed', 'acknowledged', 'en_route', 'on_site')";

const ALARM_KINDS: &str = "('help_button', 'wristband', 'sensor')";

/// The next version stamp of a row last changed at `old`: the clock, but
/// always moving forward.
fn next_stamp(old: i64, now: i64) -> i64 {
    now.max(old + 1)
}

impl Store {
    /// Stores a batch of alarm events in one transaction: each event once
    /// per (device, key); a press while the same terminal has an open alarm
    /// raised within the merge window merges into it; a new alarm is routed
    /// by `route` (given the client's area) and its escalation timer set.
    /// All or nothing: on error nothing is stored and every terminal sends again.
    pub async fn store_alarms(
        &self,
        batch: &[AlarmInput],
        rules: IntakeRules,
        route: &(dyn Fn(Option<&str>) -> Route + Sync),
    ) -> StoreResult<Vec<Intake>> {
        let now = rules.now;
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let mut out = Vec::with_capacity(batch.len());
            for input in batch {
                let key = stored_key(&input.event.key);
                let detail = input.event.detail.to_string();
                let inserted = sqlx::query(
                    "INSERT INTO device_events (device_id, event_key, kind, occurred_at, received_at, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, event_key) DO NOTHING",
                )
                .bind(&input.device_id)
                .bind(&key)
                .bind(input.event.kind.as_str())
                .bind(input.event.occurred_at)
                .bind(now)
                .bind(&detail)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    let alert = sqlx::query_scalar::<_, Option<String>>(
                        "SELECT alert_id FROM device_events WHERE device_id = $1 AND event_key = $2",
                    )
                    .bind(&input.device_id)
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten();
                    out.push(Intake::Duplicate(alert));
                    continue;
                }
                let open = sqlx::query_as::<_, (String, String)>(&format!(
                    "SELECT id, priority FROM alerts WHERE device_id = $1 AND closed_at IS NULL \
                     AND kind IN {ALARM_KINDS} AND last_raised_at >= $2 ORDER BY last_raised_at DESC LIMIT 1"
                ))
                .bind(&input.device_id)
                .bind(now - rules.merge_ms)
                .fetch_optional(&mut *tx)
                .await?;
                // The alert may have closed since it was read (PostgreSQL reads
                // committed data): the update then changes nothing and the
                // press becomes an alert of its own.
                let mut merged_into = None;
                if let Some((id, priority)) = open {
                    let priority = Priority::parse(&priority).unwrap_or(Priority::High).max(input.priority);
                    let merged = sqlx::query(
                        "UPDATE alerts SET count = count + 1, last_raised_at = $1, priority = $2, \
                         updated_at = CASE WHEN updated_at >= $1 THEN updated_at + 1 ELSE $1 END \
                         WHERE id = $3 AND closed_at IS NULL",
                    )
                    .bind(now)
                    .bind(priority.as_str())
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if merged == 1 {
                        merged_into = Some(id);
                    }
                }
                let (alert_id, intake) = if let Some(id) = merged_into {
                    sqlx::query(
                        "INSERT INTO alert_events (alert_id, at, actor, action, status, detail) \
                         SELECT id, $1, $2, 'merged', status, $3 FROM alerts WHERE id = $4",
                    )
                    .bind(now)
                    .bind(&input.device_id)
                    .bind(format!("{} {}", input.kind.as_str(), key))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    (id.clone(), Intake::Merged(id))
                } else {
                    let area = match &input.client_id {
                        Some(client) => sqlx::query_scalar::<_, String>("SELECT area_id FROM clients WHERE id = $1")
                            .bind(client)
                            .fetch_optional(&mut *tx)
                            .await?,
                        None => None,
                    };
                    let r = route(area.as_deref());
                    let level = if r.team_id.is_some() { 0 } else { 2 };
                    let id = new_id();
                    sqlx::query(
                        "INSERT INTO alerts (id, kind, priority, status, client_id, visit_id, device_id, source_key, \
                         raised_at, detail, team_id, level, escalate_at, count, last_raised_at, routed_at, updated_at) \
                         VALUES ($1, $2, $3, 'routed', $4, NULL, $5, $6, $7, $8, $9, $10, $11, 1, $7, $7, $7)",
                    )
                    .bind(&id)
                    .bind(input.kind.as_str())
                    .bind(input.priority.as_str())
                    .bind(&input.client_id)
                    .bind(&input.device_id)
                    .bind(format!("event:{}:{}", input.device_id, key))
                    .bind(now)
                    .bind(event_text(&input.event))
                    .bind(&r.team_id)
                    .bind(level)
                    .bind(now + rules.ack_ms)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO alert_events (alert_id, at, actor, action, status, detail) VALUES \
                         ($1, $2, $3, 'raised', 'raised', $4), ($1, $2, 'system', 'routed', 'routed', $5)",
                    )
                    .bind(&id)
                    .bind(now)
                    .bind(&input.device_id)
                    .bind(format!(
                        "{} {}; pressed on the terminal at {}",
                        input.kind.as_str(),
                        key,
                        input.event.occurred_at
                    ))
                    .bind(&r.detail)
                    .execute(&mut *tx)
                    .await?;
                    (id.clone(), Intake::New(id))
                };
                sqlx::query("UPDATE device_events SET alert_id = $1 WHERE device_id = $2 AND event_key = $3")
                    .bind(&alert_id)
                    .bind(&input.device_id)
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
                out.push(intake);
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(out)
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "alarm"))
    }

    /// Raises a silent-terminal alert and its notices unless the terminal
    /// already has an open one. Returns the new alert's id.
    pub async fn raise_silent(
        &self,
        s: &Supervised,
        priority: Priority,
        silent_since: i64,
        now: i64,
        detail: &str,
        notices: &[(&str, Option<String>, String, String)],
    ) -> StoreResult<Option<String>> {
        let id = new_id();
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO alerts (id, kind, priority, status, client_id, visit_id, device_id, source_key, \
                 raised_at, detail, level, escalate_at, count, last_raised_at, updated_at) \
                 SELECT $1, 'terminal_silent', $2, 'raised', $3, NULL, $4, $5, $6, $7, 0, $6, 1, $6, $6 \
                 WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE device_id = $4 AND kind = 'terminal_silent' AND closed_at IS NULL) \
                 ON CONFLICT (source_key) DO NOTHING",
            )
            .bind(&id)
            .bind(priority.as_str())
            .bind(&s.client_id)
            .bind(&s.device_id)
            .bind(format!("silent:{}:{silent_since}", s.device_id))
            .bind(now)
            .bind(detail)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO alert_events (alert_id, at, actor, action, status, detail) VALUES ($1, $2, 'system', 'raised', 'raised', $3)",
            )
            .bind(&id)
            .bind(now)
            .bind(detail)
            .execute(&mut *tx)
            .await?;
            for (recipient, address, language, text) in notices {
                sqlx::query(
                    "INSERT INTO notices (id, alert_id, recipient, address, language, text, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(new_id())
                .bind(&id)
                .bind(recipient)
                .bind(address)
                .bind(language)
                .bind(text)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(id.clone()))
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// Applies `change` to the alert if its version is still `expected`;
    /// writes the timeline step (and the audit entry) with it. False when
    /// somebody else changed the alert first.
    pub async fn change_alert(
        &self,
        alert_id: &str,
        expected: i64,
        now: i64,
        change: &AlertChange,
    ) -> StoreResult<bool> {
        let mut sql = String::from("UPDATE alerts SET updated_at = $1");
        for (i, (column, _)) in change.sets.iter().enumerate() {
            sql.push_str(&format!(", {column} = ${}", i + 2));
        }
        let n = change.sets.len();
        sql.push_str(&format!(
            " WHERE id = ${} AND updated_at = ${}",
            n + 2,
            n + 3
        ));
        let stamp = next_stamp(expected, now);
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let mut q = sqlx::query(&sql).bind(stamp);
            for (_, v) in &change.sets {
                q = match v {
                    Value::Int(x) => q.bind(*x),
                    Value::Text(x) => q.bind(x.clone()),
                };
            }
            let changed = q.bind(alert_id).bind(expected).execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            let status = match change.status() {
                Some(s) => s.to_string(),
                None => sqlx::query_scalar::<_, String>("SELECT status FROM alerts WHERE id = $1")
                    .bind(alert_id)
                    .fetch_one(&mut *tx)
                    .await?,
            };
            sqlx::query(
                "INSERT INTO alert_events (alert_id, at, actor, action, status, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(alert_id)
            .bind(now)
            .bind(&change.actor)
            .bind(&change.action)
            .bind(&status)
            .bind(&change.detail)
            .execute(&mut *tx)
            .await?;
            if let Some(audit) = &change.audit {
                sqlx::query(
                    "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(now)
                .bind(&change.actor)
                .bind(audit)
                .bind(alert_id)
                .bind(&change.detail)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// Records that `user_id` saw the alert, once per user: a timeline step
    /// and an audit entry. False when it was recorded before.
    pub async fn alert_seen(&self, alert_id: &str, user_id: &str, now: i64) -> StoreResult<bool> {
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "INSERT INTO alert_events (alert_id, at, actor, action, status, detail) \
                 SELECT id, $2, $3, 'seen', status, NULL FROM alerts WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM alert_events WHERE alert_id = $1 AND actor = $3 AND action = 'seen')",
            )
            .bind(alert_id)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                sqlx::query(
                    "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, 'alert.seen', $3, NULL)",
                )
                .bind(now)
                .bind(user_id)
                .bind(alert_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n == 1)
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    pub async fn alert_view(&self, id: &str) -> StoreResult<AlertView> {
        let sql = format!("{VIEW_SELECT} WHERE a.id = $1");
        with_pool!(self, pool => sqlx::query_as::<_, AlertView>(&sql).bind(id).fetch_one(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// The alerts with these ids (in no particular order).
    pub async fn alert_views(&self, ids: &[String]) -> StoreResult<Vec<AlertView>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(200) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("{VIEW_SELECT} WHERE a.id IN ({})", marks.join(", "));
            let rows = with_pool!(self, pool => {
                let mut q = sqlx::query_as::<_, AlertView>(&sql);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await
            })
            .map_err(|e| StoreError::from_sqlx(e, "alert"))?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Open alerts, most urgent and oldest first.
    pub async fn open_alerts(&self) -> StoreResult<Vec<AlertView>> {
        let sql = format!(
            "{VIEW_SELECT} WHERE {OPEN} ORDER BY CASE a.priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, a.raised_at"
        );
        with_pool!(self, pool => sqlx::query_as::<_, AlertView>(&sql).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// The newest alerts, open or closed.
    pub async fn recent_alerts(&self, limit: i64) -> StoreResult<Vec<AlertView>> {
        let sql = format!("{VIEW_SELECT} ORDER BY a.raised_at DESC, a.id LIMIT $1");
        with_pool!(self, pool => sqlx::query_as::<_, AlertView>(&sql).bind(limit).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// Alerts whose timer expired by `now`, oldest timer first.
    pub async fn alerts_due(&self, now: i64, limit: i64) -> StoreResult<Vec<AlertView>> {
        let sql =
            format!("{VIEW_SELECT} WHERE a.escalate_at <= $1 ORDER BY a.escalate_at LIMIT $2");
        with_pool!(self, pool => sqlx::query_as::<_, AlertView>(&sql).bind(now).bind(limit).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// Open alerts of one terminal.
    pub async fn open_alerts_of_device(&self, device_id: &str) -> StoreResult<Vec<AlertView>> {
        self.device_alerts(device_id, i64::MAX).await
    }

    /// Alerts of one terminal that are open or were closed since `closed_since`.
    pub async fn device_alerts(
        &self,
        device_id: &str,
        closed_since: i64,
    ) -> StoreResult<Vec<AlertView>> {
        let sql = format!(
            "{VIEW_SELECT} WHERE a.device_id = $1 AND (a.closed_at IS NULL OR a.closed_at >= $2) \
             ORDER BY a.raised_at"
        );
        with_pool!(self, pool => sqlx::query_as::<_, AlertView>(&sql).bind(device_id).bind(closed_since).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    pub async fn alert_timeline(&self, alert_id: &str) -> StoreResult<Vec<AlertEvent>> {
        with_pool!(self, pool => sqlx::query_as::<_, AlertEvent>(
            "SELECT e.at, e.actor, u.display_name AS actor_name, e.action, e.status, e.detail \
             FROM alert_events e LEFT JOIN users u ON u.id = e.actor WHERE e.alert_id = $1 ORDER BY e.id",
        )
        .bind(alert_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// Keys of the terminal events merged into an alert, oldest first.
    pub async fn alert_event_keys(&self, alert_id: &str) -> StoreResult<Vec<String>> {
        with_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT event_key FROM device_events WHERE alert_id = $1 ORDER BY id",
        )
        .bind(alert_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// Answer and arrival times of the alarms raised in `[from, to)`.
    pub async fn response_times(&self, from: i64, to: i64) -> StoreResult<Vec<ResponseTimes>> {
        let sql = format!(
            "SELECT raised_at, answered_at, on_site_at FROM alerts \
             WHERE raised_at >= $1 AND raised_at < $2 AND kind IN {ALARM_KINDS} AND status <> 'cancelled'"
        );
        with_pool!(self, pool => sqlx::query_as::<_, ResponseTimes>(&sql).bind(from).bind(to).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "alert"))
    }

    /// Ids of the teams a user belongs to.
    pub async fn user_teams(&self, user_id: &str) -> StoreResult<Vec<String>> {
        with_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT team_id FROM team_members WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "team"))
    }

    /// Teams and rosters still running or to come, for routing.
    pub async fn roster(
        &self,
        since: i64,
    ) -> StoreResult<(
        Vec<RosterTeam>,
        Vec<Duty>,
        std::collections::HashSet<String>,
    )> {
        let (teams, duty, rostered) = with_pool!(self, pool => async {
            let teams = sqlx::query_as::<_, (String, String, String, Option<String>, Option<String>)>(
                "SELECT id, name, kind, area_id, escalates_to FROM teams ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            let duty = sqlx::query_as::<_, (String, i64, i64)>(
                "SELECT team_id, starts_at, ends_at FROM team_duty WHERE ends_at > $1 ORDER BY starts_at",
            )
            .bind(since)
            .fetch_all(pool)
            .await?;
            let rostered = sqlx::query_scalar::<_, String>("SELECT DISTINCT team_id FROM team_duty")
                .fetch_all(pool)
                .await?;
            Ok::<_, sqlx::Error>((teams, duty, rostered))
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "team"))?;
        let teams = teams
            .into_iter()
            .map(|(id, name, kind, area_id, escalates_to)| RosterTeam {
                id,
                name,
                kind: if kind == "central" {
                    TeamKind::Central
                } else {
                    TeamKind::Patrol
                },
                area_id,
                escalates_to,
            })
            .collect();
        let duty = duty
            .into_iter()
            .map(|(team_id, starts_at, ends_at)| Duty {
                team_id,
                starts_at,
                ends_at,
            })
            .collect();
        Ok((teams, duty, rostered.into_iter().collect()))
    }

    /// Terminals bound to a client, with the client's supervision settings.
    pub async fn supervised_devices(&self) -> StoreResult<Vec<Supervised>> {
        with_pool!(self, pool => sqlx::query_as::<_, Supervised>(
            "SELECT d.id AS device_id, c.id AS client_id, d.last_seen, c.supervision_class, c.high_risk, \
             c.language AS client_language, c.name AS client_name, c.relative_contact \
             FROM devices d JOIN clients c ON c.id = d.client_id WHERE d.revoked_at IS NULL",
        )
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "device"))
    }

    /// Terminals with an open silence alert.
    pub async fn devices_with_open_silence(
        &self,
    ) -> StoreResult<std::collections::HashSet<String>> {
        let rows = with_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT device_id FROM alerts WHERE kind = 'terminal_silent' AND closed_at IS NULL AND device_id IS NOT NULL",
        )
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "alert"))?;
        Ok(rows.into_iter().collect())
    }

    /// User names of the technicians (administrators) who are told of outages.
    pub async fn technicians(&self) -> StoreResult<Vec<(String, Option<String>)>> {
        with_pool!(self, pool => sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT u.username, u.language FROM users u JOIN user_roles r ON r.user_id = u.id \
             WHERE r.role = 'admin' AND NOT u.disabled ORDER BY u.username",
        )
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "user"))
    }

    pub async fn notices(&self, unsent_only: bool, limit: i64) -> StoreResult<Vec<Notice>> {
        let sql = if unsent_only {
            "SELECT id, alert_id, recipient, address, language, text, created_at, sent_at FROM notices \
             WHERE sent_at IS NULL ORDER BY created_at, id LIMIT $1"
        } else {
            "SELECT id, alert_id, recipient, address, language, text, created_at, sent_at FROM notices \
             ORDER BY created_at DESC, id LIMIT $1"
        };
        with_pool!(self, pool => sqlx::query_as::<_, Notice>(sql).bind(limit).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "notice"))
    }

    /// Unsent notices for the client of an alert (shown on the terminal).
    pub async fn client_notices(&self, device_id: &str) -> StoreResult<Vec<Notice>> {
        with_pool!(self, pool => sqlx::query_as::<_, Notice>(
            "SELECT n.id, n.alert_id, n.recipient, n.address, n.language, n.text, n.created_at, n.sent_at \
             FROM notices n JOIN alerts a ON a.id = n.alert_id \
             WHERE a.device_id = $1 AND n.recipient = 'client' AND n.sent_at IS NULL ORDER BY n.created_at",
        )
        .bind(device_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "notice"))
    }

    /// Marks a notice delivered; false when it was already.
    pub async fn notice_sent(&self, id: &str, now: i64) -> StoreResult<bool> {
        execute!(self, pool => sqlx::query("UPDATE notices SET sent_at = $1 WHERE id = $2 AND sent_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(pool)
            .await)
        .map(|n| n == 1)
        .map_err(|e| StoreError::from_sqlx(e, "notice"))
    }
}

/// The key an event is stored under: the terminal's own, unless it is too
/// long for an index or holds control characters (which PostgreSQL text
/// refuses); then a digest of it, the same for every resend.
pub(crate) fn stored_key(key: &str) -> String {
    if key.len() <= 200 && !key.chars().any(char::is_control) {
        return key.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("h:{hex}")
}

/// The alert's detail from a terminal event: the input's message, else the detail.
fn event_text(event: &etahoiva_proto::Event) -> String {
    let message = event.detail.get("message").and_then(|m| m.as_str());
    let input = event.detail.get("input").and_then(|m| m.as_str());
    match (input, message) {
        (Some(i), Some(m)) => format!("{i}: {m}"),
        (None, Some(m)) => m.to_string(),
        (Some(i), None) => i.to_string(),
        (None, None) if event.detail.is_null() => String::new(),
        (None, None) => event.detail.to_string(),
    }
    .chars()
    .filter(|c| !c.is_control() || *c == '\n')
    .take(500)
    .collect()
}
