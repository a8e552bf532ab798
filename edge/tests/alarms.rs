//! The client's alarm and notices over a real terminal link: a stand-in
//! hub stores a help press, reports each step of its handling and sends
//! messages for the client; the kiosk says where help is in the client's
//! language, never moves backwards, keeps it across a restart, and shows
//! each message until the client presses OK.

mod common;

use common::{http, kiosk_state, page, post_json, start, start_in, start_terminal, Hub};

use etahoiva_proto::{AlarmProgress, EdgeToHub, EventKind, HubToEdge};

fn alarm_status(alert_id: &str, keys: &[&str], progress: AlarmProgress, at: i64) -> HubToEdge {
    HubToEdge::AlarmStatus {
        alert_id: alert_id.into(),
        event_keys: keys.iter().map(|k| k.to_string()).collect(),
        progress,
        at,
    }
}

/// Sends `message` and waits until the terminal has handled it (frames
/// from the hub are handled in order, so a ping answered after it means
/// it is done).
async fn deliver(hub: &mut Hub, message: HubToEdge) {
    hub.send(message);
    assert_eq!(hub.sent_before_ping("sync").await, []);
}

/// The alarm line on the kiosk: from the state endpoint, and checked to be
/// the same on a fresh page load.
async fn alarm_line(kiosk: std::net::SocketAddr) -> Option<String> {
    let state = kiosk_state(kiosk).await;
    let line = state["alarm"]["text"].as_str().map(String::from);
    let page = page(kiosk, "/").await;
    assert!(
        page.contains(r#"<div class="alarm" id="alarm" aria-live="assertive" aria-atomic="true">"#)
    );
    match &line {
        Some(text) => assert!(
            page.contains(&format!(r#"id="alarm-text">{text}</p>"#)),
            "{page}"
        ),
        None => assert!(page.contains(r#"id="alarm-text" hidden></p>"#), "{page}"),
    }
    line
}

/// The client presses help on the kiosk; the hub receives the event.
async fn press_help(hub: &mut Hub, kiosk: std::net::SocketAddr) -> String {
    let (status, body) = post_json(kiosk, "/api/help", "").await;
    assert_eq!(status, 201, "{body}");
    let key = serde_json::from_str::<serde_json::Value>(&body).expect("json")["key"]
        .as_str()
        .expect("key")
        .to_string();
    match hub.next().await {
        EdgeToHub::Event(event) => {
            assert_eq!(event.key, key);
            assert_eq!(event.kind, EventKind::HelpButton);
        }
        other => panic!("expected the help event, got {other:?}"),
    }
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_help_press_is_followed_step_by_step_in_the_clients_language() {
    for (lang, received, acknowledged, en_route) in [
        (
            "fi",
            "Hälytys on vastaanotettu. Apua hälytetään.",
            "Hoitaja on nähnyt hälytyksesi.",
            "Apu on tulossa.",
        ),
        (
            "sv",
            "Ditt larm har tagits emot. Hjälp kallas.",
            "Vårdaren har sett ditt larm.",
            "Hjälpen är på väg.",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut hub, running, kiosk, _) = start_in(dir.path(), lang).await;
        assert_eq!(alarm_line(kiosk).await, None, "{lang}");

        let key = press_help(&mut hub, kiosk).await;
        let at = 1_763_000_000_000;
        hub.send(HubToEdge::Ack { key: key.clone() });
        deliver(
            &mut hub,
            alarm_status("a1", &[&key], AlarmProgress::Received, at),
        )
        .await;
        assert_eq!(alarm_line(kiosk).await.as_deref(), Some(received), "{lang}");
        let state = kiosk_state(kiosk).await;
        assert_eq!(state["alarm"]["progress"], "received");
        assert_eq!(state["alarm"]["alert_id"], "a1");
        assert_eq!(state["alarm"]["closed"], false);
        // The alarm's progress takes over from the help press's message.
        assert_eq!(state["help"], "idle", "{state}");

        deliver(
            &mut hub,
            alarm_status("a1", &[&key], AlarmProgress::Acknowledged, at + 1_000),
        )
        .await;
        assert_eq!(
            alarm_line(kiosk).await.as_deref(),
            Some(acknowledged),
            "{lang}"
        );
        deliver(
            &mut hub,
            alarm_status("a1", &[&key], AlarmProgress::EnRoute, at + 3_000),
        )
        .await;
        assert_eq!(alarm_line(kiosk).await.as_deref(), Some(en_route), "{lang}");

        // An older step delivered late does not move the display backwards.
        deliver(
            &mut hub,
            alarm_status("a1", &[&key], AlarmProgress::Acknowledged, at + 2_000),
        )
        .await;
        assert_eq!(alarm_line(kiosk).await.as_deref(), Some(en_route), "{lang}");
        assert_eq!(kiosk_state(kiosk).await["alarm"]["progress"], "en_route");

        running.stop().await;
        hub.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_survives_a_restart_and_ends_with_a_short_all_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut hub, running, _kiosk, profile) = start_in(dir.path(), "fi").await;
    let at = 1_763_000_000_000;
    // An alarm from the wristband: no help press of the kiosk in it.
    deliver(
        &mut hub,
        alarm_status("w1", &[], AlarmProgress::EnRoute, at),
    )
    .await;
    deliver(
        &mut hub,
        alarm_status("w1", &[], AlarmProgress::OnSite, at + 60_000),
    )
    .await;
    let saved =
        std::fs::read_to_string(dir.path().join("state").join("alarm.json")).expect("saved");
    assert!(saved.contains("on_site"), "{saved}");
    running.stop().await;

    // The terminal restarts while the hub does not let it in.
    let (running, kiosk) = start_terminal(&profile).await;
    assert_eq!(kiosk_state(kiosk).await["connected"], false);
    assert_eq!(
        alarm_line(kiosk).await.as_deref(),
        Some("Auttaja on perillä.")
    );

    // Back online, the hub repeats an older step: still on site.
    hub.admit_one();
    hub.wait_connected().await;
    deliver(
        &mut hub,
        alarm_status("w1", &[], AlarmProgress::EnRoute, at),
    )
    .await;
    assert_eq!(
        alarm_line(kiosk).await.as_deref(),
        Some("Auttaja on perillä.")
    );

    deliver(
        &mut hub,
        alarm_status("w1", &[], AlarmProgress::Resolved, at + 600_000),
    )
    .await;
    assert_eq!(
        alarm_line(kiosk).await.as_deref(),
        Some("Hälytys on hoidettu.")
    );
    assert_eq!(kiosk_state(kiosk).await["alarm"]["closed"], true);
    // A late open step does not reopen a handled alarm.
    deliver(
        &mut hub,
        alarm_status("w1", &[], AlarmProgress::OnSite, at + 700_000),
    )
    .await;
    assert_eq!(
        alarm_line(kiosk).await.as_deref(),
        Some("Hälytys on hoidettu.")
    );
    // A new press of the help button clears the all-clear at once.
    let _ = press_help(&mut hub, kiosk).await;
    assert_eq!(alarm_line(kiosk).await, None);

    running.stop().await;
    hub.task.abort();
}

/// The client's OK as the page without JavaScript sends it.
async fn ok_by_form(kiosk: std::net::SocketAddr, id: &str, origin: Option<&str>) -> u16 {
    let body = format!("id={id}");
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /api/notice/dismiss HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{origin}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        port = kiosk.port(),
        len = body.len(),
    );
    http(kiosk, request).await.0
}

fn notice_ids(state: &serde_json::Value) -> Vec<String> {
    state["notices"]
        .as_array()
        .expect("notices")
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_stay_until_the_client_presses_ok_even_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut hub, running, kiosk) = start(dir.path()).await;
    let outage = "Hoitoyksikölle on kerrottu, että yhteys katkesi.";
    hub.send(HubToEdge::Notice {
        id: "n1".into(),
        text: outage.into(),
    });
    deliver(
        &mut hub,
        HubToEdge::Notice {
            id: "n2".into(),
            text: "Huomenna <ei> käyntiä".into(),
        },
    )
    .await;
    let state = kiosk_state(kiosk).await;
    assert_eq!(notice_ids(&state), ["n2", "n1"]);
    assert_eq!(state["notices"][1]["text"], outage);
    let shown = page(kiosk, "/").await;
    assert!(
        shown.contains(&format!(r#"id="notice-text-1">{outage}</p>"#)),
        "{shown}"
    );
    assert!(shown.contains("Huomenna &lt;ei&gt; käyntiä"));
    assert!(shown.contains(r#"<input type="hidden" name="id" value="n1"><button type="submit" class="ok" aria-describedby="notice-text-1">OK</button>"#));

    // OK from the page's script.
    let (status, body) = post_json(kiosk, "/api/notice/dismiss", r#"{"id":"n1"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(notice_ids(&kiosk_state(kiosk).await), ["n2"]);
    let (status, _) = post_json(kiosk, "/api/notice/dismiss", r#"{"id":"nope"}"#).await;
    assert_eq!(status, 404);

    // A form from elsewhere, or one that does not say where it comes from, is refused.
    assert_eq!(
        ok_by_form(kiosk, "n2", Some("http://evil.example")).await,
        403
    );
    assert_eq!(ok_by_form(kiosk, "n2", None).await, 403);
    assert_eq!(notice_ids(&kiosk_state(kiosk).await), ["n2"]);
    // OK from the page without JavaScript: back to the page.
    let origin = format!("http://127.0.0.1:{}", kiosk.port());
    assert_eq!(ok_by_form(kiosk, "n2", Some(&origin)).await, 303);
    assert!(notice_ids(&kiosk_state(kiosk).await).is_empty());
    running.stop().await;

    // After a restart they stay dismissed, even when the hub sends one again.
    let profile = dir.path().join("profile.toml");
    let (running, kiosk) = start_terminal(&profile).await;
    assert!(notice_ids(&kiosk_state(kiosk).await).is_empty());
    hub.admit_one();
    hub.wait_connected().await;
    hub.send(HubToEdge::Notice {
        id: "n1".into(),
        text: outage.into(),
    });
    deliver(
        &mut hub,
        HubToEdge::Notice {
            id: "n3".into(),
            text: "Yhteys toimii taas.".into(),
        },
    )
    .await;
    assert_eq!(notice_ids(&kiosk_state(kiosk).await), ["n3"]);
    running.stop().await;

    // An unread notice is still there after a restart.
    let (running, kiosk) = start_terminal(&profile).await;
    let state = kiosk_state(kiosk).await;
    assert_eq!(notice_ids(&state), ["n3"]);
    assert_eq!(state["notices"][0]["text"], "Yhteys toimii taas.");
    assert!(page(kiosk, "/").await.contains(">Yhteys toimii taas.</p>"));
    running.stop().await;
    hub.task.abort();
}
