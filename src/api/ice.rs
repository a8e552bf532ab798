//! TURN servers and short-lived credentials for a console's calls.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiJson, ErrorBody};
use crate::auth::Authenticated;
use crate::relay::turn::{self, IceServer};
use crate::startup::AppState;

/// ICE servers for the signed-in user's calls: the `iceServers` of an
/// `RTCPeerConnection`. The TURN credentials expire after an hour (the
/// username starts with the expiry in unix seconds); ask again for each
/// call. Empty when the hub has no TURN server.
#[utoipa::path(
    get,
    path = "/calls/ice-servers",
    tag = "calls",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "W3C RTCIceServer dictionaries", body = Vec<IceServer>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn ice_servers(
    State(state): State<AppState>,
    Authenticated(session): Authenticated,
) -> Response {
    let servers = turn::ice_servers(&state.turn, &session.user.id, SystemTime::now());
    ([(header::CACHE_CONTROL, "no-store")], ApiJson(servers)).into_response()
}
