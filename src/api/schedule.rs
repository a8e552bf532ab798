//! Nurses, shifts, day planning, worklists and the visit lifecycle.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::auth::{Admin, Authenticated, Nurse as NurseRole, RequireRole};
use crate::schedule::assign::{assign_day, continuity, AssignReport, Continuity};
use crate::schedule::day_range;
use crate::schedule::lifecycle::Action;
use crate::schedule::notify::Change;
use crate::schedule::recurrence::zone;
use crate::startup::AppState;
use crate::store::{now_ms, Nurse, Role, SessionUser, Shift, Visit, VisitEvent, WorklistItem};

/// The unit's civil date from `YYYY-MM-DD`, today when left out.
pub fn unit_date(state: &AppState, date: Option<&str>) -> Result<Date, ApiError> {
    match date {
        Some(d) => d
            .parse::<Date>()
            .map_err(|e| ApiError::unprocessable(format!("date must be YYYY-MM-DD: {e}"))),
        None => {
            let tz = zone(&state.settings.unit_time_zone)?;
            Ok(jiff::Timestamp::now().to_zoned(tz).date())
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct DayQuery {
    /// The unit's civil date, `YYYY-MM-DD`; today when left out.
    pub date: Option<String>,
}

/// The nurses with their languages and skills.
#[utoipa::path(
    get,
    path = "/nurses",
    tag = "schedule",
    security(("bearer" = [])),
    responses((status = 200, description = "Nurses", body = Vec<Nurse>))
)]
pub async fn list_nurses(
    State(state): State<AppState>,
    _: RequireRole<(NurseRole, Admin)>,
) -> Result<ApiJson<Vec<Nurse>>, ApiError> {
    Ok(ApiJson(state.store.list_nurses().await?))
}

/// A nurse's languages and skills.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NurseProfile {
    /// `fi`, `sv`; at least one.
    pub languages: Vec<String>,
    #[serde(default)]
    pub skills: Vec<String>,
}

/// Set a nurse's languages and skills.
#[utoipa::path(
    put,
    path = "/nurses/{id}/profile",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Nurse's user id")),
    request_body = NurseProfile,
    responses(
        (status = 204, description = "Stored"),
        (status = 404, description = "No such nurse", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
pub async fn put_nurse_profile(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    Path(id): Path<String>,
    ApiJson(profile): ApiJson<NurseProfile>,
) -> Result<StatusCode, ApiError> {
    if !state.store.is_nurse(&id).await? {
        return Err(ApiError::NotFound("nurse"));
    }
    if profile.languages.is_empty()
        || profile
            .languages
            .iter()
            .any(|l| !matches!(l.as_str(), "fi" | "sv" | "en"))
    {
        return Err(ApiError::unprocessable(
            "languages must be one or more of fi, sv, en",
        ));
    }
    for skill in &profile.skills {
        crate::schedule::generate::check_skill(skill)?;
    }
    state
        .store
        .set_nurse_profile(&id, &profile.languages, &profile.skills)
        .await?;
    state
        .store
        .audit(Some(&session.user.id), "nurse.profile", Some(&id), None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A shift to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiftInput {
    pub nurse_id: String,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; at most 16 hours after the start.
    pub ends_at: String,
}

/// The shifts of a day.
#[utoipa::path(
    get,
    path = "/shifts",
    tag = "schedule",
    security(("bearer" = [])),
    params(DayQuery),
    responses((status = 200, description = "Shifts that overlap the day", body = Vec<Shift>))
)]
pub async fn list_shifts(
    State(state): State<AppState>,
    _: RequireRole<(NurseRole, Admin)>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> Result<ApiJson<Vec<Shift>>, ApiError> {
    let date = unit_date(&state, q.date.as_deref())?;
    let (from, to) = day_range(date, &zone(&state.settings.unit_time_zone)?);
    Ok(ApiJson(state.store.shifts_between(from, to).await?))
}

/// Add a shift.
#[utoipa::path(
    post,
    path = "/shifts",
    tag = "schedule",
    security(("bearer" = [])),
    request_body = ShiftInput,
    responses(
        (status = 201, description = "Added", body = Shift),
        (status = 422, description = "Invalid shift", body = ErrorBody),
    )
)]
pub async fn add_shift(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    ApiJson(input): ApiJson<ShiftInput>,
) -> Result<(StatusCode, ApiJson<Shift>), ApiError> {
    let parse = |field: &str, v: &str| {
        v.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|e| ApiError::unprocessable(format!("{field}: {e}")))
    };
    let starts_at = parse("starts_at", &input.starts_at)?;
    let ends_at = parse("ends_at", &input.ends_at)?;
    if ends_at <= starts_at || ends_at - starts_at > 16 * 3_600_000 {
        return Err(ApiError::unprocessable(
            "ends_at must be after starts_at and at most 16 hours later",
        ));
    }
    super::clients::check_nurse(&state, &input.nurse_id).await?;
    let shift = state
        .store
        .add_shift(&input.nurse_id, starts_at, ends_at)
        .await?;
    state
        .store
        .audit(
            Some(&session.user.id),
            "shift.create",
            Some(&input.nurse_id),
            None,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(shift)))
}

/// Sign a nurse off sick for the rest of the day: their calls that have
/// not started go to the others, re-planned from now.
#[utoipa::path(
    post,
    path = "/nurses/{id}/sign-off",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Nurse's user id")),
    responses(
        (status = 200, description = "Signed off and the rest of the day re-planned", body = AssignReport),
        (status = 403, description = "Only the nurse or an administrator", body = ErrorBody),
    )
)]
pub async fn sign_off(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(NurseRole, Admin)>,
    Path(id): Path<String>,
) -> Result<ApiJson<AssignReport>, ApiError> {
    if session.user.id != id && !session.user.roles.contains(&Role::Admin) {
        return Err(ApiError::Forbidden);
    }
    let now = now_ms();
    let tz = zone(&state.settings.unit_time_zone)?;
    let today = crate::schedule::ts(now).to_zoned(tz.clone()).date();
    let (_, end_of_day) = day_range(today, &tz);
    // Off for the rest of the day, or to the end of a shift running past midnight.
    let until = state
        .store
        .shifts_between(now, end_of_day)
        .await?
        .iter()
        .filter(|s| s.nurse_id == id)
        .map(|s| s.ends_at)
        .fold(end_of_day, i64::max);
    state.store.sign_off_nurse(&id, now, until).await?;
    let released = state.store.release_nurse_visits(&id, now, until).await?;
    state
        .store
        .audit(
            Some(&session.user.id),
            "nurse.sign_off",
            Some(&id),
            Some(&format!("{} visits released", released.len())),
        )
        .await?;
    // Re-plan every day a released visit belongs to (a late call may be tomorrow's).
    let mut days = vec![today];
    for visit_id in &released {
        let visit = state.store.get_visit(visit_id).await?;
        let day = crate::schedule::ts(visit.planned_at)
            .to_zoned(tz.clone())
            .date();
        if !days.contains(&day) {
            days.push(day);
        }
    }
    let mut report = assign_day(&state.store, &state.settings, today, false, now).await?;
    for day in days.into_iter().skip(1) {
        let more = assign_day(&state.store, &state.settings, day, false, now).await?;
        report.planned += more.planned;
        report.placed += more.placed;
        report.unplaced.extend(more.unplaced);
    }
    state.schedule.send(Change::Everything);
    Ok(ApiJson(report))
}

/// How to plan a day.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    /// The unit's civil date, `YYYY-MM-DD`; today when left out.
    #[serde(default)]
    pub date: Option<String>,
    /// Place every visit that has not started anew (pins kept); otherwise
    /// only visits without a nurse or a time.
    #[serde(default)]
    pub replan: bool,
}

/// Plan a day: assign its visits to the nurses on shift.
#[utoipa::path(
    post,
    path = "/schedule/assign",
    tag = "schedule",
    security(("bearer" = [])),
    request_body = AssignInput,
    responses((status = 200, description = "What was planned, with continuity", body = AssignReport))
)]
pub async fn assign(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(NurseRole, Admin)>,
    ApiJson(input): ApiJson<AssignInput>,
) -> Result<ApiJson<AssignReport>, ApiError> {
    let date = unit_date(&state, input.date.as_deref())?;
    let report = assign_day(&state.store, &state.settings, date, input.replan, now_ms()).await?;
    state
        .store
        .audit(
            Some(&session.user.id),
            "schedule.assign",
            Some(&report.date),
            Some(&format!("placed {} of {}", report.placed, report.planned)),
        )
        .await?;
    state.schedule.send(Change::Everything);
    Ok(ApiJson(report))
}

/// Generate visits from every plan up to the horizon now (the hub also does this hourly).
#[utoipa::path(
    post,
    path = "/schedule/generate",
    tag = "schedule",
    security(("bearer" = [])),
    responses((status = 200, description = "What was generated", body = crate::schedule::generate::GenerateReport))
)]
pub async fn generate(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
) -> Result<ApiJson<crate::schedule::generate::GenerateReport>, ApiError> {
    let report = crate::schedule::generate::extend_horizon(
        &state.store,
        now_ms(),
        state.settings.schedule_horizon_days,
    )
    .await?;
    state.schedule.send(Change::Everything);
    Ok(ApiJson(report))
}

/// How well a day's plan keeps continuity of care.
#[utoipa::path(
    get,
    path = "/schedule/continuity",
    tag = "schedule",
    security(("bearer" = [])),
    params(DayQuery),
    responses((status = 200, description = "Continuity of the day's assignment", body = Continuity))
)]
pub async fn get_continuity(
    State(state): State<AppState>,
    _: RequireRole<(NurseRole, Admin)>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> Result<ApiJson<Continuity>, ApiError> {
    let date = unit_date(&state, q.date.as_deref())?;
    Ok(ApiJson(
        continuity(&state.store, &state.settings, date, now_ms()).await?,
    ))
}

/// Visits of a day that no nurse has.
#[utoipa::path(
    get,
    path = "/schedule/unassigned",
    tag = "schedule",
    security(("bearer" = [])),
    params(DayQuery),
    responses((status = 200, description = "Unassigned visits", body = Vec<WorklistItem>))
)]
pub async fn unassigned(
    State(state): State<AppState>,
    _: RequireRole<(NurseRole, Admin)>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> Result<ApiJson<Vec<WorklistItem>>, ApiError> {
    let date = unit_date(&state, q.date.as_deref())?;
    let (from, to) = day_range(date, &zone(&state.settings.unit_time_zone)?);
    Ok(ApiJson(state.store.unassigned(from, to).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct WorklistQuery {
    /// The unit's civil date, `YYYY-MM-DD`; today when left out.
    pub date: Option<String>,
    /// Another nurse's worklist (administrators only).
    pub nurse_id: Option<String>,
}

fn worklist_owner(session: &SessionUser, asked: Option<&str>) -> Result<String, ApiError> {
    match asked {
        Some(id) if id != session.user.id && !session.user.roles.contains(&Role::Admin) => {
            Err(ApiError::Forbidden)
        }
        Some(id) => Ok(id.to_string()),
        None => Ok(session.user.id.clone()),
    }
}

/// A nurse's visits of a day in call order.
pub async fn worklist_of(
    state: &AppState,
    nurse_id: &str,
    date: Date,
) -> Result<Vec<WorklistItem>, ApiError> {
    let (from, to) = day_range(date, &zone(&state.settings.unit_time_zone)?);
    Ok(state.store.worklist(nurse_id, from, to).await?)
}

/// The signed-in nurse's worklist: the day's visits in call order.
#[utoipa::path(
    get,
    path = "/worklist",
    tag = "schedule",
    security(("bearer" = [])),
    params(WorklistQuery),
    responses((status = 200, description = "Visits in call order", body = Vec<WorklistItem>))
)]
pub async fn worklist(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(NurseRole, Admin)>,
    ApiQuery(q): ApiQuery<WorklistQuery>,
) -> Result<ApiJson<Vec<WorklistItem>>, ApiError> {
    let nurse = worklist_owner(&session, q.nurse_id.as_deref())?;
    let date = unit_date(&state, q.date.as_deref())?;
    Ok(ApiJson(worklist_of(&state, &nurse, date).await?))
}

/// Live worklist updates (Server-Sent Events): an `update` event whenever
/// one of the nurse's visits, or the whole plan, changes.
#[utoipa::path(
    get,
    path = "/worklist/events",
    tag = "schedule",
    security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of `update` events"))
)]
pub async fn worklist_events(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(NurseRole, Admin)>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.schedule.subscribe();
    let me = session.user.id;
    let stream = futures_util::stream::unfold((rx, me), |(mut rx, me)| async move {
        loop {
            let relevant = match rx.recv().await {
                Ok(Change::Visit { nurse_id, .. }) => nurse_id.as_deref() == Some(me.as_str()),
                Ok(Change::Everything) => true,
                Ok(Change::Client { .. }) => true,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            };
            if relevant {
                let event = Event::default().event("update").data("changed");
                return Some((Ok(event), (rx, me)));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A visit with its timeline.
#[derive(Serialize, ToSchema)]
pub struct VisitDetail {
    #[serde(flatten)]
    pub visit: Visit,
    pub timeline: Vec<VisitEvent>,
    /// The calls made for it, each with when it was answered and how it ended.
    pub calls: Vec<crate::store::calls::CallRecord>,
}

/// One visit and its timeline.
#[utoipa::path(
    get,
    path = "/visits/{id}",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Visit id")),
    responses(
        (status = 200, description = "The visit", body = VisitDetail),
        (status = 404, description = "No such visit", body = ErrorBody),
    )
)]
pub async fn get_visit(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(NurseRole, Admin)>,
    Path(id): Path<String>,
) -> Result<ApiJson<VisitDetail>, ApiError> {
    let visit = state.store.get_visit(&id).await?;
    let timeline = state.store.visit_timeline(&id).await?;
    state
        .store
        .audit(Some(&session.user.id), "visit.read", Some(&id), None)
        .await?;
    let calls = state.store.calls_of_visit(&id).await?;
    Ok(ApiJson(VisitDetail {
        visit,
        timeline,
        calls,
    }))
}

/// What happened in a visit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitActionInput {
    pub action: Action,
    /// With `complete`: `done`, `needs_follow_up` or `client_unwell`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// A short note (at most 2000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// Outcomes a completed visit may have.
pub const OUTCOMES: [&str; 3] = ["done", "needs_follow_up", "client_unwell"];

/// Move a visit on: call, answered, no answer, complete (with an outcome and
/// a note), cancel. Refused with 409 when the visit is not in a state that allows it.
#[utoipa::path(
    post,
    path = "/visits/{id}/actions",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Visit id")),
    request_body = VisitActionInput,
    responses(
        (status = 200, description = "The visit after the action", body = Visit),
        (status = 404, description = "No such visit", body = ErrorBody),
        (status = 409, description = "Not allowed in the visit's state", body = ErrorBody),
        (status = 422, description = "Invalid outcome or note", body = ErrorBody),
    )
)]
pub async fn visit_action(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(NurseRole, Admin)>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<VisitActionInput>,
) -> Result<ApiJson<Visit>, ApiError> {
    let outcome = match (&input.action, input.outcome.as_deref()) {
        (Action::Complete, None) => Some("done"),
        (Action::Complete, Some(o)) if OUTCOMES.contains(&o) => Some(o),
        (Action::Complete, Some(o)) => {
            return Err(ApiError::unprocessable(format!(
                "outcome {o:?} must be one of {}",
                OUTCOMES.join(", ")
            )))
        }
        (_, Some(_)) => {
            return Err(ApiError::unprocessable(
                "an outcome is given only with complete",
            ))
        }
        (_, None) => None,
    };
    let note = input
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::unprocessable(
            "note must be at most 2000 characters",
        ));
    }
    if input.action == Action::Tick {
        return Err(ApiError::unprocessable("tick is the hub's own action"));
    }
    let visit = crate::schedule::calls::act_and_ring(
        &state,
        &id,
        input.action,
        &session.user.id,
        outcome,
        note,
    )
    .await?;
    Ok(ApiJson(visit))
}

/// Pin a visit to a nurse, or unpin it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinInput {
    /// The nurse; `null` removes the pin.
    pub nurse_id: Option<String>,
}

/// Pin a visit to a nurse (a planner's choice the planner keeps); the time
/// of the call is found at once among the nurse's other calls.
#[utoipa::path(
    post,
    path = "/visits/{id}/pin",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Visit id")),
    request_body = PinInput,
    responses(
        (status = 200, description = "Pinned; the day re-planned around it", body = AssignReport),
        (status = 409, description = "The visit is under way or done", body = ErrorBody),
    )
)]
pub async fn pin(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(NurseRole, Admin)>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PinInput>,
) -> Result<ApiJson<AssignReport>, ApiError> {
    if let Some(n) = &input.nurse_id {
        super::clients::check_nurse(&state, n).await?;
    }
    let visit = state.store.get_visit(&id).await?;
    state
        .store
        .pin_visit(&id, input.nurse_id.as_deref())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                ApiError::Conflict("the visit is under way or done; it cannot be moved".into())
            }
            other => other.into(),
        })?;
    state
        .store
        .audit(
            Some(&session.user.id),
            "visit.pin",
            Some(&id),
            input.nurse_id.as_deref(),
        )
        .await?;
    let tz = zone(&state.settings.unit_time_zone)?;
    let date = crate::schedule::ts(visit.planned_at).to_zoned(tz).date();
    let report = assign_day(&state.store, &state.settings, date, false, now_ms()).await?;
    state.schedule.send(Change::Everything);
    Ok(ApiJson(report))
}

/// A personal calendar feed address.
#[derive(Serialize, ToSchema)]
pub struct CalendarFeed {
    /// Path of the feed on this hub; the token in it is the only key, so
    /// keep it private. A new one replaces the old.
    pub path: String,
}

/// Create (or replace) the signed-in nurse's calendar feed address, for
/// calendar apps that cannot sign in.
#[utoipa::path(
    post,
    path = "/me/calendar",
    tag = "schedule",
    security(("bearer" = [])),
    responses((status = 200, description = "The feed address", body = CalendarFeed))
)]
pub async fn create_calendar_feed(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<NurseRole>,
) -> Result<ApiJson<CalendarFeed>, ApiError> {
    let token = crate::auth::new_token();
    state
        .store
        .set_calendar_token(&session.user.id, &crate::auth::token_hash(&token))
        .await?;
    state
        .store
        .audit(Some(&session.user.id), "calendar.token", None, None)
        .await?;
    Ok(ApiJson(CalendarFeed {
        path: format!("/calendar/{token}.ics"),
    }))
}

/// The signed-in nurse's day as iCalendar (`text/calendar`).
#[utoipa::path(
    get,
    path = "/worklist.ics",
    tag = "schedule",
    security(("bearer" = [])),
    params(WorklistQuery),
    responses((status = 200, description = "text/calendar with one VEVENT per visit", content_type = "text/calendar"))
)]
pub async fn worklist_ics(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(NurseRole, Admin)>,
    ApiQuery(q): ApiQuery<WorklistQuery>,
) -> Result<Response, ApiError> {
    let nurse = worklist_owner(&session, q.nurse_id.as_deref())?;
    let date = unit_date(&state, q.date.as_deref())?;
    let items = worklist_of(&state, &nurse, date).await?;
    Ok(ics_response(&crate::schedule::calendar::day_calendar(
        &session.user.display_name,
        &items,
    )))
}

/// The feed behind a calendar token: today and the next 6 days.
pub async fn calendar_feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let token = file.strip_suffix(".ics").unwrap_or(&file);
    let Some(user_id) = state
        .store
        .calendar_token_user(&crate::auth::token_hash(token))
        .await?
    else {
        return Err(ApiError::NotFound("calendar"));
    };
    let tz = zone(&state.settings.unit_time_zone)?;
    let today = unit_date(&state, None)?;
    let (from, _) = day_range(today, &tz);
    let week_later = today
        .checked_add(jiff::Span::new().days(7))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (to, _) = day_range(week_later, &tz);
    let items = state.store.worklist(&user_id, from, to).await?;
    let name = state
        .store
        .list_nurses()
        .await?
        .into_iter()
        .find(|n| n.id == user_id)
        .map(|n| n.display_name)
        .unwrap_or_default();
    Ok(ics_response(&crate::schedule::calendar::day_calendar(
        &name, &items,
    )))
}

fn ics_response(body: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Anyone signed in may ask what the unit's "today" is.
#[derive(Serialize, ToSchema)]
pub struct Today {
    pub date: String,
    pub time_zone: String,
}

/// The unit's civil date now.
#[utoipa::path(
    get,
    path = "/schedule/today",
    tag = "schedule",
    security(("bearer" = [])),
    responses((status = 200, description = "Today in the unit's zone", body = Today))
)]
pub async fn today(
    State(state): State<AppState>,
    _: Authenticated,
) -> Result<ApiJson<Today>, ApiError> {
    Ok(ApiJson(Today {
        date: unit_date(&state, None)?.to_string(),
        time_zone: state.settings.unit_time_zone.clone(),
    }))
}
