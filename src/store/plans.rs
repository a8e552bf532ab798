//! Care plans and the people who carry them out: nurses' languages and
//! skills, shifts, visit rules and pauses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{execute, new_id, now_ms, with_pool, Store, StoreError, StoreResult};

/// A nurse: a staff account with the nurse role, and what they can do.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Nurse {
    pub id: String,
    pub username: String,
    pub display_name: String,
    /// Languages the nurse works in (`fi`, `sv`).
    pub languages: Vec<String>,
    /// Skills, e.g. `medication`, `wound_care`, `diabetes`.
    pub skills: Vec<String>,
}

/// A working shift of a nurse; `signed_off_at` cuts it short (off sick).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Shift {
    pub id: String,
    pub nurse_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub signed_off_at: Option<i64>,
}

impl Shift {
    /// When the nurse is actually off: the end or the sign-off, whichever is first.
    pub fn effective_end(&self) -> i64 {
        self.signed_off_at
            .map_or(self.ends_at, |off| off.min(self.ends_at))
    }
}

/// One rule of a client's care plan as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct VisitRuleRecord {
    pub id: String,
    pub client_id: String,
    /// First occurrence, civil time in the client's zone (`2026-11-23T08:00:00`).
    pub dtstart: String,
    /// RFC 5545 RRULE value (`FREQ=DAILY;BYDAY=MO,WE,FR`), none for single dates.
    pub rrule: Option<String>,
    /// JSON array of civil times.
    pub exdates: String,
    /// JSON array of civil times.
    pub rdates: String,
    pub window_before_min: i32,
    pub window_after_min: i32,
    pub length_min: i32,
    pub purpose: String,
    pub skill: Option<String>,
    pub language: Option<String>,
}

/// A pause in a client's visits (hospital stay, holiday with family).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Pause {
    pub id: String,
    pub client_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

const RULE_COLUMNS: &str = "id, client_id, dtstart, rrule, exdates, rdates, window_before_min, \
     window_after_min, length_min, purpose, skill, language";

impl Store {
    /// Sets the languages and skills of a nurse.
    pub async fn set_nurse_profile(
        &self,
        user_id: &str,
        languages: &[String],
        skills: &[String],
    ) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "INSERT INTO nurse_profiles (user_id, languages, skills) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET languages = excluded.languages, skills = excluded.skills",
        )
        .bind(user_id)
        .bind(languages.join(","))
        .bind(skills.join(","))
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "nurse"))
    }

    /// Every active account with the nurse role. A nurse without a profile
    /// works in the language of their account (Finnish when unset).
    pub async fn list_nurses(&self) -> StoreResult<Vec<Nurse>> {
        let rows = with_pool!(self, pool => sqlx::query_as::<_, (String, String, String, Option<String>, Option<String>, Option<String>)>(
            "SELECT u.id, u.username, u.display_name, u.language, p.languages, p.skills \
             FROM users u JOIN user_roles r ON r.user_id = u.id AND r.role = 'nurse' \
             LEFT JOIN nurse_profiles p ON p.user_id = u.id \
             WHERE u.disabled = FALSE ORDER BY u.display_name",
        )
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "nurse"))?;
        Ok(rows
            .into_iter()
            .map(
                |(id, username, display_name, language, languages, skills)| {
                    let languages = match languages {
                        Some(l) => split_list(&l),
                        None => vec![match language.as_deref() {
                            Some("sv") => "sv".to_string(),
                            _ => "fi".to_string(),
                        }],
                    };
                    Nurse {
                        id,
                        username,
                        display_name,
                        languages,
                        skills: skills.as_deref().map(split_list).unwrap_or_default(),
                    }
                },
            )
            .collect())
    }

    /// Whether `user_id` is an active account with the nurse role.
    pub async fn is_nurse(&self, user_id: &str) -> StoreResult<bool> {
        with_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM users u JOIN user_roles r ON r.user_id = u.id AND r.role = 'nurse' \
             WHERE u.id = $1 AND u.disabled = FALSE",
        )
        .bind(user_id)
        .fetch_one(pool)
        .await)
        .map(|n| n > 0)
        .map_err(|e| StoreError::from_sqlx(e, "nurse"))
    }

    pub async fn add_shift(
        &self,
        nurse_id: &str,
        starts_at: i64,
        ends_at: i64,
    ) -> StoreResult<Shift> {
        let shift = Shift {
            id: new_id(),
            nurse_id: nurse_id.to_string(),
            starts_at,
            ends_at,
            signed_off_at: None,
        };
        execute!(self, pool => sqlx::query(
            "INSERT INTO shifts (id, nurse_id, starts_at, ends_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&shift.id)
        .bind(&shift.nurse_id)
        .bind(shift.starts_at)
        .bind(shift.ends_at)
        .bind(now_ms())
        .execute(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "shift"))?;
        Ok(shift)
    }

    /// Shifts that overlap `[from, to)`.
    pub async fn shifts_between(&self, from: i64, to: i64) -> StoreResult<Vec<Shift>> {
        with_pool!(self, pool => sqlx::query_as::<_, Shift>(
            "SELECT id, nurse_id, starts_at, ends_at, signed_off_at FROM shifts \
             WHERE starts_at < $2 AND ends_at > $1 ORDER BY starts_at, nurse_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "shift"))
    }

    /// Signs a nurse off from `at` until `until`: every shift of theirs that
    /// is still running or starts before `until` ends at `at`. Returns how many shifts.
    pub async fn sign_off_nurse(&self, nurse_id: &str, at: i64, until: i64) -> StoreResult<u64> {
        execute!(self, pool => sqlx::query(
            "UPDATE shifts SET signed_off_at = $2 WHERE nurse_id = $1 AND ends_at > $2 AND starts_at < $3 \
             AND (signed_off_at IS NULL OR signed_off_at > $2)",
        )
        .bind(nurse_id)
        .bind(at)
        .bind(until)
        .execute(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "shift"))
    }

    /// Replaces the care plan of a client: rules with a known id are updated,
    /// new ones added, the rest removed (their past visits stay).
    pub async fn replace_plan(
        &self,
        client_id: &str,
        rules: &[VisitRuleRecord],
    ) -> StoreResult<()> {
        let now = now_ms();
        with_pool!(self, pool => async {
            // Writes first: a SQLite transaction that starts with a read
            // cannot wait for another writer when it upgrades.
            let mut tx = pool.begin().await?;
            if rules.is_empty() {
                sqlx::query("DELETE FROM visit_rules WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
            }
            for r in rules {
                sqlx::query(
                    "INSERT INTO visit_rules (id, client_id, dtstart, rrule, exdates, rdates, window_before_min, \
                     window_after_min, length_min, purpose, skill, language, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
                     ON CONFLICT (id) DO UPDATE SET dtstart = excluded.dtstart, rrule = excluded.rrule, \
                     exdates = excluded.exdates, rdates = excluded.rdates, \
                     window_before_min = excluded.window_before_min, window_after_min = excluded.window_after_min, \
                     length_min = excluded.length_min, purpose = excluded.purpose, skill = excluded.skill, \
                     language = excluded.language, updated_at = excluded.updated_at \
                     WHERE visit_rules.client_id = excluded.client_id",
                )
                .bind(&r.id)
                .bind(client_id)
                .bind(&r.dtstart)
                .bind(&r.rrule)
                .bind(&r.exdates)
                .bind(&r.rdates)
                .bind(r.window_before_min)
                .bind(r.window_after_min)
                .bind(r.length_min)
                .bind(&r.purpose)
                .bind(&r.skill)
                .bind(&r.language)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let existing: Vec<String> =
                sqlx::query_scalar("SELECT id FROM visit_rules WHERE client_id = $1")
                    .bind(client_id)
                    .fetch_all(&mut *tx)
                    .await?;
            for id in existing.iter().filter(|id| !rules.iter().any(|r| &r.id == *id)) {
                sqlx::query("DELETE FROM visit_rules WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "visit rule"))
    }

    pub async fn plan_rules(&self, client_id: &str) -> StoreResult<Vec<VisitRuleRecord>> {
        let sql = format!(
            "SELECT {RULE_COLUMNS} FROM visit_rules WHERE client_id = $1 ORDER BY dtstart, id"
        );
        with_pool!(self, pool => sqlx::query_as::<_, VisitRuleRecord>(&sql).bind(client_id).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "visit rule"))
    }

    /// Every rule of every client, for the rolling horizon.
    pub async fn all_rules(&self) -> StoreResult<Vec<VisitRuleRecord>> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM visit_rules ORDER BY client_id, id");
        with_pool!(self, pool => sqlx::query_as::<_, VisitRuleRecord>(&sql).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "visit rule"))
    }

    pub async fn add_pause(
        &self,
        client_id: &str,
        starts_at: i64,
        ends_at: i64,
        reason: &str,
    ) -> StoreResult<Pause> {
        let pause = Pause {
            id: new_id(),
            client_id: client_id.to_string(),
            starts_at,
            ends_at,
            reason: reason.to_string(),
        };
        execute!(self, pool => sqlx::query(
            "INSERT INTO client_pauses (id, client_id, starts_at, ends_at, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&pause.id)
        .bind(&pause.client_id)
        .bind(pause.starts_at)
        .bind(pause.ends_at)
        .bind(&pause.reason)
        .bind(now_ms())
        .execute(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "pause"))?;
        Ok(pause)
    }

    pub async fn delete_pause(&self, client_id: &str, pause_id: &str) -> StoreResult<()> {
        let n = execute!(self, pool => sqlx::query("DELETE FROM client_pauses WHERE id = $1 AND client_id = $2")
            .bind(pause_id)
            .bind(client_id)
            .execute(pool)
            .await)
        .map_err(|e| StoreError::from_sqlx(e, "pause"))?;
        if n == 0 {
            return Err(StoreError::NotFound("pause"));
        }
        Ok(())
    }

    /// Pauses of one client, or of every client when `client_id` is `None`.
    pub async fn pauses(&self, client_id: Option<&str>) -> StoreResult<Vec<Pause>> {
        with_pool!(self, pool => sqlx::query_as::<_, Pause>(
            "SELECT id, client_id, starts_at, ends_at, reason FROM client_pauses \
             WHERE (CAST($1 AS TEXT) IS NULL OR client_id = $1) ORDER BY starts_at",
        )
        .bind(client_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "pause"))
    }
}

/// Everything a bulk import brings: a whole organisation at once (a county
/// moving from another system, or a capacity-planning benchmark). Imported
/// accounts cannot sign in until a password is set.
#[derive(Default)]
pub struct BulkImport {
    pub areas: Vec<(String, String)>,
    pub nurses: Vec<Nurse>,
    pub shifts: Vec<Shift>,
    pub clients: Vec<super::Client>,
    pub rules: Vec<VisitRuleRecord>,
}

/// Rows per multi-row statement: well under SQLite's 32,766 parameters.
const IMPORT_BATCH: usize = 1000;

impl Store {
    /// Imports in one transaction: all or nothing.
    pub async fn bulk_import(&self, data: &BulkImport) -> StoreResult<()> {
        let now = now_ms();
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            for chunk in data.areas.chunks(IMPORT_BATCH) {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO areas (id, name) ");
                q.push_values(chunk, |mut b, (id, name)| {
                    b.push_bind(id).push_bind(name);
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in data.nurses.chunks(IMPORT_BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO users (id, username, display_name, password_hash, language, disabled, created_at) ",
                );
                q.push_values(chunk, |mut b, n| {
                    b.push_bind(&n.id)
                        .push_bind(&n.username)
                        .push_bind(&n.display_name)
                        .push_bind("!")
                        .push_bind(n.languages.first().cloned())
                        .push_bind(false)
                        .push_bind(now);
                });
                q.build().execute(&mut *tx).await?;
                let mut q = sqlx::QueryBuilder::new("INSERT INTO user_roles (user_id, role) ");
                q.push_values(chunk, |mut b, n| {
                    b.push_bind(&n.id).push_bind("nurse");
                });
                q.build().execute(&mut *tx).await?;
                let mut q = sqlx::QueryBuilder::new("INSERT INTO nurse_profiles (user_id, languages, skills) ");
                q.push_values(chunk, |mut b, n| {
                    b.push_bind(&n.id)
                        .push_bind(n.languages.join(","))
                        .push_bind(n.skills.join(","));
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in data.shifts.chunks(IMPORT_BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO shifts (id, nurse_id, starts_at, ends_at, signed_off_at, created_at) ",
                );
                q.push_values(chunk, |mut b, s| {
                    b.push_bind(&s.id)
                        .push_bind(&s.nurse_id)
                        .push_bind(s.starts_at)
                        .push_bind(s.ends_at)
                        .push_bind(s.signed_off_at)
                        .push_bind(now);
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in data.clients.chunks(IMPORT_BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO clients (id, name, language, area_id, address, time_zone, named_nurse_id, consent_auto_answer, created_at) ",
                );
                q.push_values(chunk, |mut b, c| {
                    b.push_bind(&c.id)
                        .push_bind(&c.name)
                        .push_bind(&c.language)
                        .push_bind(&c.area_id)
                        .push_bind(&c.address)
                        .push_bind(&c.time_zone)
                        .push_bind(&c.named_nurse_id)
                        .push_bind(c.consent_auto_answer)
                        .push_bind(c.created_at);
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in data.rules.chunks(IMPORT_BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO visit_rules (id, client_id, dtstart, rrule, exdates, rdates, window_before_min, \
                     window_after_min, length_min, purpose, skill, language, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.id)
                        .push_bind(&r.client_id)
                        .push_bind(&r.dtstart)
                        .push_bind(&r.rrule)
                        .push_bind(&r.exdates)
                        .push_bind(&r.rdates)
                        .push_bind(r.window_before_min)
                        .push_bind(r.window_after_min)
                        .push_bind(r.length_min)
                        .push_bind(&r.purpose)
                        .push_bind(&r.skill)
                        .push_bind(&r.language)
                        .push_bind(now)
                        .push_bind(now);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "import"))
    }
}
