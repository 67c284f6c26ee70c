//! The on-disk cache of precompiled connectors.
//!
//! Compiling a component takes ~0.1 s (≈1 s in a debug host); loading a
//! precompiled artifact takes ~0.3 ms. Artifacts are keyed by the source
//! file's sha256 and the engine's compatibility hash, so a different
//! wasmtime or engine setting never loads a stale artifact. Deserializing is
//! `unsafe` (an artifact is native code), so every artifact carries an
//! HMAC-SHA256 under a key only this host holds: a file the host did not
//! write is ignored and recompiled.

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

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadSource {
    Compiled,
    Cache,
}

pub(crate) struct ArtifactCache {
    dir: PathBuf,
    key: [u8; 32],
    engine_hash: String,
}

impl ArtifactCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key: load_or_create_key(&dir.join(KEY_FILE))?,
            engine_hash: engine_hash(engine),
        })
    }

    fn artifact_path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash))
    }

    fn mac(&self, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length works");
        mac.update(artifact);
        mac
    }

    /// The component for `wasm` (whose sha256 is given), from the cache when
    /// the host wrote a matching artifact, compiled (and cached) otherwise.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, LoadSource)> {
        let path = self.artifact_path(sha256);
        if let Ok(stored) = fs::read(&path) {
            match self.verified(&stored) {
                Some(artifact) => {
                    // SAFETY: the MAC proves this host wrote these bytes with
                    // `precompile_component` for an engine of the same
                    // compatibility hash (part of the file name).
                    match unsafe { Component::deserialize(engine, artifact) } {
                        Ok(component) => return Ok((component, LoadSource::Cache)),
                        Err(error) => {
                            tracing::warn!(path = %path.display(), %error, "cached artifact failed to load; recompiling")
                        }
                    }
                }
                None => {
                    tracing::warn!(path = %path.display(), "cached artifact was not written by this host; recompiling")
                }
            }
        }
        let artifact = engine.precompile_component(wasm)?;
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        if let Err(error) = self.store(&path, &artifact) {
            tracing::warn!(path = %path.display(), %error, "could not cache the compiled connector");
        }
        Ok((component, LoadSource::Compiled))
    }

    fn verified<'a>(&self, stored: &'a [u8]) -> Option<&'a [u8]> {
        if stored.len() < MAC_LEN {
            return None;
        }
        let (tag, artifact) = stored.split_at(MAC_LEN);
        self.mac(artifact).verify_slice(tag).ok()?;
        Some(artifact)
    }

    fn store(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        let mut file = tempfile_in(&self.dir)?;
        file.1
            .write_all(&self.mac(artifact).finalize().into_bytes())?;
        file.1.write_all(artifact)?;
        file.1.sync_all()?;
        fs::rename(&file.0, path)
    }
}

/// A fresh file beside the cache entries, renamed into place when complete
/// so a crash never leaves half an artifact under a real name.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    let path = dir.join(format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
    let file = fs::File::create(&path)?;
    Ok((path, file))
}

fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    if let Ok(bytes) = fs::read(path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(&key)?;
    Ok(key)
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
