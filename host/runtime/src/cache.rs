//! The on-disk cache of precompiled connectors.
//!
//! Compiling a component takes ~0.1 s (≈1 s in a debug host); loading a
//! precompiled artifact takes ~0.3 ms. Deserializing is `unsafe` (an
//! artifact is native code), so the cache trusts nothing it did not write:
//!
//! - it lives in the host's state directory ([`default_state_dir`]), never
//!   in the plugin folder, so whoever may drop plugins cannot reach it;
//! - its folder and key must belong to the host's user and be closed to
//!   everyone else (the key unreadable, the folder and artifacts
//!   unwritable by group or others); otherwise the cache is ignored, with
//!   a warning, and every plugin is compiled afresh;
//! - every artifact carries an HMAC-SHA256, under that key, of the plugin's
//!   name, its file's sha256, the engine's compatibility hash and the
//!   code, so a file the host did not write is never loaded, and one
//!   plugin's code can never serve as another's.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;

const KEY_FILE: &str = "host.key";
const MAC_LEN: usize = 32;

/// The environment variable naming the host's state directory.
pub const STATE_DIR_ENV: &str = "ROSTERSYNC_STATE_DIR";

/// The host's state directory: `ROSTERSYNC_STATE_DIR`, else
/// `$XDG_STATE_HOME/rostersync`, else `~/.local/state/rostersync`.
pub fn default_state_dir() -> PathBuf {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    env(STATE_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| {
        env("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|home| Path::new(&home).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from(".local/state"))
            .join("rostersync")
    })
}

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadSource {
    Compiled,
    Cache,
}

pub(crate) struct ArtifactCache {
    dir: PathBuf,
    /// None when the folder or key cannot be trusted: nothing is read
    /// from the cache or written to it.
    key: Option<[u8; 32]>,
    engine_hash: String,
}

impl ArtifactCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        create_private_dir(dir)?;
        let key = match private(dir, Kind::Folder).and_then(|()| load_or_create_key(dir)) {
            Ok(key) => Some(key),
            Err(why) => {
                tracing::warn!(cache = %dir.display(), "the plugin cache is not safe to use, so every plugin is compiled afresh: {why}");
                None
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            engine_hash: engine_hash(engine),
        })
    }

    fn artifact_path(&self, name: &str, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{name}-{sha256}-{}.cwasm", self.engine_hash))
    }

    /// The MAC binding `artifact` to the plugin `name` whose file has
    /// `sha256`, for this engine.
    fn mac(key: &[u8; 32], binding: &Binding<'_>, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("any key length works");
        for part in [binding.name, binding.sha256, binding.engine_hash] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(artifact);
        mac
    }

    /// The component for the plugin `name` whose file is `wasm` (with
    /// `sha256`), from the cache when the host wrote a matching artifact
    /// for that plugin and file, compiled (and cached) otherwise.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        name: &str,
        wasm: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, LoadSource)> {
        let path = self.artifact_path(name, sha256);
        let binding = Binding {
            name,
            sha256,
            engine_hash: &self.engine_hash,
        };
        if let Some(key) = &self.key
            && let Some(component) = self.cached(engine, key, &binding, &path)
        {
            return Ok((component, LoadSource::Cache));
        }
        let artifact = engine.precompile_component(wasm)?;
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        if let Some(key) = &self.key
            && let Err(error) = self.store(key, &binding, &path, &artifact)
        {
            tracing::warn!(path = %path.display(), %error, "could not cache the compiled connector");
        }
        Ok((component, LoadSource::Compiled))
    }

    /// The cached component at `path`, if the host wrote it for `binding`.
    fn cached(
        &self,
        engine: &Engine,
        key: &[u8; 32],
        binding: &Binding<'_>,
        path: &Path,
    ) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        let refuse = |why: &str| {
            tracing::warn!(path = %path.display(), "cached artifact ignored, recompiling: {why}");
            None
        };
        if let Err(why) = private(path, Kind::Artifact) {
            return refuse(&why);
        }
        let Ok(stored) = fs::read(path) else {
            return refuse("it cannot be read");
        };
        let Some(artifact) = verified(key, binding, &stored) else {
            return refuse("this host did not write it for this plugin and file");
        };
        // SAFETY: the MAC, under a key only this host's user can read,
        // proves this host wrote these bytes with `precompile_component`
        // for this plugin, this file and an engine of the same
        // compatibility hash.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Some(component),
            Err(error) => refuse(&error.to_string()),
        }
    }

    fn store(
        &self,
        key: &[u8; 32],
        binding: &Binding<'_>,
        path: &Path,
        artifact: &[u8],
    ) -> std::io::Result<()> {
        let temporary = self
            .dir
            .join(format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
        let mut file = private_file(&temporary)?;
        file.write_all(&Self::mac(key, binding, artifact).finalize().into_bytes())?;
        file.write_all(artifact)?;
        file.sync_all()?;
        // Renamed into place when complete, so a crash never leaves half
        // an artifact under a real name.
        fs::rename(&temporary, path)
    }
}

/// What an artifact's MAC binds it to.
struct Binding<'a> {
    name: &'a str,
    sha256: &'a str,
    engine_hash: &'a str,
}

fn verified<'a>(key: &[u8; 32], binding: &Binding<'_>, stored: &'a [u8]) -> Option<&'a [u8]> {
    if stored.len() < MAC_LEN {
        return None;
    }
    let (tag, artifact) = stored.split_at(MAC_LEN);
    ArtifactCache::mac(key, binding, artifact)
        .verify_slice(tag)
        .ok()?;
    Some(artifact)
}

/// What a path in the cache must be.
#[derive(Clone, Copy)]
enum Kind {
    Folder,
    Key,
    Artifact,
}

/// Checks that `path` is a real file or folder (no symlink) of the host's
/// user, which nobody else may change (nor, for the key, read).
#[cfg(unix)]
fn private(path: &Path, kind: Kind) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path)
        .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    let (right_type, closed) = match kind {
        Kind::Folder => (meta.is_dir(), 0o022),
        Kind::Key => (meta.is_file(), 0o077),
        Kind::Artifact => (meta.is_file(), 0o022),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = unsafe { libc::geteuid() };
    if !right_type {
        Err(format!("{} is not a plain file or folder", path.display()))
    } else if meta.uid() != user {
        Err(format!(
            "{} belongs to user {}, not to this host's user {user}",
            path.display(),
            meta.uid()
        ))
    } else if meta.mode() & closed != 0 {
        Err(format!(
            "{} is open to other users (mode {:o})",
            path.display(),
            meta.mode() & 0o777
        ))
    } else {
        Ok(())
    }
}

#[cfg(not(unix))]
fn private(path: &Path, _: Kind) -> Result<(), String> {
    fs::symlink_metadata(path)
        .map(|_| ())
        .map_err(|e| format!("cannot inspect {}: {e}", path.display()))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A new file only its owner may read or write; never follows or
/// replaces an existing name.
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The host's key in `dir`, created on first use.
fn load_or_create_key(dir: &Path) -> Result<[u8; 32], String> {
    let path = dir.join(KEY_FILE);
    if fs::symlink_metadata(&path).is_err() {
        let key: [u8; 32] = rand::random();
        let created = private_file(&path).and_then(|mut file| {
            file.write_all(&key)?;
            file.sync_all()
        });
        created.map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        return Ok(key);
    }
    private(&path, Kind::Key)?;
    let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} is not a key this host wrote", path.display()))
}

/// A stable text form of the engine's compatibility hash.
fn engine_hash(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0 // only the digest is read
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..12])
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
