//! The nurse console's worklist: today's visits in call order, live, with
//! the actions of each visit's state one click away. Works without
//! JavaScript (plain forms); with it, updates arrive as they happen.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::current_session;
use crate::api::schedule::{unit_date, worklist_of};
use crate::api::ApiError;
use crate::i18n::Lang;
use crate::schedule::lifecycle::{Action, VisitStatus};
use crate::schedule::recurrence::zone;
use crate::schedule::ts;
use crate::startup::AppState;
use crate::store::{Role, WorklistItem};

pub struct WorklistRow {
    pub id: String,
    pub start: String,
    pub start_iso: String,
    pub client: String,
    pub client_language: String,
    pub purpose: String,
    pub window: String,
    pub status: String,
    pub status_label: String,
    pub attempts: i32,
    pub attempts_label: String,
    pub outcome: Option<String>,
    pub can_call: bool,
    pub can_answer: bool,
    pub can_finish: bool,
}

#[derive(Template)]
#[template(path = "worklist.html")]
pub struct WorklistTable {
    pub lang: Lang,
    pub summary: String,
    pub caption: String,
    pub empty: String,
    pub rows: Vec<WorklistRow>,
}

fn clock(ms: i64, tz: &jiff::tz::TimeZone) -> (String, String) {
    let z = ts(ms).to_zoned(tz.clone());
    (z.strftime("%H:%M").to_string(), z.timestamp().to_string())
}

/// Renders the worklist rows of `items`.
pub fn render_rows(
    lang: Lang,
    items: &[WorklistItem],
    tz: &jiff::tz::TimeZone,
) -> Vec<WorklistRow> {
    items
        .iter()
        .map(|i| {
            let status = VisitStatus::parse(&i.status);
            let (start, start_iso) = clock(i.scheduled_start.unwrap_or(i.planned_at), tz);
            WorklistRow {
                id: i.id.clone(),
                start,
                start_iso,
                client: i.client_name.clone(),
                client_language: i.client_language.clone(),
                purpose: i.purpose.clone(),
                window: format!(
                    "{}–{}",
                    clock(i.window_start, tz).0,
                    clock(i.window_end, tz).0
                ),
                status: i.status.clone(),
                status_label: lang.t(&format!("visit.{}", i.status)),
                attempts: i.attempts,
                attempts_label: lang
                    .t("worklist.attempts")
                    .replace("%{n}", &i.attempts.to_string()),
                outcome: i.outcome.as_ref().map(|o| lang.t(&format!("outcome.{o}"))),
                can_call: matches!(
                    status,
                    Some(VisitStatus::Planned | VisitStatus::Due | VisitStatus::NoAnswer)
                ),
                can_answer: status == Some(VisitStatus::Calling),
                can_finish: matches!(status, Some(VisitStatus::Calling | VisitStatus::InProgress)),
            }
        })
        .collect()
}

/// The worklist table of a nurse for today.
pub async fn worklist_html(
    state: &AppState,
    lang: Lang,
    nurse_id: &str,
    date: Option<&str>,
) -> Result<String, ApiError> {
    let tz = zone(&state.settings.unit_time_zone)?;
    let date = unit_date(state, date.filter(|d| !d.is_empty()))?;
    let items = worklist_of(state, nurse_id, date).await?;
    let done = items
        .iter()
        .filter(|i| VisitStatus::parse(&i.status).is_some_and(VisitStatus::is_final))
        .count();
    let table = WorklistTable {
        summary: lang
            .t("worklist.summary")
            .replace("%{done}", &done.to_string())
            .replace("%{total}", &items.len().to_string())
            .replace("%{open}", &(items.len() - done).to_string()),
        caption: lang.t("worklist.heading"),
        empty: lang.t("worklist.none"),
        rows: render_rows(lang, &items, &tz),
        lang,
    };
    table
        .render()
        .map_err(|e| ApiError::Internal(format!("template: {e}")))
}

/// `GET /console/nurse/worklist`: the table alone, for live refresh.
#[derive(Deserialize)]
pub struct DayQuery {
    pub date: Option<String>,
}

pub async fn fragment(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(day): axum::extract::Query<DayQuery>,
) -> Result<Response, ApiError> {
    let Some(session) = current_session(&state, &headers).await? else {
        return Err(ApiError::Unauthorized);
    };
    if !session.user.roles.contains(&Role::Nurse) {
        return Err(ApiError::Forbidden);
    }
    let lang = Lang::negotiate(session.user.language.as_deref(), &headers);
    let html = worklist_html(&state, lang, &session.user.id, day.date.as_deref()).await?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        ],
        html,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(rename = "do")]
    pub action: String,
    #[serde(default)]
    pub note: String,
}

/// `POST /console/nurse/visits/{id}`: one click on a worklist button.
pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, ApiError> {
    let Some(session) = current_session(&state, &headers).await? else {
        return Err(ApiError::Unauthorized);
    };
    if !session.user.roles.contains(&Role::Nurse) {
        return Err(ApiError::Forbidden);
    }
    let (action, outcome) = match form.action.as_str() {
        "call" => (Action::Call, None),
        "answered" => (Action::Answered, None),
        "no_answer" => (Action::NoAnswer, None),
        "done" => (Action::Complete, Some("done")),
        "follow_up" => (Action::Complete, Some("needs_follow_up")),
        other => {
            return Err(ApiError::BadRequest(format!("unknown action {other:?}")));
        }
    };
    let note = form.note.trim();
    if note.chars().count() > 2000 {
        return Err(ApiError::BadRequest(
            "the note is longer than 2000 characters".into(),
        ));
    }
    let note = (!note.is_empty() && action == Action::Complete).then_some(note);
    let visit =
        crate::schedule::calls::act_and_ring(&state, &id, action, &session.user.id, outcome, note)
            .await?;
    if action == Action::Call {
        // The call screen: video, sound, mute, camera, hang up.
        let call_id = crate::schedule::calls::call_id(&visit);
        return Ok(
            Redirect::to(&format!("/console/call/{}", super::urlencode(&call_id))).into_response(),
        );
    }
    Ok(Redirect::to("/console/nurse").into_response())
}
