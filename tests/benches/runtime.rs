//! Runtime figures: cold compile, cached load, a fresh instance with one
//! call, and pulling 1,000-record batches through the component boundary.
//! `cargo bench -p rostersync-tests --bench runtime` prints medians.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rostersync_model::{Mode, Settings};
use rostersync_runtime::{Limits, LoadSource, Runtime, RuntimeConfig, Sandbox};
use rostersync_tests::{install, runtime_config};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn show(what: &str, samples: Vec<Duration>) -> Duration {
    let n = samples.len();
    let m = median(samples);
    println!(
        "{what:<52} {:>10.3} ms  (median of {n})",
        m.as_secs_f64() * 1e3
    );
    m
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = install(dir.path(), "probe", "probe");

    let mut cold = Vec::new();
    for _ in 0..5 {
        let fresh_cache = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: fresh_cache.path().to_path_buf(),
            ..RuntimeConfig::in_folder(dir.path())
        })
        .unwrap();
        let started = Instant::now();
        let plugin = runtime.load_file(&path).await.unwrap();
        cold.push(started.elapsed());
        assert_eq!(plugin.loaded_from, LoadSource::Compiled);
    }
    let cold = show("load, cold (compile + cache + describe)", cold);

    let runtime = Runtime::new(runtime_config(dir.path())).unwrap();
    runtime.load_file(&path).await.unwrap();
    let mut warm = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let plugin = runtime.load_file(&path).await.unwrap();
        warm.push(started.elapsed());
        assert_eq!(plugin.loaded_from, LoadSource::Cache);
    }
    let warm = show("load, cached (verify + deserialize + describe)", warm);
    println!(
        "{:<52} {:>10.1} x",
        "  cold / cached",
        cold.as_secs_f64() / warm.as_secs_f64()
    );

    let plugin = Arc::new(runtime.load_file(&path).await.unwrap());
    let settings = Settings::new();
    let sandbox = Sandbox::for_connection(&plugin.info, &settings, &[], Limits::default()).unwrap();
    let mut calls = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        plugin.check(&sandbox, &settings).await.unwrap();
        calls.push(started.elapsed());
    }
    show("fresh store + instance + one call (check)", calls);

    let batches = 100;
    let settings = Settings::new()
        .with("batches", batches.to_string())
        .with("batch-size", "1000");
    let mut pulls = Vec::new();
    for _ in 0..5 {
        let mut snapshot = plugin
            .snapshot(&sandbox, &settings, Mode::Full)
            .await
            .unwrap();
        loop {
            let started = Instant::now();
            let Some(batch) = snapshot.next_batch().await.unwrap() else {
                break;
            };
            pulls.push(started.elapsed());
            assert_eq!(batch.len(), 1000);
        }
    }
    let per_batch = show("pull one batch of 1,000 records (make, lift, check)", pulls);
    println!(
        "{:<52} {:>10.0} records/s",
        "  throughput",
        1000.0 / per_batch.as_secs_f64()
    );
}
