//! Teams and their rosters: who answers alarms when, and who is next when
//! nobody does. Every change reloads the alarm engine's roster.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::auth::{Admin, Authenticated, RequireRole, Supervisor};
use crate::startup::AppState;
use crate::store::{now_ms, DutyPeriod, Team, TeamChanges, TeamKind};

/// A new team.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    pub name: String,
    pub kind: TeamKind,
    /// The area a patrol team covers.
    #[serde(default)]
    pub area_id: Option<String>,
    /// User ids of the members.
    #[serde(default)]
    pub members: Vec<String>,
    /// The team that gets this team's alerts nobody acknowledged in time.
    #[serde(default)]
    pub escalates_to: Option<String>,
}

/// Changes to a team; fields left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    pub name: Option<String>,
    /// Replaces the members.
    pub members: Option<Vec<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub escalates_to: Option<Option<String>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn check_members(state: &AppState, members: &[String]) -> Result<(), ApiError> {
    let users = state.store.list_users().await?;
    for m in members {
        if !users.iter().any(|u| &u.id == m) {
            return Err(ApiError::unprocessable(format!(
                "members: user {m:?} does not exist"
            )));
        }
    }
    Ok(())
}

async fn check_escalation(
    state: &AppState,
    team_id: Option<&str>,
    target: Option<&str>,
) -> Result<(), ApiError> {
    let Some(target) = target else { return Ok(()) };
    if Some(target) == team_id {
        return Err(ApiError::unprocessable(
            "escalates_to: a team cannot escalate to itself",
        ));
    }
    let teams = state.store.list_teams().await?;
    if !teams.iter().any(|t| t.id == target) {
        return Err(ApiError::unprocessable(format!(
            "escalates_to: team {target:?} does not exist"
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let n = name.trim().chars().count();
    if n == 0 || n > 100 {
        return Err(ApiError::unprocessable("name must be 1-100 characters"));
    }
    Ok(())
}

async fn reload(state: &AppState) {
    if let Err(e) = state.alerts.reload_roster().await {
        tracing::error!(error = %e, "cannot reload the alarm roster");
    }
}

/// Add a team: the central unit's alarm queue or a patrol team of an area.
#[utoipa::path(
    post,
    path = "/teams",
    tag = "organisation",
    security(("bearer" = [])),
    request_body = TeamInput,
    responses(
        (status = 201, description = "Created", body = Team),
        (status = 409, description = "A team of that name exists", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
pub async fn create_team(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    ApiJson(input): ApiJson<TeamInput>,
) -> Result<(StatusCode, ApiJson<Team>), ApiError> {
    check_name(&input.name)?;
    if let Some(area) = &input.area_id {
        if !state
            .store
            .list_areas()
            .await?
            .iter()
            .any(|a| &a.id == area)
        {
            return Err(ApiError::unprocessable(format!(
                "area_id: area {area:?} does not exist"
            )));
        }
    } else if input.kind == TeamKind::Patrol {
        return Err(ApiError::unprocessable(
            "area_id: a patrol team covers an area",
        ));
    }
    check_members(&state, &input.members).await?;
    check_escalation(&state, None, input.escalates_to.as_deref()).await?;
    let team = state
        .store
        .create_team(
            input.name.trim(),
            input.kind,
            input.area_id.as_deref(),
            &input.members,
        )
        .await?;
    let team = if input.escalates_to.is_some() {
        state
            .store
            .update_team(
                &team.id,
                &TeamChanges {
                    escalates_to: Some(input.escalates_to),
                    ..TeamChanges::default()
                },
            )
            .await?
    } else {
        team
    };
    state
        .store
        .audit(Some(&session.user.id), "team.create", Some(&team.id), None)
        .await?;
    reload(&state).await;
    Ok((StatusCode::CREATED, ApiJson(team)))
}

/// Change a team's name, members or escalation team.
#[utoipa::path(
    patch,
    path = "/teams/{id}",
    tag = "organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id")),
    request_body = TeamPatch,
    responses(
        (status = 200, description = "The changed team", body = Team),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
pub async fn patch_team(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<TeamPatch>,
) -> Result<ApiJson<Team>, ApiError> {
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    if let Some(members) = &patch.members {
        check_members(&state, members).await?;
    }
    if let Some(target) = &patch.escalates_to {
        check_escalation(&state, Some(&id), target.as_deref()).await?;
    }
    let team = state
        .store
        .update_team(
            &id,
            &TeamChanges {
                name: patch.name.map(|n| n.trim().to_string()),
                members: patch.members,
                escalates_to: patch.escalates_to,
            },
        )
        .await?;
    state
        .store
        .audit(Some(&session.user.id), "team.update", Some(&id), None)
        .await?;
    reload(&state).await;
    Ok(ApiJson(team))
}

/// A period on duty.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyInput {
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; at most 24 hours after the start.
    pub ends_at: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DutyQuery {
    /// Periods ending after this time (RFC 3339); now when left out.
    pub since: Option<String>,
}

/// A team's roster: its periods on duty that have not ended.
#[utoipa::path(
    get,
    path = "/teams/{id}/duty",
    tag = "organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id"), DutyQuery),
    responses((status = 200, description = "Periods on duty", body = Vec<DutyPeriod>))
)]
pub async fn list_duty(
    State(state): State<AppState>,
    _: Authenticated,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DutyQuery>,
) -> Result<ApiJson<Vec<DutyPeriod>>, ApiError> {
    let since = match &query.since {
        Some(s) => s
            .parse::<jiff::Timestamp>()
            .map_err(|e| ApiError::unprocessable(format!("since: {e}")))?
            .as_millisecond(),
        None => now_ms(),
    };
    state.store.get_team(&id).await?;
    Ok(ApiJson(state.store.team_duty(&id, since).await?))
}

/// Put a team on duty for a period (a night shift of the patrol).
#[utoipa::path(
    post,
    path = "/teams/{id}/duty",
    tag = "organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id")),
    request_body = DutyInput,
    responses(
        (status = 201, description = "Added", body = DutyPeriod),
        (status = 404, description = "No such team", body = ErrorBody),
        (status = 422, description = "Invalid period", body = ErrorBody),
    )
)]
pub async fn add_duty(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Admin, Supervisor)>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DutyInput>,
) -> Result<(StatusCode, ApiJson<DutyPeriod>), ApiError> {
    let parse = |field: &str, v: &str| {
        v.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|e| {
                ApiError::unprocessable(format!("{field}: {v:?} is not an RFC 3339 time: {e}"))
            })
    };
    let starts = parse("starts_at", &input.starts_at)?;
    let ends = parse("ends_at", &input.ends_at)?;
    if ends <= starts || ends - starts > 24 * 3_600_000 {
        return Err(ApiError::unprocessable(
            "ends_at: must be after starts_at and at most 24 hours later",
        ));
    }
    state.store.get_team(&id).await?;
    let duty = state.store.add_duty(&id, starts, ends).await?;
    state
        .store
        .audit(
            Some(&session.user.id),
            "team.duty.add",
            Some(&id),
            Some(&format!("{} - {}", input.starts_at, input.ends_at)),
        )
        .await?;
    reload(&state).await;
    Ok((StatusCode::CREATED, ApiJson(duty)))
}

/// Remove a period on duty.
#[utoipa::path(
    delete,
    path = "/duty/{id}",
    tag = "organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Duty period id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such period", body = ErrorBody),
    )
)]
pub async fn delete_duty(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Admin, Supervisor)>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_duty(&id).await?;
    state
        .store
        .audit(Some(&session.user.id), "team.duty.delete", Some(&id), None)
        .await?;
    reload(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
