//! The harness that runs a test on both backends: a fresh SQLite file and
//! a throwaway PostgreSQL database, dropped afterwards. Set
//! `ROSTERSYNC_TEST_POSTGRES` to the admin URL if the server is not at
//! postgres://postgres@127.0.0.1:5432/postgres.

use std::future::Future;

use sqlx::Connection;

use crate::Store;

pub fn admin_url() -> String {
    std::env::var("ROSTERSYNC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Runs `test` on a fresh SQLite file and on a fresh PostgreSQL database.
/// It gets the store and its URL (to reach the database behind the
/// store's back, e.g. to inject a failure).
pub async fn on_both_backends<F, Fut>(test: F)
where
    F: Fn(Store, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("store.db").display());
    test(Store::open(&sqlite).await.unwrap(), sqlite).await;
    let (url, database) = throwaway_postgres().await;
    let store = Store::open(&url).await.unwrap();
    // Run in a task so a failing test still drops its database.
    let outcome = tokio::spawn(test(store, url)).await;
    database.drop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// A PostgreSQL database that exists until [`ThrowawayDatabase::drop`].
pub struct ThrowawayDatabase {
    name: String,
}

impl ThrowawayDatabase {
    pub async fn drop(self) {
        let mut admin = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

/// Creates an empty PostgreSQL database; returns its URL.
pub async fn throwaway_postgres() -> (String, ThrowawayDatabase) {
    let name = format!("rostersync_test_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL must be running for the store tests");
    // The name is ours: a fixed prefix and hex digits.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url().rsplit_once('/').unwrap().0);
    (url, ThrowawayDatabase { name })
}

/// What a full run of `connection` writes when its source holds these
/// people, groups and memberships: the records, and for each person an
/// active account `acc-<person id>` (role, MIS id and name from the
/// person) linked to it.
pub fn roster_writes(
    connection: &str,
    people: &[rostersync_model::Person],
    groups: &[rostersync_model::Group],
    memberships: &[rostersync_model::Membership],
) -> crate::WriteSet {
    use rostersync_model::{Record, Role};

    use crate::{
        AccountRow, AccountStatus, AccountWrite, EntityKind, LinkWrite, RunMode, RunRecord,
        StoredRecord, WriteSet,
    };

    let records: Vec<Record> = people
        .iter()
        .cloned()
        .map(Record::Person)
        .chain(groups.iter().cloned().map(Record::Group))
        .chain(memberships.iter().cloned().map(Record::Membership))
        .collect();
    let upserts = records
        .iter()
        .map(|record| {
            let (kind, key) = match record {
                Record::Person(p) => (EntityKind::Person, p.id.clone()),
                Record::Group(g) => (EntityKind::Group, g.id.clone()),
                Record::Membership(m) => {
                    (EntityKind::Membership, format!("{}|{}", m.group, m.person))
                }
                _ => unreachable!("only people, groups and memberships"),
            };
            StoredRecord {
                kind,
                content_hash: key.as_bytes().to_vec(),
                key,
                body: serde_json::to_string(record).unwrap(),
            }
        })
        .collect();
    let mut accounts = Vec::new();
    let mut links = Vec::new();
    for person in people {
        let account = format!("acc-{}", person.id);
        accounts.push(AccountWrite::Upsert(AccountRow {
            id: account.clone(),
            role: match person.role {
                Role::Staff => "staff",
                Role::Contact => "contact",
                _ => "student",
            }
            .into(),
            mis_id: person.mis_id.clone(),
            email: None,
            username: None,
            display_name: format!(
                "{} {}",
                person.first_name.as_deref().unwrap_or_default(),
                person.last_name.as_deref().unwrap_or_default()
            ),
            status: AccountStatus::Active,
            created_by: Some(connection.into()),
        }));
        links.push(LinkWrite::Link {
            source_id: person.id.clone(),
            account_id: account,
        });
    }
    WriteSet {
        upserts,
        accounts,
        links,
        ..WriteSet::new(RunRecord::new(
            RunMode::Full,
            "succeeded",
            chrono::Utc::now(),
        ))
    }
}
