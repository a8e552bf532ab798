//! Home terminals: provisioning, identities, the live link, presence and
//! remote settings.

pub mod identity;
pub mod link;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use etahoiva_firmware_config as fwc;
use etahoiva_proto::{ErrorCode, HubToEdge};

use crate::store::{now_ms, NewDevice, Store, StoreError};
use crate::tls::TlsError;
use identity::DeviceCa;
use registry::{Outbound, Registry};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("invalid terminal settings:\n{0}")]
    Settings(fwc::ValidationErrors),
    #[error("cannot write the provisioning bundle: {0}")]
    Bundle(String),
    #[error("{0}")]
    Invalid(String),
}

/// What `devices provision` needs.
pub struct ProvisionRequest {
    pub name: String,
    /// `wss://host:port/link` as the terminal will reach the hub.
    pub hub_url: String,
    pub client_id: Option<String>,
    pub language: Option<fwc::Language>,
    /// The CA certificate (PEM) that signed the hub's server certificate.
    pub hub_ca_pem: String,
    pub out: PathBuf,
    pub cert_days: i64,
}

pub struct Provisioned {
    pub device_id: String,
    pub profile: PathBuf,
}

/// Registers a terminal, issues its certificate and writes its bundle.
#[tracing::instrument(skip_all, fields(device_id))]
pub async fn provision(
    store: &Store,
    ca: &DeviceCa,
    request: ProvisionRequest,
) -> Result<Provisioned, DeviceError> {
    let name = request.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DeviceError::Invalid(
            "the terminal name must be 1 to 100 characters".into(),
        ));
    }
    if request.out.join("profile.toml").exists() {
        return Err(DeviceError::Bundle(format!(
            "{} already holds a profile; choose an empty directory",
            request.out.display()
        )));
    }
    let device_id = format!("t-{}", uuid::Uuid::new_v4().simple());
    tracing::Span::current().record("device_id", device_id.as_str());
    let (client_name, language) = match &request.client_id {
        Some(id) => {
            let clients = store.list_clients().await?;
            let client = clients
                .into_iter()
                .find(|c| &c.id == id)
                .ok_or_else(|| DeviceError::Invalid(format!("no client with id {id}")))?;
            let language = match client.language.as_str() {
                "sv" => fwc::Language::Sv,
                _ => fwc::Language::Fi,
            };
            (Some(client.name), language)
        }
        None => (None, fwc::Language::Fi),
    };
    let settings = fwc::TerminalSettings {
        client: fwc::ClientBinding {
            id: request.client_id.clone(),
            name: client_name,
        },
        language: request.language.unwrap_or(language),
        ..fwc::TerminalSettings::default()
    };
    let profile = fwc::Profile {
        device: fwc::DeviceSection {
            id: device_id.clone(),
            name: name.clone(),
        },
        hub: fwc::HubSection {
            url: request.hub_url.clone(),
            ca_cert: PathBuf::from("hub-ca.pem"),
        },
        identity: fwc::IdentitySection {
            cert: PathBuf::from("device.pem"),
            key: PathBuf::from("device-key.pem"),
        },
        state_dir: PathBuf::from("state"),
        settings,
    };
    profile.validate().map_err(DeviceError::Settings)?;
    let issued = ca.issue_for_days(&device_id, request.cert_days)?;
    let settings_json = serde_json::to_string(&profile.settings)
        .map_err(|e| DeviceError::Invalid(e.to_string()))?;
    store
        .create_device(&NewDevice {
            id: device_id.clone(),
            name,
            client_id: request.client_id.clone(),
            cert_fingerprint: issued.fingerprint.clone(),
            cert_not_after: issued.not_after_ms,
            settings_json,
        })
        .await?;
    let written = fwc::write_bundle(
        &request.out,
        &fwc::Bundle {
            profile: &profile,
            device_cert_pem: &issued.cert_pem,
            device_key_pem: &issued.key_pem,
            hub_ca_pem: &request.hub_ca_pem,
        },
    )
    .map_err(|e| DeviceError::Bundle(e.to_string()))?;
    store
        .audit(Some("system"), "device.provisioned", Some(&device_id), None)
        .await?;
    Ok(Provisioned {
        device_id,
        profile: written,
    })
}

/// Revokes a device and closes its live link. Returns false when it already was revoked.
pub async fn revoke(
    store: &Store,
    registry: Option<&Registry>,
    device_id: &str,
    actor: &str,
) -> Result<bool, DeviceError> {
    let changed = store.revoke_device(device_id).await?;
    if changed {
        store
            .audit(Some(actor), "device.revoked", Some(device_id), None)
            .await?;
    }
    if let Some(registry) = registry {
        kick_revoked(registry, device_id);
    }
    Ok(changed)
}

fn kick_revoked(registry: &Registry, device_id: &str) {
    registry.send(
        device_id,
        Outbound::Close(HubToEdge::Error {
            code: ErrorCode::Revoked,
            message: "this terminal has been revoked".into(),
            fatal: true,
        }),
    );
}

/// Closes links of devices revoked elsewhere (the CLI, another hub) within seconds.
pub async fn watch_revocations(store: Store, registry: Arc<Registry>, every: Duration) {
    let mut watermark = now_ms() - 60_000;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match store.revoked_since(watermark).await {
            Ok(revoked) => {
                for (id, at) in revoked {
                    watermark = watermark.max(at);
                    if registry.presence(&id).is_some() {
                        tracing::info!(device_id = %id, "closing the link of a revoked terminal");
                        kick_revoked(&registry, &id);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check revocations"),
        }
    }
}

/// Saves the last-seen times of connected terminals now and then.
pub async fn persist_presence(store: Store, registry: Arc<Registry>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = store.record_last_seen(&registry.last_seen_all()).await {
            tracing::warn!(error = %e, "cannot save presence");
        }
    }
}

/// The CA certificate (PEM) terminals should trust for this hub.
pub fn hub_ca_pem(data_dir: &Path, configured: Option<&Path>) -> Result<String, DeviceError> {
    let path = match configured {
        Some(p) => p.to_path_buf(),
        None => data_dir.join("tls/ca.pem"),
    };
    std::fs::read_to_string(&path).map_err(|e| {
        DeviceError::Invalid(format!(
            "cannot read the hub CA certificate {}: {e}",
            path.display()
        ))
    })
}
