//! Alerts for staff: the list, one alert with its timeline, the actions of
//! its lifecycle, the answer-time report, the live feed over WebSocket and
//! the notices waiting for delivery.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::alerts::engine::visible;
use crate::alerts::lifecycle::Action;
use crate::alerts::report::Report;
use crate::alerts::AlertsError;
use crate::auth::{Admin, Authenticated, Nurse, Patrol, RequireRole, Supervisor};
use crate::startup::AppState;
use crate::store::alerts::{AlertEvent, AlertView, Notice};
use crate::store::{now_ms, SessionUser};

impl From<AlertsError> for ApiError {
    fn from(err: AlertsError) -> ApiError {
        match err {
            AlertsError::Store(e) => e.into(),
            AlertsError::Action(e) if e.is_conflict() => ApiError::Conflict(e.to_string()),
            AlertsError::Action(e) => ApiError::unprocessable(match e.field() {
                Some(field) => format!("{field}: {e}"),
                None => e.to_string(),
            }),
            AlertsError::NoTeam(message) => ApiError::unprocessable(format!("team_id: {message}")),
            AlertsError::Concurrent => ApiError::Conflict(err.to_string()),
            AlertsError::ShuttingDown => ApiError::Unavailable,
        }
    }
}

/// The teams a signed-in user belongs to, for what they may see.
async fn teams_of(state: &AppState, user: &SessionUser) -> Result<Vec<String>, ApiError> {
    Ok(state.store.user_teams(&user.user.id).await?)
}

fn may_see(view: &AlertView, user: &SessionUser, teams: &[String]) -> bool {
    visible(view, &user.user.id, &user.user.roles, teams)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only open alerts (not resolved or cancelled), most urgent and oldest first.
    #[serde(default)]
    pub open: bool,
}

/// Alerts the signed-in user may see: all for nurses, supervisors and
/// administrators; a patrol member's teams' alerts and those they took.
#[utoipa::path(
    get,
    path = "/alerts",
    tag = "alerts",
    security(("bearer" = [])),
    params(AlertsQuery),
    responses(
        (status = 200, description = "Open alerts, or the newest 500", body = Vec<AlertView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_alerts(
    State(state): State<AppState>,
    Authenticated(session): Authenticated,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<ApiJson<Vec<AlertView>>, ApiError> {
    let teams = teams_of(&state, &session).await?;
    let all = if query.open {
        state.store.open_alerts().await?
    } else {
        state.store.recent_alerts(500).await?
    };
    Ok(ApiJson(
        all.into_iter()
            .filter(|a| may_see(a, &session, &teams))
            .collect(),
    ))
}

/// An alert and its timeline.
#[derive(Serialize, ToSchema)]
pub struct AlertDetail {
    pub alert: AlertView,
    pub timeline: Vec<AlertEvent>,
    /// Video calls to the home for this alarm.
    pub calls: Vec<crate::store::calls::CallRecord>,
}

/// One alert with its full timeline: who saw, took and changed it, when.
#[utoipa::path(
    get,
    path = "/alerts/{id}",
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert", body = AlertDetail),
        (status = 404, description = "No such alert, or not one of yours", body = ErrorBody),
    )
)]
pub async fn get_alert(
    State(state): State<AppState>,
    Authenticated(session): Authenticated,
    Path(id): Path<String>,
) -> Result<ApiJson<AlertDetail>, ApiError> {
    let alert = state.store.alert_view(&id).await?;
    let teams = teams_of(&state, &session).await?;
    if !may_see(&alert, &session, &teams) {
        return Err(ApiError::NotFound("alert"));
    }
    state
        .store
        .audit(Some(&session.user.id), "alert.read", Some(&id), None)
        .await?;
    let timeline = state.store.alert_timeline(&id).await?;
    let calls = state.store.calls_of_alert(&id).await?;
    Ok(ApiJson(AlertDetail {
        alert,
        timeline,
        calls,
    }))
}

/// Act on an alert: acknowledge, answer (the result of the voice or video
/// contact; `unclear` dispatches a patrol at the top priority), dispatch,
/// en route, on site, resolve (with an outcome; a reason is required when
/// the client was not reached and nobody went), cancel (with a reason).
#[utoipa::path(
    post,
    path = "/alerts/{id}/actions",
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Alert id")),
    request_body = Action,
    responses(
        (status = 200, description = "The alert after the action", body = AlertView),
        (status = 403, description = "Role without alarm duties", body = ErrorBody),
        (status = 404, description = "No such alert, or not one of yours", body = ErrorBody),
        (status = 409, description = "Not possible in the alert's state, or taken by someone else", body = ErrorBody),
        (status = 422, description = "Missing reason, outcome or team", body = ErrorBody),
    )
)]
pub async fn alert_action(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Patrol, Supervisor)>,
    Path(id): Path<String>,
    ApiJson(action): ApiJson<Action>,
) -> Result<ApiJson<AlertView>, ApiError> {
    let current = state.store.alert_view(&id).await?;
    let teams = teams_of(&state, &session).await?;
    if !may_see(&current, &session, &teams) {
        state
            .store
            .audit(
                Some(&session.user.id),
                "access.denied",
                Some(&id),
                Some(&format!("alert action {}", action.name())),
            )
            .await?;
        return Err(ApiError::NotFound("alert"));
    }
    let span = tracing::info_span!("alert_action", alert_id = %id, user_id = %session.user.id, action = action.name());
    match state
        .alerts
        .act(&id, &session.user.id, &action)
        .instrument(span)
        .await
    {
        Ok(view) => Ok(ApiJson(view)),
        Err(e) => {
            tracing::info!(error = %e, "alert action refused");
            // Refusals are part of the trail too: who tried what, and why not.
            let _ = state
                .store
                .audit(
                    Some(&session.user.id),
                    &format!("alert.{}.refused", action.name()),
                    Some(&id),
                    Some(&e.to_string()),
                )
                .await;
            Err(e.into())
        }
    }
}

/// Open a video call to the home of an alarm. Only the person handling the
/// alarm may (who took or answered it, or a member of a team it is routed
/// or escalated to while nobody has taken it); the client's `alarm_video`
/// policy decides whether the camera opens at once, the terminal rings, or
/// no video is allowed. Granted and refused calls are audited.
#[utoipa::path(
    post,
    path = "/alerts/{id}/call",
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The call was offered to the terminal", body = crate::calls::OpenedCall),
        (status = 403, description = "Refused: not the handler, closed alarm, policy, terminal offline", body = ErrorBody),
        (status = 404, description = "No such alert, or not one of yours", body = ErrorBody),
    )
)]
pub async fn alarm_call(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<(Nurse, Patrol, Supervisor)>,
    Path(id): Path<String>,
) -> Result<ApiJson<crate::calls::OpenedCall>, ApiError> {
    let view = state.store.alert_view(&id).await?;
    let teams = teams_of(&state, &session).await?;
    if !may_see(&view, &session, &teams) {
        return Err(ApiError::NotFound("alert"));
    }
    use crate::calls::CallError;
    match crate::calls::alarm_call(&state, &id, &session).await {
        Ok(call) => Ok(ApiJson(call)),
        Err(CallError::Refused(refusal)) => Err(ApiError::Rejected {
            status: StatusCode::FORBIDDEN,
            message: refusal.to_string(),
        }),
        Err(CallError::NoTerminal) => Err(ApiError::Conflict(
            "the alarm has no client terminal to call".into(),
        )),
        Err(CallError::Store(e)) => Err(e.into()),
        Err(CallError::Alerts(e)) => Err(e.into()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Start, RFC 3339; 30 days before `to` when left out.
    pub from: Option<String>,
    /// End, RFC 3339; now when left out.
    pub to: Option<String>,
}

/// Answer-time shares of alarms (practice: 97.5 % within 60 s, 99 % within
/// 180 s) and the measured time to arrive at the home.
#[utoipa::path(
    get,
    path = "/alerts/report",
    tag = "alerts",
    security(("bearer" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "The report", body = Report),
        (status = 422, description = "Bad time", body = ErrorBody),
    )
)]
pub async fn alert_report(
    State(state): State<AppState>,
    _: RequireRole<(Nurse, Supervisor, Admin)>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<ApiJson<Report>, ApiError> {
    let parse = |field: &str, v: &str| {
        v.parse::<jiff::Timestamp>().map_err(|e| {
            ApiError::unprocessable(format!("{field}: {v:?} is not an RFC 3339 time: {e}"))
        })
    };
    let to = match &query.to {
        Some(v) => parse("to", v)?,
        None => crate::schedule::ts(now_ms()),
    };
    let from = match &query.from {
        Some(v) => parse("from", v)?,
        None => crate::schedule::ts(to.as_millisecond() - 30 * 86_400_000),
    };
    if from >= to {
        return Err(ApiError::unprocessable("from: must be before to"));
    }
    let rows = state
        .store
        .response_times(from.as_millisecond(), to.as_millisecond())
        .await?;
    Ok(ApiJson(crate::alerts::report::build(
        from.to_string(),
        to.to_string(),
        &rows,
    )))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticesQuery {
    /// Only those not yet delivered (oldest first).
    #[serde(default)]
    pub unsent: bool,
}

/// Notices to people outside the hub (the client, a relative, technicians),
/// for the gateway that delivers them by text message or e-mail.
#[utoipa::path(
    get,
    path = "/notices",
    tag = "alerts",
    security(("bearer" = [])),
    params(NoticesQuery),
    responses((status = 200, description = "Notices", body = Vec<Notice>))
)]
pub async fn list_notices(
    State(state): State<AppState>,
    _: RequireRole<(Admin, Supervisor)>,
    ApiQuery(query): ApiQuery<NoticesQuery>,
) -> Result<ApiJson<Vec<Notice>>, ApiError> {
    Ok(ApiJson(state.store.notices(query.unsent, 500).await?))
}

/// Mark a notice delivered (by the delivering gateway).
#[utoipa::path(
    post,
    path = "/notices/{id}/sent",
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Notice id")),
    responses(
        (status = 204, description = "Marked delivered"),
        (status = 409, description = "Already delivered", body = ErrorBody),
    )
)]
pub async fn notice_sent(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.notice_sent(&id, now_ms()).await? {
        return Err(ApiError::Conflict(
            "the notice is unknown or was delivered already".into(),
        ));
    }
    state
        .store
        .audit(Some(&session.user.id), "notice.sent", Some(&id), None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Messages of the live feed, from the hub.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LiveOut<'a> {
    Snapshot {
        alerts: &'a [AlertView],
        server_time: i64,
    },
    Alert {
        alert: &'a AlertView,
    },
    Ping {
        server_time: i64,
    },
}

/// Messages of the live feed, from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LiveIn {
    Seen { alert_id: String },
    Resync,
}

const LIVE_PING: Duration = Duration::from_secs(15);
const LIVE_MAX_FRAME: usize = 4096;

/// The live alert feed (WebSocket): a snapshot of the open alerts the user
/// may see on connect and on request, then every change. Browsers
/// authenticate with the session cookie; the page's origin must be this hub.
pub async fn live(
    State(state): State<AppState>,
    Authenticated(session): Authenticated,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        tracing::warn!(user_id = %session.user.id, "live feed refused: foreign origin");
        return Err(ApiError::Forbidden);
    }
    let token_hash = crate::auth::request_token(&headers).map(|t| crate::auth::token_hash(&t));
    Ok(upgrade
        .max_message_size(LIVE_MAX_FRAME)
        .on_upgrade(move |socket| live_session(state, session, token_hash, socket)))
}

/// A WebSocket from a page must come from this hub's own pages (a cookie
/// would otherwise let any site open the feed). Clients without an Origin
/// header (not browsers) authenticate with a bearer token anyway.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

async fn live_session(
    state: AppState,
    session: SessionUser,
    token_hash: Option<String>,
    mut socket: WebSocket,
) {
    metrics::gauge!("etahoiva_alert_feeds").increment(1.0);
    let span = tracing::info_span!("alert_feed", user_id = %session.user.id);
    live_loop(&state, session, token_hash, &mut socket)
        .instrument(span)
        .await;
    metrics::gauge!("etahoiva_alert_feeds").decrement(1.0);
}

/// The feed of one connection. It ends (and the client reconnects and gets
/// a fresh snapshot) rather than go on with anything it cannot vouch for:
/// an unreadable team list, an ended session, a failed send.
async fn live_loop(
    state: &AppState,
    mut session: SessionUser,
    token_hash: Option<String>,
    socket: &mut WebSocket,
) {
    let mut rx = state.alerts.subscribe();
    let Ok(mut teams) = state.store.user_teams(&session.user.id).await else {
        tracing::warn!("cannot read the user's teams; closing the feed");
        return;
    };
    // Alerts this connection has shown: when one leaves the user's view
    // (dispatched elsewhere), a snapshot takes it off the screen.
    let mut shown: HashSet<String> = HashSet::new();
    let mut alive = send_snapshot(state, &session, &teams, socket, &mut shown).await;
    let mut ping = tokio::time::interval(LIVE_PING);
    ping.tick().await;
    while alive {
        tokio::select! {
            change = rx.recv() => match change {
                Ok(view) => {
                    if may_see(&view, &session, &teams) {
                        shown.insert(view.id.clone());
                        alive = send_json(socket, &LiveOut::Alert { alert: &view }).await;
                    } else if shown.contains(&view.id) {
                        alive = send_snapshot(state, &session, &teams, socket, &mut shown).await;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "live feed fell behind; sending a fresh snapshot");
                    alive = send_snapshot(state, &session, &teams, socket, &mut shown).await;
                }
                Err(RecvError::Closed) => break,
            },
            _ = ping.tick() => {
                // The session may have ended and the teams changed meanwhile.
                if let Some(hash) = &token_hash {
                    match state.store.session_user(hash, now_ms()).await {
                        Ok(Some(current)) => session = current,
                        Ok(None) => {
                            tracing::info!("session ended; closing the feed");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot check the session; closing the feed");
                            break;
                        }
                    }
                }
                match state.store.user_teams(&session.user.id).await {
                    Ok(now_teams) => {
                        if now_teams != teams {
                            teams = now_teams;
                            alive = send_snapshot(state, &session, &teams, socket, &mut shown).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the user's teams; closing the feed");
                        break;
                    }
                }
                if alive {
                    alive = send_json(socket, &LiveOut::Ping { server_time: now_ms() }).await;
                }
            }
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<LiveIn>(text.as_str()) {
                    Ok(LiveIn::Seen { alert_id }) => {
                        let may = match state.store.alert_view(&alert_id).await {
                            Ok(view) => may_see(&view, &session, &teams),
                            Err(_) => false,
                        };
                        if may {
                            if let Err(e) = state.alerts.seen(&alert_id, &session.user.id).await {
                                tracing::warn!(error = %e, "cannot record that an alert was seen");
                            }
                        }
                    }
                    Ok(LiveIn::Resync) => match state.store.user_teams(&session.user.id).await {
                        Ok(now_teams) => {
                            teams = now_teams;
                            alive = send_snapshot(state, &session, &teams, socket, &mut shown).await;
                        }
                        Err(_) => break,
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "bad frame on the live feed");
                        let _ = socket
                            .send(Message::Text(
                                serde_json::json!({"type": "error", "message": format!("not understood: {e}")})
                                    .to_string()
                                    .into(),
                            ))
                            .await;
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send_json(socket: &mut WebSocket, message: &LiveOut<'_>) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn send_snapshot(
    state: &AppState,
    session: &SessionUser,
    teams: &[String],
    socket: &mut WebSocket,
    shown: &mut HashSet<String>,
) -> bool {
    match state.store.open_alerts().await {
        Ok(all) => {
            let mine: Vec<AlertView> = all
                .into_iter()
                .filter(|a| may_see(a, session, teams))
                .collect();
            *shown = mine.iter().map(|a| a.id.clone()).collect();
            send_json(
                socket,
                &LiveOut::Snapshot {
                    alerts: &mine,
                    server_time: now_ms(),
                },
            )
            .await
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read open alerts for the live feed");
            // Closing makes the client reconnect and try again, rather than show a stale list.
            false
        }
    }
}
