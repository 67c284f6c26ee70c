//! Provisioning targets' bookkeeping: the ledger of what each target holds
//! as far as the host delivered (its id for each object, the login, the
//! state in the lifecycle and the content last sent), the changes waiting
//! to go under their idempotency keys, the log of every delivery (what was
//! sent, never a password; the target's id; the outcome; the error in one
//! sentence), logins a target said are taken, holds on mass suspensions,
//! and renames waiting for an operator. Typed values are decoded here,
//! once.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rostersync_core::Refusal;
use rostersync_core::targets::{
    Action, LedgerEntry, MassHold, ObjectState, PlannedItem, Rename, RenameStatus,
};
use rostersync_model::target::ObjectKind;
use sqlx::{QueryBuilder, Row};

use crate::{HoldStatus, ROWS_PER_STATEMENT, Store, StoreError};

/// How a target's last unattended pass went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetPass {
    /// The outbox id the last pass that succeeded had followed.
    pub seen_id: i64,
    pub at: DateTime<Utc>,
    /// Why the last pass failed; `None` when it succeeded.
    pub last_error: Option<String>,
}

fn kind_str(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "user",
        ObjectKind::Group => "group",
    }
}

fn decode<T>(
    column: &str,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    parse(text).ok_or_else(|| sqlx::Error::Decode(format!("unknown {column} {text:?}").into()))
}

fn parse_kind(kind: &str) -> Option<ObjectKind> {
    [ObjectKind::User, ObjectKind::Group]
        .into_iter()
        .find(|k| kind_str(*k) == kind)
}

fn json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(format!("bad {column}: {e}").into()))
}

/// What became of one delivery, as the log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryOutcome {
    Done,
    /// An existing object was adopted.
    Matched,
    /// The login was taken; the next plan tries the next one.
    Conflict,
    /// The target asked for the change again later.
    Retry,
    /// Refused for good: not sent again until the object changes.
    Refused,
    /// The whole call failed (the target was unreachable, rate limiting).
    Failed,
}

impl DeliveryOutcome {
    const ALL: [Self; 6] = [
        Self::Done,
        Self::Matched,
        Self::Conflict,
        Self::Retry,
        Self::Refused,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Matched => "matched",
            Self::Conflict => "conflict",
            Self::Retry => "retry",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }

    fn parse(outcome: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == outcome)
    }
}

/// A change waiting to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    pub item: PlannedItem,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Set when the target refused it; it is not sent again.
    pub refused_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// What happens to the pending change after a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingNext {
    /// Settled (done, matched, or given up for a new plan).
    Remove,
    RetryAt(DateTime<Utc>),
    Refused,
}

/// One delivery to record, in one transaction with its effects.
#[derive(Debug, Clone)]
pub struct DeliveryWrite<'a> {
    pub item: &'a PlannedItem,
    /// The change as sent, as JSON (it never holds a password).
    pub sent: String,
    pub outcome: DeliveryOutcome,
    pub target_id: Option<String>,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    /// The ledger entry the delivery leaves, if it changed the target.
    pub ledger: Option<LedgerEntry>,
    /// A login the target said is taken.
    pub taken: Option<String>,
    pub next: PendingNext,
}

/// One line of a target's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRow {
    pub at: DateTime<Utc>,
    pub kind: ObjectKind,
    pub external_id: String,
    pub action: Action,
    pub key: String,
    pub sent: String,
    pub target_id: Option<String>,
    pub outcome: DeliveryOutcome,
    pub error: Option<String>,
}

/// A hold on a target's mass suspension, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetHoldRow {
    pub id: i64,
    pub target: String,
    pub hold: MassHold,
    pub status: HoldStatus,
    pub opened_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answered_by: Option<String>,
}

/// Where a target stands: what waits, its latest delivery, how its last
/// unattended pass went and an open hold. The command line's `targets
/// list` and the dashboard read it alike.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetStatus {
    /// Changes waiting to go (not refused).
    pub waiting: i64,
    /// Changes the target refused: not sent again until they change.
    pub refused: i64,
    pub last_delivery: Option<DeliveryRow>,
    pub last_pass: Option<TargetPass>,
    pub open_hold: Option<TargetHoldRow>,
}

impl TargetStatus {
    /// Why the last unattended pass failed, and when; `None` when it
    /// succeeded or there was none.
    pub fn pass_failure(&self) -> Option<(DateTime<Utc>, &str)> {
        self.last_pass
            .as_ref()
            .and_then(|pass| pass.last_error.as_deref().map(|e| (pass.at, e)))
    }
}

const LEDGER_COLUMNS: &str = "kind, external_id, target_id, username, email, state, suspended_at, \
     content_hash, members, owners, revision";

fn ledger_entry<R: Row>(row: &R) -> Result<LedgerEntry, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let members: String = row.try_get("members")?;
    let owners: String = row.try_get("owners")?;
    Ok(LedgerEntry {
        kind: decode("object kind", &kind, parse_kind)?,
        external_id: row.try_get("external_id")?,
        target_id: row.try_get("target_id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        state: decode("object state", &state, ObjectState::parse)?,
        suspended_at: row.try_get("suspended_at")?,
        content_hash: row.try_get("content_hash")?,
        members: json("members", &members)?,
        owners: json("owners", &owners)?,
        revision: row.try_get("revision")?,
    })
}

fn pending_change<R: Row>(row: &R) -> Result<PendingChange, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let body: String = row.try_get("body")?;
    Ok(PendingChange {
        item: json("pending change", &body)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        refused_at: row.try_get("refused_at")?,
        last_error: row.try_get("last_error")?,
    })
}

fn delivery_row<R: Row>(row: &R) -> Result<DeliveryRow, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    let action: String = row.try_get("action")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(DeliveryRow {
        at: row.try_get("at")?,
        kind: decode("object kind", &kind, parse_kind)?,
        external_id: row.try_get("external_id")?,
        action: decode("action", &action, Action::parse)?,
        key: row.try_get("key")?,
        sent: row.try_get("sent")?,
        target_id: row.try_get("target_id")?,
        outcome: decode("delivery outcome", &outcome, DeliveryOutcome::parse)?,
        error: row.try_get("error")?,
    })
}

fn hold_row<R: Row>(row: &R) -> Result<TargetHoldRow, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    let evidence: String = row.try_get("evidence")?;
    Ok(TargetHoldRow {
        id: row.try_get("id")?,
        target: row.try_get("target")?,
        hold: json("hold evidence", &evidence)?,
        status: decode("hold status", &status, HoldStatus::parse)?,
        opened_at: row.try_get("opened_at")?,
        answered_at: row.try_get("answered_at")?,
        answered_by: row.try_get("answered_by")?,
    })
}

/// Upserts ledger entries through `$executor` (a pool or a transaction).
macro_rules! put_ledger {
    ($executor:expr, $target:expr, $entries:expr, $now:expr) => {
        for chunk in $entries.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::new(
                "INSERT INTO target_objects (target, kind, external_id, target_id, username, email, state, \
                 suspended_at, content_hash, members, owners, revision, updated_at) ",
            );
            query.push_values(chunk, |mut row, entry: &LedgerEntry| {
                row.push_bind($target)
                    .push_bind(kind_str(entry.kind))
                    .push_bind(&entry.external_id)
                    .push_bind(&entry.target_id)
                    .push_bind(&entry.username)
                    .push_bind(&entry.email)
                    .push_bind(entry.state.as_str())
                    .push_bind(entry.suspended_at)
                    .push_bind(&entry.content_hash)
                    .push_bind(serde_json::to_string(&entry.members).expect("ids serialise"))
                    .push_bind(serde_json::to_string(&entry.owners).expect("ids serialise"))
                    .push_bind(entry.revision)
                    .push_bind($now);
            });
            query.push(
                " ON CONFLICT (target, kind, external_id) DO UPDATE SET target_id = excluded.target_id, \
                 username = excluded.username, email = excluded.email, state = excluded.state, \
                 suspended_at = excluded.suspended_at, content_hash = excluded.content_hash, \
                 members = excluded.members, owners = excluded.owners, revision = excluded.revision, \
                 updated_at = excluded.updated_at",
            );
            query.build().execute($executor).await?;
        }
    };
}

impl Store {
    /// What the target holds as far as the host delivered, by kind and id.
    pub async fn target_ledger(&self, target: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let entries = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {LEDGER_COLUMNS} FROM target_objects WHERE target = $1 ORDER BY kind DESC, external_id"
            )))
            .bind(target)
            .fetch_all(pool)
            .await?
            .iter()
            .map(ledger_entry)
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(entries)
    }

    /// Where `target` stands now, in a handful of queries.
    pub async fn target_status(&self, target: &str) -> Result<TargetStatus, StoreError> {
        let (waiting, refused): (i64, i64) = on_pool!(self, pool => {
            let waiting = sqlx::query_scalar(
                "SELECT COUNT(*) FROM target_pending WHERE target = $1 AND refused_at IS NULL",
            )
            .bind(target)
            .fetch_one(pool)
            .await?;
            let refused = sqlx::query_scalar(
                "SELECT COUNT(*) FROM target_pending WHERE target = $1 AND refused_at IS NOT NULL",
            )
            .bind(target)
            .fetch_one(pool)
            .await?;
            (waiting, refused)
        });
        Ok(TargetStatus {
            waiting,
            refused,
            last_delivery: self.target_deliveries(target, 1).await?.into_iter().next(),
            last_pass: self.target_pass(target).await?,
            open_hold: self
                .target_holds(target)
                .await?
                .into_iter()
                .find(|h| h.status == HoldStatus::Open),
        })
    }

    /// One object of the target's ledger.
    pub async fn target_object(
        &self,
        target: &str,
        kind: ObjectKind,
        external_id: &str,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        let entry = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {LEDGER_COLUMNS} FROM target_objects WHERE target = $1 AND kind = $2 AND external_id = $3"
            )))
            .bind(target)
            .bind(kind_str(kind))
            .bind(external_id)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(ledger_entry)
            .transpose()?
        });
        Ok(entry)
    }

    /// The target's groups whose delivered members include `external_id`,
    /// by name.
    pub async fn target_groups_of(
        &self,
        target: &str,
        external_id: &str,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut groups: Vec<LedgerEntry> = self
            .target_ledger(target)
            .await?
            .into_iter()
            .filter(|e| e.kind == ObjectKind::Group)
            .filter(|g| g.members.iter().chain(&g.owners).any(|m| m == external_id))
            .collect();
        groups.sort_by(|a, b| (&a.username, &a.external_id).cmp(&(&b.username, &b.external_id)));
        Ok(groups)
    }

    /// The deliveries of one object to the target, newest first, at most
    /// `limit`.
    pub async fn target_deliveries_of(
        &self,
        target: &str,
        external_id: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.deliveries(target, Some(external_id), limit).await
    }

    /// Writes ledger entries outside a delivery: suspensions the target
    /// cannot take, objects adopted or found drifted by a reconcile.
    pub async fn put_target_objects(
        &self,
        target: &str,
        entries: &[LedgerEntry],
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            put_ledger!(&mut *tx, target, entries, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Forgets objects the target no longer holds, so the next plan makes
    /// them again.
    pub async fn drop_target_objects(
        &self,
        target: &str,
        objects: &[(ObjectKind, String)],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            for (kind, external_id) in objects {
                sqlx::query("DELETE FROM target_objects WHERE target = $1 AND kind = $2 AND external_id = $3")
                    .bind(target)
                    .bind(kind_str(*kind))
                    .bind(external_id)
                    .execute(pool)
                    .await?;
            }
        });
        Ok(())
    }

    /// Makes the plan the target's pending changes: keys already waiting
    /// keep their attempts (and a refusal), new keys are added, and keys
    /// the plan no longer has (the object changed again) are dropped.
    /// Returns how many were new.
    pub async fn enqueue_target_changes(
        &self,
        target: &str,
        items: &[PlannedItem],
    ) -> Result<usize, StoreError> {
        let now = Utc::now();
        let planned: HashSet<&str> = items.iter().map(|i| i.item.key.as_str()).collect();
        let added = on_pool!(self, pool => {
            // Read before the transaction: on SQLite a transaction that
            // reads and then writes fails at once if another writer went
            // between. One target is enqueued by one delivery at a time.
            let waiting: Vec<String> = sqlx::query_scalar("SELECT key FROM target_pending WHERE target = $1")
                .bind(target)
                .fetch_all(pool)
                .await?;
            let mut tx = pool.begin().await?;
            let superseded: Vec<&String> = waiting.iter().filter(|k| !planned.contains(k.as_str())).collect();
            for chunk in superseded.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new("DELETE FROM target_pending WHERE target = ");
                query.push_bind(target).push(" AND key IN (");
                let mut keys = query.separated(", ");
                for key in chunk {
                    keys.push_bind(*key);
                }
                keys.push_unseparated(")");
                query.build().execute(&mut *tx).await?;
            }
            let numbered: Vec<(i64, &PlannedItem)> = (0..).zip(items).collect();
            for chunk in numbered.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO target_pending (target, key, position, body, enqueued_at) ",
                );
                query.push_values(chunk, |mut row, (position, item)| {
                    row.push_bind(target)
                        .push_bind(&item.item.key)
                        .push_bind(*position)
                        .push_bind(serde_json::to_string(item).expect("planned changes serialise"))
                        .push_bind(now);
                });
                query.push(" ON CONFLICT (target, key) DO UPDATE SET position = excluded.position");
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            items.len() - (waiting.len() - superseded.len())
        });
        Ok(added)
    }

    /// Drops a pending change that has nothing left to send (its members
    /// have no account in the target yet); the next plan makes it again.
    pub async fn drop_target_change(&self, target: &str, key: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM target_pending WHERE target = $1 AND key = $2")
                .bind(target)
                .bind(key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every pending change of the target, in plan order, refused ones too.
    pub async fn target_changes(&self, target: &str) -> Result<Vec<PendingChange>, StoreError> {
        self.pending_where(target, None, i64::MAX).await
    }

    /// The changes due at `now` (not refused, not waiting for a retry), in
    /// plan order, at most `limit`.
    pub async fn due_target_changes(
        &self,
        target: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingChange>, StoreError> {
        self.pending_where(target, Some(now), limit).await
    }

    async fn pending_where(
        &self,
        target: &str,
        due_at: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<PendingChange>, StoreError> {
        let changes = on_pool!(self, pool => {
            let mut query = QueryBuilder::new(
                "SELECT body, attempts, next_attempt_at, refused_at, last_error FROM target_pending WHERE target = ",
            );
            query.push_bind(target);
            if let Some(now) = due_at {
                query
                    .push(" AND refused_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= ")
                    .push_bind(now)
                    .push(")");
            }
            query.push(" ORDER BY position, key LIMIT ").push_bind(limit);
            query
                .build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(pending_change)
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(changes)
    }

    /// When the earliest change waiting for a retry is due.
    pub async fn next_target_attempt(
        &self,
        target: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM target_pending WHERE target = $1 AND refused_at IS NULL",
            )
            .bind(target)
            .fetch_one(pool)
            .await?
        });
        Ok(next)
    }

    /// Records one delivery: its log line, the ledger entry it leaves, a
    /// login found taken, what becomes of the pending change, and a rename
    /// it carried out, in one transaction.
    pub async fn record_target_delivery(
        &self,
        target: &str,
        write: &DeliveryWrite<'_>,
    ) -> Result<(), StoreError> {
        let item = write.item;
        let key = &item.item.key;
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(entry) = &write.ledger {
                put_ledger!(&mut *tx, target, std::slice::from_ref(entry), write.at);
                if let (Action::UpdateUser, Some(username)) = (item.action, &entry.username) {
                    sqlx::query(
                        "UPDATE target_renames SET status = 'applied' WHERE target = $1 AND external_id = $2 \
                         AND to_username = $3 AND status = 'approved'",
                    )
                    .bind(target)
                    .bind(&entry.external_id)
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if let Some(name) = &write.taken {
                sqlx::query(
                    "INSERT INTO target_taken_names (target, name, noted_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (target, name) DO NOTHING",
                )
                .bind(target)
                .bind(name)
                .bind(write.at)
                .execute(&mut *tx)
                .await?;
            }
            match write.next {
                PendingNext::Remove => {
                    sqlx::query("DELETE FROM target_pending WHERE target = $1 AND key = $2")
                        .bind(target)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                PendingNext::RetryAt(at) => {
                    sqlx::query(
                        "UPDATE target_pending SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4 \
                         WHERE target = $1 AND key = $2",
                    )
                    .bind(target)
                    .bind(key)
                    .bind(at)
                    .bind(&write.error)
                    .execute(&mut *tx)
                    .await?;
                }
                PendingNext::Refused => {
                    sqlx::query(
                        "UPDATE target_pending SET attempts = attempts + 1, refused_at = $3, last_error = $4 \
                         WHERE target = $1 AND key = $2",
                    )
                    .bind(target)
                    .bind(key)
                    .bind(write.at)
                    .bind(&write.error)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            sqlx::query(
                "INSERT INTO target_deliveries (target, at, kind, external_id, action, key, sent, target_id, outcome, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(target)
            .bind(write.at)
            .bind(kind_str(item.after.kind))
            .bind(&item.external_id)
            .bind(item.action.as_str())
            .bind(key)
            .bind(&write.sent)
            .bind(&write.target_id)
            .bind(write.outcome.as_str())
            .bind(&write.error)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The target's deliveries, newest first, at most `limit`.
    pub async fn target_deliveries(
        &self,
        target: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.deliveries(target, None, limit).await
    }

    /// The target's deliveries, of one object when `external_id` names
    /// one, newest first, at most `limit`.
    async fn deliveries(
        &self,
        target: &str,
        external_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query(
                "SELECT at, kind, external_id, action, key, sent, target_id, outcome, error FROM target_deliveries \
                 WHERE target = $1 AND ($2 IS NULL OR external_id = $2) ORDER BY id DESC LIMIT $3",
            )
            .bind(target)
            .bind(external_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(delivery_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Logins and emails the target said belong to someone else.
    pub async fn target_taken_names(&self, target: &str) -> Result<HashSet<String>, StoreError> {
        let names: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT name FROM target_taken_names WHERE target = $1")
                .bind(target)
                .fetch_all(pool)
                .await?
        });
        Ok(names.into_iter().collect())
    }

    /// Opens the target's hold on `hold`'s changes, or moves the open hold
    /// to them; returns the hold's id.
    pub async fn open_target_hold(&self, target: &str, hold: &MassHold) -> Result<i64, StoreError> {
        let evidence = serde_json::to_string(hold).expect("holds serialise");
        let now = Utc::now();
        let id = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let moved: Option<i64> = sqlx::query_scalar(
                "UPDATE target_holds SET digest = $2, evidence = $3 WHERE target = $1 AND status = 'open' RETURNING id",
            )
            .bind(target)
            .bind(&hold.digest)
            .bind(&evidence)
            .fetch_optional(&mut *tx)
            .await?;
            let id = match moved {
                Some(id) => id,
                None => sqlx::query_scalar(
                    "INSERT INTO target_holds (target, digest, evidence, status, opened_at) \
                     VALUES ($1, $2, $3, 'open', $4) RETURNING id",
                )
                .bind(target)
                .bind(&hold.digest)
                .bind(&evidence)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?,
            };
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// The target's holds, newest first.
    pub async fn target_holds(&self, target: &str) -> Result<Vec<TargetHoldRow>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query(
                "SELECT id, target, evidence, status, opened_at, answered_at, answered_by FROM target_holds \
                 WHERE target = $1 ORDER BY id DESC",
            )
            .bind(target)
            .fetch_all(pool)
            .await?
            .iter()
            .map(hold_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Answers an open hold, naming the digest of the changes reviewed; a
    /// hold that moved on to other changes since is refused.
    pub async fn answer_target_hold(
        &self,
        id: i64,
        digest: &str,
        status: HoldStatus,
        by: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let row = sqlx::query("SELECT target, digest, status FROM target_holds WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            let Some(row) = row else {
                return Err(Refusal::Answered(id).into());
            };
            let current: String = row.try_get("digest")?;
            let state: String = row.try_get("status")?;
            if state != HoldStatus::Open.as_str() {
                return Err(Refusal::Answered(id).into());
            }
            if current != digest {
                return Err(Refusal::RevisionNotCurrent { hold: id, reviewed: digest.into(), current }.into());
            }
            let target: String = row.try_get("target")?;
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE target_holds SET status = $2, answered_at = $3, answered_by = $4 WHERE id = $1 AND status = 'open'",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(now)
            .bind(by)
            .execute(&mut *tx)
            .await?;
            let audit = crate::AuditEntry {
                at: now,
                actor: by.to_string(),
                action: format!("target-hold.{}", status.as_str()),
                connection: None,
                subject: format!("target {target} hold {id}"),
                detail: format!("{}: digest {digest} reviewed", status.as_str()),
            };
            insert_audit!(&mut *tx, audit);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Digests of the target's confirmed holds: changes released.
    pub async fn confirmed_target_holds(
        &self,
        target: &str,
    ) -> Result<HashSet<String>, StoreError> {
        let digests: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT digest FROM target_holds WHERE target = $1 AND status = 'confirmed'")
                .bind(target)
                .fetch_all(pool)
                .await?
        });
        Ok(digests.into_iter().collect())
    }

    /// Records renames the templates ask for; one already known (in any
    /// state) is left as it is.
    pub async fn propose_target_renames(
        &self,
        target: &str,
        renames: &[Rename],
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            for rename in renames {
                sqlx::query(
                    "INSERT INTO target_renames (target, external_id, from_username, to_username, to_email, status, proposed_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT DO NOTHING",
                )
                .bind(target)
                .bind(&rename.external_id)
                .bind(&rename.from)
                .bind(&rename.to)
                .bind(&rename.to_email)
                .bind(now)
                .execute(pool)
                .await?;
            }
        });
        Ok(())
    }

    /// The target's renames, in every state.
    pub async fn target_renames(&self, target: &str) -> Result<Vec<Rename>, StoreError> {
        let renames = on_pool!(self, pool => {
            sqlx::query(
                "SELECT external_id, from_username, to_username, to_email, status FROM target_renames \
                 WHERE target = $1 ORDER BY proposed_at, external_id",
            )
            .bind(target)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(Rename {
                    external_id: row.try_get("external_id")?,
                    from: row.try_get("from_username")?,
                    to: row.try_get("to_username")?,
                    to_email: row.try_get("to_email")?,
                    status: decode("rename status", &status, RenameStatus::parse)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(renames)
    }

    /// Approves or rejects a pending rename, audited; false when none was
    /// pending.
    pub async fn answer_target_rename(
        &self,
        target: &str,
        external_id: &str,
        to: &str,
        status: RenameStatus,
        by: &str,
    ) -> Result<bool, StoreError> {
        let audit = crate::AuditEntry {
            at: Utc::now(),
            actor: by.to_string(),
            action: format!("target-rename.{}", status.as_str()),
            connection: None,
            subject: format!("target {target} account {external_id}"),
            detail: format!("{} the change of login to {to:?}", status.as_str()),
        };
        let changed = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE target_renames SET status = $4, answered_at = $5, answered_by = $6 \
                 WHERE target = $1 AND external_id = $2 AND to_username = $3 AND status = 'pending'",
            )
            .bind(target)
            .bind(external_id)
            .bind(to)
            .bind(status.as_str())
            .bind(audit.at)
            .bind(&audit.actor)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed > 0 {
                insert_audit!(&mut *tx, &audit);
            }
            tx.commit().await?;
            changed
        });
        Ok(changed > 0)
    }

    /// Takes or renews the lease on delivering `target` for `holder` until
    /// `expires_at`: true when `holder` holds it now (it was free, expired
    /// or already `holder`'s), false while another holder's lease runs.
    pub async fn claim_target(
        &self,
        target: &str,
        holder: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let claimed = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO target_leases (target, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (target) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE target_leases.holder = excluded.holder OR target_leases.expires_at < $4",
            )
            .bind(target)
            .bind(holder)
            .bind(expires_at)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(claimed > 0)
    }

    /// Gives up `holder`'s lease on delivering `target`, if it holds one.
    pub async fn release_target(&self, target: &str, holder: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM target_leases WHERE target = $1 AND holder = $2")
                .bind(target)
                .bind(holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The newest outbox event's id: what runs have written so far.
    pub async fn outbox_head(&self) -> Result<i64, StoreError> {
        let head: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT MAX(id) FROM outbox").fetch_one(pool).await?
        });
        Ok(head.unwrap_or(0))
    }

    /// How `target`'s last unattended pass went; `None` before its first.
    pub async fn target_pass(&self, target: &str) -> Result<Option<TargetPass>, StoreError> {
        let pass = on_pool!(self, pool => {
            sqlx::query("SELECT seen_id, at, last_error FROM target_outbox WHERE target = $1")
                .bind(target)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<TargetPass, sqlx::Error> {
                    Ok(TargetPass {
                        seen_id: row.try_get("seen_id")?,
                        at: row.try_get("at")?,
                        last_error: row.try_get("last_error")?,
                    })
                })
                .transpose()?
        });
        Ok(pass)
    }

    /// Notes a pass that delivered `target` after the outbox reached
    /// `seen_id`, clearing the last error. The mark never moves back: a
    /// slower pass that started earlier leaves a later one in place.
    pub async fn mark_target_outbox_seen(
        &self,
        target: &str,
        seen_id: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO target_outbox (target, seen_id, at, last_error) VALUES ($1, $2, $3, NULL) \
                 ON CONFLICT (target) DO UPDATE SET seen_id = excluded.seen_id, at = excluded.at, last_error = NULL \
                 WHERE target_outbox.seen_id <= excluded.seen_id",
            )
            .bind(target)
            .bind(seen_id)
            .bind(Utc::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Notes a pass that failed, in one sentence; what it had seen stays.
    pub async fn note_target_pass_failed(
        &self,
        target: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO target_outbox (target, at, last_error) VALUES ($1, $2, $3) \
                 ON CONFLICT (target) DO UPDATE SET at = excluded.at, last_error = excluded.last_error",
            )
            .bind(target)
            .bind(Utc::now())
            .bind(error)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
