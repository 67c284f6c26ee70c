//! Accounts (the directory the roster provisions) and the links between a
//! connection's source people and the accounts they are.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountStatus {
    Active,
    /// Removed at the source (create mode): kept, so a pupil restored by
    /// mistake gets the same account back.
    Deprovisioned,
    /// Deleted by an operator.
    Deleted,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deprovisioned => "deprovisioned",
            Self::Deleted => "deleted",
        }
    }

    fn parse(status: &str) -> Option<Self> {
        [Self::Active, Self::Deprovisioned, Self::Deleted]
            .into_iter()
            .find(|s| s.as_str() == status)
    }
}

/// An account as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountRow {
    pub id: String,
    pub role: String,
    pub mis_id: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: String,
    pub status: AccountStatus,
    /// The connection that provisioned it; `None` for accounts made by
    /// hand or imported.
    pub created_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountWrite {
    /// Creates the account, or brings an existing one up to date (its
    /// creator and creation time stay).
    Upsert(AccountRow),
    SetStatus {
        id: String,
        status: AccountStatus,
    },
}

/// A change to the connection's links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkWrite {
    Link {
        source_id: String,
        account_id: String,
    },
    Unlink {
        source_id: String,
    },
}

/// Writes a [`crate::WriteSet`]'s accounts and links inside the run's
/// transaction (a macro because the transaction's type differs by backend).
macro_rules! write_accounts {
    ($tx:ident, $connection:expr, $writes:expr, $now:expr) => {
        // Upserts (every new or changed person) go many rows per
        // statement; status changes are few.
        let upserts: Vec<&$crate::AccountRow> = $writes
            .accounts
            .iter()
            .filter_map(|w| match w {
                $crate::AccountWrite::Upsert(account) => Some(account),
                _ => None,
            })
            .collect();
        for chunk in upserts.chunks($crate::ROWS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO accounts (id, role, mis_id, email, username, display_name, status, \
                 created_by, created_at, updated_at) ",
            );
            query.push_values(chunk, |mut row, account| {
                row.push_bind(&account.id)
                    .push_bind(&account.role)
                    .push_bind(&account.mis_id)
                    .push_bind(&account.email)
                    .push_bind(&account.username)
                    .push_bind(&account.display_name)
                    .push_bind(account.status.as_str())
                    .push_bind(&account.created_by)
                    .push_bind($now)
                    .push_bind($now);
            });
            query.push(
                " ON CONFLICT (id) DO UPDATE SET role = excluded.role, mis_id = excluded.mis_id, \
                 email = excluded.email, username = excluded.username, \
                 display_name = excluded.display_name, status = excluded.status, \
                 updated_at = excluded.updated_at",
            );
            query.build().execute(&mut *$tx).await?;
        }
        for write in &$writes.accounts {
            if let $crate::AccountWrite::SetStatus { id, status } = write {
                sqlx::query("UPDATE accounts SET status = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(status.as_str())
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        let links: Vec<(&String, &String)> = $writes
            .links
            .iter()
            .filter_map(|w| match w {
                $crate::LinkWrite::Link { source_id, account_id } => Some((source_id, account_id)),
                _ => None,
            })
            .collect();
        for chunk in links.chunks($crate::ROWS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO account_links (connection_id, source_id, account_id, linked_at) ",
            );
            query.push_values(chunk, |mut row, (source_id, account_id)| {
                row.push_bind($connection)
                    .push_bind(*source_id)
                    .push_bind(*account_id)
                    .push_bind($now);
            });
            query.push(
                " ON CONFLICT (connection_id, source_id) \
                 DO UPDATE SET account_id = excluded.account_id, linked_at = excluded.linked_at",
            );
            query.build().execute(&mut *$tx).await?;
        }
        for link in &$writes.links {
            if let $crate::LinkWrite::Unlink { source_id } = link {
                sqlx::query("DELETE FROM account_links WHERE connection_id = $1 AND source_id = $2")
                    .bind($connection)
                    .bind(source_id)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    };
}

fn account_row<R: Row>(row: &R) -> Result<AccountRow, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    Ok(AccountRow {
        id: row.try_get("id")?,
        role: row.try_get("role")?,
        mis_id: row.try_get("mis_id")?,
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        status: AccountStatus::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown account status {status:?}").into())
        })?,
        created_by: row.try_get("created_by")?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, role, mis_id, email, username, display_name, status, created_by";

impl Store {
    /// Every account, in id order: what link mode matches against.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>, StoreError> {
        let accounts = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id")))
                .fetch_all(pool)
                .await?
                .iter()
                .map(account_row)
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(accounts)
    }

    pub async fn account(&self, id: &str) -> Result<Option<AccountRow>, StoreError> {
        let account = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(account_row)
                .transpose()?
        });
        Ok(account)
    }

    /// The connection's links: source person id to account id.
    pub async fn links(&self, connection: &str) -> Result<HashMap<String, String>, StoreError> {
        let links = on_pool!(self, pool => {
            sqlx::query("SELECT source_id, account_id FROM account_links WHERE connection_id = $1")
                .bind(connection)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((row.try_get("source_id")?, row.try_get("account_id")?)))
                .collect::<Result<HashMap<String, String>, sqlx::Error>>()?
        });
        Ok(links)
    }

    /// The source people linked to `account`, as (connection, source id),
    /// in connection order.
    pub async fn links_to(&self, account: &str) -> Result<Vec<(String, String)>, StoreError> {
        let links = on_pool!(self, pool => {
            sqlx::query(
                "SELECT connection_id, source_id FROM account_links WHERE account_id = $1 \
                 ORDER BY connection_id, source_id",
            )
            .bind(account)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("connection_id")?, row.try_get("source_id")?)))
            .collect::<Result<Vec<(String, String)>, sqlx::Error>>()?
        });
        Ok(links)
    }

    /// Adds or updates accounts outside any run: an import, or accounts
    /// made by hand.
    pub async fn put_accounts(&self, accounts: &[AccountRow]) -> Result<(), StoreError> {
        let now: DateTime<Utc> = Utc::now();
        let writes = crate::WriteSet {
            accounts: accounts.iter().cloned().map(AccountWrite::Upsert).collect(),
            ..crate::WriteSet::new(crate::RunRecord::new(crate::RunMode::Full, "import", now))
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            write_accounts!(tx, "", writes, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A manual action on one account with its audit record, in one
    /// transaction.
    pub async fn manual_account_action(
        &self,
        connection: &str,
        writes: &crate::WriteSet,
        audit: &crate::AuditEntry,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            write_accounts!(tx, connection, writes, now);
            insert_audit!(&mut *tx, audit);
            tx.commit().await?;
        });
        Ok(())
    }
}
