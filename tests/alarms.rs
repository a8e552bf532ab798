//! Black-box tests of alarms: real hubs and real terminals, help pressed on
//! the kiosk, alerts followed on the live feed as a patrol phone does, and
//! handled through the API as nurses and patrols do.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::alarm::{home_terminal, kiosk_http};
use common::api::{self, alert, call, open_alerts, Api};
use common::edge::{eventually, spawn_edge, stored_keys, Bundle};
use common::{add_user, feed, login, spawn_hub_in, HubProcess};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

struct World {
    hub: HubProcess,
    http: reqwest::Client,
    admin: String,
    nurse: String,
    pekka: String,
    paula: String,
    supervisor: String,
    lesti: String,
    perho: String,
    central_team: String,
    lesti_team: String,
    perho_team: String,
    aino: String,
    bertil: String,
    dir: tempfile::TempDir,
}

impl Api for World {
    fn api(&self) -> (&HubProcess, &reqwest::Client) {
        (&self.hub, &self.http)
    }
}

/// A hub whose central unit takes alarms by day; `day` decides whether now
/// is inside its service hours. Two areas, a patrol team on duty in each
/// (Lestijoki's escalates to Perhonjoki's), a supervisor, and a client in each area.
async fn world(day: bool, ack_secs: u64) -> World {
    world_in(tempfile::tempdir().expect("tempdir"), day, ack_secs).await
}

fn hub_env(day: bool, ack_secs: u64) -> Vec<(&'static str, String)> {
    let (start, end) = if day {
        ("00:00", "24:00")
    } else {
        ("00:00", "00:00")
    };
    vec![
        ("ETAHOIVA_ALARM_DAY_START", start.to_string()),
        ("ETAHOIVA_ALARM_DAY_END", end.to_string()),
        ("ETAHOIVA_ALARM_ACK_SECS", ack_secs.to_string()),
    ]
}

fn start_hub(data: &std::path::Path, day: bool, ack_secs: u64, extra: &[&str]) -> HubProcess {
    let env = hub_env(day, ack_secs);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_hub_in(data, "hub", extra, &env)
}

async fn world_in(dir: tempfile::TempDir, day: bool, ack_secs: u64) -> World {
    let data = dir.path().join("hub");
    add_user(&data, "admin", "admin", PASSWORD);
    add_user(&data, "nina", "nurse", PASSWORD);
    add_user(&data, "pekka", "patrol", PASSWORD);
    add_user(&data, "paula", "patrol", PASSWORD);
    add_user(&data, "sirpa", "supervisor", PASSWORD);
    let hub = start_hub(&data, day, ack_secs, &[]);
    let http = hub.client();
    let admin = login(&http, &hub, "admin", PASSWORD).await;
    let nurse = login(&http, &hub, "nina", PASSWORD).await;
    let pekka = login(&http, &hub, "pekka", PASSWORD).await;
    let paula = login(&http, &hub, "paula", PASSWORD).await;
    let supervisor = login(&http, &hub, "sirpa", PASSWORD).await;
    let mut w = World {
        hub,
        http,
        admin,
        nurse,
        pekka,
        paula,
        supervisor,
        lesti: String::new(),
        perho: String::new(),
        central_team: String::new(),
        lesti_team: String::new(),
        perho_team: String::new(),
        aino: String::new(),
        bertil: String::new(),
        dir,
    };
    let admin = w.admin.clone();
    let users = api::user_ids(&w, &admin).await;
    w.lesti = api::area(&w, &admin, "Lestijoki").await;
    w.perho = api::area(&w, &admin, "Perhonjoki").await;
    w.central_team = api::team(
        &w,
        &admin,
        json!({"name": "Etähoitokeskus", "kind": "central", "members": [users["nina"]]}),
    )
    .await;
    w.perho_team = api::team(
        &w,
        &admin,
        json!({"name": "Yöpartio Perho", "kind": "patrol", "area_id": w.perho, "members": [users["paula"]]}),
    )
    .await;
    w.lesti_team = api::team(
        &w,
        &admin,
        json!({"name": "Yöpartio Lesti", "kind": "patrol", "area_id": w.lesti,
               "members": [users["pekka"]], "escalates_to": w.perho_team}),
    )
    .await;
    for team in [&w.lesti_team, &w.perho_team] {
        api::on_duty(&w, &admin, team, 600).await;
    }
    w.aino = api::client(
        &w,
        &admin,
        json!({"name": "Aino Virtanen", "language": "fi", "area_id": w.lesti,
               "address": "Kirkkotie 3, Kannus", "door_instructions": "Avainsäilö ovella, koodi 4711",
               "care_notes": "Kuulee huonosti", "relative_name": "Matti Virtanen",
               "relative_contact": "+358401234567"}),
    )
    .await;
    w.bertil = api::client(
        &w,
        &admin,
        json!({"name": "Bertil Ek", "language": "sv", "area_id": w.perho, "address": "Strandvägen 1, Kaustby"}),
    )
    .await;
    w
}

fn terminal(w: &World, name: &str, client: &str) -> Bundle {
    home_terminal(&w.hub, w.dir.path(), name, client)
}

async fn act(w: &World, token: &str, id: &str, action: Value) -> (u16, Value) {
    call(
        w,
        "POST",
        token,
        &format!("/api/v1/alerts/{id}/actions"),
        Some(action),
    )
    .await
}

/// `act`, asserting that the action was taken; the alert as it is now.
async fn acted(w: &World, token: &str, id: &str, action: Value) -> Value {
    let (status, v) = act(w, token, id, action.clone()).await;
    assert_eq!(status, 200, "{action}: {v}");
    v
}

/// Sets a client's video-on-alarm policy; the status of the change.
async fn set_alarm_video(w: &World, client: &str, policy: &str) -> u16 {
    call(
        w,
        "PATCH",
        &w.admin,
        &format!("/api/v1/clients/{client}"),
        Some(json!({"alarm_video": policy})),
    )
    .await
    .0
}

fn actions(detail: &Value) -> Vec<String> {
    detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_help_press_at_night_reaches_the_area_patrol_and_is_followed_to_the_end() {
    let w = world(false, 120).await;
    let mut pekka_feed = feed::connect(&w.hub, &w.pekka).await;
    let snapshot = feed::next(&mut pekka_feed, Duration::from_secs(5))
        .await
        .expect("snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["alerts"], json!([]));
    let mut paula_feed = feed::connect(&w.hub, &w.paula).await;
    feed::next(&mut paula_feed, Duration::from_secs(5)).await;

    let bundle = terminal(&w, "Aino", &w.aino);
    let edge = spawn_edge(&bundle);
    let kiosk = kiosk_http();
    let key = edge.press_help(&kiosk).await;

    let raised = feed::until_alert(&mut pekka_feed, Duration::from_secs(15), |a| {
        a["kind"] == "help_button"
    })
    .await
    .expect("the Lestijoki patrol's phone gets the alarm");
    assert_eq!(raised["status"], "routed");
    assert_eq!(raised["priority"], "high");
    assert_eq!(raised["team_id"], w.lesti_team.as_str());
    assert_eq!(raised["client_name"], "Aino Virtanen");
    assert_eq!(raised["client_address"], "Kirkkotie 3, Kannus");
    assert_eq!(raised["door_instructions"], "Avainsäilö ovella, koodi 4711");
    assert_eq!(raised["care_notes"], "Kuulee huonosti");
    let id = raised["id"].as_str().expect("id").to_string();
    // The other area's patrol is not bothered.
    assert!(
        feed::until_alert(&mut paula_feed, Duration::from_millis(800), |a| a["id"]
            == id.as_str())
        .await
        .is_none(),
        "Perhonjoki's patrol does not get Lestijoki's alarm"
    );
    let (status, _) = call(&w, "GET", &w.paula, &format!("/api/v1/alerts/{id}"), None).await;
    assert_eq!(status, 404, "nor can it read it");

    // Pressed again: the same alert counts two presses; nothing new to route.
    edge.press_help(&kiosk).await;
    let merged = feed::until_alert(&mut pekka_feed, Duration::from_secs(10), |a| {
        a["count"] == 2
    })
    .await
    .expect("second press merges");
    assert_eq!(merged["id"], id.as_str());

    // The patrol's phone showed it; then one tap at a time to the end.
    feed::send(&mut pekka_feed, json!({"type": "seen", "alert_id": id})).await;
    let v = acted(&w, &w.pekka, &id, json!({"action": "acknowledge"})).await;
    assert_eq!(v["status"], "acknowledged");
    assert_eq!(v["claimed_by_name"], "pekka");
    assert!(v["answered_at"].as_i64().is_some());
    // Somebody else cannot take it over.
    let (s, v) = act(&w, &w.nurse, &id, json!({"action": "en_route"})).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("pekka"),
        "{v}"
    );

    // The client sees that somebody has it, in Finnish.
    assert!(
        eventually(Duration::from_secs(10), || async {
            edge.kiosk_state(&kiosk).await["alarm"]["progress"] == "acknowledged"
        })
        .await,
        "the kiosk hears of the acknowledgement: {}",
        edge.kiosk_state(&kiosk).await
    );
    acted(&w, &w.pekka, &id, json!({"action": "en_route"})).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            let state = edge.kiosk_state(&kiosk).await;
            state["alarm"]["progress"] == "en_route"
                && state["alarm"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Apu on tulossa"))
        })
        .await,
        "help is on the way, on the kiosk: {}",
        edge.kiosk_state(&kiosk).await
    );
    let v = acted(&w, &w.pekka, &id, json!({"action": "on_site"})).await;
    assert!(v["on_site_at"].as_i64().unwrap() >= v["raised_at"].as_i64().unwrap());
    assert_eq!(v["escalate_at"], Value::Null, "no timer runs once on site");
    let v = acted(
        &w,
        &w.pekka,
        &id,
        json!({"action": "resolve", "outcome": "helped_on_site", "note": "Autettu sänkyyn"}),
    )
    .await;
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["outcome"], "helped_on_site");
    let closed = feed::until_alert(&mut pekka_feed, Duration::from_secs(5), |a| {
        a["status"] == "resolved"
    })
    .await;
    assert!(closed.is_some(), "the closing reaches the phone");
    // A closed alert takes no more actions.
    let (s, _) = act(
        &w,
        &w.pekka,
        &id,
        json!({"action": "cancel", "reason": "x"}),
    )
    .await;
    assert_eq!(s, 409);

    let detail = alert(&w, &w.supervisor, &id).await;
    let steps = actions(&detail);
    for step in [
        "raised",
        "routed",
        "merged",
        "seen",
        "acknowledge",
        "en_route",
        "on_site",
        "resolve",
    ] {
        assert!(steps.contains(&step.to_string()), "{step} in {steps:?}");
    }
    let seen = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "seen")
        .unwrap();
    assert_eq!(seen["actor_name"], "pekka");

    // The terminal stored both presses once each, linked to the alert.
    let keys = stored_keys(&w.http, &w.hub, &w.admin, &bundle.device_id).await;
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&key));

    // Every step is in the audit trail, the refusal too.
    let audit = call(&w, "GET", &w.admin, "/api/v1/audit", None).await.1;
    let audited: HashSet<String> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|e| e["target"] == id.as_str())
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for action in [
        "alert.seen",
        "alert.acknowledge",
        "alert.en_route.refused",
        "alert.en_route",
        "alert.on_site",
        "alert.resolve",
    ] {
        assert!(audited.contains(action), "{action} audited: {audited:?}");
    }
}

#[tokio::test]
async fn by_day_alarms_go_to_the_central_unit_where_an_unreached_client_cannot_be_closed_silently()
{
    let w = world(true, 120).await;
    let bundle = terminal(&w, "Bertil", &w.bertil);
    let edge = spawn_edge(&bundle);
    edge.press_help(&kiosk_http()).await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            !open_alerts(&w, &w.nurse).await.is_empty()
        })
        .await
    );
    let found = open_alerts(&w, &w.nurse).await;
    let a = &found[0];
    assert_eq!(
        a["team_id"],
        w.central_team.as_str(),
        "service hours: central unit"
    );
    let id = a["id"].as_str().unwrap().to_string();
    // A patrol member of the area does not see the central unit's queue.
    assert!(open_alerts(&w, &w.paula).await.is_empty());

    // The nurse calls and nobody answers: closing needs a dispatch or a reason.
    let v = acted(
        &w,
        &w.nurse,
        &id,
        json!({"action": "answer", "contact": "not_reached"}),
    )
    .await;
    assert_eq!(v["contact"], "not_reached");
    let (s, v) = act(
        &w,
        &w.nurse,
        &id,
        json!({"action": "resolve", "outcome": "no_need"}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("reason"),
        "{v}"
    );
    let (s, v) = act(
        &w,
        &w.nurse,
        &id,
        json!({"action": "cancel", "reason": "  "}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = act(&w, &w.nurse, &id, json!({"action": "fly"})).await;
    assert_eq!(s, 422, "unknown action refused: {v}");
    assert_eq!(
        alert(&w, &w.nurse, &id).await["alert"]["status"],
        "acknowledged"
    );

    // Unclear after all: a patrol of the area goes at the top priority.
    let v = acted(
        &w,
        &w.nurse,
        &id,
        json!({"action": "answer", "contact": "unclear", "note": "kuului kaatuminen"}),
    )
    .await;
    assert_eq!(v["priority"], "critical");
    assert_eq!(v["status"], "routed");
    assert_eq!(
        v["team_id"],
        w.perho_team.as_str(),
        "Bertil's area's patrol"
    );
    assert!(v["dispatched_at"].as_i64().is_some());
    assert_eq!(v["claimed_by"], Value::Null);
    // Now Paula sees it and can close it once there.
    let theirs = open_alerts(&w, &w.paula).await;
    assert_eq!(theirs.len(), 1);
    acted(&w, &w.paula, &id, json!({"action": "on_site"})).await;
    // Dispatched and on site: may close.
    acted(
        &w,
        &w.paula,
        &id,
        json!({"action": "resolve", "outcome": "helped_on_site"}),
    )
    .await;

    // The report shows the answer-time shares.
    let (s, report) = call(&w, "GET", &w.nurse, "/api/v1/alerts/report", None).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["alarms"], 1);
    assert_eq!(report["answered"], 1);
    assert_eq!(report["within_60s"], 1);
    assert_eq!(report["share_within_60s"], 1.0);
    assert_eq!(report["target_60s"], 0.975);
    assert_eq!(report["on_site_count"], 1);
    let (s, _) = call(&w, "GET", &w.pekka, "/api/v1/alerts/report", None).await;
    assert_eq!(s, 403, "patrol members do not read reports");
}

#[tokio::test]
async fn an_unacknowledged_alarm_escalates_to_the_next_team_then_the_supervisors() {
    let w = world(false, 2).await;
    let mut sirpa = feed::connect(&w.hub, &w.supervisor).await;
    feed::next(&mut sirpa, Duration::from_secs(5)).await;
    let bundle = terminal(&w, "Aino", &w.aino);
    let edge = spawn_edge(&bundle);
    edge.press_help(&kiosk_http()).await;

    let first = feed::until_alert(&mut sirpa, Duration::from_secs(15), |a| a["level"] == 0)
        .await
        .expect("raised");
    assert_eq!(first["team_id"], w.lesti_team.as_str());
    let id = first["id"].as_str().unwrap().to_string();
    let next = feed::until_alert(&mut sirpa, Duration::from_secs(10), |a| a["level"] == 1)
        .await
        .expect("escalated to the next team");
    assert_eq!(next["escalated_team_id"], w.perho_team.as_str());
    // Paula's team now has it too.
    assert!(open_alerts(&w, &w.paula)
        .await
        .iter()
        .any(|a| a["id"] == id.as_str()));
    let top = feed::until_alert(&mut sirpa, Duration::from_secs(10), |a| a["level"] == 2)
        .await
        .expect("escalated to the supervisors");
    assert_eq!(top["status"], "routed");
    // Still ringing: a reminder follows while nobody acts.
    assert!(
        eventually(Duration::from_secs(10), || async {
            actions(&alert(&w, &w.supervisor, &id).await).contains(&"reminder".to_string())
        })
        .await
    );
    // Paula takes it: the timers stop.
    acted(&w, &w.paula, &id, json!({"action": "acknowledge"})).await;
    let steps_then = actions(&alert(&w, &w.supervisor, &id).await).len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let detail = alert(&w, &w.supervisor, &id).await;
    assert_eq!(
        actions(&detail).len(),
        steps_then,
        "no escalation after the acknowledgement"
    );
    let escalations = actions(&detail)
        .iter()
        .filter(|a| *a == "escalated")
        .count();
    assert_eq!(escalations, 2);
}

#[tokio::test]
async fn the_patrol_feed_resynchronises_after_a_network_drop() {
    let w = world(false, 120).await;
    let bundle = terminal(&w, "Aino", &w.aino);
    let edge = spawn_edge(&bundle);
    let mut phone = feed::connect(&w.hub, &w.pekka).await;
    feed::next(&mut phone, Duration::from_secs(5)).await;
    // The phone goes into a tunnel: the connection is gone.
    drop(phone);
    edge.press_help(&kiosk_http()).await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            !open_alerts(&w, &w.supervisor).await.is_empty()
        })
        .await
    );
    // Back in coverage: the snapshot on reconnect holds what it missed.
    let mut phone = feed::connect(&w.hub, &w.pekka).await;
    let snapshot = feed::next(&mut phone, Duration::from_secs(5))
        .await
        .expect("snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    let alerts = snapshot["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1, "{snapshot}");
    assert_eq!(alerts[0]["client_name"], "Aino Virtanen");
    // And a resync on request gives the same.
    feed::send(&mut phone, json!({"type": "resync"})).await;
    let again = feed::next(&mut phone, Duration::from_secs(5))
        .await
        .expect("resync");
    assert_eq!(again["type"], "snapshot");
    assert_eq!(again["alerts"].as_array().unwrap().len(), 1);

    // The nurse sends the neighbouring patrol instead: the alert leaves
    // Pekka's phone (a fresh snapshot without it), it does not linger there.
    let id = alerts[0]["id"].as_str().unwrap().to_string();
    acted(
        &w,
        &w.nurse,
        &id,
        json!({"action": "dispatch", "team_id": w.perho_team}),
    )
    .await;
    let gone = feed::next(&mut phone, Duration::from_secs(5))
        .await
        .expect("an update");
    assert_eq!(gone["type"], "snapshot", "{gone}");
    assert_eq!(gone["alerts"], json!([]));
}

#[tokio::test]
async fn alarms_pressed_while_the_hub_is_down_arrive_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = world_in(dir, false, 120).await;
    let bundle = terminal(&w, "Aino", &w.aino);
    let link_addr = w.hub.link_addr();
    let data = w.hub.data_dir.clone();
    let World { hub, dir, .. } = w;
    hub.stop();
    let edge = spawn_edge(&bundle);
    let kiosk = kiosk_http();
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(edge.press_help(&kiosk).await);
    }
    let hub = start_hub(&data, false, 120, &["--device-listen", &link_addr]);
    let http = hub.client();
    let pekka = login(&http, &hub, "pekka", PASSWORD).await;
    let admin = login(&http, &hub, "admin", PASSWORD).await;
    let mut phone = feed::connect(&hub, &pekka).await;
    let mut got = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(m) = feed::next(&mut phone, left).await else {
            break;
        };
        let alerts: Vec<Value> = match m["type"].as_str() {
            Some("snapshot") => m["alerts"].as_array().cloned().unwrap_or_default(),
            _ => vec![m["alert"].clone()],
        };
        if let Some(a) = alerts.into_iter().find(|a| a["count"] == 3) {
            got = Some(a);
            break;
        }
    }
    let a = got.expect("the three presses arrive as one alert on the patrol's phone");
    assert_eq!(a["kind"], "help_button");
    assert!(
        eventually(Duration::from_secs(20), || async {
            edge.kiosk_state(&kiosk).await["pending_events"] == 0
        })
        .await
    );
    let stored = stored_keys(&http, &hub, &admin, &bundle.device_id).await;
    assert_eq!(stored.len(), 3);
    assert!(keys.iter().all(|k| stored.contains(k)));
    drop(dir);
}

#[tokio::test]
async fn kill_9_of_the_hub_in_a_burst_keeps_every_alarm_once_and_the_timers_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = world_in(dir, false, 3).await;
    let bundles: Vec<Bundle> = (0..3)
        .map(|i| {
            terminal(
                &w,
                &format!("home {i}"),
                if i % 2 == 0 { &w.aino } else { &w.bertil },
            )
        })
        .collect();
    let edges: Vec<_> = bundles
        .iter()
        .map(|b| std::sync::Arc::new(spawn_edge(b)))
        .collect();
    let link_addr = w.hub.link_addr();
    let data = w.hub.data_dir.clone();
    let World { hub, dir, .. } = w;
    let pressers: Vec<_> = edges
        .iter()
        .map(|edge| {
            let edge = edge.clone();
            tokio::spawn(async move {
                let kiosk = kiosk_http();
                let mut keys = Vec::new();
                for _ in 0..40 {
                    keys.push(edge.press_help(&kiosk).await);
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                keys
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut hub = hub;
    let _ = hub.child.kill();
    let _ = hub.child.wait();
    drop(hub);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hub = start_hub(&data, false, 3, &["--device-listen", &link_addr]);
    let mut pressed: HashMap<String, Vec<String>> = HashMap::new();
    for (b, p) in bundles.iter().zip(pressers) {
        pressed.insert(b.device_id.clone(), p.await.expect("presses"));
    }
    let http = hub.client();
    let admin = login(&http, &hub, "admin", PASSWORD).await;
    let sirpa = login(&http, &hub, "sirpa", PASSWORD).await;
    for b in &bundles {
        let want = pressed[&b.device_id].len();
        assert!(
            eventually(Duration::from_secs(90), || async {
                stored_keys(&http, &hub, &admin, &b.device_id).await.len() >= want
            })
            .await,
            "all presses of {} arrived",
            b.device_id
        );
        let stored = stored_keys(&http, &hub, &admin, &b.device_id).await;
        let unique: HashSet<_> = stored.iter().collect();
        assert_eq!(stored.len(), unique.len(), "each press stored once");
        assert_eq!(stored.len(), want);
    }
    // Each press is counted in exactly one alert: no alarm lost or doubled.
    let all: Vec<Value> = http
        .get(hub.url("/api/v1/alerts"))
        .bearer_auth(&sirpa)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for b in &bundles {
        let counted: i64 = all
            .iter()
            .filter(|a| a["device_id"] == b.device_id.as_str())
            .map(|a| a["count"].as_i64().unwrap())
            .sum();
        assert_eq!(
            counted as usize,
            pressed[&b.device_id].len(),
            "presses of {}",
            b.device_id
        );
    }
    // Nobody acknowledged: the timers stored before the crash still escalate.
    let first = all
        .iter()
        .find(|a| a["device_id"] == bundles[0].device_id.as_str())
        .expect("an alert")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        eventually(Duration::from_secs(20), || async {
            let v: Value = http
                .get(hub.url(&format!("/api/v1/alerts/{first}")))
                .bearer_auth(&sirpa)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["alert"]["level"].as_i64().unwrap_or(0) >= 1
        })
        .await,
        "the escalation timer survived the crash"
    );
    drop(edges);
    drop(dir);
}

#[tokio::test]
async fn only_the_alarm_handler_may_open_the_camera_and_as_the_client_allows() {
    let w = world(false, 120).await;
    assert_eq!(set_alarm_video(&w, &w.aino, "open_at_once").await, 200);
    assert_eq!(
        set_alarm_video(&w, &w.aino, "always").await,
        422,
        "unknown policy refused"
    );
    let bundle = terminal(&w, "Aino", &w.aino);
    let edge = spawn_edge(&bundle);
    let kiosk = kiosk_http();
    edge.press_help(&kiosk).await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            !open_alerts(&w, &w.pekka).await.is_empty()
        })
        .await
    );
    let id = open_alerts(&w, &w.pekka).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/alerts/{id}/call");

    // The central unit's nurse is not handling this night alarm.
    let (s, v) = call(&w, "POST", &w.nurse, &path, None).await;
    assert_eq!(s, 403, "{v}");
    // An administrator holds no care role at all.
    let (s, _) = call(&w, "POST", &w.admin, &path, None).await;
    assert_eq!(s, 403);
    // The area's patrol handles it: the camera opens at once, as Aino allows.
    let (s, opened) = call(&w, "POST", &w.pekka, &path, None).await;
    assert_eq!(s, 200, "{opened}");
    assert_eq!(opened["auto_answer"], true);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let state = edge.kiosk_state(&kiosk).await;
            state["call"]["kind"] == "alarm" && state["call"]["state"] == "answered"
        })
        .await,
        "the terminal answered the alarm call by itself: {}",
        edge.kiosk_state(&kiosk).await
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            actions(&alert(&w, &w.supervisor, &id).await).contains(&"call_update".to_string())
        })
        .await,
        "the terminal's answer is on the alert's timeline"
    );

    let calls = alert(&w, &w.supervisor, &id).await["calls"].clone();
    let calls = calls.as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["kind"], "alarm");
    assert_eq!(calls[0]["state"], "answered");
    assert_eq!(calls[0]["auto_answer"], true);

    // Once Pekka has taken it, it is his alone.
    acted(&w, &w.pekka, &id, json!({"action": "acknowledge"})).await;
    let (s, _) = call(&w, "POST", &w.supervisor, &path, None).await;
    assert_eq!(s, 403, "not the handler");
    // The client withdraws video on alarms.
    assert_eq!(set_alarm_video(&w, &w.aino, "never").await, 200);
    let (s, v) = call(&w, "POST", &w.pekka, &path, None).await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("policy"),
        "{v}"
    );
    // Ring only: the terminal rings instead.
    assert_eq!(set_alarm_video(&w, &w.aino, "ring").await, 200);
    let (s, v) = call(&w, "POST", &w.pekka, &path, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auto_answer"], false);
    // A closed alarm opens no camera.
    acted(
        &w,
        &w.pekka,
        &id,
        json!({"action": "resolve", "outcome": "helped_remotely", "reason": "spoke with her"}),
    )
    .await;
    let (s, _) = call(&w, "POST", &w.pekka, &path, None).await;
    assert_eq!(s, 403, "alarm closed");

    let audit = call(&w, "GET", &w.admin, "/api/v1/audit", None).await.1;
    let entries: Vec<(String, String)> = audit
        .as_array()
        .expect("audit")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let opened = entries.iter().filter(|(a, _)| a == "call.open").count();
    let refused: Vec<&String> = entries
        .iter()
        .filter(|(a, _)| a == "call.refused")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(opened, 2, "{entries:?}");
    for code in [
        "alarm_not_handled_by_caller",
        "alarm_video_never",
        "alarm_closed",
    ] {
        assert!(
            refused.iter().any(|d| d.starts_with(code)),
            "{code}: {refused:?}"
        );
    }
}
