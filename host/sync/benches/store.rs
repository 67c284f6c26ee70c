//! The whole pipeline at scale against a real store: 1M people (set
//! `ROSTERSYNC_BENCH_PEOPLE` for another size), their classes and
//! memberships, through a first import, an unchanged resync and a
//! 1 %-changed resync, on SQLite and, when it answers, PostgreSQL.
//! `cargo bench -p rostersync-sync --bench store` prints the figures.

use std::time::Instant;

use chrono::NaiveDate;
use rostersync_core::synthetic;
use rostersync_model::{Mode, Record, Settings};
use rostersync_runtime::RunError;
use rostersync_store::{RunMode, Store};
use rostersync_sync::{ConnectionConfig, OpenSource, RecordSource, RunRequest, run};

const BATCH: usize = 5_000;

struct Synthetic {
    people: usize,
    changed_every: Option<usize>,
}

struct SyntheticRead(Box<dyn Iterator<Item = Vec<Record>> + Send>);

impl OpenSource for Synthetic {
    type Source = SyntheticRead;

    fn connector(&self) -> &str {
        "synthetic"
    }

    fn reads_deltas(&self) -> bool {
        false
    }

    async fn open(&self, _mode: Mode) -> Result<SyntheticRead, RunError> {
        Ok(SyntheticRead(Box::new(synthetic::roster(
            self.people,
            BATCH,
            self.changed_every,
        ))))
    }
}

impl RecordSource for SyntheticRead {
    async fn next_batch(&mut self) -> Result<Option<Vec<Record>>, RunError> {
        Ok(self.0.next())
    }

    async fn cursor(&mut self) -> Result<Option<String>, RunError> {
        Ok(None)
    }
}

/// Peak resident memory since the last reset, in MiB (Linux).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn phase(store: &Store, label: &str, people: usize, changed_every: Option<usize>) {
    let mut connection = ConnectionConfig::new("bench", "synthetic", Settings::new());
    // A first import is all creates; the bench measures the write path,
    // not the update-share hold.
    connection.holds.max_update_share = 1.0;
    reset_peak_rss();
    let started = Instant::now();
    let report = run(
        store,
        &connection,
        &Synthetic {
            people,
            changed_every,
        },
        RunRequest::new(
            RunMode::Full,
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        ),
    )
    .await
    .expect("the run completes");
    println!(
        "  {label:<22} {:>8.2} s   read {:>9}  created {:>9}  updated {:>7}  removed {}  peak RSS {} MiB  ({})",
        started.elapsed().as_secs_f64(),
        report.records_read,
        report.created,
        report.updated,
        report.removed,
        peak_rss_mib().map_or("?".into(), |m| m.to_string()),
        report.status.as_str(),
    );
}

async fn suite(store: Store, people: usize) {
    phase(&store, "first import", people, None).await;
    phase(&store, "unchanged resync", people, None).await;
    phase(&store, "1 %-changed resync", people, Some(100)).await;
    store.close().await;
}

#[tokio::main]
async fn main() {
    let people: usize = std::env::var("ROSTERSYNC_BENCH_PEOPLE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "{people} people, {} classes, {people} memberships; batches of {BATCH}",
        people.div_ceil(synthetic::GROUP_SIZE)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.db");
    println!("SQLite ({})", file.display());
    suite(
        Store::open(&format!("sqlite://{}", file.display()))
            .await
            .unwrap(),
        people,
    )
    .await;
    let size = std::fs::metadata(&file).map(|m| m.len() >> 20).unwrap_or(0);
    println!("  database file: {size} MiB");
    if std::env::var_os("ROSTERSYNC_BENCH_SKIP_POSTGRES").is_some() {
        return;
    }
    let (url, database) = rostersync_store::testing::throwaway_postgres().await;
    println!("PostgreSQL (a throwaway database)");
    suite(Store::open(&url).await.unwrap(), people).await;
    database.drop().await;
}
