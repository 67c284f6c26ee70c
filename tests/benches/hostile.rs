//! The host's own budget, measured: the good connection's run times and
//! the host's peak memory, alone and then with the hostile set (spinning,
//! memory-hogging, sleeping, over-budget, log-flooding, header-flooding
//! and endless-upload connectors) running beside it.
//!
//! `cargo bench -p rostersync-tests --bench hostile`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use futures_util::StreamExt;
use rostersync_model::Settings;
use rostersync_runtime::{Limits, Runtime};
use rostersync_store::{RunMode, Store};
use rostersync_sync::{ConnectionConfig, PluginSource, RunRequest, RunStatus, run};

const ROUNDS: usize = 7;
const GOOD_PUPILS: &str = "2000";

/// The host's peak resident memory since the last reset, in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Starts the peak over from the current use (Linux: `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn connection(id: &str, settings: &[(&str, &str)]) -> ConnectionConfig {
    let settings = settings
        .iter()
        .fold(Settings::new(), |s, (name, value)| s.with(*name, *value));
    let mut connection = ConnectionConfig::new(id, "probe", settings);
    connection.limits.call_timeout_seconds = Some(5);
    connection
}

async fn sync_once(runtime: &Runtime, store: &Store, connection: &ConnectionConfig) -> RunStatus {
    let plugin = runtime.plugin("probe").expect("the probe is in service");
    let limits = Limits {
        memory_bytes: 64 << 20,
        max_snapshot_bytes: 64 << 20,
        max_request_bytes: 1 << 20,
        snapshot_timeout: Duration::from_secs(10),
        ..Limits::default()
    };
    let source = PluginSource::new(plugin, connection, limits).unwrap();
    let request = RunRequest::new(RunMode::Full, chrono::Utc::now().date_naive());
    run(store, connection, &source, request)
        .await
        .map_or(RunStatus::Failed, |report| report.status)
}

/// The good connection's run times over [`ROUNDS`] runs, in ms, sorted.
async fn good_runs(runtime: &Runtime, store: &Store) -> Vec<f64> {
    let good = connection(
        "good",
        &[("behaviour", "roster"), ("batch-size", GOOD_PUPILS)],
    );
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let status = sync_once(runtime, store, &good).await;
        assert_ne!(status, RunStatus::Failed, "the good connection failed");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times
}

fn show(label: &str, times: &[f64], peak: f64) {
    println!(
        "{label:<28} good run median {:>8.1} ms, slowest {:>8.1} ms; host peak {:>7.1} MiB",
        times[times.len() / 2],
        times[times.len() - 1],
        peak
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (_plugins, plugins) = rostersync_tests::runtime_with(&["probe"]).await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = Arc::new(Store::open(&url).await.unwrap());
        let upload = rostersync_tests::serve(Router::new().route(
            "/upload",
            post(async |body: axum::body::Body| {
                let mut stream = body.into_data_stream();
                while stream.next().await.is_some() {}
            }),
        ))
        .await;

        // Warm the store and the code paths once.
        good_runs(&plugins, &store).await;
        reset_peak();
        let alone = good_runs(&plugins, &store).await;
        show("alone", &alone, peak_mib());

        let base = format!("http://{upload}");
        let post_url = format!("{base}/upload");
        let hostile = vec![
            connection("spin", &[("behaviour", "spin")]),
            connection("hog", &[("behaviour", "hog")]),
            connection("sleep", &[("behaviour", "sleep")]),
            connection(
                "flood",
                &[
                    ("behaviour", "records"),
                    ("batches", "400"),
                    ("batch-size", "5000"),
                ],
            ),
            connection("logs", &[("behaviour", "log-flood")]),
            connection("headers", &[("behaviour", "header-flood")]),
            connection("empty", &[("behaviour", "endless-empty")]),
            connection(
                "upload",
                &[
                    ("behaviour", "endless-post"),
                    ("base-url", &base),
                    ("url", &post_url),
                ],
            ),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let mut attackers = Vec::new();
        for attacker in hostile {
            let (plugins, store, stop) = (plugins.clone(), Arc::clone(&store), Arc::clone(&stop));
            attackers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    sync_once(&plugins, &store, &attacker).await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        reset_peak();
        let beside = good_runs(&plugins, &store).await;
        show("with the hostile set beside", &beside, peak_mib());
        stop.store(true, Ordering::Relaxed);
        for attacker in attackers {
            let _ = attacker.await;
        }
    });
}
