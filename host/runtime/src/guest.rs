//! What every kind of plugin shares, connector or target: compiling a
//! component file under the host's limits (through the signed cache), the
//! store each call gets (WASI with nothing granted, the HTTP hooks, the
//! memory guard, the epoch budget), and the guard around each call into the
//! guest that turns whatever went wrong (a trap, the memory limit, the time
//! limit, a request outside the allow-list) into a typed [`RunError`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::cache::{LoadSource, sha256_hex};
use crate::clock::{WaitedTooLong, limit_waiting};
use crate::error::{LoadError, RunError};
use crate::plugin::{EPOCH_TICK, plugin_name};
use crate::runtime::Shared;
use crate::sandbox::{Limits, RunState, Sandbox};

/// A component file compiled and named, before it is bound to a contract.
pub(crate) struct Compiled {
    /// The file stem: how configuration names the plugin.
    pub(crate) name: String,
    pub(crate) sha256: String,
    pub(crate) component: Component,
    pub(crate) loaded_from: LoadSource,
    /// The interfaces it exports, e.g. `rostersync:connector/source@0.2.0`.
    pub(crate) exports: Vec<String>,
}

impl Compiled {
    /// The version of `interface` (`package/name`, no version) it exports.
    pub(crate) fn version_of(&self, interface: &str) -> Option<&str> {
        let prefix = format!("{interface}@");
        self.exports.iter().find_map(|e| e.strip_prefix(&prefix))
    }

    /// What it exports, for an error that says it is the wrong kind.
    pub(crate) fn exports_listed(&self) -> String {
        if self.exports.is_empty() {
            "nothing".into()
        } else {
            self.exports.join(", ")
        }
    }
}

/// Names, checks and compiles `wasm` (the content of `path`), from the
/// cache when the host compiled this very file before.
pub(crate) async fn compile(
    shared: &Arc<Shared>,
    path: &Path,
    wasm: Vec<u8>,
) -> Result<Compiled, LoadError> {
    let name = plugin_name(path).ok_or_else(|| LoadError::BadName {
        path: path.to_path_buf(),
    })?;
    if wasm.starts_with(b"\0asm\x01\0\0\0") {
        return Err(LoadError::CoreModule {
            path: path.to_path_buf(),
        });
    }
    let sha256 = sha256_hex(&wasm);
    let compiling = shared.clone();
    let digest = sha256.clone();
    // A crafted component can take minutes to compile; the host does not
    // wait for it (the compiling thread finishes on its own and its work is
    // dropped).
    let limit = shared.compile_timeout;
    let cached_as = name.clone();
    let compiled = tokio::time::timeout(
        limit,
        tokio::task::spawn_blocking(move || {
            compiling
                .cache
                .load(&compiling.engine, &cached_as, &wasm, &digest)
        }),
    )
    .await
    .map_err(|_| LoadError::CompileTimeout {
        path: path.to_path_buf(),
        limit,
    })?;
    let (component, loaded_from) =
        compiled
            .expect("compilation does not panic")
            .map_err(|e| LoadError::NotAComponent {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
    let exports = component
        .component_type()
        .exports(&shared.engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    Ok(Compiled {
        name,
        sha256,
        component,
        loaded_from,
        exports,
    })
}

/// How an instance-linking failure of the file at `path` is reported.
pub(crate) fn link_error(path: &Path) -> impl Fn(wasmtime::Error) -> LoadError + '_ {
    move |e| LoadError::Link {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    }
}

/// Where `describe` runs while a plugin loads: default limits, a short
/// time limit, no network.
pub(crate) fn describe_sandbox() -> Sandbox {
    Sandbox::new(Limits {
        call_timeout: Duration::from_secs(10),
        ..Limits::default()
    })
}

/// A fresh store for one call (or one snapshot) of the plugin `name`, with
/// the sandbox's limits in force. Fails only when the drop folder cannot be
/// opened.
pub(crate) fn new_store(
    shared: &Shared,
    name: &str,
    sandbox: &Sandbox,
    grant_drop_folder: bool,
) -> wasmtime::Result<Store<RunState>> {
    let state = RunState::new(name, sandbox, grant_drop_folder)?;
    let mut store = Store::new(&shared.engine, state);
    store.limiter(|state| &mut state.memory);
    // At every tick the guest runs through, it is charged that tick and
    // yields to the executor, so a plugin that computes without end cannot
    // hold a thread the heartbeats and other runs need, and the time it
    // waits for a CPU is not charged to it.
    store.epoch_deadline_callback(|mut store| {
        let state = store.data_mut();
        state.ticks_used += 1;
        Ok(if state.ticks_used >= state.tick_budget {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store.data_mut().tick_budget = ticks(sandbox.limits.call_timeout);
    store.set_epoch_deadline(1);
    Ok(store)
}

/// Runs one call into the plugin `name` under its time limit (which the
/// epoch ticks it runs through enforce while it computes, and the waiting
/// clock while it waits on the network), then turns whatever went wrong
/// into a typed error.
pub(crate) async fn guarded<T>(
    name: &str,
    store: &mut Store<RunState>,
    limit: Duration,
    call: impl AsyncFnOnce(&mut Store<RunState>) -> wasmtime::Result<T>,
) -> Result<T, RunError> {
    let state = store.data_mut();
    state.ticks_used = 0;
    state.tick_budget = ticks(limit);
    store.set_epoch_deadline(1);
    let outcome = limit_waiting(limit, call(store)).await;
    if let Some(violation) = store.data().hooks.take_violation() {
        return Err(RunError::Outbound {
            connector: name.to_string(),
            violation,
        });
    }
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify(name, store, error, limit)),
        Err(WaitedTooLong) => Err(RunError::Timeout {
            connector: name.to_string(),
            limit,
        }),
    }
}

/// What a failed call or instantiation of the plugin `name` amounts to.
pub(crate) fn classify(
    name: &str,
    store: &Store<RunState>,
    error: wasmtime::Error,
    limit: Duration,
) -> RunError {
    let connector = name.to_string();
    let state = store.data();
    if state.memory.exceeded {
        return RunError::MemoryLimit {
            connector,
            limit_bytes: state.memory.limit_bytes(),
        };
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return RunError::Timeout { connector, limit };
    }
    let mut message = error.root_cause().to_string();
    if let Some(stderr) = state.stderr_tail() {
        message = format!("{message}; it printed: {stderr}");
    }
    RunError::Trap { connector, message }
}

fn ticks(limit: Duration) -> u64 {
    (limit.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}
