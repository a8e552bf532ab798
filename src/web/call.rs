//! The call screen of the consoles: the client's picture and sound, the
//! nurse's own camera, mute, camera off, hang up and a call-quality
//! indicator, over the call signalling WebSocket and the hub's relay.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::patrol::{json_island, shell_script};
use super::{console_links, console_user, render, ConsoleLink};
use crate::api::ApiError;
use crate::i18n::Lang;
use crate::startup::AppState;
use crate::store::Role;

const CALL_JS: &str = include_str!("../../assets/call.js");

/// Texts the script shows.
const CALL_TEXTS: &[&str] = &[
    "state.connecting",
    "state.ringing",
    "state.answered",
    "state.connected",
    "state.reconnecting",
    "state.ended",
    "state.refused",
    "state.no_media",
    "mute",
    "unmute",
    "camera_off",
    "camera_on",
    "quality.good",
    "quality.fair",
    "quality.poor",
    "invited",
    "leave",
    "remote",
    "local",
    "link.mine",
    "link.theirs",
];

#[derive(Template)]
#[template(path = "call.html")]
struct CallPage {
    lang: Lang,
    langs: [Lang; 3],
    here: String,
    display_name: String,
    consoles: Vec<ConsoleLink>,
    back: String,
    config: String,
}

/// `GET /console/call/{call_id}`: the call screen of a call the user opened.
/// Whether the user may take the call's media is decided by the hub when
/// the page asks for it.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    let here = format!("/console/call/{}", super::urlencode(&call_id));
    let roles = [Role::Nurse, Role::Patrol, Role::Supervisor];
    let (session, lang) = match console_user(&state, &headers, &here, &roles).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let back = if session.user.roles.contains(&Role::Nurse) {
        "/console/nurse"
    } else if session.user.roles.contains(&Role::Patrol) {
        "/console/patrol"
    } else {
        "/console/alarms"
    };
    let texts: serde_json::Map<String, serde_json::Value> = CALL_TEXTS
        .iter()
        .map(|k| (k.to_string(), json!(lang.t(&format!("call.{k}")))))
        .collect();
    let config = json!({
        "call_id": call_id,
        "signalling": "/api/v1/calls/live",
        "invitable": format!("/api/v1/calls/{}/invitable", super::urlencode(&call_id)),
        "lang": lang.code(),
        "texts": texts,
    });
    Ok(render(
        StatusCode::OK,
        CallPage {
            lang,
            langs: Lang::ALL,
            here,
            display_name: session.user.display_name.clone(),
            consoles: console_links(&session.user.roles, lang, "call"),
            back: back.into(),
            config: json_island(&config),
        },
    ))
}

pub async fn script() -> Response {
    shell_script(CALL_JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_screen_renders_in_each_language_and_escapes_the_call_id() {
        for lang in Lang::ALL {
            let config = json!({"call_id": "</script><b>"});
            let html = CallPage {
                lang,
                langs: Lang::ALL,
                here: "/console/call/x".into(),
                display_name: "Nina".into(),
                consoles: Vec::new(),
                back: "/console/nurse".into(),
                config: json_island(&config),
            }
            .render()
            .expect("renders");
            assert!(html.contains(&lang.t("call.hang_up")));
            assert!(!html.contains("</script><b>"));
            for key in CALL_TEXTS {
                let text = lang.t(&format!("call.{key}"));
                assert!(
                    !text.starts_with("call."),
                    "missing text call.{key} in {lang:?}"
                );
            }
        }
    }
}

const INVITATIONS_JS: &str = include_str!("../../assets/invitations.js");

#[derive(Template)]
#[template(path = "invitations.html")]
struct InvitationsPage {
    lang: Lang,
    langs: [Lang; 3],
    here: String,
    display_name: String,
    consoles: Vec<ConsoleLink>,
    config: String,
}

/// `GET /console/professional`: a professional's invitations into video
/// visits, live, each with a link to join.
pub async fn invitations_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let here = "/console/professional";
    let roles = [Role::Professional, Role::Nurse, Role::Supervisor];
    let (session, lang) = match console_user(&state, &headers, here, &roles).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let config = json!({
        "signalling": "/api/v1/calls/live",
        "texts": {
            "invited": lang.t("invitations.invited"),
            "join": lang.t("invitations.join"),
        },
    });
    Ok(render(
        StatusCode::OK,
        InvitationsPage {
            lang,
            langs: Lang::ALL,
            here: here.into(),
            display_name: session.user.display_name.clone(),
            consoles: console_links(&session.user.roles, lang, "professional"),
            config: json_island(&config),
        },
    ))
}

pub async fn invitations_script() -> Response {
    shell_script(INVITATIONS_JS)
}
