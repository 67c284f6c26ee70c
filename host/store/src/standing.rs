//! What each connection stands at now: its standing issues (what is wrong
//! at the source today, not only what one run saw) and its active
//! accounts per role, which the CLI and the dashboard show beside what
//! the latest run read.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use crate::{IssueRow, Store, StoreError};

/// What a run does to its connection's standing issues; the run's own
/// issues are what it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StandingWrite {
    /// A full read saw everything: its issues are the whole set.
    Replace,
    /// A delta read saw only these source ids (as issues name them): their
    /// old issues are settled, and the run's issues are added.
    Amend { settled: Vec<String> },
}

/// A standing issue and the run that last raised it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StandingIssue {
    #[serde(flatten)]
    pub issue: IssueRow,
    pub run_id: i64,
}

/// Writes a [`crate::WriteSet`]'s standing issues inside the run's
/// transaction, once the run row `$run` exists.
macro_rules! write_standing {
    ($tx:ident, $connection:expr, $run:expr, $writes:expr) => {
        match &$writes.standing {
            None => {}
            Some($crate::StandingWrite::Replace) => {
                sqlx::query("DELETE FROM standing_issues WHERE connection_id = $1")
                    .bind($connection)
                    .execute(&mut *$tx)
                    .await?;
            }
            Some($crate::StandingWrite::Amend { settled }) => {
                for chunk in settled.chunks($crate::ROWS_PER_STATEMENT) {
                    let mut query = QueryBuilder::new("DELETE FROM standing_issues WHERE connection_id = ");
                    query.push_bind($connection).push(" AND source_id IN (");
                    let mut list = query.separated(", ");
                    for id in chunk {
                        list.push_bind(id);
                    }
                    list.push_unseparated(")");
                    query.build().execute(&mut *$tx).await?;
                }
            }
        }
        if $writes.standing.is_some() {
            for chunk in $writes.issues.chunks($crate::ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO standing_issues (connection_id, source_id, entity_type, entity_name, mis_id, message, policy, fix, run_id) ",
                );
                query.push_values(chunk, |mut row, issue| {
                    row.push_bind($connection)
                        .push_bind(&issue.source_id)
                        .push_bind(&issue.entity_type)
                        .push_bind(&issue.entity_name)
                        .push_bind(&issue.mis_id)
                        .push_bind(&issue.message)
                        .push_bind(&issue.policy)
                        .push_bind(&issue.fix)
                        .push_bind($run);
                });
                query.build().execute(&mut *$tx).await?;
            }
        }
    };
}

impl Store {
    /// The connection's standing issues, by type and name.
    pub async fn standing_issues(
        &self,
        connection: &str,
    ) -> Result<Vec<StandingIssue>, StoreError> {
        let issues = on_pool!(self, pool => {
            sqlx::query(
                "SELECT source_id, entity_type, entity_name, mis_id, message, policy, fix, run_id \
                 FROM standing_issues WHERE connection_id = $1 \
                 ORDER BY entity_type, entity_name, source_id, message",
            )
            .bind(connection)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                Ok(StandingIssue {
                    issue: crate::issue_row(row)?,
                    run_id: row.try_get("run_id")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(issues)
    }

    /// How many standing issues each connection has, in one query.
    pub async fn standing_issue_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        let counts = on_pool!(self, pool => {
            sqlx::query("SELECT connection_id, COUNT(*) AS n FROM standing_issues GROUP BY connection_id")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((row.try_get("connection_id")?, row.try_get("n")?)))
                .collect::<Result<HashMap<String, i64>, sqlx::Error>>()?
        });
        Ok(counts)
    }

    /// Every connection's active accounts per role (`student`, `staff`,
    /// `contact`), in one query: who a school can see got an account.
    pub async fn accounts_by_role(
        &self,
    ) -> Result<HashMap<String, BTreeMap<String, i64>>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => {
            sqlx::query(
                "SELECT l.connection_id, a.role, COUNT(*) AS n FROM account_links l \
                 JOIN accounts a ON a.id = l.account_id WHERE a.status = 'active' \
                 GROUP BY l.connection_id, a.role",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("connection_id")?, row.try_get("role")?, row.try_get("n")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut by_connection: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
        for (connection, role, n) in rows {
            by_connection.entry(connection).or_default().insert(role, n);
        }
        Ok(by_connection)
    }
}
