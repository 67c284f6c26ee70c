//! Builds the workspace's connectors once per test build (not per test),
//! into `target/connectors`, and hands the tests their paths.

use std::path::Path;

const CONNECTORS: [&str; 3] = [
    "rostersync-connector-probe",
    "rostersync-connector-legacy-v0_1",
    "rostersync-connector-template",
];

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace");
    for watched in ["connectors", "wit"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let built = rostersync_builder::build(
        &workspace.join("Cargo.toml"),
        &CONNECTORS,
        Some(&workspace.join("target").join("connectors")),
    )
    .unwrap_or_else(|error| panic!("building the test connectors: {error}"));
    for connector in built {
        let var = connector
            .plugin_name()
            .to_ascii_uppercase()
            .replace('-', "_");
        println!(
            "cargo:rustc-env=CONNECTOR_{var}={}",
            connector.wasm.display()
        );
    }
}
