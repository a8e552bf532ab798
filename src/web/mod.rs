//! The web consoles: sign-in page and one console frame per role, in the
//! user's language. Templates are compiled in and assets embedded.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

use crate::api::session::{attempt_login, LoginOutcome};
use crate::api::ApiError;
use crate::auth::{self, session_of};
use crate::i18n::{Lang, LANG_COOKIE};
use crate::startup::{AppState, PeerAddr};
use crate::store::{Role, SessionUser};

mod alarms;
mod call;
mod patrol;
mod worklist;

const APP_CSS: &str = include_str!("../../assets/app.css");
const CONSOLE_JS: &str = include_str!("../../assets/console.js");

fn script(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout_submit))
        .route("/lang/{code}", get(choose_language))
        .route("/console/{name}", get(console))
        .route("/console/patrol", get(patrol::page))
        .route("/console/alarms", get(alarms::page))
        .route("/console/call/{call_id}", get(call::page))
        .route("/console/professional", get(call::invitations_page))
        .route("/static/call.js", get(call::script))
        .route("/static/invitations.js", get(call::invitations_script))
        .route("/patrol.webmanifest", get(patrol::manifest))
        .route("/patrol-sw.js", get(patrol::service_worker))
        .route("/static/patrol.js", get(patrol::app_script))
        .route("/static/alerts-live.js", get(patrol::live_script))
        .route("/static/alarms.js", get(alarms::script))
        .route("/static/patrol-icon.svg", get(patrol::icon))
        .route("/console/admin/devices", get(devices_fragment))
        .route("/console/nurse/worklist", get(worklist::fragment))
        .route("/console/nurse/visits/{id}", post(worklist::act))
        .route("/static/app.css", get(|| async { css(APP_CSS) }))
        .route("/static/console.js", get(|| async { script(CONSOLE_JS) }))
}

fn css(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    lang: Lang,
    langs: [Lang; 3],
    here: String,
    next: String,
    username: String,
    error: Option<String>,
}

struct ConsoleLink {
    path: &'static str,
    label: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "console.html")]
struct ConsolePage {
    lang: Lang,
    langs: [Lang; 3],
    here: String,
    console: &'static str,
    heading: String,
    empty: String,
    display_name: String,
    consoles: Vec<ConsoleLink>,
    devices: Option<DevicesPanel>,
    /// The nurse's worklist table.
    worklist: Option<String>,
    /// The worklist's day as asked, for its live refresh.
    worklist_date: String,
}

struct DevicesPanel {
    filter: &'static str,
    html: String,
}

struct DeviceRow {
    id: String,
    name: String,
    online: bool,
    status: String,
    status_class: &'static str,
    status_icon: &'static str,
    /// RFC 3339 and human form.
    last_seen: Option<(String, String)>,
    address: String,
    versions: String,
    config_error: Option<String>,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesTable {
    lang: Lang,
    summary: String,
    caption: String,
    empty: String,
    rows: Vec<DeviceRow>,
}

#[derive(Deserialize)]
struct ConsoleQuery {
    filter: Option<String>,
    /// The worklist's day, `YYYY-MM-DD` (today when left out).
    date: Option<String>,
}

fn device_filter(query: &ConsoleQuery) -> &'static str {
    match query.filter.as_deref() {
        Some("offline") => "offline",
        _ => "all",
    }
}

fn format_time(ms: i64) -> Option<(String, String)> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok()?;
    let machine = at
        .format(&time::format_description::well_known::Rfc3339)
        .ok()?;
    let human = at
        .format(time::macros::format_description!(
            "[day].[month].[year] [hour]:[minute]:[second]"
        ))
        .ok()?;
    Some((machine, human))
}

/// The terminal table of the admin console, newest state.
async fn devices_table(state: &AppState, lang: Lang, filter: &str) -> Result<String, ApiError> {
    let all: Vec<_> = state
        .store
        .list_devices()
        .await?
        .into_iter()
        .map(|r| crate::api::devices::view(state, r))
        .collect();
    let total = all.iter().filter(|d| !d.revoked).count();
    let online = all.iter().filter(|d| d.online).count();
    let mut rows: Vec<DeviceRow> = all
        .into_iter()
        .filter(|d| filter != "offline" || (!d.online && !d.revoked))
        .map(|d| {
            let (status, status_class, status_icon) = if d.revoked {
                (lang.t("devices.revoked"), "offline", "⛔")
            } else if d.online {
                (lang.t("devices.online"), "online", "●")
            } else {
                (lang.t("devices.offline"), "offline", "○")
            };
            DeviceRow {
                versions: format!(
                    "{} · {} {}/{}",
                    d.agent_version.as_deref().unwrap_or("–"),
                    lang.t("devices.settings_version"),
                    d.config_version,
                    d.desired_config_version
                ),
                last_seen: d.last_seen.and_then(format_time),
                address: d.address.clone().unwrap_or_default(),
                config_error: d.config_error.clone(),
                online: d.online,
                status,
                status_class,
                status_icon,
                id: d.id,
                name: d.name,
            }
        })
        .collect();
    // Offline terminals first: they are the ones that need attention.
    rows.sort_by(|a, b| a.online.cmp(&b.online).then_with(|| a.name.cmp(&b.name)));
    let table = DevicesTable {
        summary: lang
            .t("devices.summary")
            .replace("%{online}", &online.to_string())
            .replace("%{total}", &total.to_string()),
        caption: lang.t("devices.heading"),
        empty: lang.t("devices.none"),
        rows,
        lang,
    };
    table
        .render()
        .map_err(|e| ApiError::Internal(format!("template: {e}")))
}

async fn devices_fragment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ConsoleQuery>,
) -> Result<Response, ApiError> {
    let Some(session) = current_session(&state, &headers).await? else {
        return Err(ApiError::Unauthorized);
    };
    if !session.user.roles.contains(&Role::Admin) {
        return Err(ApiError::Forbidden);
    }
    let lang = Lang::negotiate(session.user.language.as_deref(), &headers);
    let html = devices_table(&state, lang, device_filter(&query)).await?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        ],
        html,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    lang: Lang,
    langs: [Lang; 3],
    here: String,
    heading: String,
    body: String,
    links: Vec<(String, String)>,
}

fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::X_FRAME_OPTIONS, "DENY"),
            ],
            Html(html),
        )
            .into_response(),
        Err(e) => ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

fn console_path(role: Role) -> &'static str {
    match role {
        Role::Nurse => "nurse",
        Role::Patrol => "patrol",
        Role::Admin => "admin",
        Role::Supervisor => "supervisor",
        Role::Professional => "professional",
    }
}

/// Only same-site relative paths are followed after sign-in.
fn safe_next(next: Option<&str>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .map(str::to_string)
}

async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionUser>, ApiError> {
    Ok(session_of(&state.store, headers).await?.ok())
}

/// The start page sends each user to their console, or to sign-in.
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(session) = current_session(&state, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let lang = Lang::negotiate(session.user.language.as_deref(), &headers);
    match session.user.roles.as_slice() {
        [only] => Ok(Redirect::to(&format!("/console/{}", console_path(*only))).into_response()),
        roles => Ok(render(
            StatusCode::OK,
            MessagePage {
                lang,
                langs: Lang::ALL,
                here: "/".into(),
                heading: lang.t("console.choose"),
                body: String::new(),
                links: roles
                    .iter()
                    .map(|r| {
                        (
                            format!("/console/{}", console_path(*r)),
                            lang.t(&format!("console.{}", console_path(*r))),
                        )
                    })
                    .collect(),
            },
        )),
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(headers: HeaderMap, Query(query): Query<NextQuery>) -> Response {
    let lang = Lang::negotiate(None, &headers);
    let next = safe_next(query.next.as_deref()).unwrap_or_else(|| "/".into());
    render(
        StatusCode::OK,
        LoginPage {
            lang,
            langs: Lang::ALL,
            here: format!("/login?next={}", urlencode(&next)),
            next,
            username: String::new(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<PeerAddr>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::negotiate(None, &headers);
    let next = safe_next(form.next.as_deref()).unwrap_or_else(|| "/".into());
    let peer: Option<SocketAddr> = peer.map(|p| p.0 .0);
    let refused = |status: StatusCode, key: &str| {
        render(
            status,
            LoginPage {
                lang,
                langs: Lang::ALL,
                here: format!("/login?next={}", urlencode(&next)),
                next: next.clone(),
                username: form.username.clone(),
                error: Some(lang.t(key)),
            },
        )
    };
    if form.username.trim().is_empty() || form.password.is_empty() {
        return refused(StatusCode::BAD_REQUEST, "login.missing");
    }
    match attempt_login(&state, &form.username, &form.password, peer).await {
        Ok(LoginOutcome::Success(ok)) => {
            let cookie = auth::session_cookie(&ok.token, state.settings.session_ttl_secs);
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Ok(LoginOutcome::Refused(ApiError::TooManyRequests { .. })) => {
            refused(StatusCode::TOO_MANY_REQUESTS, "login.throttled")
        }
        Ok(LoginOutcome::Refused(_)) => refused(StatusCode::UNAUTHORIZED, "login.failed"),
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            refused(StatusCode::SERVICE_UNAVAILABLE, "login.unavailable")
        }
    }
}

async fn logout_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = auth::request_token(&headers) {
        let hash = auth::token_hash(&token);
        if let Some(session) = state
            .store
            .session_user(&hash, crate::store::now_ms())
            .await?
        {
            state
                .store
                .audit(Some(&session.user.id), "logout", None, None)
                .await?;
        }
        state.store.delete_session(&hash).await?;
    }
    Ok((
        [(header::SET_COOKIE, auth::cleared_session_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}

/// Picks the interface language: saved on the account when signed in, in a cookie always.
async fn choose_language(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(query): Query<NextQuery>,
) -> Result<Response, ApiError> {
    let lang = Lang::parse(&code).ok_or(ApiError::NotFound("language"))?;
    if let Some(session) = current_session(&state, &headers).await? {
        state
            .store
            .set_user_language(&session.user.id, Some(lang.code()))
            .await?;
    }
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; Secure; SameSite=Lax",
        lang.code()
    );
    let next = safe_next(query.next.as_deref()).unwrap_or_else(|| "/".into());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
}

async fn console(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<ConsoleQuery>,
) -> Result<Response, ApiError> {
    let Some(role) = Role::ALL.into_iter().find(|r| console_path(*r) == name) else {
        let lang = Lang::negotiate(None, &headers);
        return Ok(not_found(lang));
    };
    let here = format!("/console/{}", console_path(role));
    let Some(session) = current_session(&state, &headers).await? else {
        return Ok(Redirect::to(&format!("/login?next={}", urlencode(&here))).into_response());
    };
    let lang = Lang::negotiate(session.user.language.as_deref(), &headers);
    if !session.user.roles.contains(&role) {
        tracing::warn!(user_id = %session.user.id, console = %name, "console refused: role missing");
        state
            .store
            .audit(
                Some(&session.user.id),
                "access.denied",
                None,
                Some(&format!("console {name}")),
            )
            .await?;
        return Ok(render(
            StatusCode::FORBIDDEN,
            MessagePage {
                lang,
                langs: Lang::ALL,
                here: "/".into(),
                heading: lang.t("error.forbidden.title"),
                body: lang.t("error.forbidden.body"),
                links: vec![("/".into(), lang.t("error.back"))],
            },
        ));
    }
    let console = console_path(role);
    let devices = if role == Role::Admin {
        let filter = device_filter(&query);
        Some(DevicesPanel {
            filter,
            html: devices_table(&state, lang, filter).await?,
        })
    } else {
        None
    };
    let worklist = if role == Role::Nurse {
        Some(worklist::worklist_html(&state, lang, &session.user.id, query.date.as_deref()).await?)
    } else {
        None
    };
    Ok(render(
        StatusCode::OK,
        ConsolePage {
            lang,
            langs: Lang::ALL,
            here,
            console,
            heading: lang.t(&format!("console.{console}")),
            empty: lang.t(&format!("console.{console}.empty")),
            display_name: session.user.display_name.clone(),
            consoles: console_links(&session.user.roles, lang, console),
            devices,
            worklist,
            worklist_date: query
                .date
                .as_deref()
                .filter(|d| d.parse::<jiff::civil::Date>().is_ok())
                .unwrap_or_default()
                .to_string(),
        },
    ))
}

/// The consoles a user may open, `current` marked: one per role, and the
/// alarm queue for nurses and supervisors.
fn console_links(roles: &[Role], lang: Lang, current: &str) -> Vec<ConsoleLink> {
    let mut links: Vec<ConsoleLink> = roles
        .iter()
        .map(|r| ConsoleLink {
            path: console_path(*r),
            label: lang.t(&format!("console.{}", console_path(*r))),
            current: console_path(*r) == current,
        })
        .collect();
    if roles.contains(&Role::Supervisor) && !roles.contains(&Role::Patrol) {
        links.push(ConsoleLink {
            path: "patrol",
            label: lang.t("console.patrol"),
            current: current == "patrol",
        });
    }
    if roles
        .iter()
        .any(|r| matches!(r, Role::Nurse | Role::Supervisor))
    {
        links.push(ConsoleLink {
            path: "alarms",
            label: lang.t("console.alarms"),
            current: current == "alarms",
        });
    }
    links
}

/// A console page's gate: the signed-in user holding one of `roles` and
/// their language, or the answer to give instead (sign-in, or refusal).
async fn console_user(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
    roles: &[Role],
) -> Result<Result<(SessionUser, Lang), Response>, ApiError> {
    let Some(session) = current_session(state, headers).await? else {
        return Ok(Err(Redirect::to(&format!(
            "/login?next={}",
            urlencode(here)
        ))
        .into_response()));
    };
    let lang = Lang::negotiate(session.user.language.as_deref(), headers);
    if session.user.roles.iter().any(|r| roles.contains(r)) {
        return Ok(Ok((session, lang)));
    }
    tracing::warn!(user_id = %session.user.id, console = %here, "console refused: role missing");
    state
        .store
        .audit(
            Some(&session.user.id),
            "access.denied",
            None,
            Some(&format!("console {here}")),
        )
        .await?;
    Ok(Err(render(
        StatusCode::FORBIDDEN,
        MessagePage {
            lang,
            langs: Lang::ALL,
            here: "/".into(),
            heading: lang.t("error.forbidden.title"),
            body: lang.t("error.forbidden.body"),
            links: vec![("/".into(), lang.t("error.back"))],
        },
    )))
}

/// The page for an unknown address.
pub fn not_found(lang: Lang) -> Response {
    render(
        StatusCode::NOT_FOUND,
        MessagePage {
            lang,
            langs: Lang::ALL,
            here: "/".into(),
            heading: lang.t("error.not_found.title"),
            body: String::new(),
            links: vec![("/".into(), lang.t("error.back"))],
        },
    )
}

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_this_site() {
        assert_eq!(
            safe_next(Some("/console/nurse")).as_deref(),
            Some("/console/nurse")
        );
        assert_eq!(safe_next(Some("//evil.example/")), None);
        assert_eq!(safe_next(Some("https://evil.example/")), None);
        assert_eq!(safe_next(Some("/\\evil.example")), None);
    }

    #[test]
    fn pages_render_in_each_language() {
        for lang in Lang::ALL {
            let html = LoginPage {
                lang,
                langs: Lang::ALL,
                here: "/login".into(),
                next: "/".into(),
                username: "<script>".into(),
                error: Some(lang.t("login.failed")),
            }
            .render()
            .expect("renders");
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
            assert!(html.contains(&lang.t("login.title")));
            assert!(!html.contains("<script>"), "user input must be escaped");
        }
    }
}
