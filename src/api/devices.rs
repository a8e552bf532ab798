//! Home terminals, for administrators: presence, remote settings, revocation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::auth::{Admin, RequireRole};
use crate::devices::registry::Outbound;
use crate::startup::AppState;
use crate::store::{DeviceRecord, StoredEvent};
use etahoiva_firmware_config::TerminalSettings;
use etahoiva_proto::HubToEdge;

/// A terminal with its presence.
#[derive(Serialize, ToSchema)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub client_id: Option<String>,
    /// Connected to this hub now.
    pub online: bool,
    /// Last frame from the terminal, milliseconds since the Unix epoch.
    pub last_seen: Option<i64>,
    /// Remote address of the current or last connection.
    pub address: Option<String>,
    pub agent_version: Option<String>,
    pub protocol_version: Option<i32>,
    /// Settings version the terminal reports running.
    pub config_version: i64,
    /// Settings version the hub wants it to run.
    pub desired_config_version: i64,
    /// Why the terminal refused the last settings push, if it did.
    pub config_error: Option<String>,
    pub revoked: bool,
    /// Expiry of the terminal's certificate, milliseconds since the Unix epoch.
    pub cert_not_after: i64,
    /// The settings the hub wants the terminal to run.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

pub(crate) fn view(state: &AppState, record: DeviceRecord) -> Device {
    let presence = state.devices.presence(&record.id);
    Device {
        online: presence.is_some(),
        last_seen: presence.as_ref().map(|p| p.last_seen).or(record.last_seen),
        address: presence
            .as_ref()
            .map(|p| p.address.clone())
            .or(record.last_address),
        agent_version: presence
            .as_ref()
            .map(|p| p.agent_version.clone())
            .or(record.agent_version),
        protocol_version: presence
            .as_ref()
            .map(|p| p.protocol as i32)
            .or(record.protocol_version),
        config_version: presence
            .as_ref()
            .map(|p| p.config_version as i64)
            .unwrap_or(record.applied_version)
            .max(record.applied_version),
        desired_config_version: record.settings_version,
        config_error: record.config_error,
        revoked: record.revoked_at.is_some(),
        cert_not_after: record.cert_not_after,
        settings: serde_json::from_str(&record.settings_json).unwrap_or_default(),
        id: record.id,
        name: record.name,
        client_id: record.client_id,
    }
}

#[derive(Deserialize, IntoParams)]
pub struct DeviceFilter {
    /// `true` for connected terminals only, `false` for offline ones only.
    pub online: Option<bool>,
}

/// List terminals with their presence.
#[utoipa::path(
    get,
    path = "/devices",
    tag = "devices",
    params(DeviceFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Terminals", body = Vec<Device>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
    )
)]
pub async fn list_devices(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    ApiQuery(filter): ApiQuery<DeviceFilter>,
) -> Result<ApiJson<Vec<Device>>, ApiError> {
    let devices = state
        .store
        .list_devices()
        .await?
        .into_iter()
        .map(|r| view(&state, r))
        .filter(|d| filter.online.is_none_or(|online| d.online == online))
        .collect();
    Ok(ApiJson(devices))
}

/// One terminal.
#[utoipa::path(
    get,
    path = "/devices/{id}",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The terminal", body = Device),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such terminal", body = ErrorBody),
    )
)]
pub async fn get_device(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    Path(id): Path<String>,
) -> Result<ApiJson<Device>, ApiError> {
    let record = state.store.get_device(&id).await?;
    Ok(ApiJson(view(&state, record)))
}

/// Change a terminal's settings. The hub validates them, stores a new
/// version and pushes it; the terminal reports whether it applied it.
#[utoipa::path(
    put,
    path = "/devices/{id}/settings",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    request_body(content = Object, description = "The `settings` table of a terminal profile"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stored and pushed if online", body = Device),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such terminal", body = ErrorBody),
        (status = 422, description = "Invalid settings", body = ErrorBody),
    )
)]
pub async fn put_settings(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, ApiJson<Device>), ApiError> {
    state.store.get_device(&id).await?;
    let mut settings = TerminalSettings::from_json(&body).map_err(|e| ApiError::Rejected {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: e.to_string(),
    })?;
    // The version is the hub's to assign.
    settings.version = 0;
    let mut json =
        serde_json::to_value(&settings).map_err(|e| ApiError::Internal(e.to_string()))?;
    let version = state
        .store
        .set_device_settings(&id, &json.to_string())
        .await?;
    json["version"] = serde_json::json!(version);
    state
        .store
        .audit(
            Some(&session.user.id),
            "device.settings_changed",
            Some(&id),
            Some(&format!("version {version}")),
        )
        .await?;
    let pushed = state.devices.send(
        &id,
        Outbound::Send(HubToEdge::ConfigPush {
            version: version as u64,
            settings: json,
        }),
    );
    tracing::info!(device_id = %id, version, pushed, "terminal settings changed");
    let record = state.store.get_device(&id).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(view(&state, record))))
}

/// Revoke a terminal: its certificate stops working and its link closes within seconds.
#[utoipa::path(
    post,
    path = "/devices/{id}/revoke",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = Device),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such terminal", body = ErrorBody),
    )
)]
pub async fn revoke_device(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    Path(id): Path<String>,
) -> Result<ApiJson<Device>, ApiError> {
    crate::devices::revoke(&state.store, Some(&state.devices), &id, &session.user.id)
        .await
        .map_err(|e| match e {
            crate::devices::DeviceError::Store(s) => ApiError::from(s),
            other => ApiError::Internal(other.to_string()),
        })?;
    let record = state.store.get_device(&id).await?;
    Ok(ApiJson(view(&state, record)))
}

/// A command for a terminal.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// `ping` (is it answering?) or `flush_outbox` (send waiting events now).
    pub command: String,
}

/// The terminal's answer.
#[derive(Serialize, ToSchema)]
pub struct CommandReply {
    pub id: String,
    pub ok: bool,
    pub detail: String,
}

const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Send a command to a connected terminal and wait (up to 10 s) for its answer.
#[utoipa::path(
    post,
    path = "/devices/{id}/commands",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    request_body = CommandRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The terminal's answer", body = CommandReply),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such terminal", body = ErrorBody),
        (status = 409, description = "The terminal is not connected", body = ErrorBody),
        (status = 422, description = "Unknown command", body = ErrorBody),
        (status = 504, description = "No answer in time", body = ErrorBody),
    )
)]
pub async fn send_command(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommandRequest>,
) -> Result<ApiJson<CommandReply>, ApiError> {
    state.store.get_device(&id).await?;
    let command = match body.command.as_str() {
        "ping" => etahoiva_proto::Command::Ping,
        "flush_outbox" => etahoiva_proto::Command::FlushOutbox,
        other => {
            return Err(ApiError::Rejected {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("unknown command {other:?}; use ping or flush_outbox"),
            })
        }
    };
    state
        .store
        .audit(
            Some(&session.user.id),
            "device.command",
            Some(&id),
            Some(&body.command),
        )
        .await?;
    let Some((command_id, answer)) = state.devices.command(&id, command) else {
        return Err(ApiError::Rejected {
            status: StatusCode::CONFLICT,
            message: "the terminal is not connected".into(),
        });
    };
    match tokio::time::timeout(COMMAND_TIMEOUT, answer).await {
        Ok(Ok(outcome)) => Ok(ApiJson(CommandReply {
            id: command_id,
            ok: outcome.ok,
            detail: outcome.detail,
        })),
        _ => Err(ApiError::Rejected {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: "the terminal did not answer in time".into(),
        }),
    }
}

/// Events a terminal has delivered, oldest first (at most 1000).
#[utoipa::path(
    get,
    path = "/devices/{id}/events",
    tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored events", body = Vec<DeviceEvent>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such terminal", body = ErrorBody),
    )
)]
pub async fn device_events(
    State(state): State<AppState>,
    _: RequireRole<Admin>,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<DeviceEvent>>, ApiError> {
    state.store.get_device(&id).await?;
    let events = state.store.device_events(&id, 1000).await?;
    Ok(ApiJson(events.into_iter().map(DeviceEvent::from).collect()))
}

/// An event a terminal delivered, stored once by its key.
#[derive(Serialize, ToSchema)]
pub struct DeviceEvent {
    pub id: i64,
    /// The terminal's idempotency key.
    pub key: String,
    /// `help_button`, `wristband`, `sensor`, `call_log` or `status`.
    pub kind: String,
    /// When it happened on the terminal, milliseconds since the Unix epoch.
    pub occurred_at: i64,
    /// When the hub stored it, milliseconds since the Unix epoch.
    pub received_at: i64,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<StoredEvent> for DeviceEvent {
    fn from(e: StoredEvent) -> Self {
        DeviceEvent {
            id: e.id,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            key: e.event_key,
            kind: e.kind,
            occurred_at: e.occurred_at,
            received_at: e.received_at,
        }
    }
}
