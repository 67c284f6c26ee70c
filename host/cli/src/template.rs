//! `rostersync connector new` and `rostersync target new`: a copy of
//! `connectors/template` or `connectors/target-template`, made standalone
//! (its own `[workspace]`, the SDK by a path relative to the new crate or
//! from git, the lockfile this rostersync was built with so it resolves
//! offline to tested versions).

use std::path::{Component, Path, PathBuf};

use clap::Args;

const LOCKFILE: &str = include_str!("../../../Cargo.lock");

/// A crate `new` copies: what it is called, its package prefix, its
/// dependencies besides the SDK, and its files.
pub struct Template {
    /// `connector` or `target`, as in the command and its messages.
    pub kind: &'static str,
    /// An example name, for the message refusing a bad one.
    example: &'static str,
    dependencies: &'static str,
    files: &'static [(&'static str, &'static str)],
}

/// `connectors/template`: a connector for the Example SIS.
pub const CONNECTOR: Template = Template {
    kind: "connector",
    example: "my-mis",
    dependencies: "serde = { version = \"1\", features = [\"derive\"] }\n",
    files: &CONNECTOR_FILES,
};

/// `connectors/target-template`: a target for the Example App.
pub const TARGET: Template = Template {
    kind: "target",
    example: "my-app",
    dependencies: "serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\n",
    files: &[
        (
            "src/lib.rs",
            include_str!("../../../connectors/target-template/src/lib.rs"),
        ),
        (
            "README.md",
            include_str!("../../../connectors/target-template/README.md"),
        ),
    ],
};

const CONNECTOR_FILES: [(&str, &str); 8] = [
    (
        "src/lib.rs",
        include_str!("../../../connectors/template/src/lib.rs"),
    ),
    (
        "README.md",
        include_str!("../../../connectors/template/README.md"),
    ),
    (
        "fixtures/settings.toml",
        include_str!("../../../connectors/template/fixtures/settings.toml"),
    ),
    (
        "fixtures/check.json",
        include_str!("../../../connectors/template/fixtures/check.json"),
    ),
    (
        "fixtures/check-unauthorized.json",
        include_str!("../../../connectors/template/fixtures/check-unauthorized.json"),
    ),
    (
        "fixtures/full-1.json",
        include_str!("../../../connectors/template/fixtures/full-1.json"),
    ),
    (
        "fixtures/full-2.json",
        include_str!("../../../connectors/template/fixtures/full-2.json"),
    ),
    (
        "fixtures/delta.json",
        include_str!("../../../connectors/template/fixtures/delta.json"),
    ),
];

/// The SDK this binary was built beside.
fn bundled_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors/sdk")
}

/// Where the new crate gets the SDK, as `new` takes it.
#[derive(Args)]
pub struct SdkArgs {
    /// The connector SDK crate to depend on (default: the SDK this
    /// rostersync was built from), written as a path relative to the
    /// new crate.
    #[arg(long, conflicts_with = "sdk_git")]
    sdk: Option<PathBuf>,
    /// Depend on the SDK from this git repository instead (a rostersync
    /// checkout's remote), for a crate kept apart from any checkout.
    #[arg(long)]
    sdk_git: Option<String>,
    /// The tag (or branch) of `--sdk-git` to use.
    #[arg(long, requires = "sdk_git")]
    sdk_tag: Option<String>,
}

impl SdkArgs {
    pub fn sdk(self) -> Sdk {
        match self.sdk_git {
            Some(url) => Sdk::Git {
                url,
                tag: self.sdk_tag,
            },
            None => Sdk::Path(self.sdk),
        }
    }
}

/// Where the new crate gets the connector SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sdk {
    /// A folder on this machine (default: the SDK this rostersync was
    /// built from), written relative to the new crate.
    Path(Option<PathBuf>),
    /// A git repository holding rostersync, at a tag or branch.
    Git { url: String, tag: Option<String> },
}

/// `to` as seen from the folder `from`; both absolute and canonical.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to[common..] {
        path.push(part.as_os_str());
    }
    path
}

/// The SDK's line in the new crate's manifest, and a note for the other
/// way of getting it.
fn dependency(sdk: &Sdk, root: &Path) -> anyhow::Result<String> {
    match sdk {
        Sdk::Git { url, tag } => {
            let at = tag
                .as_deref()
                .map(|tag| format!(", tag = {tag:?}"))
                .unwrap_or_default();
            Ok(format!(
                "rostersync-connector-sdk = {{ git = {url:?}{at} }}\n"
            ))
        }
        Sdk::Path(path) => {
            let sdk = path.clone().unwrap_or_else(bundled_sdk);
            let sdk = sdk.canonicalize().map_err(|e| {
                anyhow::anyhow!(
                    "the connector SDK is not at {} ({e}); pass --sdk PATH, or --sdk-git URL for a rostersync repository",
                    sdk.display()
                )
            })?;
            let path = relative(root, &sdk);
            Ok(format!(
                "# Relative to this crate. Kept apart from a rostersync checkout, use\n\
                 # rostersync-connector-sdk = {{ git = \"<rostersync repository>\", tag = \"v{version}\" }}\n\
                 rostersync-connector-sdk = {{ path = {path:?} }}\n",
                version = env!("CARGO_PKG_VERSION"),
                path = path.display().to_string()
            ))
        }
    }
}

fn manifest(template: &Template, name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "rostersync-{kind}-{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
{sdk}{dependencies}
# A {kind} is its own workspace, whatever folder it sits in.
[workspace]
"#,
        kind = template.kind,
        dependencies = template.dependencies,
    )
}

/// Creates `<dir>/<name>` from `template` and returns its path.
pub fn create(template: &Template, name: &str, dir: &Path, sdk: &Sdk) -> anyhow::Result<PathBuf> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if !valid {
        anyhow::bail!(
            "{name:?} is not a {} name: use lower-case letters, digits and `-`, e.g. `{}`",
            template.kind,
            template.example
        );
    }
    let root = dir.join(name);
    if root.exists() {
        anyhow::bail!(
            "{} already exists; choose another name or folder",
            root.display()
        );
    }
    std::fs::create_dir_all(dir)?;
    let parent = dir.canonicalize()?;
    let dependency = dependency(sdk, &parent.join(name))?;
    std::fs::create_dir_all(&root)?;
    std::fs::write(
        root.join("Cargo.toml"),
        manifest(template, name, &dependency),
    )?;
    std::fs::write(root.join("Cargo.lock"), LOCKFILE)?;
    std::fs::write(root.join(".gitignore"), "/target\n")?;
    for (file, content) in template.files {
        let path = root.join(file);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, content)?;
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
                create(&CONNECTOR, bad, dir.path(), &Sdk::Path(None))
                    .unwrap_err()
                    .to_string()
                    .contains("is not a connector name"),
                "{bad}"
            );
        }
        let made = create(&CONNECTOR, "my-mis", dir.path(), &Sdk::Path(None)).unwrap();
        let manifest = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"rostersync-connector-my-mis\""));
        assert!(made.join("fixtures/full-1.json").exists());
        assert!(
            create(&CONNECTOR, "my-mis", dir.path(), &Sdk::Path(None))
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
    }

    #[test]
    fn inside_the_repository_the_sdk_is_a_path_relative_to_the_new_crate() {
        let repo = bundled_sdk().join("../..").canonicalize().unwrap();
        let dir = tempfile::tempdir_in(repo.join("target")).unwrap();
        let made = create(&CONNECTOR, "in-tree", dir.path(), &Sdk::Path(None)).unwrap();
        let manifest = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        let line = manifest
            .lines()
            .find(|l| l.starts_with("rostersync-connector-sdk"))
            .unwrap();
        let depth = made
            .canonicalize()
            .unwrap()
            .strip_prefix(&repo)
            .unwrap()
            .components()
            .count();
        let expected = format!("{}connectors/sdk", "../".repeat(depth));
        assert_eq!(
            line,
            format!("rostersync-connector-sdk = {{ path = {expected:?} }}")
        );
        assert!(
            !manifest.contains(repo.to_str().unwrap()),
            "no absolute path: {manifest}"
        );
        // The path resolves from the crate to the SDK.
        assert_eq!(
            made.join(&expected).canonicalize().unwrap(),
            bundled_sdk().canonicalize().unwrap()
        );
        assert!(
            manifest.contains("git = \"<rostersync repository>\""),
            "the git way is noted"
        );
    }

    #[test]
    fn apart_from_a_checkout_the_sdk_comes_from_git() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = Sdk::Git {
            url: "https://git.example.org/rostersync.git".into(),
            tag: Some("v0.1.0".into()),
        };
        let made = create(&CONNECTOR, "far-away", dir.path(), &sdk).unwrap();
        let manifest = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(
                "rostersync-connector-sdk = { git = \"https://git.example.org/rostersync.git\", tag = \"v0.1.0\" }"
            ),
            "{manifest}"
        );
        assert!(manifest.parse::<toml::Table>().is_ok(), "{manifest}");
        assert!(!manifest.contains("path ="), "{manifest}");
    }

    #[test]
    fn a_new_target_is_the_target_template_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            create(&TARGET, "My App", dir.path(), &Sdk::Path(None))
                .unwrap_err()
                .to_string()
                .contains("is not a target name")
        );
        let made = create(&TARGET, "my-app", dir.path(), &Sdk::Path(None)).unwrap();
        let manifest = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"rostersync-target-my-app\""));
        assert!(manifest.contains("serde_json = \"1\""), "{manifest}");
        assert!(manifest.parse::<toml::Table>().is_ok(), "{manifest}");
        let lib = std::fs::read_to_string(made.join("src/lib.rs")).unwrap();
        assert!(lib.contains("export_target!"));
        assert!(!made.join("fixtures").exists());
    }

    #[test]
    fn a_relative_path_climbs_to_the_common_folder() {
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/d/e")),
            PathBuf::from("../../d/e")
        );
        assert_eq!(
            relative(Path::new("/a"), Path::new("/a/x")),
            PathBuf::from("x")
        );
    }
}
