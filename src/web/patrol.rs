//! The night patrol's phone app: one page installable on the home screen
//! (a Web App Manifest and a service worker that keeps the app shell for
//! when the network is gone), the live alert list over the alerts
//! WebSocket, an alarm that cannot be missed, and one-tap actions.
//!
//! The page carries its texts in the user's language as a JSON island;
//! the alerts themselves only ever come from the API, never from a cache.

use std::sync::LazyLock;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{console_links, console_user, render, ConsoleLink};
use crate::alerts::lifecycle::{Contact, Outcome};
use crate::alerts::{Kind, Priority, Status};
use crate::api::ApiError;
use crate::i18n::Lang;
use crate::startup::AppState;
use crate::store::Role;

const PATROL_JS: &str = include_str!("../../assets/patrol.js");
const LIVE_JS: &str = include_str!("../../assets/alerts-live.js");
const SERVICE_WORKER_JS: &str = include_str!("../../assets/patrol-sw.js");
const ICON_SVG: &str = include_str!("../../assets/patrol-icon.svg");

/// The app's colours: the consoles' blue, and the dark splash behind it.
const THEME_COLOUR: &str = "#0b5394";
const BACKGROUND_COLOUR: &str = "#0d1b2a";

/// Texts the scripts show, by key.
const PATROL_TEXTS: &[&str] = &[
    "start_duty",
    "on_duty",
    "start_hint",
    "sound_off",
    "conn.online",
    "conn.connecting",
    "conn.reconnecting",
    "conn.offline",
    "conn.signed_out",
    "stale",
    "none",
    "summary",
    "new_alert",
    "closed_alert",
    "address",
    "map",
    "door",
    "notes",
    "presses",
    "raised",
    "claimed_by",
    "claimed_by_me",
    "not_claimed",
    "team",
    "escalated",
    "level",
    "action.acknowledge",
    "action.en_route",
    "action.on_site",
    "action.resolve",
    "resolve.reason",
    "failed",
    "not_sent",
    "done",
];

/// `{code: text}` for the codes of one `alert.<group>.*` family.
fn labels(lang: Lang, group: &str, codes: &[&str]) -> Value {
    Value::Object(
        codes
            .iter()
            .map(|c| (c.to_string(), json!(lang.t(&format!("alert.{group}.{c}")))))
            .collect(),
    )
}

/// The configuration a console script reads from the page: where the live
/// alerts are, who is signed in, and every text in the user's language.
pub fn script_config(lang: Lang, user_id: &str, extra: &[(&str, Vec<&str>)]) -> String {
    let mut texts = Map::new();
    for key in PATROL_TEXTS {
        texts.insert(key.to_string(), json!(lang.t(&format!("patrol.{key}"))));
    }
    for (prefix, keys) in extra {
        for key in keys {
            texts.insert(
                format!("{prefix}.{key}"),
                json!(lang.t(&format!("{prefix}.{key}"))),
            );
        }
    }
    let config = json!({
        "lang": lang.code(),
        "user_id": user_id,
        "live": "/api/v1/alerts/live",
        "alerts": "/api/v1/alerts",
        "me": "/api/v1/me",
        "login": "/login",
        "texts": texts,
        "kinds": labels(lang, "kind", &Kind::ALL.map(Kind::as_str)),
        "priorities": labels(lang, "priority", &Priority::ALL.map(Priority::as_str)),
        "statuses": labels(lang, "status", &Status::ALL.map(Status::as_str)),
        "outcomes": labels(lang, "outcome", &Outcome::ALL.map(Outcome::as_str)),
        "contacts": labels(lang, "contact", &Contact::ALL.map(Contact::as_str)),
    });
    json_island(&config)
}

/// JSON that is safe inside a `<script type="application/json">` element:
/// `<`, `>` and `&` only occur in strings, where `\u` escapes mean the same.
pub fn json_island(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Outcome codes with their labels, for the resolve forms.
pub fn outcome_choices(lang: Lang) -> Vec<(&'static str, String)> {
    Outcome::ALL
        .iter()
        .map(|o| (o.as_str(), lang.t(&format!("alert.outcome.{}", o.as_str()))))
        .collect()
}

#[derive(Template)]
#[template(path = "patrol.html")]
struct PatrolPage {
    lang: Lang,
    langs: [Lang; 3],
    here: String,
    display_name: String,
    consoles: Vec<ConsoleLink>,
    outcomes: Vec<(&'static str, String)>,
    theme: &'static str,
    config: String,
}

/// `GET /console/patrol`: the patrol app, for patrol members and supervisors.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let here = "/console/patrol";
    let (session, lang) =
        match console_user(&state, &headers, here, &[Role::Patrol, Role::Supervisor]).await? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
    Ok(render(
        StatusCode::OK,
        PatrolPage {
            lang,
            langs: Lang::ALL,
            here: here.into(),
            display_name: session.user.display_name.clone(),
            consoles: console_links(&session.user.roles, lang, "patrol"),
            outcomes: outcome_choices(lang),
            theme: THEME_COLOUR,
            config: script_config(lang, &session.user.id, &[]),
        },
    ))
}

/// `GET /patrol.webmanifest`: makes the patrol page an installable app, named
/// in the language of the browser (or the one picked on the sign-in page).
pub async fn manifest(headers: HeaderMap) -> Response {
    let lang = Lang::negotiate(None, &headers);
    let icon = |purpose: &str| {
        json!({
            "src": "/static/patrol-icon.svg",
            "sizes": "any",
            "type": "image/svg+xml",
            "purpose": purpose,
        })
    };
    let body = json!({
        "id": "/console/patrol",
        "name": lang.t("patrol.app_name"),
        "short_name": lang.t("patrol.app_short"),
        "description": lang.t("patrol.app_description"),
        "lang": lang.code(),
        "dir": "ltr",
        "start_url": "/console/patrol",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "categories": ["medical", "productivity"],
        "icons": [icon("any"), icon("maskable")],
    });
    (
        [
            (
                header::CONTENT_TYPE,
                "application/manifest+json; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-cache"),
            (header::VARY, "Accept-Language, Cookie"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The version of the app shell: changes whenever one of its files does, so
/// a new hub build replaces the phones' cached copy.
static SHELL_VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for part in [
        PATROL_JS,
        LIVE_JS,
        SERVICE_WORKER_JS,
        ICON_SVG,
        super::APP_CSS,
        include_str!("../../templates/patrol.html"),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
});

static SERVICE_WORKER: LazyLock<String> =
    LazyLock::new(|| SERVICE_WORKER_JS.replace("__SHELL_VERSION__", &SHELL_VERSION));

/// `GET /patrol-sw.js`: the service worker, for the whole site.
pub async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Always checked for a newer version.
            (header::CACHE_CONTROL, "no-cache"),
            (HeaderName::from_static("service-worker-allowed"), "/"),
        ],
        SERVICE_WORKER.as_str(),
    )
        .into_response()
}

/// A script of the app shell: revalidated on every load so phones get a
/// new version at once; the service worker keeps a copy for offline.
pub fn shell_script(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub async fn app_script() -> Response {
    shell_script(PATROL_JS)
}

pub async fn live_script() -> Response {
    shell_script(LIVE_JS)
}

pub async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ICON_SVG,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_island_cannot_end_its_script_element() {
        let island = json_island(&json!({"name": "</script><b>&"}));
        assert!(!island.contains('<') && !island.contains('>') && !island.contains('&'));
        let back: Value = serde_json::from_str(&island).expect("still JSON");
        assert_eq!(back["name"], "</script><b>&");
    }

    #[test]
    fn every_label_and_text_is_translated() {
        for lang in Lang::ALL {
            let config: Value =
                serde_json::from_str(&script_config(lang, "u", &[])).expect("config parses");
            for (key, text) in config["texts"].as_object().expect("texts") {
                let text = text.as_str().unwrap_or_default();
                assert!(!text.is_empty() && !text.starts_with("patrol."), "{key}");
            }
            for group in ["kinds", "priorities", "statuses", "outcomes", "contacts"] {
                for (code, text) in config[group].as_object().expect("labels") {
                    let text = text.as_str().unwrap_or_default();
                    assert!(!text.is_empty() && !text.starts_with("alert."), "{code}");
                }
            }
        }
    }

    #[test]
    fn the_page_renders_in_each_language() {
        for lang in Lang::ALL {
            let html = PatrolPage {
                lang,
                langs: Lang::ALL,
                here: "/console/patrol".into(),
                display_name: "<Pekka>".into(),
                consoles: Vec::new(),
                outcomes: outcome_choices(lang),
                theme: THEME_COLOUR,
                config: script_config(lang, "u", &[]),
            }
            .render()
            .expect("renders");
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
            assert!(html.contains("rel=\"manifest\""));
            assert!(html.contains(&lang.t("patrol.start_duty")));
            assert!(!html.contains("<Pekka>"), "names are escaped");
        }
    }
}
