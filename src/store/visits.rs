//! Visits generated from care plans: their assignment, their lifecycle and
//! the alerts a missed visit raises.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{execute, new_id, now_ms, with_pool, Store, StoreError, StoreResult};
use crate::schedule::lifecycle::{Transition, VisitStatus};

/// A visit as stored.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Visit {
    pub id: String,
    pub client_id: String,
    /// The rule it came from; none once that rule was removed from the plan.
    pub rule_id: Option<String>,
    /// The civil time the rule produced (the visit's key within its rule).
    pub occurrence: String,
    /// The client's civil date of the visit.
    pub local_date: String,
    /// The planned time (the rule's time, in the client's zone), ms since the epoch.
    pub planned_at: i64,
    pub window_start: i64,
    pub window_end: i64,
    pub length_min: i32,
    pub purpose: String,
    pub skill: Option<String>,
    pub language: String,
    /// Assigned nurse (user id).
    pub nurse_id: Option<String>,
    /// A planner fixed the nurse; re-planning keeps it.
    pub pinned: bool,
    /// When the assigned nurse is to call.
    pub scheduled_start: Option<i64>,
    /// `planned`, `due`, `calling`, `in_progress`, `no_answer`, `completed`, `missed`, `cancelled`.
    pub status: String,
    pub status_since: i64,
    pub attempts: i32,
    pub next_attempt_at: Option<i64>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub note: Option<String>,
}

impl Visit {
    pub fn status(&self) -> Result<VisitStatus, StoreError> {
        VisitStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("visit status {:?}", self.status)))
    }
}

/// A visit produced by expanding a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVisit {
    pub client_id: String,
    pub rule_id: String,
    pub occurrence: String,
    pub local_date: String,
    pub planned_at: i64,
    pub window_start: i64,
    pub window_end: i64,
    pub length_min: i32,
    pub purpose: String,
    pub skill: Option<String>,
    pub language: String,
}

/// An entry in the nurse's worklist: the visit and who it is for.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct WorklistItem {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub client_language: String,
    pub purpose: String,
    pub planned_at: i64,
    pub window_start: i64,
    pub window_end: i64,
    pub scheduled_start: Option<i64>,
    pub length_min: i32,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<i64>,
    pub nurse_id: Option<String>,
    pub pinned: bool,
    pub outcome: Option<String>,
    pub note: Option<String>,
}

/// One step in a visit's timeline.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct VisitEvent {
    pub at: i64,
    pub actor: Option<String>,
    pub from_status: Option<String>,
    pub to_status: String,
    pub detail: Option<String>,
}

/// A change to a visit's assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub visit_id: String,
    pub nurse_id: Option<String>,
    pub scheduled_start: Option<i64>,
}

const VISIT_COLUMNS: &str =
    "id, client_id, rule_id, occurrence, local_date, planned_at, window_start, \
     window_end, length_min, purpose, skill, language, nurse_id, pinned, scheduled_start, status, \
     status_since, attempts, next_attempt_at, started_at, ended_at, outcome, note";

/// A worklist entry: the visit and its client.
const WORKLIST_SELECT: &str = "SELECT v.id, v.client_id, c.name AS client_name, \
     c.language AS client_language, v.purpose, v.planned_at, v.window_start, v.window_end, \
     v.scheduled_start, v.length_min, v.status, v.attempts, v.next_attempt_at, v.nurse_id, \
     v.pinned, v.outcome, v.note FROM visits v JOIN clients c ON c.id = v.client_id";

/// No visit window is longer than this (12 hours on either side of its
/// time): range queries bound their index scans with it.
const LONGEST_WINDOW_MS: i64 = 24 * 3_600_000;

/// Rows per multi-row statement (SQLite allows 32,766 parameters).
const BATCH: usize = 1000;

impl Store {
    /// Stores generated visits. A visit already stored for the same rule and
    /// occurrence is updated only while no call has been tried (its
    /// assignment is dropped when its times change); started and finished
    /// visits are never touched. Returns how many rows were written.
    pub async fn upsert_visits(&self, visits: &[NewVisit]) -> StoreResult<u64> {
        let now = now_ms();
        // One transaction for the whole call: one sync to disk, not one per batch.
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let mut written = 0u64;
            for chunk in visits.chunks(BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO visits (id, client_id, rule_id, occurrence, local_date, planned_at, window_start, \
                     window_end, length_min, purpose, skill, language, status, status_since, updated_at) ",
                );
                q.push_values(chunk, |mut b, v| {
                    b.push_bind(new_id())
                        .push_bind(&v.client_id)
                        .push_bind(&v.rule_id)
                        .push_bind(&v.occurrence)
                        .push_bind(&v.local_date)
                        .push_bind(v.planned_at)
                        .push_bind(v.window_start)
                        .push_bind(v.window_end)
                        .push_bind(v.length_min)
                        .push_bind(&v.purpose)
                        .push_bind(&v.skill)
                        .push_bind(&v.language)
                        .push_bind("planned")
                        .push_bind(now)
                        .push_bind(now);
                });
                q.push(
                    " ON CONFLICT (rule_id, occurrence) DO UPDATE SET \
                     nurse_id = CASE WHEN visits.pinned OR (visits.window_start = excluded.window_start \
                        AND visits.window_end = excluded.window_end AND visits.length_min = excluded.length_min \
                        AND visits.language = excluded.language \
                        AND COALESCE(visits.skill, '') = COALESCE(excluded.skill, '')) \
                        THEN visits.nurse_id ELSE NULL END, \
                     scheduled_start = CASE WHEN visits.window_start = excluded.window_start \
                        AND visits.window_end = excluded.window_end AND visits.length_min = excluded.length_min \
                        THEN visits.scheduled_start ELSE NULL END, \
                     planned_at = excluded.planned_at, window_start = excluded.window_start, \
                     window_end = excluded.window_end, length_min = excluded.length_min, \
                     purpose = excluded.purpose, skill = excluded.skill, language = excluded.language, \
                     local_date = excluded.local_date, updated_at = excluded.updated_at \
                     WHERE visits.status IN ('planned', 'due') AND (visits.planned_at <> excluded.planned_at \
                        OR visits.window_start <> excluded.window_start OR visits.window_end <> excluded.window_end \
                        OR visits.length_min <> excluded.length_min OR visits.purpose <> excluded.purpose \
                        OR COALESCE(visits.skill, '') <> COALESCE(excluded.skill, '') \
                        OR visits.language <> excluded.language)",
                );
                written += q.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(written)
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// Removes a client's visits that have not started, begin at or after
    /// `from`, and are not in `keep` (rule id, occurrence). Returns their ids.
    pub async fn remove_stale_visits(
        &self,
        client_id: &str,
        from: i64,
        keep: &std::collections::HashSet<(String, String)>,
    ) -> StoreResult<Vec<String>> {
        let rows = with_pool!(self, pool => sqlx::query_as::<_, (String, Option<String>, String)>(
            "SELECT id, rule_id, occurrence FROM visits WHERE client_id = $1 AND window_start >= $2 \
             AND status IN ('planned', 'due')",
        )
        .bind(client_id)
        .bind(from)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))?;
        let stale: Vec<String> = rows
            .into_iter()
            .filter(|(_, rule, occ)| match rule {
                Some(rule) => !keep.contains(&(rule.clone(), occ.clone())),
                None => true,
            })
            .map(|(id, ..)| id)
            .collect();
        for id in &stale {
            execute!(self, pool => sqlx::query("DELETE FROM visits WHERE id = $1 AND status IN ('planned', 'due')")
                .bind(id)
                .execute(pool)
                .await)
            .map_err(|e| StoreError::from_sqlx(e, "visit"))?;
        }
        Ok(stale)
    }

    pub async fn get_visit(&self, id: &str) -> StoreResult<Visit> {
        let sql = format!("SELECT {VISIT_COLUMNS} FROM visits WHERE id = $1");
        with_pool!(self, pool => sqlx::query_as::<_, Visit>(&sql).bind(id).fetch_optional(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "visit"))?
            .ok_or(StoreError::NotFound("visit"))
    }

    /// Visits whose window overlaps `[from, to)`, in window order.
    pub async fn visits_between(&self, from: i64, to: i64) -> StoreResult<Vec<Visit>> {
        let sql = format!(
            "SELECT {VISIT_COLUMNS} FROM visits WHERE window_start < $2 AND window_end > $1 \
             AND window_start >= $1 - {LONGEST_WINDOW_MS} \
             ORDER BY window_start, id"
        );
        with_pool!(self, pool => sqlx::query_as::<_, Visit>(&sql).bind(from).bind(to).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// A client's visits whose window overlaps `[from, to)`.
    pub async fn client_visits(
        &self,
        client_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Visit>> {
        let sql = format!(
            "SELECT {VISIT_COLUMNS} FROM visits WHERE client_id = $1 AND window_start < $3 AND window_end > $2 \
             AND window_start >= $2 - {LONGEST_WINDOW_MS} \
             ORDER BY window_start, id"
        );
        with_pool!(self, pool => sqlx::query_as::<_, Visit>(&sql).bind(client_id).bind(from).bind(to).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// A nurse's visits whose window overlaps `[from, to)`, in call order.
    #[tracing::instrument(skip(self))]
    pub async fn worklist(
        &self,
        nurse_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<WorklistItem>> {
        // Windows are at most a day long: the index on (nurse_id, window_start) bounds the scan.
        with_pool!(self, pool => sqlx::query_as::<_, WorklistItem>(
            &format!("{WORKLIST_SELECT} WHERE v.nurse_id = $1 AND v.window_start >= $4 AND v.window_start < $3 \
             AND v.window_end > $2 ORDER BY COALESCE(v.scheduled_start, v.planned_at), v.id"),
        )
        .bind(nurse_id)
        .bind(from)
        .bind(to)
        .bind(from - LONGEST_WINDOW_MS)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// Visits of the day nobody has been assigned to.
    pub async fn unassigned(&self, from: i64, to: i64) -> StoreResult<Vec<WorklistItem>> {
        with_pool!(self, pool => sqlx::query_as::<_, WorklistItem>(
            &format!("{WORKLIST_SELECT} WHERE v.nurse_id IS NULL AND v.window_start < $2 AND v.window_end > $1 \
             AND v.window_start >= $1 - {LONGEST_WINDOW_MS} \
             AND v.status NOT IN ('completed', 'cancelled') ORDER BY v.window_start, v.id"),
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// Writes assignments in one transaction, only to visits that have not started.
    pub async fn apply_assignments(&self, changes: &[Assignment]) -> StoreResult<u64> {
        let now = now_ms();
        // In key order the pages are written once each, not once per row.
        let mut changes: Vec<&Assignment> = changes.iter().collect();
        changes.sort_by(|a, b| a.visit_id.cmp(&b.visit_id));
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let mut n = 0;
            for chunk in changes.chunks(BATCH) {
                let mut q = sqlx::QueryBuilder::new("UPDATE visits SET nurse_id = v.column2, scheduled_start = v.column3, updated_at = ");
                q.push_bind(now);
                q.push(" FROM (");
                q.push_values(chunk, |mut b, a| {
                    b.push_bind(&a.visit_id).push_bind(&a.nurse_id).push_bind(a.scheduled_start);
                });
                q.push(") AS v WHERE visits.id = v.column1 AND visits.status IN ('planned', 'due', 'no_answer')");
                n += q.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n)
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// Takes a nurse off their visits that have not started and whose
    /// window ends after `from` and starts before `to`; returns the visit ids.
    pub async fn release_nurse_visits(
        &self,
        nurse_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<String>> {
        with_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "UPDATE visits SET nurse_id = NULL, scheduled_start = NULL, pinned = FALSE, updated_at = $4 \
             WHERE nurse_id = $1 AND status IN ('planned', 'due', 'no_answer') \
             AND window_end > $2 AND window_start < $3 RETURNING id",
        )
        .bind(nurse_id)
        .bind(from)
        .bind(to)
        .bind(now_ms())
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// Pins a visit to a nurse (or unpins with `None`); its call time is found by the next planning.
    pub async fn pin_visit(&self, visit_id: &str, nurse_id: Option<&str>) -> StoreResult<()> {
        let n = execute!(self, pool => sqlx::query(
            "UPDATE visits SET nurse_id = COALESCE($2, nurse_id), pinned = $3, \
             scheduled_start = CASE WHEN $3 THEN NULL ELSE scheduled_start END, updated_at = $4 \
             WHERE id = $1 AND status IN ('planned', 'due', 'no_answer')",
        )
        .bind(visit_id)
        .bind(nurse_id)
        .bind(nurse_id.is_some())
        .bind(now_ms())
        .execute(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))?;
        if n == 0 {
            // Either unknown or already under way.
            self.get_visit(visit_id).await?;
            return Err(StoreError::Conflict("visit under way"));
        }
        Ok(())
    }

    /// Stores a lifecycle transition if the visit is still in `from`
    /// (false when another actor changed it first). A missed visit raises
    /// its alert in the same transaction, once.
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(skip(self, t, outcome, note), fields(to = t.status.as_str()))]
    pub async fn transition_visit(
        &self,
        visit_id: &str,
        from: VisitStatus,
        t: &Transition,
        now: i64,
        actor: Option<&str>,
        outcome: Option<&str>,
        note: Option<&str>,
    ) -> StoreResult<bool> {
        let detail = outcome.map(|o| format!("outcome={o}"));
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE visits SET status = $3, status_since = $4, attempts = $5, next_attempt_at = $6, \
                 started_at = CASE WHEN $7 AND started_at IS NULL THEN $4 ELSE started_at END, \
                 ended_at = CASE WHEN $8 THEN $4 ELSE ended_at END, \
                 outcome = COALESCE($9, outcome), note = COALESCE($10, note), updated_at = $4 \
                 WHERE id = $1 AND status = $2",
            )
            .bind(visit_id)
            .bind(from.as_str())
            .bind(t.status.as_str())
            .bind(now)
            .bind(i32::try_from(t.attempts).unwrap_or(i32::MAX))
            .bind(t.next_attempt_at)
            .bind(t.started)
            .bind(t.ended)
            .bind(outcome)
            .bind(note)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO visit_events (visit_id, at, actor, from_status, to_status, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(visit_id)
            .bind(now)
            .bind(actor)
            .bind(from.as_str())
            .bind(t.status.as_str())
            .bind(&detail)
            .execute(&mut *tx)
            .await?;
            if t.missed {
                let alert_id = new_id();
                let raised = sqlx::query(
                    "INSERT INTO alerts (id, kind, priority, status, client_id, visit_id, device_id, source_key, raised_at, detail, \
                       escalate_at, last_raised_at, updated_at) \
                     SELECT $1, 'missed_visit', 'high', 'raised', v.client_id, v.id, \
                       (SELECT d.id FROM devices d WHERE d.client_id = v.client_id AND d.revoked_at IS NULL ORDER BY d.created_at DESC LIMIT 1), \
                       $2, $3, v.purpose, $3, $3, $3 FROM visits v WHERE v.id = $4 \
                     ON CONFLICT (source_key) DO NOTHING",
                )
                .bind(&alert_id)
                .bind(format!("visit:{visit_id}:missed"))
                .bind(now)
                .bind(visit_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if raised == 1 {
                    sqlx::query(
                        "INSERT INTO alert_events (alert_id, at, actor, action, status, detail) \
                         VALUES ($1, $2, 'system', 'raised', 'raised', 'visit missed')",
                    )
                    .bind(&alert_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// Visits the ticker must look at: windows opening or closing, retries
    /// due and calls ringing too long, as of `now`.
    pub async fn visits_needing_tick(
        &self,
        now: i64,
        ring_timeout_ms: i64,
    ) -> StoreResult<Vec<Visit>> {
        // Three queries, each on its index: planned visits whose window
        // opened, open visits whose retry is due or window closed, calls
        // ringing too long. Only the first can be many.
        let opened = format!(
            "SELECT {VISIT_COLUMNS} FROM visits WHERE status = 'planned' AND window_start <= $1 \
             ORDER BY window_start LIMIT 5000"
        );
        let open = format!(
            "SELECT {VISIT_COLUMNS} FROM visits WHERE status IN ('due', 'no_answer') \
             AND (window_end <= $1 OR next_attempt_at <= $1)"
        );
        let ringing = format!(
            "SELECT {VISIT_COLUMNS} FROM visits WHERE status = 'calling' AND status_since <= $1"
        );
        let mut out = with_pool!(self, pool => sqlx::query_as::<_, Visit>(&opened).bind(now).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "visit"))?;
        out.extend(
            with_pool!(self, pool => sqlx::query_as::<_, Visit>(&open).bind(now).fetch_all(pool).await)
                .map_err(|e| StoreError::from_sqlx(e, "visit"))?,
        );
        out.extend(
            with_pool!(self, pool => sqlx::query_as::<_, Visit>(&ringing).bind(now - ring_timeout_ms).fetch_all(pool).await)
                .map_err(|e| StoreError::from_sqlx(e, "visit"))?,
        );
        Ok(out)
    }

    pub async fn visit_timeline(&self, visit_id: &str) -> StoreResult<Vec<VisitEvent>> {
        with_pool!(self, pool => sqlx::query_as::<_, VisitEvent>(
            "SELECT at, actor, from_status, to_status, detail FROM visit_events WHERE visit_id = $1 ORDER BY id",
        )
        .bind(visit_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))
    }

    /// Nurses who have completed visits with each client since `since`, most visits first.
    pub async fn known_nurses(
        &self,
        since: i64,
    ) -> StoreResult<std::collections::HashMap<String, Vec<String>>> {
        let rows = with_pool!(self, pool => sqlx::query_as::<_, (String, String, i64)>(
            "SELECT client_id, nurse_id, COUNT(*) AS n FROM visits \
             WHERE nurse_id IS NOT NULL AND status = 'completed' AND window_start >= $1 \
             GROUP BY client_id, nurse_id ORDER BY client_id, n DESC, nurse_id",
        )
        .bind(since)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit"))?;
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (client, nurse, _) in rows {
            out.entry(client).or_default().push(nurse);
        }
        Ok(out)
    }

    /// Stores the hash of a nurse's calendar feed token, replacing any earlier one.
    pub async fn set_calendar_token(&self, user_id: &str, token_hash: &str) -> StoreResult<()> {
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM calendar_tokens WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO calendar_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)")
                .bind(token_hash)
                .bind(user_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "calendar token"))
    }

    /// The user a calendar feed token belongs to.
    pub async fn calendar_token_user(&self, token_hash: &str) -> StoreResult<Option<String>> {
        with_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT t.user_id FROM calendar_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND u.disabled = FALSE",
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "calendar token"))
    }
}
