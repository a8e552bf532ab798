//! The audit trail: who did what to which record, and when.

use serde::Serialize;
use utoipa::ToSchema;

use super::{execute, now_ms, with_pool, Store, StoreError, StoreResult};

#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// User id, device id or `system`.
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

impl Store {
    pub async fn audit(
        &self,
        actor: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
    ) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "audit entry"))
    }

    /// The newest entries first.
    pub async fn audit_entries(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        with_pool!(self, pool => sqlx::query_as::<_, AuditEntry>(
            "SELECT id, at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "audit entry"))
    }
}
