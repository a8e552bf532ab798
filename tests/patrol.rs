//! Black-box tests of the alarm front-ends: the night patrol's phone app and
//! the nurse's alarm queue, on a real hub with a real terminal pressing its
//! help button and a real browser on the other end.

mod common;

use std::time::Duration;

use common::alarm::{home_terminal, kiosk_http};
use common::api::{self, get, Api};
use common::browser::Browser;
use common::edge::{eventually, spawn_edge, EdgeProcess};
use common::{add_user, login, spawn_hub_in, HubProcess};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

/// The page's connection indicator says it is online.
const ONLINE: &str =
    "return document.getElementById('conn').getAttribute('data-state') === 'online'";
/// The page lists at least one alert.
const ANY_ALERT: &str = "return !!document.querySelector('#alerts li[data-alert]')";

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

impl Api for World {
    fn api(&self) -> (&HubProcess, &reqwest::Client) {
        (&self.hub, &self.http)
    }
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
    let admin = w.admin.clone();
    let users = api::user_ids(&w, &admin).await;
    w.pekka = users["pekka"].clone();
    w.anna = users["anna"].clone();
    let area = api::area(&w, &admin, "Lestijoki").await;
    api::team(
        &w,
        &admin,
        json!({"name": "Etähoitokeskus", "kind": "central", "members": [w.anna]}),
    )
    .await;
    let patrol = api::team(
        &w,
        &admin,
        json!({
            "name": "Yöpartio Lestijoki", "kind": "patrol", "area_id": area,
            "members": [w.pekka]
        }),
    )
    .await;
    api::on_duty(&w, &admin, &patrol, 12 * 60).await;
    w.client = api::client(
        &w,
        &admin,
        json!({
            "name": "Aino Virtanen", "language": "fi", "area_id": area,
            "address": "Kirkkotie 3, Kannus",
            "door_instructions": "Avainsäilö ovella, koodi 4711",
            "care_notes": "Diabetes; kuulee huonosti"
        }),
    )
    .await;
    w
}

/// Signs in through the sign-in page and lands on `next`.
async fn sign_in(browser: &Browser, w: &World, username: &str, next: &str) {
    browser.sign_in(&w.hub, username, PASSWORD, next).await;
}

/// A browser test's stage: a terminal in the client's home, and a browser
/// signed in as `username` on `page`.
struct Stage {
    edge: EdgeProcess,
    browser: Browser,
    _root: tempfile::TempDir,
}

async fn stage(w: &World, username: &str, page: &str) -> Stage {
    let root = tempfile::tempdir().expect("tempdir");
    let edge = spawn_edge(&home_terminal(&w.hub, root.path(), "Aino", &w.client));
    let browser = Browser::start().await;
    sign_in(&browser, w, username, page).await;
    Stage {
        edge,
        browser,
        _root: root,
    }
}

/// Clicks the first element matching `css`.
async fn click(browser: &Browser, css: &str) {
    let element = browser
        .find(css)
        .await
        .unwrap_or_else(|| panic!("{css} is on the page"));
    browser.click(&element).await;
}

/// Types `text` into the first element matching `css`.
async fn type_into(browser: &Browser, css: &str, text: &str) {
    let element = browser
        .find(css)
        .await
        .unwrap_or_else(|| panic!("{css} is on the page"));
    browser.type_text(&element, text).await;
}

/// Asserts that `script` comes true in the page within `secs` seconds.
async fn expect_page(browser: &Browser, script: &str, secs: u64, what: &str) {
    assert!(
        browser.wait_until(script, Duration::from_secs(secs)).await,
        "{what}"
    );
}

/// As `expect_page`, saying what `shown` returns in the page when it fails.
async fn expect_page_showing(browser: &Browser, script: &str, secs: u64, what: &str, shown: &str) {
    let came = browser.wait_until(script, Duration::from_secs(secs)).await;
    assert!(came, "{what}: {}", browser.script(shown).await);
}

/// The id of the first alert listed, and the CSS selector of its card.
async fn first_card(browser: &Browser) -> (String, String) {
    let id = browser
        .script(
            "return document.querySelector('#alerts li[data-alert]').getAttribute('data-alert')",
        )
        .await
        .as_str()
        .expect("alert id")
        .to_string();
    let card = format!("#alerts li[data-alert=\"{id}\"]");
    (id, card)
}

/// The open alert of the world's client, as `who` sees it.
async fn open_alert_of_client(w: &World, who: &str) -> Option<Value> {
    api::open_alerts(w, who)
        .await
        .into_iter()
        .find(|a| a["client_id"] == w.client.as_str())
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
    let Stage { edge, browser, .. } = &stage(&w, "pekka", "/console/patrol").await;
    expect_page_showing(
        browser,
        ONLINE,
        20,
        "the app is connected",
        "return document.getElementById('conn').innerText",
    )
    .await;
    let empty = browser
        .script("return !document.getElementById('no-alerts').hidden && document.querySelectorAll('#alerts li').length === 0")
        .await;
    assert_eq!(empty, true, "no alerts yet");
    // Start duty: the gesture that lets the page sound the alarm.
    click(browser, "#duty").await;
    assert_eq!(
        browser
            .script("return document.body.getAttribute('data-duty')")
            .await,
        "on"
    );

    // The client presses the help button at home.
    edge.press_help(&kiosk_http()).await;
    expect_page(browser, ANY_ALERT, 30, "the alert appears live").await;
    let (id, card) = first_card(browser).await;
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
    expect_page(
        browser,
        "return document.getElementById('announce').textContent.includes('Aino Virtanen')",
        5,
        "the new alert is announced",
    )
    .await;
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
    click(browser, &format!("{card} button[data-action=acknowledge]")).await;
    expect_page(
        browser,
        &format!(
            "return document.querySelector('{card}')?.getAttribute('data-status') === 'acknowledged'"
        ),
        15,
        "acknowledged shown",
    )
    .await;
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
    let detail = api::alert(&w, &pekka, &id).await;
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
    click(browser, &format!("{card} button[data-action=resolve]")).await;
    click(browser, "#resolve input[value=false_alarm]").await;
    click(browser, "#resolve-submit").await;
    expect_page_showing(
        browser,
        "return !document.getElementById('resolve-reason-box').hidden && document.activeElement.id === 'resolve-reason'",
        10,
        "the 422 asks for a reason",
        "return document.getElementById('resolve-error').innerText",
    )
    .await;
    type_into(
        browser,
        "#resolve-reason",
        "Asiakas painoi vahingossa, soitto omaiselle",
    )
    .await;
    click(browser, "#resolve-submit").await;
    expect_page(
        browser,
        &format!(
            "return !document.querySelector('{card}') && !document.getElementById('resolve').open"
        ),
        15,
        "the resolved alert leaves the list",
    )
    .await;
    let detail = api::alert(&w, &pekka, &id).await;
    assert_eq!(detail["alert"]["status"], "resolved", "{detail}");
    assert_eq!(detail["alert"]["outcome"], "false_alarm");
    assert!(open_alert_of_client(&w, &pekka).await.is_none());
}

#[tokio::test]
async fn browser_nurse_answers_a_day_alarm_from_the_queue() {
    if !common::browser::available("browser_nurse_answers_a_day_alarm_from_the_queue") {
        return;
    }
    let w = world(true).await;
    let Stage { edge, browser, .. } = &stage(&w, "anna", "/console/alarms").await;
    expect_page(browser, ONLINE, 20, "the queue is connected").await;
    // The answer-time shares of the last 30 days (no alarms yet).
    expect_page(
        browser,
        "return document.querySelectorAll('#report li').length > 0",
        15,
        "the report is shown",
    )
    .await;

    edge.press_help(&kiosk_http()).await;
    expect_page(
        browser,
        "return !!document.querySelector('#alerts li.unanswered[data-alert]')",
        30,
        "the alarm appears, highlighted as unanswered",
    )
    .await;
    let (id, card) = first_card(browser).await;
    click(
        browser,
        &format!("{card} button[data-action=answer][data-contact=reached]"),
    )
    .await;
    expect_page(
        browser,
        &format!("return !document.querySelector('{card}.unanswered') && !!document.querySelector('{card}')"),
        15,
        "answered: no longer highlighted",
    )
    .await;
    let anna = login(&w.http, &w.hub, "anna", PASSWORD).await;
    let detail = api::alert(&w, &anna, &id).await;
    assert_eq!(detail["alert"]["contact"], "reached", "{detail}");
    assert_eq!(detail["alert"]["answered_by"], w.anna.as_str());

    // Resolved from the queue: reached by video, so no reason is needed.
    click(browser, &format!("{card} button[data-action=resolve]")).await;
    browser
        .script("const s = document.getElementById('resolve-outcome'); s.value = 'helped_remotely'; return s.value")
        .await;
    click(browser, "#resolve button[type=submit]").await;
    expect_page(
        browser,
        &format!("return !document.querySelector('{card}')"),
        15,
        "the resolved alarm leaves the queue",
    )
    .await;
    expect_page_showing(
        browser,
        "return document.querySelectorAll('#report li[data-within]').length === 2",
        15,
        "the report counts the answered alarm",
        "return document.getElementById('report').innerText",
    )
    .await;

    // Another press: dispatched to the area's patrol on duty, then cancelled with a reason.
    edge.press_help(&kiosk_http()).await;
    expect_page(browser, ANY_ALERT, 30, "the second alarm appears").await;
    let (id, card) = first_card(browser).await;
    click(browser, &format!("{card} button[data-action=dispatch]")).await;
    type_into(browser, "#dispatch-note", "Ei vastaa videoon").await;
    click(browser, "#dispatch button[type=submit]").await;
    let dispatched = eventually(Duration::from_secs(15), || async {
        let (_, d) = get(&w, &anna, &format!("/api/v1/alerts/{id}")).await;
        d["alert"]["dispatched_at"].is_number()
    })
    .await;
    assert!(dispatched, "dispatched to the patrol");
    let d = api::alert(&w, &anna, &id).await;
    assert_eq!(d["alert"]["team_name"], "Yöpartio Lestijoki", "{d}");
    expect_page(
        browser,
        "return !document.getElementById('dispatch').open",
        10,
        "the dialog closes",
    )
    .await;
    // The nurse still sees it on its way, and may call it off.
    expect_page(
        browser,
        &format!("return !!document.querySelector('{card}')"),
        5,
        "the dispatched alarm stays in the queue",
    )
    .await;
    click(browser, &format!("{card} button[data-action=cancel]")).await;
    type_into(browser, "#cancel-reason", "Omainen paikalla").await;
    click(browser, "#cancel button[type=submit]").await;
    expect_page(
        browser,
        &format!("return !document.querySelector('{card}')"),
        15,
        "the cancelled alarm leaves the queue",
    )
    .await;
    let d = api::alert(&w, &anna, &id).await;
    assert_eq!(d["alert"]["status"], "cancelled", "{d}");
}

/// Stops the world's hub (SIGTERM, as a service manager would).
fn stop_hub(w: &mut World) {
    if !w.hub.terminate(Duration::from_secs(15)) {
        let _ = w.hub.child.kill();
        let _ = w.hub.child.wait();
    }
}

/// Starts the hub again with the same data on the addresses it had, so that
/// open pages and terminals find it where they left it.
fn restart_hub(w: &mut World, env: &[(&str, &str)]) {
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
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        match common::launch(command, &data, Duration::from_secs(30)) {
            Ok(fresh) => {
                drop(std::mem::replace(&mut w.hub, fresh));
                return;
            }
            // The old listener's address was not free yet: try again.
            Err(lines) => assert!(
                std::time::Instant::now() < deadline,
                "the hub did not start again on {listen}: {lines:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test]
async fn browser_patrol_app_survives_a_lost_hub_and_misses_nothing() {
    if !common::browser::available("browser_patrol_app_survives_a_lost_hub_and_misses_nothing") {
        return;
    }
    let mut w = world(false).await;
    let Stage { edge, browser, .. } = &stage(&w, "pekka", "/console/patrol").await;
    let online = "return document.getElementById('conn').getAttribute('data-state') === 'online' && document.getElementById('stale').hidden";
    expect_page(browser, online, 20, "connected").await;
    // The service worker keeps the app shell, and nothing of the API.
    expect_page(
        browser,
        "return !!navigator.serviceWorker.controller",
        15,
        "the service worker controls the page",
    )
    .await;
    let shell_kept = "return caches.keys().then(names => Promise.all(names.map(n => caches.open(n).then(c => c.keys())))).then(all => all.flat().map(r => new URL(r.url).pathname)).then(paths => paths.includes('/console/patrol') && paths.includes('/static/patrol.js'))";
    expect_page(browser, shell_kept, 15, "the app shell is kept").await;

    // The hub goes away: the page says so at once, never a silently stale list.
    stop_hub(&mut w);
    expect_page_showing(
        browser,
        "return ['reconnecting', 'offline', 'connecting'].includes(document.getElementById('conn').getAttribute('data-state')) && !document.getElementById('stale').hidden",
        45,
        "the lost connection is shown",
        "return document.getElementById('conn').innerText",
    )
    .await;
    // Opened again without the hub: the kept app, saying there is no connection.
    browser.goto(&w.hub.url("/console/patrol")).await;
    expect_page_showing(
        browser,
        "return !!document.getElementById('conn') && document.getElementById('conn').getAttribute('data-state') !== 'online' && !document.getElementById('stale').hidden",
        20,
        "the app opens from the kept shell",
        "return location.href + ' | ' + document.body.innerText.slice(0, 300)",
    )
    .await;

    // Meanwhile the client presses the help button; the terminal keeps it.
    edge.press_help(&kiosk_http()).await;
    restart_hub(
        &mut w,
        &[
            ("ETAHOIVA_ALARM_DAY_START", "00:00"),
            ("ETAHOIVA_ALARM_DAY_END", "00:00"),
        ],
    );
    // The app reconnects by itself and the new list has the alarm.
    expect_page_showing(
        browser,
        ANY_ALERT,
        90,
        "the alert raised while the page was away arrives",
        "return document.getElementById('conn').innerText",
    )
    .await;
    expect_page(browser, online, 10, "online again").await;
    let api_kept = browser
        .script("return caches.keys().then(names => Promise.all(names.map(n => caches.open(n).then(c => c.keys())))).then(all => all.flat().filter(r => new URL(r.url).pathname.startsWith('/api/')).length)")
        .await;
    assert_eq!(api_kept, 0, "no API answer is ever kept");
}
