//! Builds the workspace's connectors and targets once per test build (not per test),
//! into `target/connectors`, and hands the tests their paths.

use std::path::Path;

const CONNECTORS: [&str; 11] = [
    "rostersync-connector-probe",
    "rostersync-connector-legacy-v0_1",
    "rostersync-connector-template",
    "rostersync-connector-wonde",
    "rostersync-connector-clever",
    "rostersync-connector-arbor",
    "rostersync-connector-xporter",
    "rostersync-connector-scholarpack",
    "rostersync-connector-oneroster",
    "rostersync-target-example-app",
    "rostersync-target-scim",
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
    let table: String = built
        .iter()
        .map(|c| {
            format!(
                "    ({:?}, {:?}),\n",
                c.plugin_name(),
                c.wasm.display().to_string()
            )
        })
        .collect();
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("connectors.rs");
    std::fs::write(
        out,
        format!("/// Plugin name and built component of every workspace connector.\npub const BUILT: &[(&str, &str)] = &[\n{table}];\n"),
    )
    .expect("writing the connector table");
}
