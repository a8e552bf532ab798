//! A client's home terminal with its help button, as the alarm tests use it.

use std::path::Path;
use std::time::Duration;

use super::edge::{provision, Bundle};
use super::HubProcess;

/// A terminal in `client`'s home, provisioned by `hub` into a folder of its own under `root`.
pub fn home_terminal(hub: &HubProcess, root: &Path, name: &str, client: &str) -> Bundle {
    provision(hub, root, name, &["--client", client])
}

/// The HTTP client that presses the kiosk's buttons and reads its state.
pub fn kiosk_http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
}
