//! Black-box tests of the alarm front-ends: the night patrol's phone app and
//! the nurse's alarm queue, on a real hub with a real terminal pressing its
//! help button and a real browser on the other end.

mod common;

use std::time::Duration;

use common::edge::{eventually, provision, spawn_edge};
use common::{add_user, login, spawn_hub_in, HubProcess};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

struct World {
    hub: HubProcess,
    http: reqwest::Client,
    admin: String,
    /// The patrol member's and the nurse's user ids.
    pekka: String,
    anna: String,
    client: String,
    _dir: tempfile::TempDir,
}

async fn get(w: &World, token: &str, path: &str) -> (u16, Value) {
    let r = w
        .http
        .get(w.hub.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn send(w: &World, method: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = w
        .http
        .request(method.parse().expect("method"), w.hub.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn rfc3339_in(minutes: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes)).to_string()
}

/// Service hours of the central unit that exclude (night) or include (day)
/// the present moment in the unit's time zone, as `(start, end)`.
fn service_hours(day_now: bool) -> (String, String) {
    if day_now {
        return ("00:00".into(), "24:00".into());
    }
    // Equal start and end: the central unit is closed around the clock.
    ("00:00".into(), "00:00".into())
}

/// A hub with an administrator, a patrol member (Pekka) in the patrol team
/// of the area, on duty now, a nurse (Anna) in the central team, and one
/// client in the area with door and care notes.
async fn world(day_now: bool) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    add_user(dir.path(), "admin", "admin", PASSWORD);
    add_user(dir.path(), "pekka", "patrol", PASSWORD);
    add_user(dir.path(), "anna", "nurse", PASSWORD);
    let (start, end) = service_hours(day_now);
    let hub = spawn_hub_in(
        dir.path(),
        "hub",
        &[],
        &[
            ("ETAHOIVA_ALARM_DAY_START", start.as_str()),
            ("ETAHOIVA_ALARM_DAY_END", end.as_str()),
        ],
    );
    let http = hub.client();
    let admin = login(&http, &hub, "admin", PASSWORD).await;
    let mut w = World {
        hub,
        http,
        admin,
        pekka: String::new(),
        anna: String::new(),
        client: String::new(),
        _dir: dir,
    };
    let (_, users) = get(&w, &w.admin, "/api/v1/users").await;
    let id_of = |name: &str| {
        users
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["username"] == name)
            .and_then(|u| u["id"].as_str())
            .expect("user")
            .to_string()
    };
    w.pekka = id_of("pekka");
    w.anna = id_of("anna");
    let (s, area) = send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/areas",
        json!({"name": "Lestijoki"}),
    )
    .await;
    assert_eq!(s, 201, "{area}");
    let (s, central) = send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/teams",
        json!({"name": "Etähoitokeskus", "kind": "central", "members": [w.anna]}),
    )
    .await;
    assert_eq!(s, 201, "{central}");
    let (s, patrol) = send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/teams",
        json!({
            "name": "Yöpartio Lestijoki", "kind": "patrol", "area_id": area["id"],
            "members": [w.pekka]
        }),
    )
    .await;
    assert_eq!(s, 201, "{patrol}");
    let patrol_id = patrol["id"].as_str().expect("team id");
    let (s, duty) = send(
        &w,
        "POST",
        &w.admin,
        &format!("/api/v1/teams/{patrol_id}/duty"),
        json!({"starts_at": rfc3339_in(-60), "ends_at": rfc3339_in(12 * 60)}),
    )
    .await;
    assert_eq!(s, 201, "{duty}");
    let (s, client) = send(
        &w,
        "POST",
        &w.admin,
        "/api/v1/clients",
        json!({
            "name": "Aino Virtanen", "language": "fi", "area_id": area["id"],
            "address": "Kirkkotie 3, Kannus",
            "door_instructions": "Avainsäilö ovella, koodi 4711",
            "care_notes": "Diabetes; kuulee huonosti"
        }),
    )
    .await;
    assert_eq!(s, 201, "{client}");
    w.client = client["id"].as_str().expect("id").to_string();
    w
}

/// Signs in through the sign-in page and lands on `next`.
async fn sign_in(browser: &common::browser::Browser, w: &World, username: &str, next: &str) {
    browser
        .goto(&w.hub.url(&format!("/login?next={next}")))
        .await;
    let Some(user) = browser.find("#username").await else {
        let page = browser
            .script("return location.href + ' | ' + document.title + ' | ' + document.body.innerHTML.slice(0, 400)")
            .await;
        panic!("no sign-in form: {page}");
    };
    browser.type_text(&user, username).await;
    let pass = browser.find("#password").await.expect("password field");
    browser.type_text(&pass, PASSWORD).await;
    let submit = browser
        .find("form button[type=submit]")
        .await
        .expect("sign-in button");
    browser.click(&submit).await;
    assert!(
        browser
            .wait_until(
                &format!(
                    "return location.pathname === '{next}' && document.readyState === 'complete'"
                ),
                Duration::from_secs(15)
            )
            .await,
        "signed in and on {next}"
    );
}

/// The open alert of the world's client, as `who` sees it.
async fn open_alert_of_client(w: &World, who: &str) -> Option<Value> {
    let (s, list) = get(w, who, "/api/v1/alerts?open=true").await;
    assert_eq!(s, 200, "{list}");
    list.as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["client_id"] == w.client.as_str())
        .cloned()
}

#[tokio::test]
async fn the_patrol_app_is_installable_and_only_for_patrols() {
    let w = world(false).await;
    // The manifest: an installable standalone app starting at the patrol page.
    let r = w
        .http
        .get(w.hub.url("/patrol.webmanifest"))
        .header("Accept-Language", "sv-FI")
        .send()
        .await
        .expect("manifest");
    assert_eq!(r.status(), 200);
    let kind = r.headers()["content-type"].to_str().unwrap_or_default();
    assert!(kind.starts_with("application/manifest+json"), "{kind}");
    let manifest: Value = r.json().await.expect("manifest json");
    assert_eq!(manifest["start_url"], "/console/patrol");
    assert_eq!(manifest["display"], "standalone");
    assert_eq!(manifest["lang"], "sv");
    assert!(manifest["theme_color"].as_str().is_some());
    let icon = manifest["icons"][0]["src"].as_str().expect("icon");
    let r = w.http.get(w.hub.url(icon)).send().await.expect("icon");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");

    // The service worker: a script for the whole site that never keeps API answers.
    let r = w
        .http
        .get(w.hub.url("/patrol-sw.js"))
        .send()
        .await
        .expect("service worker");
    assert_eq!(r.status(), 200);
    let kind = r.headers()["content-type"].to_str().unwrap_or_default();
    assert!(kind.starts_with("text/javascript"), "{kind}");
    assert_eq!(r.headers()["service-worker-allowed"], "/");
    let sw = r.text().await.expect("script");
    assert!(sw.contains("addEventListener(\"fetch\""), "a fetch handler");
    assert!(
        sw.contains("\"/api/\""),
        "API requests are left to the network"
    );
    assert!(
        !sw.contains("__SHELL_VERSION__"),
        "the shell version is filled in"
    );
    for asset in [
        "/static/patrol.js",
        "/static/alerts-live.js",
        "/static/alarms.js",
    ] {
        let r = w.http.get(w.hub.url(asset)).send().await.expect("asset");
        assert_eq!(r.status(), 200, "{asset}");
    }

    // Signed out: to the sign-in page and back.
    let r = w
        .hub
        .client()
        .get(w.hub.url("/console/patrol"))
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/console/patrol");
    // A nurse is refused the patrol app, a patrol member the alarm queue.
    let page_as = |user: &'static str, path: &'static str| {
        let w = &w;
        async move {
            let client = w.hub.client();
            let r = client
                .post(w.hub.url("/login"))
                .form(&[("username", user), ("password", PASSWORD), ("next", "/")])
                .send()
                .await
                .expect("sign in");
            assert!(r.status().is_redirection(), "{user} signs in");
            let r = client.get(w.hub.url(path)).send().await.expect("page");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
    };
    let (s, _) = page_as("anna", "/console/patrol").await;
    assert_eq!(s, 403);
    let (s, _) = page_as("pekka", "/console/alarms").await;
    assert_eq!(s, 403);
    let (s, html) = page_as("pekka", "/console/patrol").await;
    assert_eq!(s, 200);
    assert!(html.contains("rel=\"manifest\" href=\"/patrol.webmanifest\""));
    assert!(html.contains("id=\"alert-config\""));
    let (s, html) = page_as("anna", "/console/alarms").await;
    assert_eq!(s, 200);
    assert!(html.contains("/static/alarms.js"));
    // The nurse console links to the alarm queue.
    let (s, html) = page_as("anna", "/console/nurse").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("href=\"/console/alarms\""),
        "nurse console links the queue"
    );
}

#[tokio::test]
async fn browser_patrol_sees_a_help_press_live_and_acknowledges_it() {
    if !common::browser::available("browser_patrol_sees_a_help_press_live_and_acknowledges_it") {
        return;
    }
    let w = world(false).await;
    let root = tempfile::tempdir().expect("tempdir");
    let bundle = provision(&w.hub, root.path(), "Aino", &["--client", &w.client]);
    let edge = spawn_edge(&bundle);

    let browser = common::browser::Browser::start().await;
    sign_in(&browser, &w, "pekka", "/console/patrol").await;
    assert!(
        browser
            .wait_until(
                "return document.getElementById('conn').getAttribute('data-state') === 'online'",
                Duration::from_secs(20)
            )
            .await,
        "the app is connected: {}",
        browser
            .script("return document.getElementById('conn').innerText")
            .await
    );
    let empty = browser
        .script("return !document.getElementById('no-alerts').hidden && document.querySelectorAll('#alerts li').length === 0")
        .await;
    assert_eq!(empty, true, "no alerts yet");
    // Start duty: the gesture that lets the page sound the alarm.
    let duty = browser.find("#duty").await.expect("duty button");
    browser.click(&duty).await;
    assert_eq!(
        browser
            .script("return document.body.getAttribute('data-duty')")
            .await,
        "on"
    );

    // The client presses the help button at home.
    let press = reqwest::Client::new();
    edge.press_help(&press).await;
    assert!(
        browser
            .wait_until(
                "return !!document.querySelector('#alerts li[data-alert]')",
                Duration::from_secs(30)
            )
            .await,
        "the alert appears live"
    );
    let id = browser
        .script(
            "return document.querySelector('#alerts li[data-alert]').getAttribute('data-alert')",
        )
        .await
        .as_str()
        .expect("alert id")
        .to_string();
    let card = format!("#alerts li[data-alert=\"{id}\"]");
    let text = browser
        .script(&format!(
            "return document.querySelector('{card}').innerText"
        ))
        .await;
    let text = text.as_str().unwrap_or_default().to_string();
    for needed in [
        "Aino Virtanen",
        "Kirkkotie 3, Kannus",
        "Avainsäilö ovella, koodi 4711",
        "Diabetes; kuulee huonosti",
    ] {
        assert!(
            text.contains(needed),
            "{needed} missing from the card: {text}"
        );
    }
    let map = browser
        .script(&format!(
            "return document.querySelector('{card} .alert-facts a').href"
        ))
        .await;
    assert!(
        map.as_str()
            .is_some_and(|h| h.contains("openstreetmap.org/search?query=Kirkkotie")),
        "{map}"
    );
    // Not acknowledged: it rings, and the screen reader hears of it.
    assert_eq!(
        browser
            .script("return document.body.getAttribute('data-ringing')")
            .await,
        "true"
    );
    assert_eq!(
        browser
            .script("return document.body.getAttribute('data-sound')")
            .await,
        "on"
    );
    assert!(
        browser
            .wait_until(
                "return document.getElementById('announce').textContent.includes('Aino Virtanen')",
                Duration::from_secs(5)
            )
            .await,
        "the new alert is announced"
    );
    // Targets big enough for a thumb, each button naming its client.
    let small = browser
        .script(&format!(
            "return [...document.querySelectorAll('{card} button')].filter(b => {{ const r = b.getBoundingClientRect(); return r.width < 44 || r.height < 44 || !b.innerText.includes('Aino'); }}).length"
        ))
        .await;
    assert_eq!(small, 0, "every action button is at least 44x44 px");
    // The hub heard that the alert was shown on this phone.
    let seen = eventually(Duration::from_secs(10), || async {
        let (_, audit) = get(&w, &w.admin, "/api/v1/audit").await;
        audit.as_array().is_some_and(|a| {
            a.iter().any(|e| {
                e["action"] == "alert.seen"
                    && e["target"] == id.as_str()
                    && e["actor"] == w.pekka.as_str()
            })
        })
    })
    .await;
    assert!(seen, "the phone reports the alert as seen");

    // One tap: acknowledge.
    let ack = browser
        .find(&format!("{card} button[data-action=acknowledge]"))
        .await
        .expect("acknowledge button");
    browser.click(&ack).await;
    assert!(
        browser
            .wait_until(
                &format!(
                    "return document.querySelector('{card}')?.getAttribute('data-status') === 'acknowledged'"
                ),
                Duration::from_secs(15)
            )
            .await,
        "acknowledged shown"
    );
    assert_eq!(
        browser
            .script("return document.body.getAttribute('data-ringing')")
            .await,
        "false",
        "the alarm stops once everything is acknowledged"
    );
    let mine = browser
        .script(&format!(
            "return !!document.querySelector('{card} .claimed.mine')"
        ))
        .await;
    assert_eq!(mine, true, "the card says who took it");

    let pekka = login(&w.http, &w.hub, "pekka", PASSWORD).await;
    let (s, detail) = get(&w, &pekka, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(detail["alert"]["status"], "acknowledged", "{detail}");
    assert_eq!(detail["alert"]["claimed_by"], w.pekka.as_str());
    assert_eq!(detail["alert"]["client_id"], w.client.as_str());
    let step = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["action"] == "acknowledge" || e["status"] == "acknowledged")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(step["actor"], w.pekka.as_str(), "{detail}");
    assert!(
        detail["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["action"] == "seen" && e["actor"] == w.pekka.as_str()),
        "the timeline has the phone's `seen`: {detail}"
    );

    // Resolving without a visit or contact asks for the reason the hub wants.
    let resolve = browser
        .find(&format!("{card} button[data-action=resolve]"))
        .await
        .expect("resolve button");
    browser.click(&resolve).await;
    let outcome = browser
        .find("#resolve input[value=false_alarm]")
        .await
        .expect("outcome choice");
    browser.click(&outcome).await;
    let submit = browser.find("#resolve-submit").await.expect("submit");
    browser.click(&submit).await;
    assert!(
        browser
            .wait_until(
                "return !document.getElementById('resolve-reason-box').hidden && document.activeElement.id === 'resolve-reason'",
                Duration::from_secs(10)
            )
            .await,
        "the 422 asks for a reason: {}",
        browser
            .script("return document.getElementById('resolve-error').innerText")
            .await
    );
    let reason = browser.find("#resolve-reason").await.expect("reason");
    browser
        .type_text(&reason, "Asiakas painoi vahingossa, soitto omaiselle")
        .await;
    browser.click(&submit).await;
    assert!(
        browser
            .wait_until(
                &format!("return !document.querySelector('{card}') && !document.getElementById('resolve').open"),
                Duration::from_secs(15)
            )
            .await,
        "the resolved alert leaves the list"
    );
    let (_, detail) = get(&w, &pekka, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(detail["alert"]["status"], "resolved", "{detail}");
    assert_eq!(detail["alert"]["outcome"], "false_alarm");
    assert!(open_alert_of_client(&w, &pekka).await.is_none());
    drop(edge);
}

#[tokio::test]
async fn browser_nurse_answers_a_day_alarm_from_the_queue() {
    if !common::browser::available("browser_nurse_answers_a_day_alarm_from_the_queue") {
        return;
    }
    let w = world(true).await;
    let root = tempfile::tempdir().expect("tempdir");
    let bundle = provision(&w.hub, root.path(), "Aino", &["--client", &w.client]);
    let edge = spawn_edge(&bundle);
    let browser = common::browser::Browser::start().await;
    sign_in(&browser, &w, "anna", "/console/alarms").await;
    assert!(
        browser
            .wait_until(
                "return document.getElementById('conn').getAttribute('data-state') === 'online'",
                Duration::from_secs(20)
            )
            .await,
        "the queue is connected"
    );
    // The answer-time shares of the last 30 days (no alarms yet).
    assert!(
        browser
            .wait_until(
                "return document.querySelectorAll('#report li').length > 0",
                Duration::from_secs(15)
            )
            .await,
        "the report is shown"
    );

    edge.press_help(&reqwest::Client::new()).await;
    assert!(
        browser
            .wait_until(
                "return !!document.querySelector('#alerts li.unanswered[data-alert]')",
                Duration::from_secs(30)
            )
            .await,
        "the alarm appears, highlighted as unanswered"
    );
    let id = browser
        .script(
            "return document.querySelector('#alerts li[data-alert]').getAttribute('data-alert')",
        )
        .await
        .as_str()
        .expect("alert id")
        .to_string();
    let card = format!("#alerts li[data-alert=\"{id}\"]");
    let reached = browser
        .find(&format!(
            "{card} button[data-action=answer][data-contact=reached]"
        ))
        .await
        .expect("answer: reached");
    browser.click(&reached).await;
    assert!(
        browser
            .wait_until(
                &format!("return !document.querySelector('{card}.unanswered') && !!document.querySelector('{card}')"),
                Duration::from_secs(15)
            )
            .await,
        "answered: no longer highlighted"
    );
    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let (_, detail) = get(&w, &anna, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(detail["alert"]["contact"], "reached", "{detail}");
    assert_eq!(detail["alert"]["answered_by"], w.anna.as_str());

    // Resolved from the queue: reached by video, so no reason is needed.
    let resolve = browser
        .find(&format!("{card} button[data-action=resolve]"))
        .await
        .expect("resolve");
    browser.click(&resolve).await;
    browser
        .script("const s = document.getElementById('resolve-outcome'); s.value = 'helped_remotely'; return s.value")
        .await;
    let submit = browser
        .find("#resolve button[type=submit]")
        .await
        .expect("submit");
    browser.click(&submit).await;
    assert!(
        browser
            .wait_until(
                &format!("return !document.querySelector('{card}')"),
                Duration::from_secs(15)
            )
            .await,
        "the resolved alarm leaves the queue"
    );
    assert!(
        browser
            .wait_until(
                "return document.querySelectorAll('#report li[data-within]').length === 2",
                Duration::from_secs(15)
            )
            .await,
        "the report counts the answered alarm: {}",
        browser
            .script("return document.getElementById('report').innerText")
            .await
    );

    // Another press: dispatched to the area's patrol on duty, then cancelled with a reason.
    edge.press_help(&reqwest::Client::new()).await;
    assert!(
        browser
            .wait_until(
                "return !!document.querySelector('#alerts li[data-alert]')",
                Duration::from_secs(30)
            )
            .await,
        "the second alarm appears"
    );
    let id = browser
        .script(
            "return document.querySelector('#alerts li[data-alert]').getAttribute('data-alert')",
        )
        .await
        .as_str()
        .expect("alert id")
        .to_string();
    let card = format!("#alerts li[data-alert=\"{id}\"]");
    let dispatch = browser
        .find(&format!("{card} button[data-action=dispatch]"))
        .await
        .expect("dispatch");
    browser.click(&dispatch).await;
    let note = browser.find("#dispatch-note").await.expect("note");
    browser.type_text(&note, "Ei vastaa videoon").await;
    let submit = browser
        .find("#dispatch button[type=submit]")
        .await
        .expect("submit");
    browser.click(&submit).await;
    let dispatched = eventually(Duration::from_secs(15), || async {
        let (_, d) = get(&w, &anna, &format!("/api/v1/alerts/{id}")).await;
        d["alert"]["dispatched_at"].is_number()
    })
    .await;
    assert!(dispatched, "dispatched to the patrol");
    let (_, d) = get(&w, &anna, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(d["alert"]["team_name"], "Yöpartio Lestijoki", "{d}");
    assert!(
        browser
            .wait_until(
                "return !document.getElementById('dispatch').open",
                Duration::from_secs(10)
            )
            .await,
        "the dialog closes"
    );
    // The nurse still sees it on its way, and may call it off.
    assert!(
        browser
            .wait_until(
                &format!("return !!document.querySelector('{card}')"),
                Duration::from_secs(5),
            )
            .await,
        "the dispatched alarm stays in the queue"
    );
    let cancel = browser
        .find(&format!("{card} button[data-action=cancel]"))
        .await
        .expect("cancel");
    browser.click(&cancel).await;
    let reason = browser.find("#cancel-reason").await.expect("reason");
    browser.type_text(&reason, "Omainen paikalla").await;
    let submit = browser
        .find("#cancel button[type=submit]")
        .await
        .expect("submit");
    browser.click(&submit).await;
    assert!(
        browser
            .wait_until(
                &format!("return !document.querySelector('{card}')"),
                Duration::from_secs(15)
            )
            .await,
        "the cancelled alarm leaves the queue"
    );
    let (_, d) = get(&w, &anna, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(d["alert"]["status"], "cancelled", "{d}");
    drop(edge);
}

/// Stops the world's hub (SIGTERM, as a service manager would).
fn stop_hub(w: &mut World) {
    let pid = w.hub.child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = w.hub.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = w.hub.child.kill();
    let _ = w.hub.child.wait();
}

/// Starts the hub again with the same data on the addresses it had, so that
/// open pages and terminals find it where they left it.
fn restart_hub(w: &mut World, env: &[(&str, &str)]) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let listen = w.hub.base.trim_start_matches("https://").to_string();
    let device = w.hub.link_addr();
    let data = w.hub.data_dir.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut command = Command::new(common::HUB_BIN);
        command
            .args([
                "hub",
                "--listen",
                &listen,
                "--device-listen",
                &device,
                "--data-dir",
            ])
            .arg(&data)
            .env_remove("DATABASE_URL")
            .env("ETAHOIVA_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("hub starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            let up = line.starts_with("Etahoiva hub listening on ");
            lines.push(line);
            if up {
                while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                    lines.push(line);
                }
                let fresh = HubProcess {
                    child,
                    base: w.hub.base.clone(),
                    data_dir: data,
                    stdout: lines,
                };
                drop(std::mem::replace(&mut w.hub, fresh));
                return;
            }
        }
        // The old listener's address was not free yet: try again.
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            std::time::Instant::now() < deadline,
            "the hub did not start again on {listen}: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test]
async fn browser_patrol_app_survives_a_lost_hub_and_misses_nothing() {
    if !common::browser::available("browser_patrol_app_survives_a_lost_hub_and_misses_nothing") {
        return;
    }
    let mut w = world(false).await;
    let root = tempfile::tempdir().expect("tempdir");
    let bundle = provision(&w.hub, root.path(), "Aino", &["--client", &w.client]);
    let edge = spawn_edge(&bundle);
    let browser = common::browser::Browser::start().await;
    sign_in(&browser, &w, "pekka", "/console/patrol").await;
    let online = "return document.getElementById('conn').getAttribute('data-state') === 'online' && document.getElementById('stale').hidden";
    assert!(
        browser.wait_until(online, Duration::from_secs(20)).await,
        "connected"
    );
    // The service worker keeps the app shell, and nothing of the API.
    assert!(
        browser
            .wait_until(
                "return !!navigator.serviceWorker.controller",
                Duration::from_secs(15)
            )
            .await,
        "the service worker controls the page"
    );
    let shell_kept = "return caches.keys().then(names => Promise.all(names.map(n => caches.open(n).then(c => c.keys())))).then(all => all.flat().map(r => new URL(r.url).pathname)).then(paths => paths.includes('/console/patrol') && paths.includes('/static/patrol.js'))";
    assert!(
        browser
            .wait_until(shell_kept, Duration::from_secs(15))
            .await,
        "the app shell is kept"
    );

    // The hub goes away: the page says so at once, never a silently stale list.
    stop_hub(&mut w);
    assert!(
        browser
            .wait_until(
                "return ['reconnecting', 'offline', 'connecting'].includes(document.getElementById('conn').getAttribute('data-state')) && !document.getElementById('stale').hidden",
                Duration::from_secs(45)
            )
            .await,
        "the lost connection is shown: {}",
        browser
            .script("return document.getElementById('conn').innerText")
            .await
    );
    // Opened again without the hub: the kept app, saying there is no connection.
    browser.goto(&w.hub.url("/console/patrol")).await;
    assert!(
        browser
            .wait_until(
                "return !!document.getElementById('conn') && document.getElementById('conn').getAttribute('data-state') !== 'online' && !document.getElementById('stale').hidden",
                Duration::from_secs(20)
            )
            .await,
        "the app opens from the kept shell: {}",
        browser
            .script("return location.href + ' | ' + document.body.innerText.slice(0, 300)")
            .await
    );

    // Meanwhile the client presses the help button; the terminal keeps it.
    edge.press_help(&reqwest::Client::new()).await;
    restart_hub(
        &mut w,
        &[
            ("ETAHOIVA_ALARM_DAY_START", "00:00"),
            ("ETAHOIVA_ALARM_DAY_END", "00:00"),
        ],
    );
    // The app reconnects by itself and the new list has the alarm.
    assert!(
        browser
            .wait_until(
                "return !!document.querySelector('#alerts li[data-alert]')",
                Duration::from_secs(90)
            )
            .await,
        "the alert raised while the page was away arrives: {}",
        browser
            .script("return document.getElementById('conn').innerText")
            .await
    );
    assert!(
        browser.wait_until(online, Duration::from_secs(10)).await,
        "online again"
    );
    let api_kept = browser
        .script("return caches.keys().then(names => Promise.all(names.map(n => caches.open(n).then(c => c.keys())))).then(all => all.flat().filter(r => new URL(r.url).pathname.startsWith('/api/')).length)")
        .await;
    assert_eq!(api_kept, 0, "no API answer is ever kept");
    drop(edge);
}
