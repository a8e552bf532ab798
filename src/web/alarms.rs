//! The nurse console's alarm queue for the day: open alerts live over the
//! alerts WebSocket with the client's details, answering, dispatching a
//! patrol, resolving and cancelling, and how fast alarms were answered in
//! the last 30 days against the service targets.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::patrol::{outcome_choices, script_config, shell_script};
use super::{console_links, console_user, render, ConsoleLink};
use crate::api::ApiError;
use crate::i18n::Lang;
use crate::startup::AppState;
use crate::store::Role;

const ALARMS_JS: &str = include_str!("../../assets/alarms.js");

/// Texts of the alarm queue the script needs besides the patrol app's.
const ALARM_TEXTS: &[&str] = &[
    "unanswered",
    "answered",
    "answer",
    "dispatch",
    "cancel",
    "report.within",
    "report.met",
    "report.missed",
    "report.counts",
    "report.none",
    "report.failed",
];

#[derive(Template)]
#[template(path = "alarms.html")]
struct AlarmsPage {
    lang: Lang,
    langs: [Lang; 3],
    here: String,
    display_name: String,
    consoles: Vec<ConsoleLink>,
    outcomes: Vec<(&'static str, String)>,
    config: String,
}

/// `GET /console/alarms`: the alarm queue, for nurses and supervisors.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let here = "/console/alarms";
    let (session, lang) =
        match console_user(&state, &headers, here, &[Role::Nurse, Role::Supervisor]).await? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
    Ok(render(
        StatusCode::OK,
        AlarmsPage {
            lang,
            langs: Lang::ALL,
            here: here.into(),
            display_name: session.user.display_name.clone(),
            consoles: console_links(&session.user.roles, lang, "alarms"),
            outcomes: outcome_choices(lang),
            config: script_config(lang, &session.user.id, &[("alarms", ALARM_TEXTS.to_vec())]),
        },
    ))
}

pub async fn script() -> Response {
    shell_script(ALARMS_JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_renders_in_each_language() {
        for lang in Lang::ALL {
            let html = AlarmsPage {
                lang,
                langs: Lang::ALL,
                here: "/console/alarms".into(),
                display_name: "Anna".into(),
                consoles: Vec::new(),
                outcomes: outcome_choices(lang),
                config: script_config(lang, "u", &[("alarms", ALARM_TEXTS.to_vec())]),
            }
            .render()
            .expect("renders");
            assert!(html.contains(&lang.t("alarms.heading")));
            assert!(html.contains(&lang.t("alarms.report.heading")));
            assert!(
                !html.contains(r#""alarms.report.within":"alarms.report.within""#),
                "texts are resolved"
            );
        }
    }
}
