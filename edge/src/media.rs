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
use tokio::sync::watch;

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

/// Simulated calls in progress: a stop signal each.
#[derive(Default)]
pub struct SimCalls {
    calls: std::sync::Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl SimCalls {
    /// Ends the media of a call (the call ended on the terminal).
    pub fn stop(&self, call_id: &str) {
        if let Some(stop) = self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(call_id)
        {
            let _ = stop.send(true);
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
    if let Some(old) = shared
        .sim_calls
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(call_id.clone(), stop_tx)
    {
        let _ = old.send(true);
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
