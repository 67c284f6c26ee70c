//! The whole pipeline at scale against a real store: 100k, 300k and 1M
//! people (`ROSTERSYNC_BENCH_SIZES=100000,300000` for others), their
//! classes and memberships, through a first import, an unchanged resync
//! and a 1 %-changed resync, on SQLite and PostgreSQL (unless
//! `ROSTERSYNC_BENCH_SKIP_POSTGRES` is set). `cargo bench -p
//! rostersync-sync --bench store` prints a row per store and size: each
//! pass's seconds and its peak RSS.

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

/// Resets the peak to the current RSS (writing 5 to clear_refs); false
/// when the kernel refuses, so the peak then covers every pass before.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process's CPU time so far (user and system), in seconds: steadier
/// than wall time on a shared machine. A PostgreSQL server's is not in it.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in USER_HZ, 100 a second on every architecture it runs on.
    Some(ticks as f64 / 100.0)
}

/// One pass: wall and CPU seconds, and peak RSS.
struct Pass {
    seconds: f64,
    cpu: Option<f64>,
    peak_mib: Option<u64>,
}

async fn pass(store: &Store, people: usize, changed_every: Option<usize>) -> Pass {
    let mut connection = ConnectionConfig::new("bench", "synthetic", Settings::new());
    // A first import is all creates; the bench measures the write path,
    // not the update-share hold.
    connection.holds.max_update_share = 1.0;
    if !reset_peak_rss() {
        eprintln!("  (the kernel refused to reset the peak RSS: it covers every pass before)");
    }
    let started = Instant::now();
    let cpu_before = cpu_seconds();
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
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.status.as_str(), "succeeded", "{report:?}");
    Pass {
        seconds,
        cpu: cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before),
        peak_mib: peak_rss_mib(),
    }
}

/// First import, unchanged resync and 1 %-changed resync of one size.
async fn suite(store: Store, people: usize) -> [Pass; 3] {
    let first = pass(&store, people, None).await;
    let unchanged = pass(&store, people, None).await;
    let changed = pass(&store, people, Some(100)).await;
    store.close().await;
    [first, unchanged, changed]
}

fn row(backend: &str, people: usize, passes: &[Pass; 3]) {
    let cells: Vec<String> = passes
        .iter()
        .map(|p| {
            let peak = p.peak_mib.map_or("?".into(), |m| m.to_string());
            let cpu = p.cpu.map_or("?".into(), |c| format!("{c:.2}"));
            format!("{:>7.2} s {cpu:>6} {peak:>5} MiB", p.seconds)
        })
        .collect();
    println!("{backend:<10} {people:>9}  {}", cells.join("  "));
}

/// The sizes to run: `ROSTERSYNC_BENCH_SIZES` (a comma-separated list),
/// else `ROSTERSYNC_BENCH_PEOPLE` (one size), else 100k, 300k and 1M.
fn sizes() -> Vec<usize> {
    let listed = std::env::var("ROSTERSYNC_BENCH_SIZES")
        .or_else(|_| std::env::var("ROSTERSYNC_BENCH_PEOPLE"))
        .unwrap_or_else(|_| "100000,300000,1000000".into());
    listed
        .split(',')
        .map(|n| n.trim().parse().expect("sizes are numbers of people"))
        .collect()
}

#[tokio::main]
async fn main() {
    let postgres = std::env::var_os("ROSTERSYNC_BENCH_SKIP_POSTGRES").is_none();
    println!(
        "per size: that many people, one class per {} of them and a membership each; batches of {BATCH}",
        synthetic::GROUP_SIZE
    );
    println!("each pass: wall seconds, this process's CPU seconds, peak RSS");
    println!(
        "{:<10} {:>9}  {:>24}  {:>24}  {:>24}",
        "store", "people", "first import", "unchanged resync", "1 %-changed resync"
    );
    for people in sizes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bench.db");
        let store = Store::open(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        row("SQLite", people, &suite(store, people).await);
        if postgres {
            let (url, database) = rostersync_store::testing::throwaway_postgres().await;
            row(
                "PostgreSQL",
                people,
                &suite(Store::open(&url).await.unwrap(), people).await,
            );
            database.drop().await;
        }
    }
}
