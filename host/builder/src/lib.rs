//! Builds connector and target crates into `wasm32-wasip2` components and
//! installs them into a plugin folder. No wasmtime here: the test suites' build
//! script uses this crate too.
//!
//! Size settings (opt-level "s", LTO, one codegen unit, stripped, abort on
//! panic) are passed to cargo on the command line, so any connector crate
//! builds small without a profile of its own.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TARGET: &str = "wasm32-wasip2";

/// The settings that make a connector a ~100-250 KB component.
const SIZE_PROFILE: [&str; 5] = [
    "profile.release.opt-level=\"s\"",
    "profile.release.lto=true",
    "profile.release.codegen-units=1",
    "profile.release.strip=true",
    "profile.release.panic=\"abort\"",
];

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error(
        "the {TARGET} target is not installed and `rustup target add {TARGET}` failed; install rustup or the target by hand"
    )]
    NoTarget,
    #[error("cargo could not build {manifest}; its errors are above")]
    Compile { manifest: String },
    #[error("{manifest} built no wasm component: is its crate-type `cdylib`?")]
    NoComponent { manifest: String },
    #[error("cannot install {}: {source}", path.display())]
    Install {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A component cargo produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltConnector {
    /// The cargo package name, e.g. `rostersync-connector-wonde`.
    pub package: String,
    pub wasm: PathBuf,
}

impl BuiltConnector {
    /// The name the plugin is installed and configured under: the package
    /// name without the `rostersync-connector-` or `rostersync-target-`
    /// prefix.
    pub fn plugin_name(&self) -> String {
        plugin_name(&self.package)
    }
}

pub fn plugin_name(package: &str) -> String {
    package
        .strip_prefix("rostersync-connector-")
        .or_else(|| package.strip_prefix("rostersync-target-"))
        .unwrap_or(package)
        .to_ascii_lowercase()
}

/// Installs the wasm target through rustup when it is missing.
pub fn ensure_target() -> Result<(), BuildError> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        });
    if installed {
        return Ok(());
    }
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if added {
        Ok(())
    } else {
        Err(BuildError::NoTarget)
    }
}

/// Builds the cdylib packages of `manifest` (all of them, or `packages`)
/// for the wasm target, in `target_dir` when given. Cargo's diagnostics go
/// to stderr as usual.
pub fn build(
    manifest: &Path,
    packages: &[&str],
    target_dir: Option<&Path>,
) -> Result<Vec<BuiltConnector>, BuildError> {
    ensure_target()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(manifest);
    for setting in SIZE_PROFILE {
        command.args(["--config", setting]);
    }
    for package in packages {
        command.args(["-p", package]);
    }
    if let Some(dir) = target_dir {
        command.arg("--target-dir").arg(dir);
    }
    // When called from a build script, the outer cargo's settings must not
    // leak into this build: flags, wrappers (clippy) and target directory.
    for leaked in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(leaked);
    }
    command.stdout(Stdio::piped());
    let mut child = command.spawn().map_err(|source| BuildError::Spawn {
        program: cargo.clone(),
        source,
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut built = Vec::new();
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        if let Some(artifact) = component_artifact(&line) {
            built.push(artifact);
        }
    }
    let manifest_text = manifest.display().to_string();
    let status = child.wait().map_err(|source| BuildError::Spawn {
        program: cargo,
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Compile {
            manifest: manifest_text,
        });
    }
    if built.is_empty() {
        return Err(BuildError::NoComponent {
            manifest: manifest_text,
        });
    }
    Ok(built)
}

/// The component in one line of cargo's JSON messages, if it reports one.
fn component_artifact(line: &str) -> Option<BuiltConnector> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let is_cdylib = message["target"]["kind"]
        .as_array()?
        .iter()
        .any(|k| k == "cdylib");
    if !is_cdylib {
        return None;
    }
    let wasm = message["filenames"]
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))?;
    // `package_id` is `path+file:///…/name#version` or `registry+…#name@version`.
    let package_id = message["package_id"].as_str()?;
    let package = message["manifest_path"]
        .as_str()
        .and_then(|m| package_name_from_manifest(Path::new(m)))
        .or_else(|| {
            package_id
                .rsplit_once('#')
                .map(|(_, tail)| tail.split('@').next().unwrap_or(tail).to_string())
        })?;
    Some(BuiltConnector {
        package,
        wasm: PathBuf::from(wasm),
    })
}

fn package_name_from_manifest(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_string());
        }
    }
    None
}

/// Copies a component into `plugin_dir` as `<plugin name>.wasm`, through a
/// temporary file and a rename, so a watching host never sees half a file.
pub fn install(built: &BuiltConnector, plugin_dir: &Path) -> Result<PathBuf, BuildError> {
    let target = plugin_dir.join(format!("{}.wasm", built.plugin_name()));
    let staging = plugin_dir.join(format!(".{}.wasm.tmp", built.plugin_name()));
    let fail = |source| BuildError::Install {
        path: target.clone(),
        source,
    };
    std::fs::create_dir_all(plugin_dir).map_err(fail)?;
    std::fs::copy(&built.wasm, &staging).map_err(fail)?;
    std::fs::rename(&staging, &target).map_err(fail)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_component_out_of_cargo_messages() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nname = \"rostersync-connector-wonde\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        let line = serde_json::json!({
            "reason": "compiler-artifact",
            "package_id": "path+file:///x/connectors/wonde#0.1.0",
            "manifest_path": manifest,
            "target": {"kind": ["cdylib", "rlib"], "name": "rostersync_connector_wonde"},
            "filenames": ["/t/rostersync_connector_wonde.rlib", "/t/rostersync_connector_wonde.wasm"],
        })
        .to_string();
        let built = component_artifact(&line).unwrap();
        assert_eq!(built.package, "rostersync-connector-wonde");
        assert_eq!(built.plugin_name(), "wonde");
        assert_eq!(plugin_name("rostersync-target-scim"), "scim");
        assert_eq!(
            built.wasm,
            PathBuf::from("/t/rostersync_connector_wonde.wasm")
        );
        let rlib_only = line.replace("\"cdylib\",", "");
        assert_eq!(component_artifact(&rlib_only), None);
        assert_eq!(component_artifact("not json"), None);
    }

    #[test]
    fn installs_under_the_plugin_name() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("x.wasm");
        std::fs::write(&wasm, b"\0asm").unwrap();
        let built = BuiltConnector {
            package: "rostersync-connector-probe".into(),
            wasm,
        };
        let installed = install(&built, &dir.path().join("plugins")).unwrap();
        assert_eq!(installed.file_name().unwrap(), "probe.wasm");
        assert_eq!(std::fs::read(installed).unwrap(), b"\0asm");
    }
}
