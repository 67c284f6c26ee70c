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
