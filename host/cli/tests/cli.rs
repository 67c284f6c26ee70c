//! The command line as a user runs it: the real binary, real connector
//! builds (sharing `target/connectors` with the test suites, so each
//! connector compiles once per run), real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rostersync(plugin_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .args(args)
        .env("ROSTERSYNC_PLUGIN_DIR", plugin_dir)
        .current_dir(workspace())
        .output()
        .expect("running rostersync")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn shared_target() -> String {
    workspace().join("target/connectors").display().to_string()
}

fn build_into(plugin_dir: &Path, crate_dir: &str) {
    let output = rostersync(
        plugin_dir,
        &[
            "connector",
            "build",
            crate_dir,
            "--target-dir",
            &shared_target(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn build_then_list_shows_every_plugin_with_its_status() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/probe");
    build_into(plugins.path(), "connectors/legacy-v0_1");
    std::fs::write(plugins.path().join("broken.wasm"), b"not wasm").unwrap();

    let output = rostersync(plugins.path(), &["plugins", "list"]);
    let listing = text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a broken plugin makes list fail: {listing}"
    );
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {listing}"))
    };
    assert!(
        line("probe").contains("Probe")
            && line("probe").contains("0.2.0")
            && line("probe").ends_with("in service")
    );
    assert!(line("legacy-v0_1").contains("0.1.0"));
    assert!(
        line("broken").contains("failed:")
            && line("broken").contains("not a WebAssembly component")
    );

    let output = rostersync(plugins.path(), &["plugins", "list", "--json"]);
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let probe = rows.iter().find(|r| r["name"] == "probe").unwrap();
    assert_eq!(probe["wit"], "0.2.0");
    assert_eq!(probe["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn check_describes_a_good_file_and_explains_a_bad_one() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/template");
    let good = plugins.path().join("template.wasm");
    let output = rostersync(
        plugins.path(),
        &["plugins", "check", good.to_str().unwrap()],
    );
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("provider      Example SIS")
            && report.contains("rostersync:connector@0.2.0")
    );
    assert!(report.contains("api-token [Secret, required]"), "{report}");

    let bad = plugins.path().join("core.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0").unwrap();
    let output = rostersync(plugins.path(), &["plugins", "check", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("core.wasm: this is a core WebAssembly module, not a component")
    );
}

#[test]
fn a_new_connector_from_the_template_passes_the_suite_out_of_the_box() {
    let plugins = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let output = rostersync(
        plugins.path(),
        &[
            "connector",
            "new",
            "my-mis",
            "--dir",
            work.path().to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let crate_dir = work.path().join("my-mis");
    let output = rostersync(
        plugins.path(),
        &[
            "connector",
            "test",
            crate_dir.to_str().unwrap(),
            "--target-dir",
            &shared_target(),
        ],
    );
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("7 passed, 0 failed"), "{report}");

    let output = rostersync(
        plugins.path(),
        &[
            "connector",
            "build",
            crate_dir.to_str().unwrap(),
            "--target-dir",
            &shared_target(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(plugins.path().join("my-mis.wasm").exists());
}

#[test]
fn missing_fixtures_are_an_error_naming_the_file() {
    let plugins = tempfile::tempdir().unwrap();
    let fixtures = tempfile::tempdir().unwrap();
    std::fs::write(
        fixtures.path().join("settings.toml"),
        "api-token = \"x\"\nbase-url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    let output = rostersync(
        plugins.path(),
        &[
            "connector",
            "test",
            "connectors/template",
            "--fixtures",
            fixtures.path().to_str().unwrap(),
            "--target-dir",
            &shared_target(),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("check.json: cannot read the fixture"),
        "{}",
        text(&output)
    );
}
