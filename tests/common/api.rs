//! Requests to the hub's API with a bearer token, and the organisation
//! (areas, teams on duty, clients) and alerts the tests handle through it.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::HubProcess;

/// A test's world: its running hub and the HTTP client that talks to it.
pub trait Api {
    fn api(&self) -> (&HubProcess, &reqwest::Client);
}

/// `method path` as the holder of `token`, with an optional JSON body;
/// returns the status and the JSON answer (`null` when there is none).
pub async fn call(
    w: &impl Api,
    method: &str,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (hub, http) = w.api();
    let mut request = http
        .request(method.parse().expect("method"), hub.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn get(w: &impl Api, token: &str, path: &str) -> (u16, Value) {
    call(w, "GET", token, path, None).await
}

pub async fn send(
    w: &impl Api,
    method: &str,
    token: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    call(w, method, token, path, Some(body)).await
}

/// POSTs `body` to `path`, asserts that it was created and returns it.
pub async fn create(w: &impl Api, token: &str, path: &str, body: Value) -> Value {
    let (status, created) = send(w, "POST", token, path, body).await;
    assert_eq!(status, 201, "POST {path}: {created}");
    created
}

/// The id of what `create` made.
pub async fn create_id(w: &impl Api, token: &str, path: &str, body: Value) -> String {
    create(w, token, path, body).await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// An RFC 3339 time `minutes` from now.
pub fn rfc3339_in(minutes: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes)).to_string()
}

/// The users' ids by username, as the administrator reads them.
pub async fn user_ids(w: &impl Api, admin: &str) -> HashMap<String, String> {
    let (status, users) = get(w, admin, "/api/v1/users").await;
    assert_eq!(status, 200, "{users}");
    users
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            let name = u["username"].as_str().expect("username").to_string();
            (name, u["id"].as_str().expect("user id").to_string())
        })
        .collect()
}

/// A new area's id.
pub async fn area(w: &impl Api, admin: &str, name: &str) -> String {
    create_id(w, admin, "/api/v1/areas", json!({ "name": name })).await
}

/// A new team's id; `team` is the team as the API takes it.
pub async fn team(w: &impl Api, admin: &str, team: Value) -> String {
    create_id(w, admin, "/api/v1/teams", team).await
}

/// Puts `team` on duty from an hour ago until `minutes` from now.
pub async fn on_duty(w: &impl Api, admin: &str, team: &str, minutes: i64) {
    create(
        w,
        admin,
        &format!("/api/v1/teams/{team}/duty"),
        json!({"starts_at": rfc3339_in(-60), "ends_at": rfc3339_in(minutes)}),
    )
    .await;
}

/// A new client's id; `client` is the client as the API takes it.
pub async fn client(w: &impl Api, admin: &str, client: Value) -> String {
    create_id(w, admin, "/api/v1/clients", client).await
}

/// An alert with its timeline, as the holder of `token` reads it.
pub async fn alert(w: &impl Api, token: &str, id: &str) -> Value {
    let (status, v) = get(w, token, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// The open alerts the holder of `token` sees.
pub async fn open_alerts(w: &impl Api, token: &str) -> Vec<Value> {
    let (status, list) = get(w, token, "/api/v1/alerts?open=true").await;
    assert_eq!(status, 200, "{list}");
    list.as_array().expect("alerts").clone()
}
