//! The live terminal links of this hub: who is connected, since when, last heard.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use etahoiva_proto::{ErrorCode, HubToEdge};
use tokio::sync::mpsc;

/// What a link task is told to do.
#[derive(Debug)]
pub enum Outbound {
    Send(HubToEdge),
    /// Send this error and close the link.
    Close(HubToEdge),
}

/// Presence of one connected terminal.
#[derive(Clone, Debug)]
pub struct Presence {
    pub connected_at: i64,
    pub last_seen: i64,
    pub address: String,
    pub agent_version: String,
    pub protocol: u32,
    pub config_version: u64,
}

struct Slot {
    conn: u64,
    tx: mpsc::Sender<Outbound>,
    presence: Presence,
}

/// Queue depth per link; a terminal that cannot keep up is closed, not buffered forever.
const LINK_QUEUE: usize = 64;

/// What a terminal answered to a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutcome {
    pub ok: bool,
    pub detail: String,
}

/// Commands sent and not yet answered: (device, command id) to the waiter.
type Waiting = HashMap<(String, String), tokio::sync::oneshot::Sender<CommandOutcome>>;

#[derive(Default)]
pub struct Registry {
    links: Mutex<HashMap<String, Slot>>,
    next_conn: AtomicU64,
    waiting: Mutex<Waiting>,
}

impl Registry {
    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a link, replacing (and closing) an older one of the same device.
    pub fn register(&self, device_id: &str, presence: Presence) -> (u64, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let old = self
            .links()
            .insert(device_id.to_string(), Slot { conn, tx, presence });
        if let Some(old) = old {
            let _ = old.tx.try_send(Outbound::Close(HubToEdge::Error {
                code: ErrorCode::Replaced,
                message: "a newer connection of this terminal replaced this one".into(),
                fatal: true,
            }));
        }
        metrics::gauge!("etahoiva_devices_online").set(self.online() as f64);
        (conn, rx)
    }

    /// Removes a link if it is still the current one of the device.
    pub fn unregister(&self, device_id: &str, conn: u64) -> Option<Presence> {
        let mut links = self.links();
        let current = links.get(device_id).is_some_and(|s| s.conn == conn);
        let removed = if current {
            links.remove(device_id).map(|s| s.presence)
        } else {
            None
        };
        let online = links.len();
        drop(links);
        metrics::gauge!("etahoiva_devices_online").set(online as f64);
        removed
    }

    pub fn touch(&self, device_id: &str, conn: u64, now: i64) {
        if let Some(slot) = self.links().get_mut(device_id) {
            if slot.conn == conn {
                slot.presence.last_seen = now;
            }
        }
    }

    pub fn set_config_version(&self, device_id: &str, version: u64) {
        if let Some(slot) = self.links().get_mut(device_id) {
            slot.presence.config_version = version;
        }
    }

    /// Queues a message to a connected terminal; false when it is not connected.
    pub fn send(&self, device_id: &str, message: Outbound) -> bool {
        let tx = self.links().get(device_id).map(|s| s.tx.clone());
        match tx {
            Some(tx) => tx.try_send(message).is_ok(),
            None => false,
        }
    }

    /// Sends a command; the receiver gets the terminal's answer. None when
    /// the terminal is not connected.
    pub fn command(
        &self,
        device_id: &str,
        command: etahoiva_proto::Command,
    ) -> Option<(String, tokio::sync::oneshot::Receiver<CommandOutcome>)> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        // Answers that never came must not pile up.
        waiting.retain(|_, tx| !tx.is_closed());
        waiting.insert((device_id.to_string(), id.clone()), tx);
        drop(waiting);
        let sent = self.send(
            device_id,
            Outbound::Send(HubToEdge::Command {
                id: id.clone(),
                command,
            }),
        );
        if !sent {
            self.waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&(device_id.to_string(), id));
            return None;
        }
        Some((id, rx))
    }

    /// A terminal answered a command; only its own commands can be answered.
    pub fn command_answered(&self, device_id: &str, id: &str, outcome: CommandOutcome) -> bool {
        let waiter = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(device_id.to_string(), id.to_string()));
        match waiter {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    pub fn presence(&self, device_id: &str) -> Option<Presence> {
        self.links().get(device_id).map(|s| s.presence.clone())
    }

    pub fn online(&self) -> usize {
        self.links().len()
    }

    /// Last-seen times of every connected terminal.
    pub fn last_seen_all(&self) -> Vec<(String, i64)> {
        self.links()
            .iter()
            .map(|(id, s)| (id.clone(), s.presence.last_seen))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence() -> Presence {
        Presence {
            connected_at: 1,
            last_seen: 1,
            address: "127.0.0.1:1".into(),
            agent_version: "t".into(),
            protocol: 1,
            config_version: 0,
        }
    }

    #[test]
    fn a_new_link_replaces_and_closes_the_old_one() {
        let registry = Registry::default();
        let (first, mut first_rx) = registry.register("d", presence());
        let (second, _rx) = registry.register("d", presence());
        assert_ne!(first, second);
        assert!(matches!(
            first_rx.try_recv(),
            Ok(Outbound::Close(HubToEdge::Error {
                code: ErrorCode::Replaced,
                ..
            }))
        ));
        // The stale task's unregister does not remove the new link.
        assert!(registry.unregister("d", first).is_none());
        assert_eq!(registry.online(), 1);
        registry.touch("d", second, 99);
        assert_eq!(registry.presence("d").map(|p| p.last_seen), Some(99));
        assert!(registry.unregister("d", second).is_some());
        assert_eq!(registry.online(), 0);
        assert!(!registry.send("d", Outbound::Send(HubToEdge::Ack { key: "k".into() })));
    }
}
