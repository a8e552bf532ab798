//! Home terminals: identity, presence, remote settings and the events they send.

use serde::Serialize;
use utoipa::ToSchema;

use super::{execute, now_ms, with_pool, Store, StoreError, StoreResult};

/// A terminal as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeviceRecord {
    pub id: String,
    pub name: String,
    pub client_id: Option<String>,
    pub cert_fingerprint: String,
    pub cert_not_after: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
    pub last_seen: Option<i64>,
    pub last_address: Option<String>,
    pub agent_version: Option<String>,
    pub protocol_version: Option<i32>,
    pub settings_json: String,
    pub settings_version: i64,
    pub applied_version: i64,
    pub config_error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewDevice {
    pub id: String,
    pub name: String,
    pub client_id: Option<String>,
    pub cert_fingerprint: String,
    pub cert_not_after: i64,
    pub settings_json: String,
}

/// An event as stored on the hub.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: i64,
    pub device_id: String,
    /// The terminal's idempotency key.
    pub event_key: String,
    pub kind: String,
    pub occurred_at: i64,
    pub received_at: i64,
    /// Kind-specific details as JSON text.
    pub detail: String,
}

const DEVICE_COLUMNS: &str =
    "id, name, client_id, cert_fingerprint, cert_not_after, revoked_at, created_at, \
     last_seen, last_address, agent_version, protocol_version, settings_json, settings_version, \
     applied_version, config_error";

impl Store {
    #[tracing::instrument(skip_all, fields(device_id = %new.id))]
    pub async fn create_device(&self, new: &NewDevice) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "INSERT INTO devices (id, name, client_id, cert_fingerprint, cert_not_after, created_at, settings_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&new.id)
        .bind(&new.name)
        .bind(&new.client_id)
        .bind(&new.cert_fingerprint)
        .bind(new.cert_not_after)
        .bind(now_ms())
        .bind(&new.settings_json)
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "device"))
    }

    pub async fn get_device(&self, id: &str) -> StoreResult<DeviceRecord> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        with_pool!(self, pool => sqlx::query_as::<_, DeviceRecord>(&sql).bind(id).fetch_optional(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "device"))?
            .ok_or(StoreError::NotFound("device"))
    }

    /// The terminals (not revoked) of a client.
    pub async fn client_devices(&self, client_id: &str) -> StoreResult<Vec<String>> {
        with_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT id FROM devices WHERE client_id = $1 AND revoked_at IS NULL ORDER BY created_at",
        )
        .bind(client_id)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "device"))
    }

    pub async fn list_devices(&self) -> StoreResult<Vec<DeviceRecord>> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY name, id");
        with_pool!(self, pool => sqlx::query_as::<_, DeviceRecord>(&sql).fetch_all(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "device"))
    }

    /// Marks a device revoked. Returns false when it already was.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_device(&self, device_id: &str) -> StoreResult<bool> {
        let changed = execute!(self, pool => sqlx::query(
            "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(device_id)
        .execute(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "device"))?;
        if changed == 0 {
            // Distinguish unknown from already revoked.
            self.get_device(device_id).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Devices revoked after `since` (ms), with their revocation time.
    pub async fn revoked_since(&self, since: i64) -> StoreResult<Vec<(String, i64)>> {
        with_pool!(self, pool => sqlx::query_as::<_, (String, i64)>(
            "SELECT id, revoked_at FROM devices WHERE revoked_at IS NOT NULL AND revoked_at > $1",
        )
        .bind(since)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "device"))
    }

    /// Records a new connection of a terminal.
    pub async fn record_connection(
        &self,
        device_id: &str,
        address: &str,
        agent_version: &str,
        protocol: u32,
    ) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "UPDATE devices SET last_seen = $1, last_address = $2, agent_version = $3, protocol_version = $4 WHERE id = $5",
        )
        .bind(now_ms())
        .bind(address)
        .bind(agent_version)
        .bind(protocol as i32)
        .bind(device_id)
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "device"))
    }

    /// Saves last-seen times of many terminals in one transaction.
    pub async fn record_last_seen(&self, seen: &[(String, i64)]) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            for (id, at) in seen {
                sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2 AND (last_seen IS NULL OR last_seen < $1)")
                    .bind(at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "device"))
    }

    /// Stores new desired settings and returns their version.
    #[tracing::instrument(skip(self, settings_json))]
    pub async fn set_device_settings(
        &self,
        device_id: &str,
        settings_json: &str,
    ) -> StoreResult<i64> {
        with_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "UPDATE devices SET settings_json = $1, settings_version = settings_version + 1 \
             WHERE id = $2 RETURNING settings_version",
        )
        .bind(settings_json)
        .bind(device_id)
        .fetch_optional(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "device"))?
        .ok_or(StoreError::NotFound("device"))
    }

    /// Records what the terminal reported of a settings version.
    pub async fn set_device_config_report(
        &self,
        device_id: &str,
        version: u64,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let version = version as i64;
        match error {
            None => execute!(self, pool => sqlx::query(
                "UPDATE devices SET applied_version = $1, config_error = NULL WHERE id = $2",
            )
            .bind(version)
            .bind(device_id)
            .execute(pool)
            .await),
            Some(reason) => execute!(self, pool => sqlx::query(
                "UPDATE devices SET config_error = $1 WHERE id = $2",
            )
            .bind(format!("version {version}: {reason}"))
            .bind(device_id)
            .execute(pool)
            .await),
        }
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "device"))
    }

    /// Stores an event once per (device, key). Returns true when it was new.
    #[tracing::instrument(skip(self, event), fields(device_id = %device_id, event_key = %event.key))]
    pub async fn insert_device_event(
        &self,
        device_id: &str,
        event: &etahoiva_proto::Event,
    ) -> StoreResult<bool> {
        let detail = event.detail.to_string();
        let key = super::alerts::stored_key(&event.key);
        execute!(self, pool => sqlx::query(
            "INSERT INTO device_events (device_id, event_key, kind, occurred_at, received_at, detail) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, event_key) DO NOTHING",
        )
        .bind(device_id)
        .bind(&key)
        .bind(event.kind.as_str())
        .bind(event.occurred_at)
        .bind(now_ms())
        .bind(&detail)
        .execute(pool)
        .await)
        .map(|n| n == 1)
        .map_err(|e| StoreError::from_sqlx(e, "event"))
    }

    /// Events of one device, oldest first.
    pub async fn device_events(
        &self,
        device_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        with_pool!(self, pool => sqlx::query_as::<_, StoredEvent>(
            "SELECT id, device_id, event_key, kind, occurred_at, received_at, detail FROM device_events \
             WHERE device_id = $1 ORDER BY id LIMIT $2",
        )
        .bind(device_id)
        .bind(limit)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "event"))
    }
}
