//! Held runs: the change set a run did not apply because it looked
//! dangerous, kept until an operator confirms or rejects it; and the change
//! sets dry runs report.
//!
//! A hold shows one change set at a time, its current revision, named by a
//! digest of the change set. A later held run with a different change set
//! opens a new revision and supersedes the old one, whose change set stays
//! kept as evidence; confirming names the revision reviewed and is refused
//! once it is no longer current. A hold of several types is answered in
//! parts: the answers given so far are kept with it. What operators
//! accepted or declined is remembered per connection as opaque keys the
//! core defines, with the verdict. And the
//! headcounts the holds weigh shares against: people by role, groups by
//! kind, read from the stored records' `class` column.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, Utc};
use rostersync_core::{HoldAnswer, HoldKind, Verdicts};
use rostersync_model::{GroupKind, Role};
use serde::de::DeserializeOwned;
use serde::de::value::{Error as ValueError, StrDeserializer};
use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Row};

use crate::{EntityKind, ROWS_PER_STATEMENT, Store, StoreError};

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

    pub(crate) fn parse(status: &str) -> Option<Self> {
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
        /// The type this revision's reasons give the hold; `None` keeps
        /// the type it had (the revision waits only because it was open).
        kind: Option<HoldKind>,
    },
    /// Answers an open hold's current revision, named by its digest (its
    /// last part, when it has several), and remembers what the answers
    /// accept and decline. Fails (and rolls the run back)
    /// if the hold was already answered, so a change set is never applied
    /// twice, or if a later run replaced the revision reviewed.
    Answer {
        hold: i64,
        answer: HoldAnswer,
        comment: Option<String>,
        by: String,
        digest: String,
        accepts: Vec<String>,
        declines: Vec<String>,
    },
}

/// Why an answer to hold `$hold` changed no row: the hold is open but
/// waits for another type's answer, or shows a later revision, or is no
/// longer open. Evaluates to the [`crate::StoreError`] of its
/// [`rostersync_core::Refusal`].
macro_rules! refusal {
    ($tx:expr, $hold:expr, $answer:expr, $digest:expr) => {{
        let found: Option<(String, String, String)> =
            sqlx::query_as("SELECT status, kind, digest FROM holds WHERE id = $1")
                .bind($hold)
                .fetch_optional($tx)
                .await?;
        match found {
            Some((status, kind, _)) if status == "open" && kind != $answer.kind().as_str() => {
                rostersync_core::Refusal::NotOffered {
                    hold: $hold,
                    answer: $answer.stored(),
                    kind,
                }
            }
            Some((status, _, current)) if status == "open" => {
                rostersync_core::Refusal::RevisionNotCurrent {
                    hold: $hold,
                    reviewed: $digest.to_string(),
                    current,
                }
            }
            _ => rostersync_core::Refusal::Answered($hold),
        }
        .into()
    }};
}

/// The status a hold has once answered: confirmed when the answer
/// applied something, rejected when it applied nothing.
pub(crate) fn status_after(answer: HoldAnswer) -> HoldStatus {
    match answer.effect() {
        rostersync_core::Effect::Apply | rostersync_core::Effect::ApplyOthers => {
            HoldStatus::Confirmed
        }
        rostersync_core::Effect::Discard | rostersync_core::Effect::Retry => HoldStatus::Rejected,
    }
}

/// The digest that names a kept change set: 16 hex digits of SHA-256 over
/// its JSON.
pub(crate) fn change_set_digest(body: &str) -> String {
    Sha256::digest(body.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One change set a hold has shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HoldRevision {
    pub revision: i64,
    pub run_id: i64,
    pub digest: String,
    /// JSON: the reasons this revision's run was held.
    pub reasons: String,
    pub opened_at: DateTime<Utc>,
    /// When a later run replaced it; `None` for the current revision.
    pub superseded_at: Option<DateTime<Utc>>,
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
    /// What the hold is about, which decides the answers it offers: the
    /// part waiting for an answer, when it has several.
    pub kind: HoldKind,
    /// Every part, in the order they are answered; one for most holds.
    pub parts: Vec<HoldKind>,
    /// The answers given so far to its first parts.
    pub answered_parts: Vec<HoldAnswer>,
    /// The answer given, once answered, and the operator's comment.
    pub answer: Option<HoldAnswer>,
    pub comment: Option<String>,
    /// The current revision's number (1, 2, ...) and digest: what an
    /// operator reviews and names when confirming.
    pub revision: i64,
    pub digest: String,
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
            Some($crate::HoldWrite::Open { reasons, cursor, kind }) => {
                let digest = $crate::holds::change_set_digest(
                    $writes.kept_change_set.as_deref().unwrap_or_default(),
                );
                let open: Option<(i64, i64, String)> = sqlx::query_as(
                    "SELECT id, revision, digest FROM holds WHERE connection_id = $1 AND status = 'open'",
                )
                .bind($connection)
                .fetch_optional(&mut *$tx)
                .await?;
                // The same change set again keeps the revision an operator
                // may be reviewing; a different one supersedes it.
                let revision = match open {
                    Some((_, _, current)) if current == digest => None,
                    Some((hold, revision, _)) => {
                        sqlx::query(
                            "UPDATE hold_revisions SET superseded_at = $3 WHERE hold_id = $1 AND revision = $2",
                        )
                        .bind(hold)
                        .bind(revision)
                        .bind($now)
                        .execute(&mut *$tx)
                        .await?;
                        sqlx::query(
                            "UPDATE holds SET run_id = $2, reasons = $3, cursor = $4, revision = $5, digest = $6, \
                             kind = COALESCE($7, kind), answered_parts = '' WHERE id = $1",
                        )
                        .bind(hold)
                        .bind($run)
                        .bind(reasons)
                        .bind(cursor)
                        .bind(revision + 1)
                        .bind(&digest)
                        .bind(kind.map(|k| k.as_str()))
                        .execute(&mut *$tx)
                        .await?;
                        Some((hold, revision + 1))
                    }
                    None => {
                        let hold: i64 = sqlx::query_scalar(
                            "INSERT INTO holds (connection_id, run_id, reasons, cursor, status, opened_at, revision, digest, kind) \
                             VALUES ($1, $2, $3, $4, 'open', $5, 1, $6, $7) RETURNING id",
                        )
                        .bind($connection)
                        .bind($run)
                        .bind(reasons)
                        .bind(cursor)
                        .bind($now)
                        .bind(&digest)
                        .bind(kind.unwrap_or(rostersync_core::HoldKind::Changes).as_str())
                        .fetch_one(&mut *$tx)
                        .await?;
                        Some((hold, 1))
                    }
                };
                if let Some((hold, revision)) = revision {
                    sqlx::query(
                        "INSERT INTO hold_revisions (hold_id, revision, run_id, digest, reasons, cursor, opened_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(hold)
                    .bind(revision)
                    .bind($run)
                    .bind(&digest)
                    .bind(reasons)
                    .bind(cursor)
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
                }
            }
            Some($crate::HoldWrite::Answer { hold, answer, comment, by, digest, accepts, declines }) => {
                let answered = sqlx::query(
                    "UPDATE holds SET status = $2, answered_at = $3, answered_by = $4, answer = $6, comment = $7 \
                     WHERE id = $1 AND status = 'open' AND digest = $5 AND kind = $8",
                )
                .bind(hold)
                .bind($crate::holds::status_after(*answer).as_str())
                .bind($now)
                .bind(by)
                .bind(digest)
                .bind(answer.stored())
                .bind(comment)
                .bind(answer.kind().as_str())
                .execute(&mut *$tx)
                .await?;
                if answered.rows_affected() == 0 {
                    return Err(refusal!(&mut *$tx, *hold, answer, digest));
                }
                let verdicts = accepts
                    .iter()
                    .map(|key| (key, "accept"))
                    .chain(declines.iter().map(|key| (key, "decline")))
                    .collect::<Vec<_>>();
                for chunk in verdicts.chunks($crate::ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::new(
                        "INSERT INTO hold_acceptances (connection_id, key, hold_id, accepted_at, verdict) ",
                    );
                    query.push_values(chunk, |mut row, (key, verdict)| {
                        row.push_bind($connection)
                            .push_bind(*key)
                            .push_bind(*hold)
                            .push_bind($now)
                            .push_bind(*verdict);
                    });
                    query.push(
                        " ON CONFLICT (connection_id, key) DO UPDATE SET verdict = excluded.verdict, \
                         hold_id = excluded.hold_id, accepted_at = excluded.accepted_at",
                    );
                    query.build().execute(&mut *$tx).await?;
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
    let kind: String = row.try_get("kind")?;
    let kind = HoldKind::parse(&kind)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown hold type {kind:?}").into()))?;
    let answer = row
        .try_get::<Option<String>, _>("answer")?
        .map(|stored| {
            HoldAnswer::from_stored(&stored).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown hold answer {stored:?}").into())
            })
        })
        .transpose()?;
    let answered: String = row.try_get("answered_parts")?;
    let answered_parts = answered
        .split(',')
        .filter(|stored| !stored.is_empty())
        .map(|stored| {
            HoldAnswer::from_stored(stored).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown hold answer {stored:?}").into())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let reasons: String = row.try_get("reasons")?;
    Ok(HoldRow {
        parts: HoldKind::parts_of_hold(kind, &answered_parts, &reasons),
        answered_parts,
        id: row.try_get("id")?,
        connection: row.try_get("connection_id")?,
        run_id: row.try_get("run_id")?,
        reasons,
        cursor: row.try_get("cursor")?,
        status: HoldStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown hold status {status:?}").into()))?,
        opened_at: row.try_get("opened_at")?,
        answered_at: row.try_get("answered_at")?,
        answered_by: row.try_get("answered_by")?,
        kind,
        answer,
        comment: row.try_get("comment")?,
        revision: row.try_get("revision")?,
        digest: row.try_get("digest")?,
    })
}

const HOLD_COLUMNS: &str = "id, connection_id, run_id, reasons, cursor, status, opened_at, \
     answered_at, answered_by, revision, digest, kind, answer, comment, answered_parts";

/// A stored record's class: a person's role or a group's kind, as the
/// `class` column reads it from the record's JSON.
pub trait Classified: DeserializeOwned + Eq + Hash {
    const KIND: EntityKind;

    fn parse(class: &str) -> Option<Self> {
        <Self as serde::Deserialize>::deserialize(StrDeserializer::<ValueError>::new(class)).ok()
    }
}

impl Classified for Role {
    const KIND: EntityKind = EntityKind::Person;
}

impl Classified for GroupKind {
    const KIND: EntityKind = EntityKind::Group;
}

fn classified<T: Classified>(class: Option<String>) -> Result<T, sqlx::Error> {
    class
        .as_deref()
        .and_then(T::parse)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown {} class {class:?}", T::KIND).into()))
}

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

    /// Records an answer that applies nothing, with the operator's comment
    /// and its audit record, as long as `digest` still names the hold's
    /// current revision: `next` is the part that waits after it, or `None`
    /// when the answer closes the hold (a reject, or "I fixed it").
    pub async fn record_answer(
        &self,
        hold: i64,
        digest: &str,
        answer: HoldAnswer,
        comment: Option<&str>,
        next: Option<HoldKind>,
        audit: &crate::AuditEntry,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let answered = match next {
                Some(next) => sqlx::query(
                    "UPDATE holds SET kind = $4, answered_parts = CASE WHEN answered_parts = '' THEN $5 \
                     ELSE answered_parts || ',' || $5 END \
                     WHERE id = $1 AND status = 'open' AND kind = $2 AND digest = $3",
                )
                .bind(hold)
                .bind(answer.kind().as_str())
                .bind(digest)
                .bind(next.as_str())
                .bind(answer.stored()),
                None => sqlx::query(
                    "UPDATE holds SET status = $4, answered_at = $5, answered_by = $6, answer = $7, comment = $8 \
                     WHERE id = $1 AND status = 'open' AND kind = $2 AND digest = $3",
                )
                .bind(hold)
                .bind(answer.kind().as_str())
                .bind(digest)
                .bind(status_after(answer).as_str())
                .bind(audit.at)
                .bind(&audit.actor)
                .bind(answer.stored())
                .bind(comment),
            }
            .execute(&mut *tx)
            .await?;
            if answered.rows_affected() == 0 {
                return Err(refusal!(&mut *tx, hold, answer, digest));
            }
            insert_audit!(&mut *tx, audit);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Forgets the contacts hold `hold` declined, so the next run of its
    /// connection asks about them again; returns how many were forgotten.
    pub async fn reconsider(
        &self,
        hold: i64,
        audit: &crate::AuditEntry,
    ) -> Result<u64, StoreError> {
        let forgotten = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let forgotten = sqlx::query(
                "DELETE FROM hold_acceptances WHERE hold_id = $1 AND verdict = 'decline'",
            )
            .bind(hold)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            insert_audit!(&mut *tx, audit);
            tx.commit().await?;
            forgotten
        });
        Ok(forgotten)
    }

    /// Every change set the hold has shown, oldest first.
    pub async fn hold_revisions(&self, hold: i64) -> Result<Vec<HoldRevision>, StoreError> {
        let revisions = on_pool!(self, pool => {
            sqlx::query(
                "SELECT revision, run_id, digest, reasons, opened_at, superseded_at FROM hold_revisions \
                 WHERE hold_id = $1 ORDER BY revision",
            )
            .bind(hold)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                Ok(HoldRevision {
                    revision: row.try_get("revision")?,
                    run_id: row.try_get("run_id")?,
                    digest: row.try_get("digest")?,
                    reasons: row.try_get("reasons")?,
                    opened_at: row.try_get("opened_at")?,
                    superseded_at: row.try_get("superseded_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(revisions)
    }

    /// What operators accepted and declined on this connection by
    /// answering contact holds.
    pub async fn verdicts(&self, connection: &str) -> Result<Verdicts, StoreError> {
        let keys: Vec<(String, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT key, verdict FROM hold_acceptances WHERE connection_id = $1")
                .bind(connection)
                .fetch_all(pool)
                .await?
        });
        let mut verdicts = Verdicts::default();
        for (key, verdict) in keys {
            let into = match verdict.as_str() {
                "accept" => &mut verdicts.accepted,
                "decline" => &mut verdicts.declined,
                other => {
                    return Err(sqlx::Error::Decode(
                        format!("unknown verdict {other:?} on hold key {key:?}").into(),
                    )
                    .into());
                }
            };
            into.insert(key);
        }
        Ok(verdicts)
    }

    /// How many people of each role, or groups of each kind, the
    /// connection holds.
    pub async fn headcount<T: Classified>(
        &self,
        connection: &str,
    ) -> Result<HashMap<T, usize>, StoreError> {
        let counts = on_pool!(self, pool => {
            sqlx::query(
                "SELECT class, COUNT(*) AS n FROM roster_records \
                 WHERE connection_id = $1 AND kind = $2 GROUP BY class",
            )
            .bind(connection)
            .bind(T::KIND.as_str())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Ok((classified(row.try_get("class")?)?, row.try_get::<i64, _>("n")? as usize)))
            .collect::<Result<HashMap<T, usize>, sqlx::Error>>()?
        });
        Ok(counts)
    }

    /// The role or group kind of the stored records with these keys.
    pub async fn classes<T: Classified>(
        &self,
        connection: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, T>, StoreError> {
        let mut classes = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            on_pool!(self, pool => {
                let mut query = QueryBuilder::new("SELECT key, class FROM roster_records WHERE connection_id = ");
                query.push_bind(connection).push(" AND kind = ").push_bind(T::KIND.as_str()).push(" AND key IN (");
                let mut list = query.separated(", ");
                for key in chunk {
                    list.push_bind(*key);
                }
                list.push_unseparated(")");
                for row in query.build().fetch_all(pool).await? {
                    classes.insert(row.try_get("key")?, classified(row.try_get("class")?)?);
                }
            });
        }
        Ok(classes)
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
