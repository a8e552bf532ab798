//! Black-box test of a video call between a nurse's console and the kiosk
//! page of a real (not simulated) home terminal: two headless browsers with
//! fake cameras, a real hub relaying their media, and `etahoiva-edge`
//! serving the kiosk, whose page is the terminal's WebRTC peer.

mod common;

use std::time::{Duration, Instant};

use common::alarm::{home_terminal, kiosk_http};
use common::api::{self, call};
use common::browser::Browser;
use common::calls::{alarm, media_flows, night_world, page_media, PASSWORD};
use common::edge::{eventually, spawn_edge};
use serde_json::{json, Value};

const KIOSK_STATUS: &str =
    "return JSON.stringify({media: window.etahoivaKioskCall && window.etahoivaKioskCall.state, \
     status: document.getElementById('media-status').textContent, \
     message: document.getElementById('message').textContent, \
     title: document.getElementById('call-title').textContent})";

#[tokio::test]
async fn the_kiosk_answers_a_nurses_video_call_and_both_see_and_hear_each_other() {
    if !common::browser::available(
        "the_kiosk_answers_a_nurses_video_call_and_both_see_and_hear_each_other",
    ) {
        return;
    }
    let w = night_world("ring").await;
    let bundle = home_terminal(&w.hub, w.dir.path(), "Aino", &w.aino);
    let edge = spawn_edge(&bundle);
    let kiosk = kiosk_http();
    edge.press_help(&kiosk).await;
    let id = alarm(&w).await;

    // Pekka calls the home on the alarm: it rings, the camera stays closed.
    let (s, opened) = call(
        &w,
        "POST",
        &w.pekka,
        &format!("/api/v1/alerts/{id}/call"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{opened}");
    assert_eq!(opened["auto_answer"], false, "{opened}");
    let call_id = opened["call_id"].as_str().expect("call id").to_string();
    assert!(
        eventually(Duration::from_secs(15), || async {
            edge.kiosk_state(&kiosk).await["call"]["state"] == "ringing"
        })
        .await,
        "the terminal rings"
    );

    // Aino's kiosk shows the ringing call. Every use of the camera is counted.
    let home = Browser::start().await;
    home.goto(&edge.kiosk_url("/")).await;
    assert!(
        home.wait_until(
            "return !document.getElementById('call-ringing').hidden && \
             document.getElementById('call-title').textContent.length > 0 && \
             !!window.etahoivaKioskCall && window.etahoivaKioskCall.pc === null",
            Duration::from_secs(15),
        )
        .await,
        "the kiosk shows the ringing call: {}",
        home.script(KIOSK_STATUS).await
    );
    home.script(
        "window.__cameraOpened = 0; var md = navigator.mediaDevices; var open = md.getUserMedia.bind(md); \
         md.getUserMedia = function (c) { window.__cameraOpened += 1; return open(c); }; return true;",
    )
    .await;

    // Pekka's console joins the call's media before Aino answers.
    let nurse = Browser::start().await;
    nurse
        .sign_in(&w.hub, "pekka", PASSWORD, "/console/patrol")
        .await;
    nurse
        .goto(&w.hub.url(&format!("/console/call/{call_id}")))
        .await;
    assert!(
        nurse
            .wait_until(
                "return !!(window.etahoivaCall && window.etahoivaCall.pc && \
                 window.etahoivaCall.pc.connectionState === 'connected')",
                Duration::from_secs(30),
            )
            .await,
        "the console's connection to the relay is up: {}",
        page_media(&nurse, "etahoivaCall").await
    );
    // While it rings nothing flows: the kiosk has no connection and no
    // camera, and the hub gives the console nothing of the home.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, before) = media_flows(&nurse, "etahoivaCall", 0, 0, Duration::from_secs(5)).await;
    assert_eq!(
        before["framesDecoded"].as_u64(),
        Some(0),
        "no picture before the answer: {before}"
    );
    assert_eq!(
        before["audioPackets"].as_u64(),
        Some(0),
        "no sound before the answer: {before}"
    );
    assert_eq!(
        home.script(
            "var t = window.etahoivaKioskCall; return [t.pc === null, t.local === null, window.__cameraOpened, \
             document.getElementById('call-media').hidden]"
        )
        .await,
        json!([true, true, 0, true]),
        "the kiosk opened nothing before the answer"
    );
    assert_eq!(edge.kiosk_state(&kiosk).await["call"]["state"], "ringing");

    // Aino answers with the big button.
    let answer = home.find("#call-answer").await.expect("answer button");
    home.click(&answer).await;

    // Both see and hear each other through the hub.
    let (kiosk_ok, kiosk_media) =
        media_flows(&home, "etahoivaKioskCall", 15, 50, Duration::from_secs(60)).await;
    assert!(
        kiosk_ok,
        "the kiosk decoded the nurse's picture and received her sound: {kiosk_media}; {}",
        home.script(KIOSK_STATUS).await
    );
    let (nurse_ok, nurse_media) =
        media_flows(&nurse, "etahoivaCall", 15, 50, Duration::from_secs(60)).await;
    assert!(
        nurse_ok,
        "the console decoded Aino's picture and received her sound: {nurse_media}; page: {}",
        nurse
            .script("return document.getElementById('call-state').textContent + ' ' + document.getElementById('call-error').textContent")
            .await
    );
    assert_eq!(kiosk_media["state"], "connected", "{kiosk_media}");
    assert!(
        kiosk_media["framesSent"].as_u64().unwrap_or(0) > 0,
        "{kiosk_media}"
    );
    assert_eq!(edge.kiosk_state(&kiosk).await["call"]["state"], "answered");
    // The nurse's picture is shown large and Aino's own small, with sound.
    assert!(
        home.wait_until(
            "var r = document.getElementById('remote-video'), l = document.getElementById('local-video'); \
             return !document.getElementById('call-media').hidden && r.videoWidth > 0 && \
               !!l.srcObject && l.muted && !!document.getElementById('remote-audio').srcObject && \
               r.getBoundingClientRect().width > 2 * l.getBoundingClientRect().width && \
               document.getElementById('media-status').textContent === '' && \
               !document.getElementById('call-answered').hidden",
            Duration::from_secs(15),
        )
        .await,
        "the kiosk shows the call: {}",
        home.script(KIOSK_STATUS).await
    );
    // The camera was opened once, for this call, and is live.
    home.script(
        "window.__kioskPc = window.etahoivaKioskCall.pc; \
         window.__kioskTracks = window.etahoivaKioskCall.local.getTracks(); return true;",
    )
    .await;
    assert_eq!(
        home.script(
            "return [window.__cameraOpened, window.__kioskTracks.map(t => t.kind + ':' + t.readyState).sort()]"
        )
        .await,
        json!([1, ["audio:live", "video:live"]])
    );

    // The kiosk's network changes: the page asks for an ICE restart, the
    // hub offers fresh credentials through the agent, the page answers on
    // the same connection and the call carries on.
    let ufrag = "const m = /a=ice-ufrag:(\\S+)/.exec(window.etahoivaKioskCall.pc.remoteDescription.sdp); return m && m[1];";
    let ufrag_before = home.script(ufrag).await;
    assert!(ufrag_before.is_string(), "{ufrag_before}");
    let (_, reading) = media_flows(&home, "etahoivaKioskCall", 0, 0, Duration::from_secs(5)).await;
    let frames_before = reading["framesDecoded"].as_u64().unwrap_or(0);
    home.script("window.dispatchEvent(new Event('online')); return true;")
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut restarted = false;
    let mut after = Value::Null;
    while Instant::now() < deadline && !restarted {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = home.script(ufrag).await;
        after = page_media(&home, "etahoivaKioskCall").await;
        restarted = now != ufrag_before
            && after["state"] == "connected"
            && after["framesDecoded"].as_u64().unwrap_or(0) >= frames_before + 30;
    }
    assert!(
        restarted,
        "after the ICE restart the call goes on: ufrag {ufrag_before} -> {}, {after}; {}",
        home.script(ufrag).await,
        home.script(KIOSK_STATUS).await
    );
    assert_eq!(
        home.script(
            "return [window.etahoivaKioskCall.pc === window.__kioskPc, window.__cameraOpened]"
        )
        .await,
        json!([true, 1]),
        "the same connection and camera"
    );

    // Pekka hangs up: the call ends on the kiosk, which closes its
    // connection and the camera and microphone.
    let hang_up = nurse.find("#hang-up").await.expect("hang up");
    nurse.click(&hang_up).await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            edge.kiosk_state(&kiosk).await["call"].is_null()
        })
        .await,
        "the terminal's call ended"
    );
    assert!(
        home.wait_until(
            "return window.etahoivaKioskCall.pc === null && window.etahoivaKioskCall.local === null && \
             window.__kioskPc.connectionState === 'closed' && \
             window.__kioskTracks.every(t => t.readyState === 'ended') && \
             document.getElementById('call-media').hidden && \
             document.getElementById('remote-video').srcObject === null && \
             document.getElementById('local-video').srcObject === null && \
             document.getElementById('call-answered').hidden",
            Duration::from_secs(10),
        )
        .await,
        "the kiosk stopped the call's media: {}",
        home.script(
            "return [String(window.etahoivaKioskCall.pc), window.__kioskPc.connectionState, \
             window.__kioskTracks.map(t => t.readyState)]"
        )
        .await
    );
    let calls = api::alert(&w, &w.pekka, &id).await["calls"].clone();
    assert_eq!(calls[0]["state"], "ended", "{calls}");
    assert_eq!(calls[0]["end_reason"], "hung_up_by_staff", "{calls}");
    // Nothing of the call is left to answer.
    let left = kiosk
        .get(edge.kiosk_url("/api/media"))
        .send()
        .await
        .expect("media");
    assert_eq!(left.status(), 204);
}
