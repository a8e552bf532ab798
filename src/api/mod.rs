//! The staff REST API under `/api/v1`, with its OpenAPI document generated from the code.

pub(crate) mod alerts;
pub(crate) mod calls;
pub(crate) mod clients;
pub(crate) mod devices;
mod error;
mod health;
mod ice;
mod org;
pub mod schedule;
pub mod session;
pub(crate) mod teams;
pub mod users;

pub use error::{ApiError, ApiJson, ApiQuery, ErrorBody, ErrorDetail};

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::startup::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Etahoiva hub API",
        description = "Remote home-care video and telecare gateway: the staff API of the hub."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "session", description = "Sign-in and the signed-in user"),
        (name = "users", description = "Staff accounts"),
        (name = "organisation", description = "Areas, teams, clients and the audit trail"),
        (name = "devices", description = "Home terminals: presence, settings, revocation"),
        (name = "clients", description = "Clients, their care plans and pauses"),
        (name = "schedule", description = "Nurses, shifts, day planning, worklists, the visit lifecycle"),
        (name = "alerts", description = "Alarms and alerts: lifecycle, live feed, answer-time report, notices"),
        (name = "calls", description = "Video calls through the hub's relay: signalling for consoles"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes and their OpenAPI document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::<AppState>::new()
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::set_language))
        .routes(routes!(ice::ice_servers))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(org::list_areas, org::create_area))
        .routes(routes!(org::list_teams, teams::create_team))
        .routes(routes!(teams::patch_team))
        .routes(routes!(teams::list_duty, teams::add_duty))
        .routes(routes!(teams::delete_duty))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::alert_report))
        .routes(routes!(alerts::get_alert))
        .routes(routes!(alerts::alert_action))
        .routes(routes!(alerts::alarm_call))
        .routes(routes!(calls::invitable))
        .routes(routes!(alerts::list_notices))
        .routes(routes!(alerts::notice_sent))
        .routes(routes!(org::list_clients, clients::create_client))
        .routes(routes!(org::list_audit))
        .routes(routes!(devices::list_devices))
        .routes(routes!(devices::get_device))
        .routes(routes!(devices::put_settings))
        .routes(routes!(devices::revoke_device))
        .routes(routes!(devices::device_events))
        .routes(routes!(devices::send_command))
        .routes(routes!(clients::get_client, clients::patch_client))
        .routes(routes!(clients::get_plan, clients::put_plan))
        .routes(routes!(clients::list_pauses, clients::add_pause))
        .routes(routes!(clients::delete_pause))
        .routes(routes!(clients::client_visits))
        .routes(routes!(schedule::list_nurses))
        .routes(routes!(schedule::put_nurse_profile))
        .routes(routes!(schedule::list_shifts, schedule::add_shift))
        .routes(routes!(schedule::sign_off))
        .routes(routes!(schedule::assign))
        .routes(routes!(schedule::generate))
        .routes(routes!(schedule::get_continuity))
        .routes(routes!(schedule::unassigned))
        .routes(routes!(schedule::today))
        .routes(routes!(schedule::worklist))
        .routes(routes!(schedule::worklist_events))
        .routes(routes!(schedule::worklist_ics))
        .routes(routes!(schedule::get_visit))
        .routes(routes!(schedule::visit_action))
        .routes(routes!(schedule::pin))
        .routes(routes!(schedule::create_calendar_feed));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    (router, doc)
}

/// Every route of the hub's HTTPS listener but the consoles.
pub fn router() -> Router<AppState> {
    let (api, doc) = api();
    let json = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    api.route(
        "/api/v1/openapi.json",
        get(move || async move {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json.clone(),
            )
                .into_response()
        }),
    )
    .route("/api/v1/alerts/live", get(alerts::live))
    .route("/api/v1/calls/live", get(calls::live))
    .route("/calendar/{file}", get(schedule::calendar_feed))
    .route("/healthz", get(health::healthz))
    .route("/readyz", get(health::readyz))
    .route("/metrics", get(health::metrics))
}
