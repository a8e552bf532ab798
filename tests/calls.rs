//! Black-box tests of video calls through the hub's relay: a real hub, real
//! simulated terminals (`etahoiva-edge --simulate`) and a console peer on the
//! call signalling WebSocket, with media carried both ways over loopback.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::alarm::{home_terminal, kiosk_http};
use common::api::{self, alert, call};
use common::calls::{alarm, media_flows, night_world, page_media, CallWorld, PASSWORD};
use common::edge::{eventually, spawn_edge_with, Bundle, EdgeProcess};
use common::feed::{self, Feed};
use etahoiva_media::generate::MediaLoop;
use etahoiva_media::peer::{MediaReport, Peer};
use serde_json::{json, Value};

type World = CallWorld;

/// Aino's simulated terminal, the alarm she raised on it, and Pekka's call
/// to her home: (terminal bundle, terminal, kiosk client, alert, call).
async fn simulated_alarm_call(w: &World) -> (Bundle, EdgeProcess, reqwest::Client, String, String) {
    let bundle = home_terminal(&w.hub, w.dir.path(), "Aino", &w.aino);
    let edge = spawn_edge_with(&bundle, &["--simulate"]);
    let kiosk = kiosk_http();
    edge.press_help(&kiosk).await;
    let id = alarm(w).await;
    let (s, opened) = call(
        w,
        "POST",
        &w.pekka,
        &format!("/api/v1/alerts/{id}/call"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{opened}");
    let call_id = opened["call_id"].as_str().expect("call id").to_string();
    (bundle, edge, kiosk, id, call_id)
}

fn media_report(bundle: &Bundle) -> Option<Value> {
    let text = std::fs::read_to_string(bundle.dir.join("state/media.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The next message of the call signalling that satisfies `want`.
async fn until(socket: &mut Feed, limit: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = feed::next(socket, left)
            .await
            .expect("call signalling message in time");
        if want(&message) {
            return message;
        }
    }
}

fn small_loop() -> Arc<MediaLoop> {
    Arc::new(MediaLoop::small().expect("media loop"))
}

async fn wait_report(peer: &Peer, limit: Duration, want: impl Fn(&MediaReport) -> bool) -> bool {
    eventually(limit, || async { want(&peer.report()) }).await
}

fn state_dir_has(bundle: &Bundle, want: impl Fn(&Value) -> bool) -> bool {
    media_report(bundle).is_some_and(|r| want(&r))
}

#[tokio::test]
async fn a_patrol_and_a_simulated_terminal_see_and_hear_each_other_through_the_hub() {
    let w = night_world("open_at_once").await;
    // Aino presses help on her simulated terminal; Pekka handles the alarm
    // and calls the home: the camera opens at once, as she allows.
    let (bundle, edge, kiosk, id, call_id) = simulated_alarm_call(&w).await;

    // Paula, on another area's patrol, cannot take the call's media.
    let mut intruder = feed::connect_to(&w.hub, &w.paula, "/api/v1/calls/live").await;
    feed::send(&mut intruder, json!({"type": "join", "call_id": call_id})).await;
    let refused = until(&mut intruder, Duration::from_secs(10), |m| {
        m["type"] != "quality"
    })
    .await;
    assert_eq!(refused["type"], "refused", "{refused}");

    // Pekka's console joins the call's media: the hub offers, the console answers.
    let mut console = feed::connect_to(&w.hub, &w.pekka, "/api/v1/calls/live").await;
    feed::send(&mut console, json!({"type": "join", "call_id": call_id})).await;
    let offer = until(&mut console, Duration::from_secs(10), |m| {
        m["type"] == "offer"
    })
    .await;
    let sdp = offer["sdp"].as_str().expect("sdp");
    assert!(sdp.contains("a=ice-lite"), "the hub is ICE-lite: {sdp}");
    assert!(sdp.contains("VP8/90000") && sdp.contains("opus/48000"));
    let leg_id = offer["leg_id"].as_str().expect("leg").to_string();
    let peer = Peer::answer(sdp, Some(small_loop())).await.expect("answer");
    feed::send(
        &mut console,
        json!({"type": "answer", "call_id": call_id, "leg_id": leg_id, "sdp": peer.answer_sdp()}),
    )
    .await;
    peer.send_media(true);

    // Both legs connect through the hub.
    let mut connected = Vec::new();
    while connected.len() < 2 {
        let m = until(&mut console, Duration::from_secs(20), |m| {
            m["type"] == "connected"
        })
        .await;
        connected.push(m["party"].as_str().unwrap_or_default().to_string());
    }
    connected.sort();
    assert_eq!(connected, ["staff", "terminal"]);

    // The console receives the terminal's moving picture and tone...
    assert!(
        wait_report(&peer, Duration::from_secs(20), |r| r.video_frames_in >= 15
            && r.audio_packets_in >= 50)
        .await,
        "the console received the terminal's media: {:?}",
        peer.report()
    );
    // ...and the terminal the console's.
    assert!(
        eventually(Duration::from_secs(20), || async {
            state_dir_has(&bundle, |r| {
                r["call_id"] == call_id.as_str()
                    && r["video_frames_in"].as_u64().unwrap_or(0) >= 15
                    && r["audio_packets_in"].as_u64().unwrap_or(0) >= 50
            })
        })
        .await,
        "the terminal received the console's media: {:?}",
        media_report(&bundle)
    );
    // The hub reports what each leg carries.
    let quality = until(&mut console, Duration::from_secs(10), |m| {
        m["type"] == "quality"
    })
    .await;
    let legs = quality["legs"].as_array().expect("legs");
    assert_eq!(legs.len(), 2, "{quality}");
    assert!(legs
        .iter()
        .all(|l| l["connected"] == true && l["received_packets"].as_u64().unwrap_or(0) > 50));

    // Pekka hangs up: the terminal's call ends and the record says who ended it.
    feed::send(&mut console, json!({"type": "hang_up", "call_id": call_id})).await;
    let ended = until(&mut console, Duration::from_secs(10), |m| {
        m["type"] == "state"
    })
    .await;
    assert_eq!(ended["state"], "ended");
    assert!(
        eventually(Duration::from_secs(10), || async {
            edge.kiosk_state(&kiosk).await["call"].is_null()
        })
        .await,
        "the terminal's call ended"
    );
    let calls = alert(&w, &w.pekka, &id).await["calls"].clone();
    assert_eq!(calls[0]["state"], "ended", "{calls}");
    assert_eq!(calls[0]["end_reason"], "hung_up_by_staff", "{calls}");
    // The media stops with the call.
    let frames = media_report(&bundle).expect("report")["video_frames_in"]
        .as_u64()
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = media_report(&bundle).expect("report")["video_frames_in"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(frames, later, "no media after the call ended");
    // A join after the end is refused.
    feed::send(&mut console, json!({"type": "join", "call_id": call_id})).await;
    let refused = until(&mut console, Duration::from_secs(10), |m| {
        m["type"] == "refused"
    })
    .await;
    assert!(
        refused["message"].as_str().unwrap_or("").contains("ended"),
        "{refused}"
    );
    drop(edge);
}

#[tokio::test]
async fn browser_console_calls_a_simulated_terminal_and_both_get_the_others_media() {
    if !common::browser::available(
        "browser_console_calls_a_simulated_terminal_and_both_get_the_others_media",
    ) {
        return;
    }
    let w = night_world("open_at_once").await;
    // Aino presses help on her simulated terminal; Pekka handles the alarm
    // and calls the home: the camera opens at once, as she allows.
    let (bundle, edge, kiosk, id, call_id) = simulated_alarm_call(&w).await;

    // Pekka's browser, with a fake camera and microphone, opens the call screen.
    let browser = common::browser::Browser::start().await;
    browser
        .sign_in(&w.hub, "pekka", PASSWORD, "/console/patrol")
        .await;
    browser
        .goto(&w.hub.url(&format!("/console/call/{call_id}")))
        .await;
    let (got_media, last) =
        media_flows(&browser, "etahoivaCall", 15, 50, Duration::from_secs(40)).await;
    assert!(
        got_media,
        "the browser decoded the terminal's video and received its sound: {last}; page: {}",
        browser
            .script("return document.getElementById('call-state').textContent + ' ' + document.getElementById('call-error').textContent")
            .await
    );
    assert_eq!(last["state"], "connected");
    // The terminal receives the browser's camera and microphone.
    assert!(
        eventually(Duration::from_secs(20), || async {
            state_dir_has(&bundle, |r| {
                r["call_id"] == call_id.as_str()
                    && r["video_frames_in"].as_u64().unwrap_or(0) >= 15
                    && r["audio_packets_in"].as_u64().unwrap_or(0) >= 50
            })
        })
        .await,
        "the terminal received the browser's media: {:?}",
        media_report(&bundle)
    );
    // The page says the call is on and shows a quality reading.
    assert!(
        browser
            .wait_until(
                "return window.etahoivaCall.state === 'connected' && \
                 document.getElementById('quality').dataset.level !== 'unknown'",
                Duration::from_secs(10),
            )
            .await,
        "call state and quality shown"
    );
    // A network change: the page asks for an ICE restart, the hub offers
    // fresh credentials, and the call carries on with its media.
    let ufrag = "const m = /a=ice-ufrag:(\\S+)/.exec(window.etahoivaCall.pc.remoteDescription.sdp); return m && m[1];";
    let before = browser.script(ufrag).await;
    let frames_before = page_media(&browser, "etahoivaCall").await["framesDecoded"]
        .as_u64()
        .unwrap_or(0);
    browser
        .script("window.etahoivaCall.restartIce(); return true;")
        .await;
    let mut after = Value::Null;
    let mut restarted = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline && !restarted {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = browser.script(ufrag).await;
        after = page_media(&browser, "etahoivaCall").await;
        restarted = now != before
            && after["state"] == "connected"
            && after["framesDecoded"].as_u64().unwrap_or(0) >= frames_before + 30;
    }
    assert!(
        restarted,
        "after the ICE restart the call goes on: ufrag {before} -> {}, {after}",
        browser.script(ufrag).await
    );

    // Mute and camera off are toggles the page reflects.
    let mute = browser.find("#mute").await.expect("mute");
    browser.click(&mute).await;
    assert_eq!(
        browser
            .script("return [document.getElementById('mute').getAttribute('aria-pressed'), \
                     window.etahoivaCall.pc.getSenders().filter(s => s.track && s.track.kind === 'audio')[0].track.enabled]")
            .await,
        json!(["true", false])
    );
    // Hanging up ends the call on the terminal too.
    let hang_up = browser.find("#hang-up").await.expect("hang up");
    browser.click(&hang_up).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            edge.kiosk_state(&kiosk).await["call"].is_null()
        })
        .await,
        "the terminal's call ended"
    );
    let calls = alert(&w, &w.pekka, &id).await["calls"].clone();
    assert_eq!(calls[0]["end_reason"], "hung_up_by_staff", "{calls}");
}

/// A console peer in a call: its signalling socket, its connection and its leg.
struct Console {
    socket: Feed,
    peer: Peer,
    leg_id: String,
}

/// `token`'s console joins a call's media and answers the hub's offer.
async fn join(w: &World, token: &str, call_id: &str) -> Console {
    let mut socket = feed::connect_to(&w.hub, token, "/api/v1/calls/live").await;
    feed::send(&mut socket, json!({"type": "join", "call_id": call_id})).await;
    let offer = until(&mut socket, Duration::from_secs(10), |m| {
        m["type"] == "offer"
    })
    .await;
    let leg_id = offer["leg_id"].as_str().expect("leg").to_string();
    let peer = Peer::answer(offer["sdp"].as_str().expect("sdp"), Some(small_loop()))
        .await
        .expect("answer");
    feed::send(
        &mut socket,
        json!({"type": "answer", "call_id": call_id, "leg_id": leg_id, "sdp": peer.answer_sdp()}),
    )
    .await;
    peer.send_media(true);
    Console {
        socket,
        peer,
        leg_id,
    }
}

/// Answers the hub's next offer for this console's leg (somebody joined).
async fn answer_renegotiation(console: &mut Console, call_id: &str) {
    let leg = console.leg_id.clone();
    let offer = until(&mut console.socket, Duration::from_secs(15), |m| {
        m["type"] == "offer" && m["leg_id"] == leg.as_str()
    })
    .await;
    let answer = console
        .peer
        .renegotiate(offer["sdp"].as_str().expect("sdp"))
        .await
        .expect("renegotiation answered");
    feed::send(
        &mut console.socket,
        json!({"type": "answer", "call_id": call_id, "leg_id": leg, "sdp": answer}),
    )
    .await;
}

#[tokio::test]
async fn a_patrol_brings_a_doctor_into_the_call_who_sees_both_and_leaves() {
    let w = night_world("open_at_once").await;
    // Aino presses help on her simulated terminal; Pekka handles the alarm
    // and calls the home: the camera opens at once, as she allows.
    let (bundle, edge, kiosk, id, call_id) = simulated_alarm_call(&w).await;
    let mut pekka = join(&w, &w.pekka, &call_id).await;
    assert!(
        wait_report(&pekka.peer, Duration::from_secs(20), |r| r.video_frames_in
            >= 10)
        .await,
        "the call runs: {:?}",
        pekka.peer.report()
    );

    // Only the caller invites, and only people with a care role.
    let users = api::user_ids(&w, &w.admin).await;
    let (s, invitable) = call(
        &w,
        "GET",
        &w.pekka,
        &format!("/api/v1/calls/{call_id}/invitable"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{invitable}");
    let names: Vec<&str> = invitable
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(
        names.contains(&users["lotta"].as_str()) && !names.contains(&users["paula"].as_str()),
        "{invitable}"
    );
    let (s, _) = call(
        &w,
        "GET",
        &w.lotta,
        &format!("/api/v1/calls/{call_id}/invitable"),
        None,
    )
    .await;
    assert_eq!(s, 403, "not the caller");
    let mut lotta_socket = feed::connect_to(&w.hub, &w.lotta, "/api/v1/calls/live").await;
    feed::send(
        &mut lotta_socket,
        json!({"type": "join", "call_id": call_id}),
    )
    .await;
    let refused = until(&mut lotta_socket, Duration::from_secs(10), |m| {
        m["type"] == "refused"
    })
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or("")
            .contains("not yours"),
        "not invited yet: {refused}"
    );
    feed::send(
        &mut pekka.socket,
        json!({"type": "invite", "call_id": call_id, "user_id": users["paula"]}),
    )
    .await;
    let refused = until(&mut pekka.socket, Duration::from_secs(10), |m| {
        m["type"] == "refused"
    })
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot join"),
        "{refused}"
    );

    // Pekka invites Dr Lotta: her console is told, she joins.
    feed::send(
        &mut pekka.socket,
        json!({"type": "invite", "call_id": call_id, "user_id": users["lotta"]}),
    )
    .await;
    let invited = until(&mut lotta_socket, Duration::from_secs(10), |m| {
        m["type"] == "invited"
    })
    .await;
    assert_eq!(invited["call_id"], call_id.as_str(), "{invited}");
    assert_eq!(invited["client_first_name"], "Aino");
    drop(lotta_socket);
    let mut lotta = join(&w, &w.lotta, &call_id).await;
    // Pekka's connection gets tracks for Lotta (a new offer); so does the terminal.
    answer_renegotiation(&mut pekka, &call_id).await;
    let three = until(&mut pekka.socket, Duration::from_secs(20), |m| {
        m["type"] == "participants" && m["participants"].as_array().is_some_and(|p| p.len() == 3)
    })
    .await;
    let roles: Vec<&str> = three["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["role"].as_str())
        .collect();
    assert!(
        roles.contains(&"client") && roles.contains(&"caller") && roles.contains(&"guest"),
        "{three}"
    );

    // Everybody sees and hears both others.
    assert!(
        wait_report(&lotta.peer, Duration::from_secs(20), |r| r.video_sources_in
            >= 2
            && r.video_frames_in >= 30
            && r.audio_packets_in >= 50)
        .await,
        "the doctor gets the client's and the nurse's media: {:?}",
        lotta.peer.report()
    );
    assert!(
        wait_report(&pekka.peer, Duration::from_secs(20), |r| r.video_sources_in
            >= 2)
        .await,
        "the patrol gets the client's and the doctor's video: {:?}",
        pekka.peer.report()
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            state_dir_has(&bundle, |r| {
                r["video_sources_in"].as_u64().unwrap_or(0) >= 2
            })
        })
        .await,
        "the client sees both professionals: {:?}",
        media_report(&bundle)
    );

    // Lotta leaves; the call goes on between Aino and Pekka.
    let lotta_leg = lotta.leg_id.clone();
    feed::send(
        &mut lotta.socket,
        json!({"type": "leave", "call_id": call_id}),
    )
    .await;
    let left = until(&mut pekka.socket, Duration::from_secs(10), |m| {
        m["type"] == "left"
    })
    .await;
    assert_eq!(left["leg_id"], lotta_leg.as_str(), "{left}");
    let before = pekka.peer.report().video_frames_in;
    assert!(
        wait_report(&pekka.peer, Duration::from_secs(10), |r| r.video_frames_in
            >= before + 20)
        .await,
        "the client's picture keeps coming after the doctor left"
    );
    assert!(edge.kiosk_state(&kiosk).await["call"]["state"] == "answered");
    // The call's record says who took part, and that the doctor left.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let calls = alert(&w, &w.pekka, &id).await["calls"].clone();
            let people = calls[0]["participants"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let role = |r: &str| {
                people
                    .iter()
                    .find(|p| p["role"] == r)
                    .cloned()
                    .unwrap_or_default()
            };
            people.len() == 3
                && role("client")["display_name"] == "Aino"
                && role("caller")["left_at"].is_null()
                && role("guest")["left_at"].is_i64()
        })
        .await,
        "participants on record: {}",
        alert(&w, &w.pekka, &id).await["calls"]
    );
    let audit = call(&w, "GET", &w.admin, "/api/v1/audit?limit=200", None)
        .await
        .1;
    let text = audit.to_string();
    assert!(
        text.contains("call.invite") && text.contains("call.join"),
        "invitation and joining audited"
    );
    drop(lotta);
}

#[tokio::test]
async fn a_weak_link_keeps_the_sound_and_gets_the_picture_back_when_it_recovers() {
    let w = night_world("open_at_once").await;
    // Aino presses help on her simulated terminal; Pekka handles the alarm
    // and calls the home: the camera opens at once, as she allows.
    let (_bundle, edge, kiosk, _id, call_id) = simulated_alarm_call(&w).await;
    let mut pekka = join(&w, &w.pekka, &call_id).await;
    assert!(
        wait_report(&pekka.peer, Duration::from_secs(20), |r| r.video_frames_in
            >= 15)
        .await,
        "the call runs"
    );
    // Pekka's phone loses 40 % of what reaches it.
    pekka.peer.set_receive_loss(40);
    let leg = pekka.leg_id.clone();
    let weak = until(&mut pekka.socket, Duration::from_secs(40), |m| {
        m["type"] == "link" && m["leg_id"] == leg.as_str()
    })
    .await;
    assert_eq!(weak["audio_only"], true, "{weak}");
    // The sound keeps coming, the picture stops.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (video, audio) = {
        let r = pekka.peer.report();
        (r.video_packets_in, r.audio_packets_in)
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = pekka.peer.report();
    assert!(
        r.audio_packets_in >= audio + 40,
        "sound goes on: {audio} -> {}",
        r.audio_packets_in
    );
    assert!(
        r.video_packets_in <= video + 5,
        "no picture: {video} -> {}",
        r.video_packets_in
    );
    // The link recovers: the picture comes back.
    pekka.peer.set_receive_loss(0);
    let back = until(&mut pekka.socket, Duration::from_secs(60), |m| {
        m["type"] == "link" && m["leg_id"] == leg.as_str()
    })
    .await;
    assert_eq!(back["audio_only"], false, "{back}");
    let frames = pekka.peer.report().video_frames_in;
    assert!(
        wait_report(&pekka.peer, Duration::from_secs(10), |r| r.video_frames_in
            >= frames + 15)
        .await,
        "the picture is back"
    );
    assert!(
        edge.kiosk_state(&kiosk).await["call"]["state"] == "answered",
        "the call stayed up"
    );
}

#[tokio::test]
async fn browser_call_runs_through_the_hubs_turn_server_when_udp_to_the_relay_is_not_an_option() {
    if !common::browser::available(
        "browser_call_runs_through_the_hubs_turn_server_when_udp_to_the_relay_is_not_an_option",
    ) {
        return;
    }
    let w = night_world("open_at_once").await;
    // Aino presses help on her simulated terminal; Pekka handles the alarm
    // and calls the home: the camera opens at once, as she allows.
    let (_bundle, edge, _kiosk, _id, call_id) = simulated_alarm_call(&w).await;
    let browser = common::browser::Browser::start().await;
    browser
        .sign_in(&w.hub, "pekka", PASSWORD, "/console/patrol")
        .await;
    // Only relayed candidates: every packet goes through the hub's TURN server.
    browser
        .goto(&w.hub.url(&format!("/console/call/{call_id}?relay_only=1")))
        .await;
    let (got_media, last) =
        media_flows(&browser, "etahoivaCall", 15, 0, Duration::from_secs(40)).await;
    assert!(got_media, "video through TURN: {last}");
    browser
        .script(
            "window.__pair = null; window.etahoivaCall.pc.getStats().then(r => { \
               let pair = null; r.forEach(x => { if (x.type === 'candidate-pair' && x.nominated && x.state === 'succeeded') pair = x; }); \
               if (pair) { const l = r.get(pair.localCandidateId); window.__pair = l ? l.candidateType : 'none'; } }); return true;",
        )
        .await;
    let mut kind = Value::Null;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        kind = browser.script("return window.__pair;").await;
        if !kind.is_null() {
            break;
        }
    }
    assert_eq!(kind, "relay", "the media path is the TURN relay");
    drop(edge);
}
