//! The store: what each connection last applied (its roster records with
//! content hashes), and its runs, in SQLite (the embedded default: one
//! file, no server) or PostgreSQL (many schools, several hosts), behind one
//! interface.
//!
//! Both dialects share every query (sqlx takes `$N` placeholders on both);
//! only the migrations differ, because column types do. Writes are batched
//! as multi-row statements, and a run's writes commit in one transaction,
//! so a reader sees the roster before or after a run, never half of it.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row};

/// The environment variable that names the store, over the config file.
pub const STORE_ENV: &str = "ROSTERSYNC_STORE";

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's
/// limits on bound parameters (six per row).
const ROWS_PER_STATEMENT: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{url:?} is not a store URL: write sqlite://PATH or postgres://USER@HOST/DATABASE")]
    BadUrl { url: String },
    #[error("cannot open the store at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot bring the store's schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// Which kind of roster record a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Person,
    Group,
    Membership,
    Relationship,
}

impl RecordKind {
    pub const ALL: [RecordKind; 4] = [
        Self::Person,
        Self::Group,
        Self::Membership,
        Self::Relationship,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Group => "group",
            Self::Membership => "membership",
            Self::Relationship => "relationship",
        }
    }

    fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// One stored record: its key within its kind, the hash of its content,
/// and the content itself as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub kind: RecordKind,
    pub key: String,
    pub content_hash: Vec<u8>,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Full,
    Delta,
}

impl RunMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Delta => "delta",
        }
    }
}

/// The history row a run writes with its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub mode: RunMode,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Where the next delta resumes; committed with the records it covers.
    pub cursor: Option<String>,
}

/// Everything one run writes, applied in one transaction.
#[derive(Debug, Clone)]
pub struct WriteSet {
    pub upserts: Vec<StoredRecord>,
    pub removals: Vec<(RecordKind, String)>,
    pub run: RunRecord,
}

enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has; the
/// body is the same SQL for both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

pub struct Store {
    backend: Backend,
}

impl Store {
    /// The store URL: `ROSTERSYNC_STORE` if set, else `configured`.
    pub fn url_from_env_or(configured: &str) -> String {
        std::env::var(STORE_ENV).unwrap_or_else(|_| configured.to_string())
    }

    /// Opens (creating an SQLite file if needed) and migrates the store.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(open_error)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(open_error)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .connect(url)
                .await
                .map_err(open_error)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
            });
        };
        Ok(Store { backend })
    }

    pub async fn close(self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Registers a connection the first time it is seen.
    pub async fn ensure_connection(&self, id: &str, connector: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO connections (id, connector, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(connector)
            .bind(Utc::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The content hash of every stored record of one kind, by key: what
    /// the diff compares incoming records against.
    pub async fn content_hashes(
        &self,
        connection: &str,
        kind: RecordKind,
    ) -> Result<HashMap<String, Vec<u8>>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query(
                "SELECT key, content_hash FROM roster_records WHERE connection_id = $1 AND kind = $2",
            )
            .bind(connection)
            .bind(kind.as_str())
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| Ok((row.try_get("key")?, row.try_get("content_hash")?)))
            .collect::<Result<HashMap<String, Vec<u8>>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// The stored records of one kind with these keys (missing keys are
    /// left out): the old side of field-level updates.
    pub async fn load(
        &self,
        connection: &str,
        kind: RecordKind,
        keys: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut records = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            on_pool!(self, pool => {
                let mut query = QueryBuilder::new(
                    "SELECT kind, key, content_hash, body FROM roster_records WHERE connection_id = ",
                );
                query.push_bind(connection).push(" AND kind = ").push_bind(kind.as_str()).push(" AND key IN (");
                let mut list = query.separated(", ");
                for key in chunk {
                    list.push_bind(key);
                }
                list.push_unseparated(") ORDER BY key");
                for row in query.build().fetch_all(pool).await? {
                    records.push(stored_record(&row)?);
                }
            });
        }
        Ok(records)
    }

    /// Applies a run's writes and its history row in one transaction;
    /// returns the run's id. Any failure rolls all of it back.
    pub async fn apply(&self, connection: &str, writes: &WriteSet) -> Result<i64, StoreError> {
        let now = Utc::now();
        let run_id = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in writes.upserts.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO roster_records (connection_id, kind, key, content_hash, body, changed_at) ",
                );
                query.push_values(chunk, |mut row, record| {
                    row.push_bind(connection)
                        .push_bind(record.kind.as_str())
                        .push_bind(&record.key)
                        .push_bind(&record.content_hash)
                        .push_bind(&record.body)
                        .push_bind(now);
                });
                query.push(
                    " ON CONFLICT (connection_id, kind, key) DO UPDATE SET \
                     content_hash = excluded.content_hash, body = excluded.body, changed_at = excluded.changed_at",
                );
                query.build().execute(&mut *tx).await?;
            }
            for kind in RecordKind::ALL {
                let keys: Vec<&String> = writes.removals.iter().filter(|(k, _)| *k == kind).map(|(_, key)| key).collect();
                for chunk in keys.chunks(ROWS_PER_STATEMENT) {
                    let mut query = QueryBuilder::new("DELETE FROM roster_records WHERE connection_id = ");
                    query.push_bind(connection).push(" AND kind = ").push_bind(kind.as_str()).push(" AND key IN (");
                    let mut list = query.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    list.push_unseparated(")");
                    query.build().execute(&mut *tx).await?;
                }
            }
            let run = &writes.run;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO sync_runs (connection_id, mode, status, started_at, finished_at, cursor) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(connection)
            .bind(run.mode.as_str())
            .bind(&run.status)
            .bind(run.started_at)
            .bind(run.finished_at)
            .bind(&run.cursor)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            id
        });
        Ok(run_id)
    }

    /// The cursor of the connection's latest run that stored one.
    pub async fn last_cursor(&self, connection: &str) -> Result<Option<String>, StoreError> {
        let cursor = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT cursor FROM sync_runs WHERE connection_id = $1 AND cursor IS NOT NULL \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(connection)
            .fetch_optional(pool)
            .await?
        });
        Ok(cursor)
    }
}

fn stored_record<R: Row>(row: &R) -> Result<StoredRecord, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    Ok(StoredRecord {
        kind: RecordKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown record kind {kind:?}").into()))?,
        key: row.try_get("key")?,
        content_hash: row.try_get("content_hash")?,
        body: row.try_get("body")?,
    })
}
