//! Held runs: the change set a run did not apply because it looked
//! dangerous, kept until an operator confirms or rejects it; and the change
//! sets dry runs report.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldStatus {
    Open,
    Confirmed,
    Rejected,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Confirmed => "confirmed",
            Self::Rejected => "rejected",
        }
    }

    fn parse(status: &str) -> Option<Self> {
        [Self::Open, Self::Confirmed, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == status)
    }
}

/// What a run does to its connection's hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldWrite {
    /// Holds this run: opens the connection's hold, or moves the open one
    /// to this run's (newer) change set. `reasons` is JSON.
    Open {
        reasons: String,
        cursor: Option<String>,
    },
    /// Answers an open hold; fails (and rolls the run back) if it was
    /// already answered, so a change set is never applied twice.
    Answer {
        hold: i64,
        status: HoldStatus,
        by: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HoldRow {
    pub id: i64,
    pub connection: String,
    /// The held run whose change set waits.
    pub run_id: i64,
    /// JSON: the reasons the run was held.
    pub reasons: String,
    /// Where the next delta resumes once the change set is applied.
    pub cursor: Option<String>,
    pub status: HoldStatus,
    pub opened_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answered_by: Option<String>,
}

/// Writes a [`crate::WriteSet`]'s kept change set and hold inside the
/// run's transaction, once the run row `$run` exists.
macro_rules! write_hold {
    ($tx:ident, $connection:expr, $run:expr, $writes:expr, $now:expr) => {
        if let Some(body) = &$writes.kept_change_set {
            sqlx::query("INSERT INTO change_sets (run_id, body) VALUES ($1, $2)")
                .bind($run)
                .bind(body)
                .execute(&mut *$tx)
                .await?;
        }
        match &$writes.hold {
            None => {}
            Some($crate::HoldWrite::Open { reasons, cursor }) => {
                let moved = sqlx::query(
                    "UPDATE holds SET run_id = $2, reasons = $3, cursor = $4 \
                     WHERE connection_id = $1 AND status = 'open'",
                )
                .bind($connection)
                .bind($run)
                .bind(reasons)
                .bind(cursor)
                .execute(&mut *$tx)
                .await?;
                if moved.rows_affected() == 0 {
                    sqlx::query(
                        "INSERT INTO holds (connection_id, run_id, reasons, cursor, status, opened_at) \
                         VALUES ($1, $2, $3, $4, 'open', $5)",
                    )
                    .bind($connection)
                    .bind($run)
                    .bind(reasons)
                    .bind(cursor)
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
                }
            }
            Some($crate::HoldWrite::Answer { hold, status, by }) => {
                let answered = sqlx::query(
                    "UPDATE holds SET status = $2, answered_at = $3, answered_by = $4 \
                     WHERE id = $1 AND status = 'open'",
                )
                .bind(hold)
                .bind(status.as_str())
                .bind($now)
                .bind(by)
                .execute(&mut *$tx)
                .await?;
                if answered.rows_affected() == 0 {
                    return Err($crate::StoreError::HoldNotOpen(*hold));
                }
            }
        }
    };
}

fn hold_row<R: Row>(row: &R) -> Result<HoldRow, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    Ok(HoldRow {
        id: row.try_get("id")?,
        connection: row.try_get("connection_id")?,
        run_id: row.try_get("run_id")?,
        reasons: row.try_get("reasons")?,
        cursor: row.try_get("cursor")?,
        status: HoldStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown hold status {status:?}").into()))?,
        opened_at: row.try_get("opened_at")?,
        answered_at: row.try_get("answered_at")?,
        answered_by: row.try_get("answered_by")?,
    })
}

const HOLD_COLUMNS: &str =
    "id, connection_id, run_id, reasons, cursor, status, opened_at, answered_at, answered_by";

impl Store {
    /// Holds, newest first: the open ones only, or all of them.
    pub async fn holds(&self, include_answered: bool) -> Result<Vec<HoldRow>, StoreError> {
        let filter = if include_answered {
            ""
        } else {
            "WHERE status = 'open'"
        };
        let holds = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HOLD_COLUMNS} FROM holds {filter} ORDER BY id DESC")))
                .fetch_all(pool)
                .await?
                .iter()
                .map(hold_row)
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(holds)
    }

    pub async fn hold(&self, id: i64) -> Result<Option<HoldRow>, StoreError> {
        let hold = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(hold_row)
                .transpose()?
        });
        Ok(hold)
    }

    /// The connection's open hold, if it has one.
    pub async fn open_hold(&self, connection: &str) -> Result<Option<HoldRow>, StoreError> {
        let hold = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE connection_id = $1 AND status = 'open'"
            )))
            .bind(connection)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(hold_row)
            .transpose()?
        });
        Ok(hold)
    }

    /// Rejects an open hold with its audit record; nothing is applied.
    pub async fn reject_hold(
        &self,
        hold: i64,
        audit: &crate::AuditEntry,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let answered = sqlx::query(
                "UPDATE holds SET status = 'rejected', answered_at = $2, answered_by = $3 \
                 WHERE id = $1 AND status = 'open'",
            )
            .bind(hold)
            .bind(audit.at)
            .bind(&audit.actor)
            .execute(&mut *tx)
            .await?;
            if answered.rows_affected() == 0 {
                return Err(StoreError::HoldNotOpen(hold));
            }
            insert_audit!(&mut *tx, audit);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The change set a held or dry run kept, as JSON.
    pub async fn kept_change_set(&self, run_id: i64) -> Result<Option<String>, StoreError> {
        let body = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT body FROM change_sets WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(body)
    }
}
