//! Black-box tests of remote care visits: a real hub process, driven through
//! its API as planners, nurses and administrators would.

mod common;

use std::time::Duration;

use common::api::{self, get, rfc3339_in, send, Api};
use common::edge::{eventually, provision, spawn_edge};
use common::{add_user, login, spawn_hub_in, HubProcess};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

struct World {
    hub: HubProcess,
    http: reqwest::Client,
    admin: String,
    anna: String,
    bea: String,
    client: String,
    _dir: tempfile::TempDir,
}

impl Api for World {
    fn api(&self) -> (&HubProcess, &reqwest::Client) {
        (&self.hub, &self.http)
    }
}

fn helsinki_now() -> jiff::Zoned {
    jiff::Zoned::now().in_tz("Europe/Helsinki").expect("zone")
}

/// Civil time in Helsinki `minutes` from now, to the minute.
fn local_in(minutes: i64) -> (String, String) {
    let t = helsinki_now() + jiff::SignedDuration::from_mins(minutes);
    (
        t.strftime("%Y-%m-%dT%H:%M").to_string(),
        t.date().to_string(),
    )
}

/// A hub with an administrator, two nurses on shift now and one client whose named nurse is Anna.
async fn world(env: &[(&str, &str)]) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    add_user(dir.path(), "admin", "admin", PASSWORD);
    add_user(dir.path(), "anna", "nurse", PASSWORD);
    add_user(dir.path(), "bea", "nurse", PASSWORD);
    let hub = spawn_hub_in(dir.path(), "hub", &[], env);
    let http = hub.client();
    let admin = login(&http, &hub, "admin", PASSWORD).await;
    let mut w = World {
        hub,
        http,
        admin,
        anna: String::new(),
        bea: String::new(),
        client: String::new(),
        _dir: dir,
    };
    let users = api::user_ids(&w, &w.admin).await;
    w.anna = users["anna"].clone();
    w.bea = users["bea"].clone();
    for nurse in [&w.anna, &w.bea] {
        let (s, _) = send(
            &w,
            "PUT",
            &w.admin,
            &format!("/api/v1/nurses/{nurse}/profile"),
            json!({"languages": ["fi"], "skills": ["medication"]}),
        )
        .await;
        assert_eq!(s, 204);
        let (s, shift) = send(
            &w,
            "POST",
            &w.admin,
            "/api/v1/shifts",
            json!({"nurse_id": nurse, "starts_at": rfc3339_in(-60), "ends_at": rfc3339_in(8 * 60)}),
        )
        .await;
        assert_eq!(s, 201, "{shift}");
    }
    let area = api::area(&w, &w.admin, "Lestijoki").await;
    let client = api::create(
        &w,
        &w.admin,
        "/api/v1/clients",
        json!({
            "name": "Aili Hautala", "language": "fi", "area_id": area,
            "address": "Kirkkotie 12, Kannus", "named_nurse_id": w.anna, "consent_auto_answer": true
        }),
    )
    .await;
    assert_eq!(client["time_zone"], "Europe/Helsinki");
    w.client = client["id"].as_str().expect("id").to_string();
    w
}

/// Puts a daily plan with one rule at `minutes` from now; returns the local date of the first visit.
async fn daily_plan(w: &World, minutes: i64, purpose: &str) -> (String, Value) {
    let (dtstart, date) = local_in(minutes);
    let (s, saved) = send(
        w,
        "PUT",
        &w.admin,
        &format!("/api/v1/clients/{}/plan", w.client),
        json!({"rules": [{
            "dtstart": dtstart, "rrule": "FREQ=DAILY", "window_before_min": 30,
            "window_after_min": 30, "length_min": 10, "purpose": purpose, "skill": "medication"
        }]}),
    )
    .await;
    assert_eq!(s, 200, "{saved}");
    (date, saved)
}

async fn worklist(w: &World, token: &str, date: &str) -> Vec<Value> {
    let (s, list) = get(w, token, &format!("/api/v1/worklist?date={date}")).await;
    assert_eq!(s, 200, "{list}");
    list.as_array().expect("list").clone()
}

async fn act(w: &World, token: &str, visit: &str, body: Value) -> (u16, Value) {
    send(
        w,
        "POST",
        token,
        &format!("/api/v1/visits/{visit}/actions"),
        body,
    )
    .await
}

#[tokio::test]
async fn plan_to_worklist_to_completed_visit() {
    let w = world(&[]).await;
    let (date, saved) = daily_plan(&w, 40, "Aamulääkkeet").await;
    // 14 days of daily visits, the first one 40 minutes from now.
    let generated = saved["generated"]["visits"].as_u64().expect("count");
    assert!((14..=15).contains(&generated), "{saved}");
    assert!(saved["plan"]["rules"][0]["ical"]
        .as_str()
        .expect("ical")
        .starts_with("DTSTART;TZID=Europe/Helsinki:"));

    let (s, report) = send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/schedule/assign",
        json!({"date": date}),
    )
    .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["placed"], 1, "{report}");
    assert_eq!(report["unplaced"], json!([]));
    assert_eq!(report["continuity"]["named_nurse_kept"], 1, "{report}");

    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let bea = login(&w.http, &w.hub, "bea", PASSWORD).await;
    let list = worklist(&w, &anna, &date).await;
    assert_eq!(list.len(), 1, "the named nurse has the visit: {list:?}");
    let visit = &list[0];
    assert_eq!(visit["client_name"], "Aili Hautala");
    assert_eq!(visit["purpose"], "Aamulääkkeet");
    assert_eq!(visit["status"], "planned");
    let start = visit["scheduled_start"].as_i64().expect("a call time");
    assert!(start >= visit["window_start"].as_i64().expect("window"));
    assert!(start + 600_000 <= visit["window_end"].as_i64().expect("window"));
    assert!(worklist(&w, &bea, &date).await.is_empty());
    // A nurse reads only her own worklist.
    let (s, _) = get(
        &w,
        &bea,
        &format!("/api/v1/worklist?date={date}&nurse_id={}", w.anna),
    )
    .await;
    assert_eq!(s, 403);

    let id = visit["id"].as_str().expect("id");
    // Outcome before the call: refused, nothing changes.
    let (s, body) = act(&w, &anna, id, json!({"action": "answered"})).await;
    assert_eq!(s, 409, "{body}");
    let (s, v) = act(&w, &anna, id, json!({"action": "call"})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("calling")), "{v}");
    assert_eq!(v["attempts"], 1);
    let (s, v) = act(&w, &anna, id, json!({"action": "answered"})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("in_progress")));
    let (s, v) = act(
        &w,
        &anna,
        id,
        json!({"action": "complete", "outcome": "needs_follow_up", "note": "Lääkkeet otettu, huimausta"}),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("completed")), "{v}");
    assert_eq!(v["outcome"], "needs_follow_up");
    assert!(v["started_at"].is_i64() && v["ended_at"].is_i64());
    let (s, detail) = get(&w, &anna, &format!("/api/v1/visits/{id}")).await;
    assert_eq!(s, 200);
    let steps: Vec<&str> = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["to_status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(steps, ["calling", "in_progress", "completed"]);
    // Bad outcomes are refused clearly.
    let (s, body) = act(
        &w,
        &anna,
        id,
        json!({"action": "complete", "outcome": "great"}),
    )
    .await;
    assert_eq!(s, 422, "{body}");

    // The day as iCalendar, signed in and through a private feed address.
    let r = w
        .http
        .get(w.hub.url(&format!("/api/v1/worklist.ics?date={date}")))
        .bearer_auth(&anna)
        .send()
        .await
        .expect("ics");
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/calendar")));
    let ics = r.text().await.expect("body");
    assert!(
        ics.contains("BEGIN:VEVENT") && ics.contains(&format!("UID:visit-{id}@etahoiva")),
        "{ics}"
    );
    assert!(ics.contains("Aamulääkkeet – Aili H."), "{ics}");
    let (s, feed) = send(&w, "POST", &anna, "/api/v1/me/calendar", json!({})).await;
    assert_eq!(s, 200);
    let path = feed["path"].as_str().expect("path");
    let public = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(
                &std::fs::read(w.hub.data_dir.join("tls/ca.pem")).expect("ca"),
            )
            .expect("pem"),
        )
        .build()
        .expect("client");
    let feed_text = public
        .get(w.hub.url(path))
        .send()
        .await
        .expect("feed")
        .text()
        .await
        .expect("text");
    assert!(
        feed_text.contains(&format!("UID:visit-{id}@etahoiva")),
        "the feed holds the visit: {feed_text}"
    );
    let wrong = public
        .get(w.hub.url("/calendar/not-a-token.ics"))
        .send()
        .await
        .expect("feed");
    assert_eq!(wrong.status(), 404);
}

#[tokio::test]
async fn unanswered_calls_become_a_missed_visit_with_exactly_one_alert() {
    // One try, and a call that rings a second counts as unanswered.
    let w = world(&[
        ("ETAHOIVA_VISIT_MAX_TRIES", "1"),
        ("ETAHOIVA_VISIT_RING_SECS", "1"),
    ])
    .await;
    let (date, _) = daily_plan(&w, 20, "Iltatarkistus").await;
    let (s, _) = send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/schedule/assign",
        json!({"date": date}),
    )
    .await;
    assert_eq!(s, 200);
    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let list = worklist(&w, &anna, &date).await;
    let id = list[0]["id"].as_str().expect("id").to_string();
    let (s, _) = act(&w, &anna, &id, json!({"action": "call"})).await;
    assert_eq!(s, 200);
    // The hub's clock notices the unanswered call and, with no tries left, the visit is missed.
    let missed = eventually(Duration::from_secs(20), || async {
        let (_, v) = get(&w, &anna, &format!("/api/v1/visits/{id}")).await;
        v["status"] == "missed"
    })
    .await;
    assert!(missed, "the visit was not marked missed");
    // More ticks pass; the alert exists exactly once.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (s, alerts) = get(&w, &anna, "/api/v1/alerts").await;
    assert_eq!(s, 200);
    let mine: Vec<&Value> = alerts
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["visit_id"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{alerts}");
    assert_eq!(mine[0]["kind"], "missed_visit");
    assert_eq!(mine[0]["client_id"], w.client.as_str());
    // A missed visit takes no more calls.
    let (s, _) = act(&w, &anna, &id, json!({"action": "call"})).await;
    assert_eq!(s, 409);
}

#[tokio::test]
async fn plan_edits_leave_history_alone_and_pauses_suppress_visits() {
    let w = world(&[]).await;
    let (date, saved) = daily_plan(&w, 30, "Aamulääkkeet").await;
    let rule_id = saved["plan"]["rules"][0]["id"]
        .as_str()
        .expect("rule")
        .to_string();
    send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/schedule/assign",
        json!({"date": date}),
    )
    .await;
    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let first = worklist(&w, &anna, &date).await[0].clone();
    let id = first["id"].as_str().expect("id").to_string();
    act(&w, &anna, &id, json!({"action": "call"})).await;
    let (s, _) = act(&w, &anna, &id, json!({"action": "complete"})).await;
    assert_eq!(s, 200);

    // Move the rule 2 hours later: future visits move, the done one stays as it was.
    let (dtstart, _) = local_in(150);
    let (s, saved) = send(
        &w,
        "PUT",
        &w.admin,
        &format!("/api/v1/clients/{}/plan", w.client),
        json!({"rules": [{"id": rule_id, "dtstart": dtstart, "rrule": "FREQ=DAILY", "length_min": 10, "purpose": "Lääkkeet"}]}),
    )
    .await;
    assert_eq!(s, 200, "{saved}");
    let (_, done) = get(&w, &anna, &format!("/api/v1/visits/{id}")).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["planned_at"], first["planned_at"],
        "history is not rewritten"
    );
    assert_eq!(done["purpose"], "Aamulääkkeet");
    let (_, visits) = get(
        &w,
        &w.admin,
        &format!(
            "/api/v1/clients/{}/visits?from={}",
            w.client,
            rfc3339_in(-60)
        ),
    )
    .await;
    let visits = visits.as_array().expect("visits");
    let future: Vec<&Value> = visits.iter().filter(|v| v["status"] == "planned").collect();
    assert!(!future.is_empty());
    assert!(
        future.iter().all(|v| v["purpose"] == "Lääkkeet"),
        "{visits:?}"
    );
    assert_eq!(visits.iter().filter(|v| v["id"] == id.as_str()).count(), 1);

    // A hospital stay from tomorrow for three days removes those visits, and ending it brings them back.
    let count = |vs: &Value| vs.as_array().map(|a| a.len()).unwrap_or(0);
    let (_, before) = get(
        &w,
        &w.admin,
        &format!("/api/v1/clients/{}/visits", w.client),
    )
    .await;
    let (s, pause) = send(
        &w,
        "POST",
        &w.admin,
        &format!("/api/v1/clients/{}/pauses", w.client),
        json!({"starts_at": rfc3339_in(24 * 60), "ends_at": rfc3339_in(4 * 24 * 60), "reason": "sairaala"}),
    )
    .await;
    assert_eq!(s, 201, "{pause}");
    let (_, during) = get(
        &w,
        &w.admin,
        &format!("/api/v1/clients/{}/visits", w.client),
    )
    .await;
    assert_eq!(
        count(&during),
        count(&before) - 3,
        "three daily visits paused"
    );
    let (s, _) = send(
        &w,
        "DELETE",
        &w.admin,
        &format!(
            "/api/v1/clients/{}/pauses/{}",
            w.client,
            pause["id"].as_str().expect("id")
        ),
        json!({}),
    )
    .await;
    assert_eq!(s, 204);
    let (_, after) = get(
        &w,
        &w.admin,
        &format!("/api/v1/clients/{}/visits", w.client),
    )
    .await;
    assert_eq!(count(&after), count(&before));
}

#[tokio::test]
async fn a_nurse_off_sick_hands_her_calls_to_the_others() {
    let w = world(&[]).await;
    let (date, _) = daily_plan(&w, 60, "Aamulääkkeet").await;
    send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/schedule/assign",
        json!({"date": date}),
    )
    .await;
    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let bea = login(&w.http, &w.hub, "bea", PASSWORD).await;
    assert_eq!(worklist(&w, &anna, &date).await.len(), 1);
    // Bea may not sign Anna off; Anna may.
    let (s, _) = send(
        &w,
        "POST",
        &bea,
        &format!("/api/v1/nurses/{}/sign-off", w.anna),
        json!({}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, report) = send(
        &w,
        "POST",
        &anna,
        &format!("/api/v1/nurses/{}/sign-off", w.anna),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{report}");
    assert!(worklist(&w, &anna, &date).await.is_empty());
    let moved = worklist(&w, &bea, &date).await;
    assert_eq!(moved.len(), 1, "the visit went to the nurse still on shift");
    // A planner pins it to Anna although she is off: the pin holds, the
    // report says the visit has no time, and nobody else takes it.
    let (s, pinned) = send(
        &w,
        "POST",
        &w.admin,
        &format!(
            "/api/v1/visits/{}/pin",
            moved[0]["id"].as_str().expect("id")
        ),
        json!({"nurse_id": w.anna}),
    )
    .await;
    assert_eq!(s, 200, "{pinned}");
    assert_eq!(
        pinned["unplaced"].as_array().map(Vec::len),
        Some(1),
        "{pinned}"
    );
    assert!(
        worklist(&w, &bea, &date).await.is_empty(),
        "a pin is never broken by the planner"
    );
}

#[tokio::test]
async fn bad_plans_are_refused_with_the_reason_and_change_nothing() {
    let w = world(&[]).await;
    let path = format!("/api/v1/clients/{}/plan", w.client);
    for (rule, needle) in [
        (
            json!({"dtstart": "2026-11-23T08:00", "rrule": "FREQ=SOMETIMES", "purpose": "x"}),
            "RRULE",
        ),
        (
            json!({"dtstart": "2026-11-23T08:00", "rrule": "FREQ=MINUTELY", "purpose": "x"}),
            "at most",
        ),
        (
            json!({"dtstart": "23.11.2026 8:00", "purpose": "x"}),
            "dtstart",
        ),
        (
            json!({"dtstart": "2026-11-23T08:00", "purpose": ""}),
            "purpose",
        ),
        (
            json!({"dtstart": "2026-11-23T08:00", "purpose": "x", "length_min": 90, "window_before_min": 10, "window_after_min": 10}),
            "window",
        ),
        (
            json!({"dtstart": "2026-11-23T08:00", "purpose": "x", "language": "de"}),
            "language",
        ),
        (
            json!({"dtstart": "2026-11-23T08:00", "purpose": "x", "id": "not-in-plan"}),
            "not in this plan",
        ),
        (
            json!({"dtstart": "1700-01-01T08:00", "rrule": "FREQ=DAILY", "purpose": "x"}),
            "within 5 years",
        ),
    ] {
        let (s, body) = send(&w, "PUT", &w.admin, &path, json!({"rules": [rule]})).await;
        assert_eq!(s, 422, "{body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let (s, plan) = get(&w, &w.admin, &path).await;
    assert_eq!(s, 200);
    assert_eq!(plan["rules"], json!([]), "nothing stored");
    let (s, _) = send(
        &w,
        "PATCH",
        &w.admin,
        &format!("/api/v1/clients/{}", w.client),
        json!({"time_zone": "Mars/Olympus"}),
    )
    .await;
    assert_eq!(s, 422);
    // A client moved to an area that does not exist: refused, not a server error.
    let (s, body) = send(
        &w,
        "PATCH",
        &w.admin,
        &format!("/api/v1/clients/{}", w.client),
        json!({"area_id": "no-such-area"}),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let r = w
        .http
        .put(w.hub.url(&path))
        .bearer_auth(&w.admin)
        .header("content-type", "application/json")
        .body("{\"rules\": [")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    let (s, _) = send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/schedule/assign",
        json!({"date": "tomorrow"}),
    )
    .await;
    assert_eq!(s, 422);
    // Nurses cannot create clients; the OpenAPI document lists the new routes.
    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let (s, _) = send(&w, "POST", &anna, "/api/v1/clients", json!({})).await;
    assert!(s == 403 || s == 422, "{s}");
    let doc: Value = w
        .http
        .get(w.hub.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("doc")
        .json()
        .await
        .expect("json");
    for p in [
        "/api/v1/clients/{id}/plan",
        "/api/v1/worklist",
        "/api/v1/schedule/assign",
        "/api/v1/visits/{id}/actions",
        "/api/v1/worklist.ics",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from OpenAPI");
    }
}

#[tokio::test]
async fn the_terminal_shows_the_next_call_also_offline() {
    let w = world(&[]).await;
    let root = tempfile::tempdir().expect("tempdir");
    let bundle = provision(&w.hub, root.path(), "Aili", &["--client", &w.client]);
    let edge = spawn_edge(&bundle);
    let (date, _) = daily_plan(&w, 90, "Aamulääkkeet").await;
    send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/schedule/assign",
        json!({"date": date}),
    )
    .await;
    let kiosk = reqwest::Client::new();
    let shown = eventually(Duration::from_secs(20), || async {
        let state = edge.kiosk_state(&kiosk).await;
        state["next_call"]
            .as_str()
            .is_some_and(|t| t.contains("Anna") || t.contains("anna"))
    })
    .await;
    let state = edge.kiosk_state(&kiosk).await;
    assert!(
        shown,
        "the kiosk shows the next call with the nurse: {state}"
    );
    let text = state["next_call"].as_str().expect("text").to_string();
    assert!(
        text.contains("Seuraava"),
        "in the client's language: {text}"
    );
    // The hub goes away; the kiosk still shows the call from its cache.
    drop(w);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state = edge.kiosk_state(&kiosk).await;
    assert_eq!(state["next_call"].as_str(), Some(text.as_str()), "{state}");
}

#[tokio::test]
async fn browser_worklist_calls_updates_live_and_records_the_outcome() {
    if !common::browser::available("browser_worklist_calls_updates_live_and_records_the_outcome") {
        return;
    }
    let w = world(&[]).await;
    let (date, _) = daily_plan(&w, 45, "Aamulääkkeet").await;
    let (_, _) = send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/schedule/assign",
        json!({"date": date}),
    )
    .await;
    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let id = worklist(&w, &anna, &date).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let browser = common::browser::Browser::start().await;
    // The console shows the visit's day (today, or tomorrow just before midnight).
    browser
        .goto(
            &w.hub
                .url(&format!("/login?next=/console/nurse?date={date}")),
        )
        .await;
    let Some(user) = browser.find("#username").await else {
        let page = browser
            .script("return location.href + ' | ' + document.title + ' | ' + document.body.innerHTML.slice(0, 400)")
            .await;
        panic!("no sign-in form: {page}");
    };
    browser.type_text(&user, "anna").await;
    let pass = browser.find("#password").await.expect("password field");
    browser.type_text(&pass, PASSWORD).await;
    let submit = browser
        .find("form button[type=submit]")
        .await
        .expect("sign-in button");
    browser.click(&submit).await;
    let row = format!("tr[data-visit=\"{id}\"]");
    assert!(
        browser
            .wait_until(
                &format!("return !!document.querySelector('{row}')"),
                Duration::from_secs(15)
            )
            .await,
        "the worklist shows the visit"
    );
    let text = browser
        .script(&format!("return document.querySelector('{row}').innerText"))
        .await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("Aili Hautala") && text.contains("Aamulääkkeet"),
        "{text}"
    );
    // The page says its language, and the client's name carries the client's.
    let lang = browser.script("return document.documentElement.lang").await;
    assert!(
        ["fi", "sv", "en"].contains(&lang.as_str().unwrap_or_default()),
        "{lang}"
    );
    let client_lang = browser
        .script(&format!(
            "return document.querySelector('{row} th span').lang"
        ))
        .await;
    assert_eq!(client_lang, "fi");

    // One click: call.
    let call = browser
        .find(&format!("{row} button[value=call]"))
        .await
        .expect("call button");
    browser.click(&call).await;
    let status_is = |s: &str| {
        format!("return document.querySelector('{row}')?.getAttribute('data-status') === '{s}'")
    };
    assert!(
        browser
            .wait_until(&status_is("calling"), Duration::from_secs(15))
            .await,
        "calling shown"
    );

    // The client answers (another actor): the open page updates by itself.
    let (s, _) = act(&w, &anna, &id, json!({"action": "answered"})).await;
    assert_eq!(s, 200);
    assert!(
        browser
            .wait_until(&status_is("in_progress"), Duration::from_secs(15))
            .await,
        "the worklist updates live"
    );

    // Outcome: a short note and one click.
    let note = browser
        .find(&format!("{row} input[name=note]"))
        .await
        .expect("note field");
    browser.type_text(&note, "Voi hyvin").await;
    let done = browser
        .find(&format!("{row} button[value=done]"))
        .await
        .expect("done button");
    browser.click(&done).await;
    assert!(
        browser
            .wait_until(&status_is("completed"), Duration::from_secs(15))
            .await,
        "completed shown"
    );
    let (_, v) = get(&w, &anna, &format!("/api/v1/visits/{id}")).await;
    assert_eq!(v["status"], "completed");
    assert_eq!(v["outcome"], "done");
    assert_eq!(v["note"], "Voi hyvin");
    // Every button names its visit for screen readers.
    let unnamed = browser
        .script("return [...document.querySelectorAll('#worklist button')].filter(b => !b.innerText.trim()).length")
        .await;
    assert_eq!(unnamed, 0);
}

/// A terminal speaking protocol 2 with the bundle's identity, welcomed.
async fn protocol_2_terminal(w: &World, bundle: &common::edge::Bundle) -> common::edge::RawLink {
    let read = |name: &str| std::fs::read_to_string(bundle.dir.join(name)).expect("bundle file");
    let mut link = common::edge::raw_link(
        &w.hub.link_addr(),
        &read("hub-ca.pem"),
        &read("device.pem"),
        &read("device-key.pem"),
    )
    .await
    .expect("link");
    common::edge::send_text(&mut link, common::edge::hello(&bundle.device_id, 2)).await;
    frame_of(&mut link, "welcome").await;
    link
}

/// The terminal reports a call's state.
async fn call_update(link: &mut common::edge::RawLink, call_id: &str, state: &str) {
    common::edge::send_text(
        link,
        json!({"type": "call_update", "call_id": call_id, "state": state}).to_string(),
    )
    .await;
}

/// Reads frames until one of `kind` arrives (within the helper's 10 s per frame).
async fn frame_of(link: &mut common::edge::RawLink, kind: &str) -> Value {
    for _ in 0..20 {
        let frame = common::edge::next_json(link).await.expect("link open");
        if frame["type"] == kind {
            return frame;
        }
    }
    panic!("no {kind} frame");
}

#[tokio::test]
async fn a_call_rings_the_terminal_which_answers_by_consent_and_the_visit_starts() {
    let w = world(&[]).await;
    let root = tempfile::tempdir().expect("tempdir");
    let bundle = provision(&w.hub, root.path(), "Aili", &["--client", &w.client]);
    let mut link = protocol_2_terminal(&w, &bundle).await;
    // The window is open now: the visit is 20 minutes ahead with ±30 minutes.
    let (date, _) = daily_plan(&w, 20, "Aamulääkkeet").await;
    send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/schedule/assign",
        json!({"date": date}),
    )
    .await;
    let schedule = frame_of(&mut link, "schedule").await;
    assert_eq!(schedule["time_zone"], "Europe/Helsinki");
    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let bea = login(&w.http, &w.hub, "bea", PASSWORD).await;
    let id = worklist(&w, &anna, &date).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // Bea is not the assigned nurse: the terminal rings, the camera stays closed.
    let (s, _) = act(&w, &bea, &id, json!({"action": "call"})).await;
    assert_eq!(s, 200);
    let offer = frame_of(&mut link, "call_offer").await;
    assert_eq!(offer["kind"], "scheduled_care");
    assert_eq!(offer["auto_answer"], false, "{offer}");
    let first_call = offer["call_id"].as_str().expect("call id").to_string();
    call_update(&mut link, &first_call, "declined").await;
    let declined = eventually(Duration::from_secs(10), || async {
        get(&w, &anna, &format!("/api/v1/visits/{id}")).await.1["status"] == "no_answer"
    })
    .await;
    assert!(declined, "a declined call is an unanswered try");

    // Anna, the assigned nurse, calls inside the window of a consenting client: auto-answer.
    let (s, _) = act(&w, &anna, &id, json!({"action": "call"})).await;
    assert_eq!(s, 200);
    let offer = frame_of(&mut link, "call_offer").await;
    assert_eq!(offer["auto_answer"], true, "{offer}");
    assert_eq!(offer["caller"], "anna");
    let call = offer["call_id"].as_str().expect("call id").to_string();
    assert_ne!(call, first_call, "each try is its own call");
    // A terminal of nobody's home cannot answer this client's call.
    let stranger = provision(&w.hub, root.path(), "Vieras", &[]);
    let mut other = protocol_2_terminal(&w, &stranger).await;
    call_update(&mut other, &call, "answered").await;
    let refused = eventually(Duration::from_secs(10), || async {
        let (_, audit) = get(&w, &w.admin, "/api/v1/audit").await;
        audit
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["action"] == "call.refused"))
    })
    .await;
    assert!(refused, "the foreign answer is refused and audited");
    let (_, still) = get(&w, &anna, &format!("/api/v1/visits/{id}")).await;
    assert_eq!(still["status"], "calling");
    // A late answer to the first try changes nothing.
    call_update(&mut link, &first_call, "answered").await;
    call_update(&mut link, &call, "answered").await;
    let started = eventually(Duration::from_secs(10), || async {
        get(&w, &anna, &format!("/api/v1/visits/{id}")).await.1["status"] == "in_progress"
    })
    .await;
    assert!(started, "the terminal's answer starts the visit");
    let (_, detail) = get(&w, &anna, &format!("/api/v1/visits/{id}")).await;
    let answered_by = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["to_status"] == "in_progress")
        .and_then(|e| e["actor"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(answered_by, bundle.device_id, "answered by the terminal");
    // Both calls are on record with the visit: who, how, when, how it ended.
    let calls = detail["calls"].as_array().expect("calls").clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0]["id"], first_call.as_str());
    assert_eq!(calls[0]["auto_answer"], false);
    assert_eq!(calls[0]["state"], "ended");
    assert_eq!(calls[0]["end_reason"], "declined");
    assert!(calls[0]["ended_at"].as_i64().is_some());
    assert_eq!(calls[1]["id"], call.as_str());
    assert_eq!(calls[1]["auto_answer"], true);
    assert_eq!(calls[1]["state"], "answered");
    assert_eq!(calls[1]["device_id"], bundle.device_id.as_str());
    assert!(calls[1]["answered_at"].as_i64().unwrap() >= calls[1]["offered_at"].as_i64().unwrap());
    let (_, audit) = get(&w, &w.admin, "/api/v1/audit").await;
    let offers: Vec<&str> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|e| e["action"] == "call.offer")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(
        offers.iter().any(|d| d.ends_with("auto-answer")),
        "{offers:?}"
    );
    assert!(offers.iter().any(|d| d.ends_with("ringing")), "{offers:?}");

    // Without a care role nobody calls a home: refused before anything moves, and audited.
    let (s, v) = act(&w, &w.admin, &id, json!({"action": "call"})).await;
    assert_eq!(s, 403, "{v}");
    let (_, audit) = get(&w, &w.admin, "/api/v1/audit").await;
    assert!(
        audit
            .as_array()
            .expect("audit")
            .iter()
            .any(|e| e["action"] == "call.refused"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("no_clinical_role purpose=visit"))),
        "{audit}"
    );
    let (_, still) = get(&w, &anna, &format!("/api/v1/visits/{id}")).await;
    assert_eq!(still["status"], "in_progress");
}
