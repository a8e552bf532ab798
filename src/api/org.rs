//! The organisation: areas, teams and clients.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ErrorBody};
use crate::auth::{Admin, Authenticated, Nurse, RequireRole};
use crate::startup::AppState;
use crate::store::{Area, AuditEntry, Client, Team};

/// List the service areas.
#[utoipa::path(
    get,
    path = "/areas",
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All areas", body = Vec<Area>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_areas(
    State(state): State<AppState>,
    _: Authenticated,
) -> Result<ApiJson<Vec<Area>>, ApiError> {
    Ok(ApiJson(state.store.list_areas().await?))
}

/// A new service area.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaInput {
    pub name: String,
}

/// Add a service area.
#[utoipa::path(
    post,
    path = "/areas",
    tag = "organisation",
    security(("bearer" = [])),
    request_body = AreaInput,
    responses(
        (status = 201, description = "Created", body = Area),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 409, description = "An area of that name exists", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody),
    )
)]
pub async fn create_area(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    ApiJson(input): ApiJson<AreaInput>,
) -> Result<(StatusCode, ApiJson<Area>), ApiError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Rejected {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "name must be 1-100 characters".into(),
        });
    }
    let area = state.store.create_area(name).await?;
    state
        .store
        .audit(Some(&session.user.id), "area.create", Some(&area.id), None)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(area)))
}

/// List the teams: the central unit and the night patrols.
#[utoipa::path(
    get,
    path = "/teams",
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All teams", body = Vec<Team>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator, nurse or supervisor", body = ErrorBody),
    )
)]
pub async fn list_teams(
    State(state): State<AppState>,
    _: RequireRole<(Admin, Nurse, crate::auth::Supervisor)>,
) -> Result<ApiJson<Vec<Team>>, ApiError> {
    Ok(ApiJson(state.store.list_teams().await?))
}

/// List the clients. Every read of client data is audited.
#[utoipa::path(
    get,
    path = "/clients",
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All clients", body = Vec<Client>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Neither nurse nor administrator", body = ErrorBody),
    )
)]
pub async fn list_clients(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Admin)>,
) -> Result<ApiJson<Vec<Client>>, ApiError> {
    let clients = state.store.list_clients().await?;
    state
        .store
        .audit(Some(&session.user.id), "clients.list", None, None)
        .await?;
    Ok(ApiJson(clients))
}

/// The newest entries of the audit trail.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest 500 entries", body = Vec<AuditEntry>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
) -> Result<ApiJson<Vec<AuditEntry>>, ApiError> {
    Ok(ApiJson(state.store.audit_entries(500).await?))
}
