//! The world of the video call tests: a hub at night where Lestijoki's
//! patrol (Pekka) takes Aino's alarms, Paula patrols another area, Lotta is
//! a professional who may be invited; and what a browser's connection
//! receives, read with `getStats`.

use std::time::Duration;

use serde_json::{json, Value};

use super::api::{self, open_alerts, Api};
use super::browser::Browser;
use super::edge::eventually;
use super::{add_user, login, spawn_hub_in, HubProcess};

pub const PASSWORD: &str = "correct horse battery";

pub struct CallWorld {
    pub hub: HubProcess,
    pub http: reqwest::Client,
    pub admin: String,
    pub pekka: String,
    pub paula: String,
    pub lotta: String,
    pub aino: String,
    pub dir: tempfile::TempDir,
}

impl Api for CallWorld {
    fn api(&self) -> (&HubProcess, &reqwest::Client) {
        (&self.hub, &self.http)
    }
}

/// The hub at night; Aino's video policy on alarms is `alarm_video`
/// (`open_at_once`, `ring` or `never`).
pub async fn night_world(alarm_video: &str) -> CallWorld {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("hub");
    add_user(&data, "admin", "admin", PASSWORD);
    add_user(&data, "pekka", "patrol", PASSWORD);
    add_user(&data, "paula", "patrol", PASSWORD);
    add_user(&data, "lotta", "professional", PASSWORD);
    let hub = spawn_hub_in(
        &data,
        "hub",
        &[],
        &[
            ("ETAHOIVA_ALARM_DAY_START", "00:00"),
            ("ETAHOIVA_ALARM_DAY_END", "00:00"),
        ],
    );
    let http = hub.client();
    let admin = login(&http, &hub, "admin", PASSWORD).await;
    let pekka = login(&http, &hub, "pekka", PASSWORD).await;
    let paula = login(&http, &hub, "paula", PASSWORD).await;
    let lotta = login(&http, &hub, "lotta", PASSWORD).await;
    let mut w = CallWorld {
        hub,
        http,
        admin,
        pekka,
        paula,
        lotta,
        aino: String::new(),
        dir,
    };
    let admin = w.admin.clone();
    let users = api::user_ids(&w, &admin).await;
    let lesti = api::area(&w, &admin, "Lestijoki").await;
    let perho = api::area(&w, &admin, "Perhonjoki").await;
    let lesti_team = api::team(
        &w,
        &admin,
        json!({"name": "Yöpartio Lesti", "kind": "patrol", "area_id": lesti, "members": [users["pekka"]]}),
    )
    .await;
    let perho_team = api::team(
        &w,
        &admin,
        json!({"name": "Yöpartio Perho", "kind": "patrol", "area_id": perho, "members": [users["paula"]]}),
    )
    .await;
    for team in [&lesti_team, &perho_team] {
        api::on_duty(&w, &admin, team, 600).await;
    }
    w.aino = api::client(
        &w,
        &admin,
        json!({"name": "Aino Virtanen", "language": "fi", "area_id": lesti,
               "address": "Kirkkotie 3, Kannus", "alarm_video": alarm_video}),
    )
    .await;
    w
}

/// The alert of Aino's help press, once it reached the patrol.
pub async fn alarm(w: &CallWorld) -> String {
    assert!(
        eventually(Duration::from_secs(20), || async {
            !open_alerts(w, &w.pekka).await.is_empty()
        })
        .await,
        "the alarm reached the patrol"
    );
    open_alerts(w, &w.pekka).await[0]["id"]
        .as_str()
        .expect("alert id")
        .to_string()
}

/// What a page's connection receives, by `getStats`: decoded video frames,
/// received audio packets, encoded video frames and the connection state.
/// `handle` names the page's inspection object (`etahoivaCall` on the
/// console, `etahoivaKioskCall` on the kiosk); null while it has no connection.
pub async fn page_media(browser: &Browser, handle: &str) -> Value {
    // getStats is asynchronous: start a read, and return the last one.
    browser
        .script(&format!(
            "const c = window.{handle}; if (c && c.pc) {{ const pc = c.pc; pc.getStats().then(r => {{ \
               const s = {{framesDecoded: 0, audioPackets: 0, framesSent: 0, state: pc.connectionState}}; \
               r.forEach(x => {{ \
                 if (x.type === 'inbound-rtp' && x.kind === 'video') s.framesDecoded += x.framesDecoded || 0; \
                 if (x.type === 'inbound-rtp' && x.kind === 'audio') s.audioPackets += x.packetsReceived || 0; \
                 if (x.type === 'outbound-rtp' && x.kind === 'video') s.framesSent += x.framesEncoded || 0; \
               }}); window.__media = s; }}); }} else {{ window.__media = null; }} return window.__media || null;"
        ))
        .await
}

/// Waits until the page's connection decoded `frames` video frames and
/// received `packets` audio packets; the last reading.
pub async fn media_flows(
    browser: &Browser,
    handle: &str,
    frames: u64,
    packets: u64,
    limit: Duration,
) -> (bool, Value) {
    let deadline = std::time::Instant::now() + limit;
    let mut last = Value::Null;
    while std::time::Instant::now() < deadline {
        last = page_media(browser, handle).await;
        if !last.is_null()
            && last["framesDecoded"].as_u64().unwrap_or(0) >= frames
            && last["audioPackets"].as_u64().unwrap_or(0) >= packets
        {
            return (true, last);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    (false, last)
}
