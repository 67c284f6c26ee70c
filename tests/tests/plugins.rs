//! The plugin registry: loading and describing, the contract versions, the
//! signed artifact cache, hot reload, and refusing bad files clearly.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rostersync_model::{Date, Mode, Record, Settings};
use rostersync_runtime::{Limits, LoadError, LoadSource, Plugin, Runtime, Sandbox, WitVersion};
use rostersync_tests::{connector_wasm, install, runtime_config, runtime_with};

fn runtime_over(dir: &Path) -> Runtime {
    Runtime::new(runtime_config(dir)).unwrap()
}

/// Polls until `done` holds, for at most 20 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn full_read(plugin: &Arc<Plugin>, settings: &Settings) -> Vec<Record> {
    let sandbox = Sandbox::for_connection(&plugin.info, settings, &[], Limits::default()).unwrap();
    let mut snapshot = plugin
        .snapshot(&sandbox, settings, Mode::Full)
        .await
        .unwrap();
    let mut records = Vec::new();
    while let Some(batch) = snapshot.next_batch().await.unwrap() {
        records.extend(batch);
    }
    records
}

/// The legacy component with every `rostersync:connector/…@0.1.0` name
/// rewritten; same length, so the binary stays valid.
fn patched_legacy(from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(connector_wasm("legacy-v0_1")).unwrap();
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut i = 0;
    let mut replaced = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            replaced += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(replaced > 0, "nothing to patch");
    bytes
}

async fn load_error(bytes: &[u8], name: &str) -> LoadError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    runtime_over(dir.path()).load_file(&path).await.unwrap_err()
}

#[tokio::test]
async fn every_plugin_in_the_folder_is_loaded_and_described() {
    let (_dir, runtime) = runtime_with(&["probe", "legacy-v0_1", "template"]).await;
    let statuses = runtime.statuses();
    assert_eq!(statuses.len(), 3);
    assert!(
        statuses
            .iter()
            .all(|s| s.error.is_none() && s.plugin.is_some())
    );
    let probe = runtime.plugin("probe").unwrap();
    assert_eq!(
        (probe.info.provider.as_str(), probe.wit_version),
        ("Probe", WitVersion::V0_2_0)
    );
    assert_eq!(probe.sha256.len(), 64);
    let template = runtime.plugin("template").unwrap();
    assert_eq!(template.info.provider, "Example SIS");
    assert!(template.info.is_secret("api-token"));
}

#[tokio::test]
async fn a_connector_built_against_the_older_contract_loads_and_runs() {
    let (_dir, runtime) = runtime_with(&["legacy-v0_1"]).await;
    let legacy = runtime.plugin("legacy-v0_1").unwrap();
    assert_eq!(legacy.wit_version, WitVersion::V0_1_0);
    assert_eq!(legacy.info.provider, "Legacy");
    let school = legacy
        .check(&Sandbox::new(Limits::default()), &Settings::new())
        .await
        .unwrap();
    assert_eq!(school.name, "Legacy Academy");
    let records = full_read(&legacy, &Settings::new()).await;
    let [Record::Person(person)] = records.as_slice() else {
        panic!("expected one person, got {records:?}");
    };
    assert_eq!(person.first_name.as_deref(), Some("Siobhán"));
    assert_eq!(person.last_name.as_deref(), Some("Nguyễn"));
    assert_eq!(person.date_of_birth, Date::from_ymd_opt(2012, 2, 29));
    // Fields the 0.1.0 contract does not have arrive empty.
    assert_eq!(
        (person.middle_names.as_ref(), person.pronouns.as_ref()),
        (None, None)
    );
}

#[tokio::test]
async fn a_restart_with_a_warm_cache_does_not_recompile() {
    let (dir, first) = runtime_with(&["probe", "legacy-v0_1"]).await;
    assert!(
        first
            .statuses()
            .iter()
            .all(|s| s.plugin.as_ref().unwrap().loaded_from == LoadSource::Compiled)
    );
    drop(first);
    let second = runtime_over(dir.path());
    second.scan().await.unwrap();
    for status in second.statuses() {
        assert_eq!(
            status.plugin.unwrap().loaded_from,
            LoadSource::Cache,
            "{}",
            status.name
        );
    }
}

#[tokio::test]
async fn a_cached_artifact_the_host_did_not_write_is_never_loaded() {
    let (dir, first) = runtime_with(&["probe"]).await;
    drop(first);
    let cache = runtime_config(dir.path()).cache_dir;
    let artifact = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cached artifact");
    // Tamper with the code but keep the old signature.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&artifact, bytes).unwrap();
    let second = runtime_over(dir.path());
    second.scan().await.unwrap();
    let probe = second.plugin("probe").expect("recompiled and in service");
    assert_eq!(probe.loaded_from, LoadSource::Compiled);
    assert_eq!(full_read(&probe, &Settings::new()).await.len(), 3);
}

#[tokio::test]
async fn hot_reload_picks_up_new_changed_broken_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_over(dir.path());
    runtime.scan().await.unwrap();
    let _watch = runtime.watch().unwrap();

    let path = install(dir.path(), "probe", "alpha");
    eventually("a new file is in service", || {
        runtime.plugin("alpha").is_some()
    })
    .await;
    assert_eq!(runtime.plugin("alpha").unwrap().info.provider, "Probe");

    install(dir.path(), "legacy-v0_1", "alpha");
    eventually("the changed file is in service", || {
        runtime
            .plugin("alpha")
            .is_some_and(|p| p.info.provider == "Legacy")
    })
    .await;

    std::fs::write(&path, b"\0asm not really").unwrap();
    eventually("the broken file is reported", || {
        runtime
            .statuses()
            .iter()
            .any(|s| s.name == "alpha" && s.error.is_some())
    })
    .await;
    assert_eq!(
        runtime.plugin("alpha").unwrap().info.provider,
        "Legacy",
        "the previous good version stays in service"
    );

    std::fs::remove_file(&path).unwrap();
    eventually("the removed file leaves service", || {
        runtime.plugin("alpha").is_none()
    })
    .await;
}

#[tokio::test]
async fn a_run_in_progress_finishes_on_the_version_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "probe", "alpha");
    let runtime = runtime_over(dir.path());
    runtime.scan().await.unwrap();
    let probe = runtime.plugin("alpha").unwrap();
    let settings = Settings::new().with("batches", "3").with("batch-size", "4");
    let sandbox = Sandbox::for_connection(&probe.info, &settings, &[], Limits::default()).unwrap();
    let mut snapshot = probe
        .snapshot(&sandbox, &settings, Mode::Full)
        .await
        .unwrap();
    let mut records = snapshot.next_batch().await.unwrap().unwrap();

    install(dir.path(), "legacy-v0_1", "alpha");
    runtime.scan().await.unwrap();
    assert_eq!(runtime.plugin("alpha").unwrap().info.provider, "Legacy");

    while let Some(batch) = snapshot.next_batch().await.unwrap() {
        records.extend(batch);
    }
    assert_eq!(
        records.len(),
        12,
        "the probe, not the legacy connector, finished the run"
    );
    assert_eq!(snapshot.plugin().info.provider, "Probe");
}

#[tokio::test]
async fn an_unsupported_contract_version_is_refused_before_instantiation() {
    let bytes = patched_legacy(
        "rostersync:connector/source@0.1.0",
        "rostersync:connector/source@9.9.9",
    );
    let error = load_error(&bytes, "future.wasm").await;
    assert!(
        matches!(&error, LoadError::UnsupportedVersion { found, .. } if found == "9.9.9"),
        "{error}"
    );
    assert!(
        error.to_string().ends_with("future.wasm: built against rostersync:connector@9.9.9, which this host does not support (it supports 0.1.0, 0.2.0); rebuild it with a supported SDK"),
        "{error}"
    );
}

#[tokio::test]
async fn a_component_that_is_not_a_connector_is_refused() {
    let bytes = patched_legacy(
        "rostersync:connector/source@",
        "rostersync:connector/sourcx@",
    );
    let error = load_error(&bytes, "other.wasm").await;
    assert!(matches!(error, LoadError::NotAConnector { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("rostersync:connector/sourcx@0.1.0"),
        "{error}"
    );
}

#[tokio::test]
async fn a_core_module_is_refused_with_how_to_build_a_component() {
    let error = load_error(b"\0asm\x01\0\0\0", "core.wasm").await;
    assert!(matches!(error, LoadError::CoreModule { .. }), "{error}");
    assert!(error.to_string().contains("--target wasm32-wasip2"));
}

#[tokio::test]
async fn garbage_is_refused_naming_the_file() {
    let error = load_error(b"PK\x03\x04 definitely a zip", "junk.wasm").await;
    assert!(matches!(error, LoadError::NotAComponent { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("junk.wasm: not a WebAssembly component"),
        "{error}"
    );
}

#[tokio::test]
async fn a_file_name_that_is_not_a_connector_name_is_refused() {
    let bytes = std::fs::read(connector_wasm("probe")).unwrap();
    let error = load_error(&bytes, "My Probe.wasm").await;
    assert!(matches!(error, LoadError::BadName { .. }), "{error}");
}
