//! Support for the end-to-end suites: the connectors the build script
//! built, a runtime over a throwaway plugin folder, small HTTP servers on
//! 127.0.0.1, and the real downstream servers of the target suites (a SCIM
//! service and OpenLDAP).

pub mod example_sis;
pub mod host;
pub mod outage;
pub mod providers;
pub mod replay;
pub mod scim;
pub mod slapd;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rostersync_runtime::{Runtime, RuntimeConfig};

include!(concat!(env!("OUT_DIR"), "/connectors.rs"));

/// The component the build script built for a workspace connector.
pub fn connector_wasm(name: &str) -> PathBuf {
    BUILT
        .iter()
        .find(|(built, _)| *built == name)
        .map(|(_, wasm)| PathBuf::from(wasm))
        .unwrap_or_else(|| panic!("no workspace connector named {name}"))
}

/// The workspace root, for fixtures committed beside the connectors.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
}

/// Copies a built connector into `plugin_dir` as `<as_name>.wasm`.
pub fn install(plugin_dir: &Path, connector: &str, as_name: &str) -> PathBuf {
    std::fs::create_dir_all(plugin_dir).unwrap();
    let target = plugin_dir.join(format!("{as_name}.wasm"));
    std::fs::copy(connector_wasm(connector), &target).unwrap();
    target
}

/// A runtime over a fresh plugin folder holding the named connectors
/// (installed under their own names), already scanned.
pub async fn runtime_with(connectors: &[&str]) -> (tempfile::TempDir, Runtime) {
    let dir = tempfile::tempdir().unwrap();
    for connector in connectors {
        install(dir.path(), connector, connector);
    }
    let runtime = Runtime::new(runtime_config(dir.path())).unwrap();
    runtime.scan().await.unwrap();
    (dir, runtime)
}

/// A runtime over `plugin_dir` whose state directory (the compiled-code
/// cache and its key) is `plugin_dir/.state`, so each throwaway folder has
/// its own cache; a host keeps it in its state directory, away from the
/// plugins.
pub fn runtime_config(plugin_dir: &Path) -> RuntimeConfig {
    RuntimeConfig::new(plugin_dir, plugin_dir.join(".state"))
}

/// A port on 127.0.0.1 that was free a moment ago, for a server the test
/// starts as another process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Serves `router` on an ephemeral 127.0.0.1 port until the test ends.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Shows the runtime's logs when a test runs with `RUST_LOG` set.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The connection's active pupil and staff accounts, by id, with their
/// role: those a provisioning target serving its roles should hold.
pub async fn active_accounts(
    store: &rostersync_store::Store,
    connection: &str,
) -> std::collections::BTreeMap<String, String> {
    let links = store.links(connection).await.unwrap();
    let linked: std::collections::BTreeSet<&String> = links.values().collect();
    store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| linked.contains(&a.id) && a.status == rostersync_store::AccountStatus::Active)
        .filter(|a| a.role == "student" || a.role == "staff")
        .map(|a| (a.id, a.role))
        .collect()
}
