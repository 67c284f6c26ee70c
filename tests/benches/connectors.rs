//! Each provider connector reading a 10,000-pupil school from the provider
//! sandbox: as its WASM component in the sandbox, and as the same crate
//! compiled natively (over the SDK's native transport), with the ratio.
//! `cargo bench -p rostersync-tests --bench connectors` prints the figures.

use std::time::Instant;

use rostersync_connector_sdk::__private::EntryPoints;
use rostersync_connector_sdk::bindings::rostersync::connector::types::{Mode as WitMode, Setting};
use rostersync_model::{Mode, Settings};
use rostersync_runtime::{Limits, Sandbox};
use rostersync_sandbox::{DropKind, SandboxConfig, Size};
use rostersync_tests::runtime_with;

const PUPILS: usize = 10_000;

fn entry_points(connector: &str) -> &'static EntryPoints {
    match connector {
        "wonde" => &rostersync_connector_wonde::__ROSTERSYNC_ENTRY_POINTS,
        "clever" => &rostersync_connector_clever::__ROSTERSYNC_ENTRY_POINTS,
        "arbor" => &rostersync_connector_arbor::__ROSTERSYNC_ENTRY_POINTS,
        "xporter" => &rostersync_connector_xporter::__ROSTERSYNC_ENTRY_POINTS,
        "scholarpack" => &rostersync_connector_scholarpack::__ROSTERSYNC_ENTRY_POINTS,
        "oneroster" => &rostersync_connector_oneroster::__ROSTERSYNC_ENTRY_POINTS,
        other => panic!("no connector {other}"),
    }
}

/// A full read through the connector compiled natively; records read.
fn read_natively(connector: &str, settings: &Settings) -> usize {
    let points = entry_points(connector);
    let settings: Vec<Setting> = settings
        .iter()
        .map(|(name, value)| Setting {
            name: name.into(),
            value: value.into(),
        })
        .collect();
    let snapshot = (points.open)(settings, WitMode::Full);
    let mut records = 0;
    while let Some(batch) = (points.next)(&*snapshot) {
        match batch {
            Ok(Some(batch)) => records += batch.len(),
            Ok(None) => break,
            Err(error) => panic!("{connector} natively: {error:?}"),
        }
    }
    records
}

#[tokio::main]
async fn main() {
    const CONNECTORS: [&str; 6] = [
        "wonde",
        "clever",
        "arbor",
        "xporter",
        "scholarpack",
        "oneroster",
    ];
    let sandbox = rostersync_sandbox::Sandbox::start(SandboxConfig {
        size: Size {
            schools: 1,
            pupils_per_school: PUPILS,
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let drop = tempfile::tempdir().unwrap();
    sandbox
        .write_oneroster_drop(drop.path(), 0, DropKind::Bulk)
        .unwrap();
    // SAFETY: set before any thread reads the environment.
    unsafe { std::env::set_var("ROSTERSYNC_DROP_FOLDER", drop.path()) };
    let (_dir, runtime) = runtime_with(&CONNECTORS).await;
    println!("A {PUPILS}-pupil school, full read, records per second:");
    println!(
        "{:<12} {:>9} {:>14} {:>14} {:>14}",
        "connector", "records", "WASM", "native", "native / WASM"
    );
    for connector in CONNECTORS {
        let settings = sandbox.connector_settings(connector, 0);
        let plugin = runtime.plugin(connector).unwrap();
        let mut limits =
            Sandbox::for_connection(&plugin.info, &settings, &[], Limits::default()).unwrap();
        if connector == "oneroster" {
            limits = limits.with_drop_folder(drop.path());
        }
        let started = Instant::now();
        let mut snapshot = plugin
            .snapshot(&limits, &settings, Mode::Full)
            .await
            .unwrap();
        let mut wasm_records = 0;
        while let Some(batch) = snapshot.next_batch().await.unwrap() {
            wasm_records += batch.len();
        }
        let wasm = started.elapsed();

        let native_settings = settings.clone();
        let started = Instant::now();
        let native_records =
            tokio::task::spawn_blocking(move || read_natively(connector, &native_settings))
                .await
                .unwrap();
        let native = started.elapsed();
        assert_eq!(
            wasm_records, native_records,
            "{connector}: both builds read the same"
        );
        let rate = |d: std::time::Duration| wasm_records as f64 / d.as_secs_f64();
        println!(
            "{connector:<12} {wasm_records:>9} {:>14.0} {:>14.0} {:>13.2}×",
            rate(wasm),
            rate(native),
            wasm.as_secs_f64() / native.as_secs_f64()
        );
    }
    sandbox.shutdown().await;
}
