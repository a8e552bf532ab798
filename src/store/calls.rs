//! Calls to the homes on record: each offer with its caller, purpose
//! (visit or alarm), terminal, and when it was answered and how it ended.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{execute, with_pool, Store, StoreError, StoreResult};

/// A call as recorded.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct CallRecord {
    pub id: String,
    /// `scheduled_care`, `alarm`.
    pub kind: String,
    pub client_id: Option<String>,
    pub visit_id: Option<String>,
    pub alert_id: Option<String>,
    pub device_id: Option<String>,
    pub caller_id: Option<String>,
    /// The camera was to open without the client's touch.
    pub auto_answer: bool,
    /// `offered`, `ringing`, `answered`, `ended`.
    pub state: String,
    pub offered_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// `declined`, `busy`, `ended`, `preempted`.
    pub end_reason: Option<String>,
    /// Who took part: the client's terminal, the caller, invited guests.
    #[sqlx(skip)]
    #[serde(default)]
    pub participants: Vec<CallParticipant>,
}

/// A participant of a call as recorded.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct CallParticipant {
    /// A user id, or the terminal's device id.
    pub participant: String,
    /// `client`, `caller` or `guest`.
    pub role: String,
    pub display_name: String,
    pub joined_at: i64,
    pub left_at: Option<i64>,
}

/// A call being offered.
#[derive(Clone, Debug)]
pub struct NewCall<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub client_id: Option<&'a str>,
    pub visit_id: Option<&'a str>,
    pub alert_id: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub caller_id: &'a str,
    pub auto_answer: bool,
    pub now: i64,
}

const CALL_COLUMNS: &str = "id, kind, client_id, visit_id, alert_id, device_id, caller_id, \
    auto_answer, state, offered_at, answered_at, ended_at, end_reason";

impl Store {
    pub async fn create_call(&self, c: &NewCall<'_>) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "INSERT INTO calls (id, kind, client_id, visit_id, alert_id, device_id, caller_id, auto_answer, state, offered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'offered', $9) ON CONFLICT (id) DO NOTHING",
        )
        .bind(c.id)
        .bind(c.kind)
        .bind(c.client_id)
        .bind(c.visit_id)
        .bind(c.alert_id)
        .bind(c.device_id)
        .bind(c.caller_id)
        .bind(c.auto_answer)
        .bind(c.now)
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "call"))
    }

    /// What the terminal reported: `ringing`, `answered`, or an end with its
    /// reason. An ended call stays ended; the first answer time is kept.
    pub async fn call_reported(
        &self,
        call_id: &str,
        state: &str,
        end_reason: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        execute!(self, pool => sqlx::query(
            "UPDATE calls SET state = $2, \
             answered_at = CASE WHEN $2 = 'answered' AND answered_at IS NULL THEN $4 ELSE answered_at END, \
             ended_at = CASE WHEN $2 = 'ended' THEN $4 ELSE ended_at END, \
             end_reason = CASE WHEN $2 = 'ended' THEN $3 ELSE end_reason END \
             WHERE id = $1 AND state <> 'ended'",
        )
        .bind(call_id)
        .bind(state)
        .bind(end_reason)
        .bind(now)
        .execute(pool)
        .await)
        .map(|n| n == 1)
        .map_err(|e| StoreError::from_sqlx(e, "call"))
    }

    pub async fn get_call(&self, call_id: &str) -> StoreResult<CallRecord> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        with_pool!(self, pool => sqlx::query_as::<_, CallRecord>(&sql).bind(call_id).fetch_optional(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "call"))?
            .ok_or(StoreError::NotFound("call"))
    }

    pub async fn calls_of_visit(&self, visit_id: &str) -> StoreResult<Vec<CallRecord>> {
        let sql =
            format!("SELECT {CALL_COLUMNS} FROM calls WHERE visit_id = $1 ORDER BY offered_at, id");
        let calls = with_pool!(self, pool => sqlx::query_as::<_, CallRecord>(&sql).bind(visit_id).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "call"))?;
        self.with_participants(calls).await
    }

    pub async fn calls_of_alert(&self, alert_id: &str) -> StoreResult<Vec<CallRecord>> {
        let sql =
            format!("SELECT {CALL_COLUMNS} FROM calls WHERE alert_id = $1 ORDER BY offered_at, id");
        let calls = with_pool!(self, pool => sqlx::query_as::<_, CallRecord>(&sql).bind(alert_id).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "call"))?;
        self.with_participants(calls).await
    }

    async fn with_participants(&self, mut calls: Vec<CallRecord>) -> StoreResult<Vec<CallRecord>> {
        for call in &mut calls {
            call.participants = self.call_participants(&call.id).await?;
        }
        Ok(calls)
    }

    /// Who took part in a call, in the order they joined.
    pub async fn call_participants(&self, call_id: &str) -> StoreResult<Vec<CallParticipant>> {
        with_pool!(self, pool => sqlx::query_as::<_, CallParticipant>(
            "SELECT participant, role, display_name, joined_at, left_at FROM call_participants \
             WHERE call_id = $1 ORDER BY joined_at, participant",
        )
        .bind(call_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "call participant"))
    }

    /// A participant's media connected: they are in the call from now on
    /// (again, after leaving). Nothing if they are in it already.
    pub async fn call_joined(
        &self,
        call_id: &str,
        participant: &str,
        role: &str,
        display_name: &str,
        now: i64,
    ) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "INSERT INTO call_participants (call_id, participant, role, display_name, joined_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM calls WHERE id = $1) \
             AND NOT EXISTS (SELECT 1 FROM call_participants WHERE call_id = $1 AND participant = $2 AND left_at IS NULL)",
        )
        .bind(call_id)
        .bind(participant)
        .bind(role)
        .bind(display_name)
        .bind(now)
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "call participant"))
    }

    /// A participant's media left the call.
    pub async fn call_left(&self, call_id: &str, participant: &str, now: i64) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "UPDATE call_participants SET left_at = $3 \
             WHERE call_id = $1 AND participant = $2 AND left_at IS NULL",
        )
        .bind(call_id)
        .bind(participant)
        .bind(now)
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "call participant"))
    }
}

/// The record's state and end reason for a state the terminal reported.
pub fn reported(state: etahoiva_proto::CallState) -> (&'static str, Option<&'static str>) {
    use etahoiva_proto::CallState as S;
    match state {
        S::Ringing => ("ringing", None),
        S::Answered => ("answered", None),
        S::Declined => ("ended", Some("declined")),
        S::Busy => ("ended", Some("busy")),
        S::Ended => ("ended", Some("ended")),
        S::Preempted => ("ended", Some("preempted")),
        _ => ("ended", Some("unknown")),
    }
}
