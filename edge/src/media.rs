//! The simulated terminal's media (`--simulate`): the agent itself is the
//! WebRTC peer of the hub's relay and, once the call is answered, sends a
//! moving picture (VP8) and a tone (Opus) from a loop encoded once per
//! process. What it receives is kept in `state/media.json`, so a test can
//! see that the nurse's media arrived.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use etahoiva_media::generate::MediaLoop;
use etahoiva_media::peer::{MediaReport, Peer};
use etahoiva_proto::EdgeToHub;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::agent::Shared;
use crate::calls::Phase;

/// What a simulated call's media did, kept in `state/media.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMedia {
    pub call_id: String,
    #[serde(flatten)]
    pub report: MediaReport,
}

/// The loop every simulated call of this process shares.
fn media_loop() -> Option<Arc<MediaLoop>> {
    static LOOP: OnceLock<Option<Arc<MediaLoop>>> = OnceLock::new();
    LOOP.get_or_init(|| match MediaLoop::small() {
        Ok(l) => Some(Arc::new(l)),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the simulated media");
            None
        }
    })
    .clone()
}

/// A simulated call in progress: its stop signal and where the hub's new
/// offers for it go (leg id, SDP).
struct SimCall {
    stop: watch::Sender<bool>,
    offers: mpsc::Sender<(String, String)>,
}

/// Simulated calls in progress.
#[derive(Default)]
pub struct SimCalls {
    calls: std::sync::Mutex<HashMap<String, SimCall>>,
}

impl SimCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SimCall>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the media of a call (the call ended on the terminal).
    pub fn stop(&self, call_id: &str) {
        if let Some(call) = self.lock().remove(call_id) {
            let _ = call.stop.send(true);
        }
    }

    /// A new offer for a call whose media runs already (somebody joined,
    /// or an ICE restart): true if it was handed to the call.
    pub fn reoffer(&self, call_id: &str, leg_id: String, sdp: String) -> bool {
        match self.lock().get(call_id) {
            Some(call) => call.offers.try_send((leg_id, sdp)).is_ok(),
            None => false,
        }
    }
}

/// Answers the hub's media offer and runs the call's media until it ends.
pub async fn answer_offer(shared: Arc<Shared>, call_id: String, leg_id: String, sdp: String) {
    let media = tokio::task::spawn_blocking(media_loop).await.ok().flatten();
    let peer = match Peer::answer(&sdp, media).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "the hub's media offer was refused");
            return;
        }
    };
    let (stop_tx, mut stop) = watch::channel(false);
    let (offers_tx, mut offers) = mpsc::channel(4);
    let replaced = shared.sim_calls.lock().insert(
        call_id.clone(),
        SimCall {
            stop: stop_tx,
            offers: offers_tx,
        },
    );
    if let Some(old) = replaced {
        let _ = old.stop.send(true);
    }
    shared.send_live(EdgeToHub::MediaAnswer {
        call_id: call_id.clone(),
        leg_id,
        sdp: peer.answer_sdp().to_string(),
    });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
            Some((leg_id, sdp)) = offers.recv() => {
                match peer.renegotiate(&sdp).await {
                    Ok(answer) => shared.send_live(EdgeToHub::MediaAnswer {
                        call_id: call_id.clone(),
                        leg_id,
                        sdp: answer,
                    }),
                    Err(e) => tracing::warn!(%call_id, error = %e, "the hub's new offer was refused"),
                }
                continue;
            }
        }
        let current = shared.current_call();
        let Some(call) = current.filter(|c| c.id == call_id) else {
            break;
        };
        // The camera and microphone open only once the call is answered.
        peer.send_media(call.phase == Phase::Answered);
        shared.write_media_report(&CallMedia {
            call_id: call_id.clone(),
            report: peer.report(),
        });
        if peer.ended() {
            break;
        }
    }
    peer.stop();
    let report = CallMedia {
        call_id: call_id.clone(),
        report: peer.report(),
    };
    shared.write_media_report(&report);
    shared.sim_calls.stop(&call_id);
    tracing::info!(%call_id, ?report, "call media ended");
}
