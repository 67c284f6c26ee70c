//! `rostersync connector new`: a copy of `connectors/template`, made
//! standalone (its own `[workspace]`, the SDK by path, the lockfile this
//! rostersync was built with so it resolves offline to tested versions).

use std::path::{Path, PathBuf};

const LIB_RS: &str = include_str!("../../../connectors/template/src/lib.rs");
const README: &str = include_str!("../../../connectors/template/README.md");
const LOCKFILE: &str = include_str!("../../../Cargo.lock");
const FIXTURES: [(&str, &str); 6] = [
    (
        "settings.toml",
        include_str!("../../../connectors/template/fixtures/settings.toml"),
    ),
    (
        "check.json",
        include_str!("../../../connectors/template/fixtures/check.json"),
    ),
    (
        "check-unauthorized.json",
        include_str!("../../../connectors/template/fixtures/check-unauthorized.json"),
    ),
    (
        "full-1.json",
        include_str!("../../../connectors/template/fixtures/full-1.json"),
    ),
    (
        "full-2.json",
        include_str!("../../../connectors/template/fixtures/full-2.json"),
    ),
    (
        "delta.json",
        include_str!("../../../connectors/template/fixtures/delta.json"),
    ),
];

/// The SDK this binary was built beside.
fn bundled_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors/sdk")
}

fn manifest(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "rostersync-connector-{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
rostersync-connector-sdk = {{ path = {sdk:?} }}
serde = {{ version = "1", features = ["derive"] }}

# A connector is its own workspace, whatever folder it sits in.
[workspace]
"#,
        sdk = sdk.display().to_string()
    )
}

/// Creates `<dir>/<name>` and returns its path.
pub fn create(name: &str, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if !valid {
        anyhow::bail!(
            "{name:?} is not a connector name: use lower-case letters, digits and `-`, e.g. `my-mis`"
        );
    }
    let root = dir.join(name);
    if root.exists() {
        anyhow::bail!(
            "{} already exists; choose another name or folder",
            root.display()
        );
    }
    let sdk = sdk.map(Path::to_path_buf).unwrap_or_else(bundled_sdk);
    let sdk = sdk.canonicalize().map_err(|e| {
        anyhow::anyhow!(
            "the connector SDK is not at {} ({e}); pass --sdk PATH",
            sdk.display()
        )
    })?;
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::create_dir_all(root.join("fixtures"))?;
    std::fs::write(root.join("Cargo.toml"), manifest(name, &sdk))?;
    std::fs::write(root.join("Cargo.lock"), LOCKFILE)?;
    std::fs::write(root.join("src/lib.rs"), LIB_RS)?;
    std::fs::write(root.join("README.md"), README)?;
    std::fs::write(root.join(".gitignore"), "/target\n")?;
    for (file, content) in FIXTURES {
        std::fs::write(root.join("fixtures").join(file), content)?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_names_and_existing_folders() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "My MIS", "-x", "wonde_v2"] {
            assert!(
                create(bad, dir.path(), None)
                    .unwrap_err()
                    .to_string()
                    .contains("is not a connector name"),
                "{bad}"
            );
        }
        let made = create("my-mis", dir.path(), None).unwrap();
        let manifest = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"rostersync-connector-my-mis\""));
        assert!(made.join("fixtures/full-1.json").exists());
        assert!(
            create("my-mis", dir.path(), None)
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
    }
}
