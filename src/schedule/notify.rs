//! Telling others what changed in the schedule: the nurse consoles (live
//! worklists) and the clients' terminals (their coming visits).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use etahoiva_proto::{HubToEdge, Schedule, ScheduledVisit};
use tokio::sync::broadcast;

use crate::devices::registry::{Outbound, Registry};
use crate::schedule::lifecycle::VisitStatus;
use crate::store::{now_ms, Store, StoreError};

/// A change to the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// One visit changed (status, nurse or time).
    Visit {
        visit_id: String,
        client_id: String,
        nurse_id: Option<String>,
    },
    /// A client's plan was regenerated.
    Client { client_id: String },
    /// Many visits changed at once (a day was planned): reload everything.
    Everything,
}

/// Fans schedule changes out to whoever listens. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Change>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Notifier {
    pub fn send(&self, change: Change) {
        // Nobody listening is fine.
        let _ = self.tx.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

/// How far ahead a terminal is told its visits.
const TERMINAL_AHEAD_MS: i64 = 3 * 86_400_000;
/// Most visits sent to a terminal at once.
const TERMINAL_MAX_VISITS: usize = 30;

/// The first name of a nurse, as the client sees it.
pub fn first_name(display_name: &str) -> String {
    display_name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The coming visits of a client as its terminal shows them.
pub async fn client_schedule(
    store: &Store,
    client_id: &str,
    now: i64,
    nurse_names: &HashMap<String, String>,
) -> Result<Schedule, StoreError> {
    let client = store.get_client(client_id).await?;
    let visits = store
        .client_visits(client_id, now, now + TERMINAL_AHEAD_MS)
        .await?;
    let visits = visits
        .into_iter()
        .filter(|v| {
            VisitStatus::parse(&v.status).is_some_and(|s| !s.is_final()) && v.window_end > now
        })
        .take(TERMINAL_MAX_VISITS)
        .map(|v| ScheduledVisit {
            starts_at: v.scheduled_start.unwrap_or(v.planned_at),
            nurse_name: v
                .nurse_id
                .as_ref()
                .and_then(|n| nurse_names.get(n))
                .map(|n| first_name(n)),
            id: v.id,
            window_start: v.window_start,
            window_end: v.window_end,
            length_min: u32::try_from(v.length_min).unwrap_or(0),
            purpose: v.purpose,
            status: v.status,
        })
        .collect();
    Ok(Schedule {
        time_zone: client.time_zone,
        generated_at: now,
        visits,
    })
}

/// Display names of the nurses by id.
pub async fn nurse_names(store: &Store) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .list_nurses()
        .await?
        .into_iter()
        .map(|n| (n.id, n.display_name))
        .collect())
}

/// The connected terminals that speak protocol 2, by client: one read of
/// the device table however many clients changed.
async fn connected_by_client(
    store: &Store,
    registry: &Registry,
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for device in store.list_devices().await? {
        let Some(client) = device.client_id else {
            continue;
        };
        if device.revoked_at.is_none()
            && registry
                .presence(&device.id)
                .is_some_and(|p| p.protocol >= 2)
        {
            out.entry(client).or_default().push(device.id);
        }
    }
    Ok(out)
}

/// Sends a client's schedule to the given terminals; returns how many took it.
async fn push_to_terminals(
    store: &Store,
    registry: &Registry,
    client_id: &str,
    devices: &[String],
    nurse_names: &HashMap<String, String>,
) -> Result<usize, StoreError> {
    let schedule = client_schedule(store, client_id, now_ms(), nurse_names).await?;
    let mut sent = 0;
    for device in devices {
        if registry.send(
            device,
            Outbound::Send(HubToEdge::Schedule(schedule.clone())),
        ) {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Keeps terminals' schedules current: collects changes for a moment and
/// pushes each touched client's schedule once. Runs until the hub stops.
pub async fn push_schedules(store: Store, registry: std::sync::Arc<Registry>, notifier: Notifier) {
    let mut rx = notifier.subscribe();
    loop {
        let mut clients = HashSet::new();
        let mut everyone = false;
        match rx.recv().await {
            Ok(change) => note(&mut clients, &mut everyone, change),
            Err(broadcast::error::RecvError::Lagged(_)) => everyone = true,
            Err(broadcast::error::RecvError::Closed) => return,
        }
        // Gather what else changes in the same moment.
        let gather = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(gather);
        loop {
            tokio::select! {
                _ = &mut gather => break,
                change = rx.recv() => match change {
                    Ok(change) => note(&mut clients, &mut everyone, change),
                    Err(broadcast::error::RecvError::Lagged(_)) => everyone = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
        // Only clients with a connected terminal are pushed to; the others
        // get their schedule when their terminal says hello.
        let targets = match connected_by_client(&store, &registry).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list terminals for schedule push");
                continue;
            }
        };
        if targets.is_empty() {
            continue;
        }
        let names = match nurse_names(&store).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read nurse names for schedule push");
                continue;
            }
        };
        for (client_id, devices) in &targets {
            if !everyone && !clients.contains(client_id) {
                continue;
            }
            if let Err(e) = push_to_terminals(&store, &registry, client_id, devices, &names).await {
                tracing::warn!(%client_id, error = %e, "cannot push the schedule");
            }
        }
    }
}

fn note(clients: &mut HashSet<String>, everyone: &mut bool, change: Change) {
    match change {
        Change::Visit { client_id, .. } | Change::Client { client_id } => {
            clients.insert(client_id);
        }
        Change::Everything => *everyone = true,
    }
}
