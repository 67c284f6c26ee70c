//! Which build of each connector plugin operators accepted: a plugin file
//! replaced under the same name is new code that would be handed the
//! connections' secrets, so the host runs it only once it is accepted.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{AuditEntry, Store, StoreError};

/// The build of a connector plugin that may run with its connections'
/// secrets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AcceptedPlugin {
    pub connector: String,
    pub sha256: String,
    pub version: String,
    pub accepted_at: DateTime<Utc>,
    pub accepted_by: String,
}

impl Store {
    /// The accepted build of `connector`, if one was ever accepted.
    pub async fn accepted_plugin(
        &self,
        connector: &str,
    ) -> Result<Option<AcceptedPlugin>, StoreError> {
        let accepted = on_pool!(self, pool => {
            sqlx::query(
                "SELECT connector, sha256, version, accepted_at, accepted_by \
                 FROM plugin_acceptances WHERE connector = $1",
            )
            .bind(connector)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<AcceptedPlugin, sqlx::Error> {
                Ok(AcceptedPlugin {
                    connector: row.try_get("connector")?,
                    sha256: row.try_get("sha256")?,
                    version: row.try_get("version")?,
                    accepted_at: row.try_get("accepted_at")?,
                    accepted_by: row.try_get("accepted_by")?,
                })
            })
            .transpose()?
        });
        Ok(accepted)
    }

    /// Accepts `accepted`'s build for its connector, replacing the one
    /// accepted before, with its audit record, in one transaction.
    pub async fn accept_plugin(
        &self,
        accepted: &AcceptedPlugin,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO plugin_acceptances (connector, sha256, version, accepted_at, accepted_by) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector) DO UPDATE SET \
                 sha256 = excluded.sha256, version = excluded.version, \
                 accepted_at = excluded.accepted_at, accepted_by = excluded.accepted_by",
            )
            .bind(&accepted.connector)
            .bind(&accepted.sha256)
            .bind(&accepted.version)
            .bind(accepted.accepted_at)
            .bind(&accepted.accepted_by)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, audit);
            tx.commit().await?;
        });
        Ok(())
    }
}
