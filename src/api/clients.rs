//! Clients and their care plans: the rules their visits come from and the
//! pauses (hospital stays) that suppress them. Every read is audited.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::auth::{Admin, Nurse, RequireRole};
use crate::schedule::generate::{regenerate_client, GenerateReport, VisitRuleInput};
use crate::schedule::notify::Change;
use crate::schedule::recurrence::zone;
use crate::startup::AppState;
use crate::store::{now_ms, Client, ClientChanges, NewClient, Pause, Visit, VisitRuleRecord};

fn check_language(lang: &str) -> Result<(), ApiError> {
    Ok(crate::schedule::generate::check_language(lang)?)
}

fn check_zone(name: &str) -> Result<(), ApiError> {
    zone(name)
        .map(|_| ())
        .map_err(|e| ApiError::unprocessable(e.to_string()))
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let n = value.trim().chars().count();
    if n == 0 || n > max {
        return Err(ApiError::unprocessable(format!(
            "{field} must be 1-{max} characters"
        )));
    }
    Ok(())
}

/// A new client.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    pub name: String,
    /// `fi` or `sv`.
    pub language: String,
    pub area_id: String,
    pub address: String,
    /// IANA zone of the home; `Europe/Helsinki` when left out.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The named nurse (vastuuhoitaja), a nurse's user id.
    #[serde(default)]
    pub named_nurse_id: Option<String>,
    /// Consent to answer scheduled care visits automatically.
    #[serde(default)]
    pub consent_auto_answer: bool,
    /// Supervision class of the terminal: `90s`, `180s`, `5h` or `25h` (default).
    #[serde(default)]
    pub supervision_class: Option<String>,
    /// Supervise at the strictest class day and night.
    #[serde(default)]
    pub high_risk: Option<bool>,
    /// Door, key and key-safe instructions for the patrol.
    #[serde(default)]
    pub door_instructions: Option<String>,
    /// What a patrol or nurse must know on an alarm.
    #[serde(default)]
    pub care_notes: Option<String>,
    /// What the staff handling an alarm may do with the camera: `never`,
    /// `ring` (the client accepts; default) or `open_at_once`.
    #[serde(default)]
    pub alarm_video: Option<String>,
    /// The relative told of outages, and their phone number or e-mail.
    #[serde(default)]
    pub relative_name: Option<String>,
    #[serde(default)]
    pub relative_contact: Option<String>,
}

/// Changes to a client; fields left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub language: Option<String>,
    pub area_id: Option<String>,
    pub address: Option<String>,
    pub time_zone: Option<String>,
    /// A nurse's user id; `null` clears the named nurse.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub named_nurse_id: Option<Option<String>>,
    pub consent_auto_answer: Option<bool>,
    /// Supervision class of the terminal: `90s`, `180s`, `5h` or `25h` (default).
    #[serde(default)]
    pub supervision_class: Option<String>,
    /// Supervise at the strictest class day and night.
    #[serde(default)]
    pub high_risk: Option<bool>,
    /// Door, key and key-safe instructions for the patrol.
    #[serde(default)]
    pub door_instructions: Option<String>,
    /// What a patrol or nurse must know on an alarm.
    #[serde(default)]
    pub care_notes: Option<String>,
    /// What the staff handling an alarm may do with the camera: `never`,
    /// `ring` (the client accepts; default) or `open_at_once`.
    #[serde(default)]
    pub alarm_video: Option<String>,
    /// `null` clears the relative.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub relative_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub relative_contact: Option<Option<String>>,
}

/// Checks the alarm details of a client given on create or change.
fn check_alarm_details(
    video: Option<&str>,
    class: Option<&str>,
    door: Option<&str>,
    notes: Option<&str>,
    relative: &[Option<&str>],
) -> Result<(), ApiError> {
    if let Some(v) = video {
        if crate::calls::rights::AlarmVideo::parse(v).is_none() {
            return Err(ApiError::unprocessable(format!(
                "alarm_video {v:?} is not one of never, ring, open_at_once"
            )));
        }
    }
    if let Some(c) = class {
        if crate::alerts::supervision::SupervisionClass::parse(c).is_none() {
            return Err(ApiError::unprocessable(format!(
                "supervision_class {c:?} is not one of 90s, 180s, 5h, 25h"
            )));
        }
    }
    for (field, value, max) in [
        ("door_instructions", door, 2000),
        ("care_notes", notes, 4000),
    ] {
        if value.is_some_and(|v| v.chars().count() > max) {
            return Err(ApiError::unprocessable(format!(
                "{field} must be at most {max} characters"
            )));
        }
    }
    for value in relative.iter().flatten() {
        if value.chars().count() > 200 {
            return Err(ApiError::unprocessable(
                "relative_name and relative_contact must be at most 200 characters",
            ));
        }
    }
    Ok(())
}

/// Distinguishes a field set to `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn check_area(state: &AppState, id: &str) -> Result<(), ApiError> {
    if state.store.list_areas().await?.iter().any(|a| a.id == id) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!(
            "area {id:?} does not exist"
        )))
    }
}

/// 422 unless `id` is a nurse.
pub(crate) async fn check_nurse(state: &AppState, id: &str) -> Result<(), ApiError> {
    if state.store.is_nurse(id).await? {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!("{id:?} is not a nurse")))
    }
}

/// Add a client.
#[utoipa::path(
    post,
    path = "/clients",
    tag = "clients",
    security(("bearer" = [])),
    request_body = ClientInput,
    responses(
        (status = 201, description = "Created", body = Client),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
pub async fn create_client(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    ApiJson(input): ApiJson<ClientInput>,
) -> Result<(StatusCode, ApiJson<Client>), ApiError> {
    check_text("name", &input.name, 200)?;
    check_text("address", &input.address, 500)?;
    check_language(&input.language)?;
    if let Some(tz) = &input.time_zone {
        check_zone(tz)?;
    }
    if let Some(n) = &input.named_nurse_id {
        check_nurse(&state, n).await?;
    }
    check_area(&state, &input.area_id).await?;
    check_alarm_details(
        input.alarm_video.as_deref(),
        input.supervision_class.as_deref(),
        input.door_instructions.as_deref(),
        input.care_notes.as_deref(),
        &[
            input.relative_name.as_deref(),
            input.relative_contact.as_deref(),
        ],
    )?;
    let client = state
        .store
        .create_client(NewClient {
            name: input.name.trim().to_string(),
            language: input.language,
            area_id: input.area_id,
            address: input.address.trim().to_string(),
            named_nurse_id: input.named_nurse_id,
            consent_auto_answer: input.consent_auto_answer,
            time_zone: input.time_zone,
        })
        .await?;
    let client = state
        .store
        .update_client(
            &client.id,
            &ClientChanges {
                supervision_class: input.supervision_class.map(|c| c.trim().to_string()),
                high_risk: input.high_risk,
                door_instructions: input.door_instructions,
                care_notes: input.care_notes,
                relative_name: input.relative_name.map(Some),
                relative_contact: input.relative_contact.map(Some),
                alarm_video: input.alarm_video,
                ..ClientChanges::default()
            },
        )
        .await?;
    state
        .store
        .audit(
            Some(&session.user.id),
            "client.create",
            Some(&client.id),
            None,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(client)))
}

/// One client. The read is audited.
#[utoipa::path(
    get,
    path = "/clients/{id}",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, description = "The client", body = Client),
        (status = 404, description = "No such client", body = ErrorBody),
    )
)]
pub async fn get_client(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Admin)>,
    Path(id): Path<String>,
) -> Result<ApiJson<Client>, ApiError> {
    let client = state.store.get_client(&id).await?;
    state
        .store
        .audit(Some(&session.user.id), "client.read", Some(&id), None)
        .await?;
    Ok(ApiJson(client))
}

/// Change a client. A new time zone regenerates the coming visits.
#[utoipa::path(
    patch,
    path = "/clients/{id}",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    request_body = ClientPatch,
    responses(
        (status = 200, description = "The changed client", body = Client),
        (status = 404, description = "No such client", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
pub async fn patch_client(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ClientPatch>,
) -> Result<ApiJson<Client>, ApiError> {
    let before = state.store.get_client(&id).await?;
    if let Some(name) = &patch.name {
        check_text("name", name, 200)?;
    }
    if let Some(address) = &patch.address {
        check_text("address", address, 500)?;
    }
    if let Some(lang) = &patch.language {
        check_language(lang)?;
    }
    if let Some(tz) = &patch.time_zone {
        check_zone(tz)?;
    }
    if let Some(Some(n)) = &patch.named_nurse_id {
        check_nurse(&state, n).await?;
    }
    if let Some(area) = &patch.area_id {
        check_area(&state, area).await?;
    }
    check_alarm_details(
        patch.alarm_video.as_deref(),
        patch.supervision_class.as_deref(),
        patch.door_instructions.as_deref(),
        patch.care_notes.as_deref(),
        &[
            patch.relative_name.clone().flatten().as_deref(),
            patch.relative_contact.clone().flatten().as_deref(),
        ],
    )?;
    let client = state
        .store
        .update_client(
            &id,
            &ClientChanges {
                name: patch.name.map(|s| s.trim().to_string()),
                language: patch.language,
                area_id: patch.area_id,
                address: patch.address.map(|s| s.trim().to_string()),
                time_zone: patch.time_zone,
                named_nurse_id: patch.named_nurse_id,
                consent_auto_answer: patch.consent_auto_answer,
                supervision_class: patch.supervision_class.map(|c| c.trim().to_string()),
                high_risk: patch.high_risk,
                door_instructions: patch.door_instructions,
                care_notes: patch.care_notes,
                relative_name: patch.relative_name,
                relative_contact: patch.relative_contact,
                alarm_video: patch.alarm_video,
            },
        )
        .await?;
    state
        .store
        .audit(Some(&session.user.id), "client.update", Some(&id), None)
        .await?;
    if client.time_zone != before.time_zone || client.language != before.language {
        regenerate(&state, &id).await?;
    }
    Ok(ApiJson(client))
}

async fn regenerate(state: &AppState, client_id: &str) -> Result<GenerateReport, ApiError> {
    let report = regenerate_client(
        &state.store,
        client_id,
        now_ms(),
        state.settings.schedule_horizon_days,
    )
    .await?;
    state.schedule.send(Change::Client {
        client_id: client_id.to_string(),
    });
    Ok(report)
}

/// A client's care plan.
#[derive(Serialize, ToSchema)]
pub struct Plan {
    pub client_id: String,
    pub time_zone: String,
    pub rules: Vec<PlanRule>,
}

/// A rule of a care plan, with its recurrence also as iCalendar text.
#[derive(Serialize, ToSchema)]
pub struct PlanRule {
    #[serde(flatten)]
    pub rule: VisitRuleRecord,
    /// `DTSTART;TZID=…`, `RRULE:…`, `EXDATE…`, `RDATE…` lines.
    pub ical: String,
}

/// A care plan to store: the complete list of rules.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    pub rules: Vec<VisitRuleInput>,
}

/// The stored plan and what regenerating the visits did.
#[derive(Serialize, ToSchema)]
pub struct PlanSaved {
    pub plan: Plan,
    pub generated: GenerateReport,
}

async fn plan_of(state: &AppState, client: &Client) -> Result<Plan, ApiError> {
    let rules = state.store.plan_rules(&client.id).await?;
    let rules = rules
        .into_iter()
        .map(|rule| {
            let ical = crate::schedule::generate::recurrence_of(&rule)
                .map(|r| r.to_ical(&client.time_zone))
                .unwrap_or_default();
            PlanRule { rule, ical }
        })
        .collect();
    Ok(Plan {
        client_id: client.id.clone(),
        time_zone: client.time_zone.clone(),
        rules,
    })
}

/// A client's care plan.
#[utoipa::path(
    get,
    path = "/clients/{id}/plan",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, description = "The plan", body = Plan),
        (status = 404, description = "No such client", body = ErrorBody),
    )
)]
pub async fn get_plan(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Admin)>,
    Path(id): Path<String>,
) -> Result<ApiJson<Plan>, ApiError> {
    let client = state.store.get_client(&id).await?;
    state
        .store
        .audit(Some(&session.user.id), "plan.read", Some(&id), None)
        .await?;
    Ok(ApiJson(plan_of(&state, &client).await?))
}

/// Replace a client's care plan. Rules keep their id to be edited; visits
/// from now on that have not started are regenerated, visits under way or
/// done are never touched.
#[utoipa::path(
    put,
    path = "/clients/{id}/plan",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    request_body = PlanInput,
    responses(
        (status = 200, description = "Stored and regenerated", body = PlanSaved),
        (status = 404, description = "No such client", body = ErrorBody),
        (status = 422, description = "A rule is invalid; nothing was changed", body = ErrorBody),
    )
)]
pub async fn put_plan(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Admin)>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PlanInput>,
) -> Result<ApiJson<PlanSaved>, ApiError> {
    let client = state.store.get_client(&id).await?;
    if input.rules.len() > 50 {
        return Err(ApiError::unprocessable("a plan has at most 50 rules"));
    }
    let existing = state.store.plan_rules(&id).await?;
    let mut records = Vec::with_capacity(input.rules.len());
    for (i, rule) in input.rules.into_iter().enumerate() {
        if let Some(rule_id) = &rule.id {
            if !existing.iter().any(|r| &r.id == rule_id) {
                return Err(ApiError::unprocessable(format!(
                    "rules[{i}]: rule {rule_id:?} is not in this plan; leave the id out for a new rule"
                )));
            }
        }
        records.push(
            rule.into_record(&client)
                .map_err(|e| ApiError::unprocessable(format!("rules[{i}]: {e}")))?,
        );
    }
    state.store.replace_plan(&id, &records).await?;
    state
        .store
        .audit(
            Some(&session.user.id),
            "plan.update",
            Some(&id),
            Some(&format!("{} rules", records.len())),
        )
        .await?;
    let generated = regenerate(&state, &id).await?;
    Ok(ApiJson(PlanSaved {
        plan: plan_of(&state, &client).await?,
        generated,
    }))
}

/// A pause in a client's visits.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseInput {
    /// Start, RFC 3339 (`2026-11-24T10:00:00+02:00`).
    pub starts_at: String,
    /// End, RFC 3339.
    pub ends_at: String,
    #[serde(default)]
    pub reason: String,
}

fn parse_instant(field: &str, value: &str) -> Result<i64, ApiError> {
    value
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| ApiError::unprocessable(format!("{field}: {e}")))
}

/// A client's pauses.
#[utoipa::path(
    get,
    path = "/clients/{id}/pauses",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, description = "Pauses", body = Vec<Pause>))
)]
pub async fn list_pauses(
    State(state): State<AppState>,
    _: RequireRole<(Nurse, Admin)>,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<Pause>>, ApiError> {
    state.store.get_client(&id).await?;
    Ok(ApiJson(state.store.pauses(Some(&id)).await?))
}

/// Pause a client's visits (a hospital stay); the visits in it are removed
/// while they have not started, and come back when the pause is deleted.
#[utoipa::path(
    post,
    path = "/clients/{id}/pauses",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    request_body = PauseInput,
    responses(
        (status = 201, description = "Paused", body = Pause),
        (status = 422, description = "Invalid times", body = ErrorBody),
    )
)]
pub async fn add_pause(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Admin)>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PauseInput>,
) -> Result<(StatusCode, ApiJson<Pause>), ApiError> {
    state.store.get_client(&id).await?;
    let starts_at = parse_instant("starts_at", &input.starts_at)?;
    let ends_at = parse_instant("ends_at", &input.ends_at)?;
    if ends_at <= starts_at {
        return Err(ApiError::unprocessable("ends_at must be after starts_at"));
    }
    if input.reason.chars().count() > 500 {
        return Err(ApiError::unprocessable(
            "reason must be at most 500 characters",
        ));
    }
    let pause = state
        .store
        .add_pause(&id, starts_at, ends_at, input.reason.trim())
        .await?;
    state
        .store
        .audit(Some(&session.user.id), "pause.create", Some(&id), None)
        .await?;
    regenerate(&state, &id).await?;
    Ok((StatusCode::CREATED, ApiJson(pause)))
}

/// End a pause early or remove it; the visits it suppressed come back.
#[utoipa::path(
    delete,
    path = "/clients/{id}/pauses/{pause_id}",
    tag = "clients",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Client id"),
        ("pause_id" = String, Path, description = "Pause id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such pause", body = ErrorBody),
    )
)]
pub async fn delete_pause(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Admin)>,
    Path((id, pause_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_pause(&id, &pause_id).await?;
    state
        .store
        .audit(Some(&session.user.id), "pause.delete", Some(&id), None)
        .await?;
    regenerate(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct RangeQuery {
    /// Start, RFC 3339; now when left out.
    pub from: Option<String>,
    /// End, RFC 3339; 14 days after `from` when left out (at most 92 days).
    pub to: Option<String>,
}

/// A client's visits in a time range.
#[utoipa::path(
    get,
    path = "/clients/{id}/visits",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id"), RangeQuery),
    responses((status = 200, description = "Visits in window order", body = Vec<Visit>))
)]
pub async fn client_visits(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Admin)>,
    Path(id): Path<String>,
    ApiQuery(range): ApiQuery<RangeQuery>,
) -> Result<ApiJson<Vec<Visit>>, ApiError> {
    state.store.get_client(&id).await?;
    let from = match &range.from {
        Some(f) => parse_instant("from", f)?,
        None => now_ms(),
    };
    let to = match &range.to {
        Some(t) => parse_instant("to", t)?,
        None => from + 14 * 86_400_000,
    };
    if to <= from || to - from > 92 * 86_400_000 {
        return Err(ApiError::unprocessable(
            "to must be after from, at most 92 days later",
        ));
    }
    state
        .store
        .audit(Some(&session.user.id), "visits.read", Some(&id), None)
        .await?;
    Ok(ApiJson(state.store.client_visits(&id, from, to).await?))
}
