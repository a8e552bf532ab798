//! A hub leg and a peer leg of the `rtc` engine connect over loopback UDP
//! and carry media both ways; dropped legs are freed.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use bytes::Bytes;
use etahoiva_media::{
    legs_alive, IceCreds, Leg, LegConfig, LegEvent, LegOutput, MediaEngine, MediaKind, Role,
    RtcEngine, RtcLeg, RtpOut,
};

struct End {
    socket: UdpSocket,
    leg: RtcLeg,
    connected: bool,
    received: Vec<(MediaKind, u16, Bytes)>,
    keyframe_requests: usize,
}

impl End {
    fn new(role: Role) -> End {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let config = LegConfig {
            role,
            ice: (role == Role::Hub).then(|| IceCreds::random("h0")),
            local: socket.local_addr().unwrap(),
            tcp: None,
            udp: true,
        };
        let leg = RtcEngine.new_leg(&config, Instant::now()).unwrap();
        End {
            socket,
            leg,
            connected: false,
            received: Vec::new(),
            keyframe_requests: 0,
        }
    }

    fn turn(&mut self) {
        let now = Instant::now();
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
            let _ = self.leg.handle_datagram(from, &buf[..n], now);
        }
        if self.leg.poll_timeout().is_some_and(|t| t <= now) {
            self.leg.handle_timeout(now);
        }
        while let Some(out) = self.leg.poll() {
            match out {
                LegOutput::Transmit(t) => {
                    let _ = self.socket.send_to(&t.data, t.to);
                }
                LegOutput::Event(LegEvent::Connected { .. }) => self.connected = true,
                LegOutput::Event(LegEvent::Rtp(rtp)) => {
                    self.received.push((rtp.kind, rtp.seq, rtp.payload))
                }
                LegOutput::Event(LegEvent::KeyframeRequested { .. }) => self.keyframe_requests += 1,
                LegOutput::Event(_) => {}
            }
        }
    }
}

fn run_until(hub: &mut End, peer: &mut End, what: &str, done: impl Fn(&End, &End) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(hub, peer) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        hub.turn();
        peer.turn();
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn hub_and_peer_connect_and_carry_audio_and_video_both_ways() {
    let before = legs_alive();
    {
        let mut hub = End::new(Role::Hub);
        let mut peer = End::new(Role::Peer);
        let hub_audio = hub.leg.add_sender(MediaKind::Audio, "peer").unwrap();
        let hub_video = hub.leg.add_sender(MediaKind::Video, "peer").unwrap();
        let peer_audio = peer.leg.add_sender(MediaKind::Audio, "peer").unwrap();
        let peer_video = peer.leg.add_sender(MediaKind::Video, "peer").unwrap();
        let offer = hub.leg.create_offer(false, Instant::now()).unwrap();
        assert!(offer.contains("a=ice-lite"), "the hub is ICE-lite");
        assert!(offer.contains(&format!("a=ice-ufrag:{}", hub.leg.ufrag())));
        assert!(hub.leg.ufrag().starts_with("h0"));
        let answer = peer.leg.accept_offer(&offer, Instant::now()).unwrap();
        hub.leg.apply_answer(&answer, Instant::now()).unwrap();
        run_until(&mut hub, &mut peer, "ICE and DTLS", |h, p| {
            h.connected && p.connected
        });

        for seq in 0..20u16 {
            let now = Instant::now();
            let packet = |tag: u8| RtpOut {
                seq: 1000 + seq,
                ts: 3000 * seq as u32,
                marker: true,
                payload: Bytes::from(vec![0x90, 0x80, 0x80, seq as u8, tag]),
            };
            hub.leg.send_rtp(hub_audio, packet(1), now).unwrap();
            hub.leg.send_rtp(hub_video, packet(2), now).unwrap();
            peer.leg.send_rtp(peer_audio, packet(3), now).unwrap();
            peer.leg.send_rtp(peer_video, packet(4), now).unwrap();
            hub.turn();
            peer.turn();
        }
        run_until(&mut hub, &mut peer, "media both ways", |h, p| {
            h.received.len() >= 38 && p.received.len() >= 38
        });
        assert!(peer
            .received
            .iter()
            .any(|(k, _, p)| *k == MediaKind::Video && p[4] == 2));
        assert!(peer
            .received
            .iter()
            .any(|(k, _, p)| *k == MediaKind::Audio && p[4] == 1));
        assert!(hub
            .received
            .iter()
            .any(|(k, _, p)| *k == MediaKind::Video && p[4] == 4));
        assert!(hub
            .received
            .iter()
            .any(|(k, _, p)| *k == MediaKind::Audio && p[4] == 3));
        // A key frame request from the hub reaches the peer's video sender.
        hub.leg.request_keyframe(Instant::now());
        run_until(&mut hub, &mut peer, "a key frame request", |_, p| {
            p.keyframe_requests > 0
        });
        let stats = hub.leg.stats(Instant::now());
        assert!(stats.sent_packets >= 40 && stats.received_packets >= 38);
        hub.leg.close(Instant::now());
        peer.leg.close(Instant::now());
    }
    assert_eq!(legs_alive(), before, "every leg is freed when dropped");
}

#[test]
fn garbage_and_wrong_answers_are_errors_not_panics() {
    let mut hub = End::new(Role::Hub);
    hub.leg.add_sender(MediaKind::Audio, "peer").unwrap();
    let _offer = hub.leg.create_offer(false, Instant::now()).unwrap();
    assert!(hub
        .leg
        .apply_answer("v=0\r\nnonsense", Instant::now())
        .is_err());
    let from = "127.0.0.1:9".parse().unwrap();
    for junk in [
        &b""[..],
        &[0u8; 3],
        &[0x80; 40],
        &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let _ = hub.leg.handle_datagram(from, junk, Instant::now());
    }
    hub.turn();
    let mut peer = End::new(Role::Peer);
    assert!(peer
        .leg
        .accept_offer("not an offer", Instant::now())
        .is_err());
}
