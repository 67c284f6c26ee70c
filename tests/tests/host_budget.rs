//! The host's own budget against a hostile connector: one test per way a
//! plugin tried to spend the host's memory, time, logs or trust, each run
//! through the whole pipeline into a real store beside a good connection
//! that must still apply its pupils.
//!
//! The attacks are the probe's (`connectors/probe`): each one of the
//! findings that filed this work, made small enough for a test.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use futures_util::StreamExt;
use rostersync_model::{EntityKind, Settings};
use rostersync_runtime::{Limits, LoadError, Runtime, RuntimeConfig};
use rostersync_store::Store;
use rostersync_sync::{ConnectionConfig, PluginSource, RunReport, RunRequest, RunStatus, run};
use rostersync_tests::{install, serve};

/// Pupils the good connection's roster has.
const GOOD_PUPILS: usize = 30;

/// What the host may add to its resident memory while one memory attack
/// runs beside the good connection, with the limits each test configures:
/// before the host had its own budget, the same attacks took it to 3.5 GiB
/// (header maps), 4.2 GiB (a snapshot of large records) or killed it (an
/// endless upload, a 6 GiB plugin file).
const HOST_MEMORY_BUDGET: u64 = 384 << 20;

/// A line of `/proc/self/status`, in bytes.
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("/proc/self/status has no {field}"));
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().unwrap();
    kib << 10
}

/// Runs `attack` alone among the memory attacks and asserts the host's
/// peak resident memory grew by no more than [`HOST_MEMORY_BUDGET`] over
/// what it held before. The peak is reset first where Linux allows it
/// (`clear_refs` 5), else measured from the peak so far.
async fn within_the_host_memory_budget<T>(attack: impl std::future::Future<Output = T>) -> T {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _alone = ONE_AT_A_TIME.lock().await;
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = if reset {
        proc_status_bytes("VmRSS:")
    } else {
        proc_status_bytes("VmHWM:")
    };
    let outcome = attack.await;
    let peak = proc_status_bytes("VmHWM:");
    let grew = peak.saturating_sub(before);
    eprintln!("host peak grew by {} MiB", grew >> 20);
    assert!(
        grew <= HOST_MEMORY_BUDGET,
        "the host's peak memory grew by {} MiB, over its budget of {} MiB",
        grew >> 20,
        HOST_MEMORY_BUDGET >> 20
    );
    outcome
}

/// Everything the connectors logged in this test binary, for the tests
/// that count what reached the host's logs.
fn logged() -> &'static Mutex<Vec<u8>> {
    static LOGGED: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGGED.get_or_init(|| {
        #[derive(Clone)]
        struct Capture;
        impl std::io::Write for Capture {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                logged().lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,connector=info")
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
        Mutex::new(Vec::new())
    })
}

/// The lines logged so far that contain `needle`.
fn log_lines_with(needle: &str) -> Vec<String> {
    let logged = logged().lock().unwrap();
    String::from_utf8_lossy(&logged)
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_string)
        .collect()
}

struct Host {
    runtime: Runtime,
    store: Store,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Host {
    async fn start() -> Host {
        logged();
        let plugins = tempfile::tempdir().unwrap();
        install(plugins.path(), "probe", "probe");
        let runtime = Runtime::new(RuntimeConfig::in_folder(plugins.path())).unwrap();
        runtime.scan().await.unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", store_dir.path().join("store.db").display());
        let store = Store::open(&url).await.unwrap();
        Host {
            runtime,
            store,
            _dirs: (plugins, store_dir),
        }
    }

    async fn sync(&self, connection: &ConnectionConfig, limits: Limits) -> RunReport {
        let plugin = self
            .runtime
            .plugin("probe")
            .expect("the probe is in service");
        let source = PluginSource::new(plugin, connection, limits).unwrap();
        let today = chrono::Utc::now().date_naive();
        run(
            &self.store,
            connection,
            &source,
            RunRequest::new(rostersync_store::RunMode::Full, today),
        )
        .await
        .unwrap()
    }

    /// Runs `hostile` under `limits` while the good connection syncs;
    /// asserts the good one applied its whole roster and returns how the
    /// hostile one ended.
    async fn beside_a_good_one(&self, hostile: &ConnectionConfig, limits: Limits) -> RunReport {
        let good = probe("good", &[("behaviour", "roster"), ("batch-size", "30")]);
        let (hostile, good_run) = tokio::join!(
            self.sync(hostile, limits),
            self.sync(&good, Limits::default())
        );
        assert_ne!(good_run.status, RunStatus::Failed, "{good_run:?}");
        let pupils = self
            .store
            .records_of("good", EntityKind::Person)
            .await
            .unwrap();
        assert_eq!(pupils.len(), GOOD_PUPILS, "the good connection's pupils");
        hostile
    }

    /// [`Host::beside_a_good_one`], asserting the hostile run failed;
    /// returns why.
    async fn stopped(&self, hostile: &ConnectionConfig, limits: Limits) -> String {
        let report = self.beside_a_good_one(hostile, limits).await;
        assert_eq!(report.status, RunStatus::Failed, "{report:?}");
        report.error.expect("a failed run says why")
    }
}

fn probe(id: &str, settings: &[(&str, &str)]) -> ConnectionConfig {
    let settings = settings
        .iter()
        .fold(Settings::new(), |s, (name, value)| s.with(*name, *value));
    ConnectionConfig::new(id, "probe", settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_request_body_is_cut_off_at_its_limit_as_it_streams() {
    let received = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&received);
    let addr = serve(Router::new().route(
        "/upload",
        post(async move |body: axum::body::Body| {
            let mut stream = body.into_data_stream();
            while let Some(Ok(chunk)) = stream.next().await {
                *counted.lock().unwrap() += chunk.len();
            }
        }),
    ))
    .await;
    let host = Host::start().await;
    let base = format!("http://{addr}");
    let hostile = probe(
        "hostile",
        &[
            ("behaviour", "endless-post"),
            ("base-url", &base),
            ("url", &format!("{base}/upload")),
        ],
    );
    let limits = Limits {
        max_request_bytes: 1 << 20,
        ..Limits::default()
    };
    let error = within_the_host_memory_budget(host.stopped(&hostile, limits)).await;
    assert!(
        error.contains("sent a request body") && error.contains("1048576-byte limit"),
        "{error}"
    );
    assert!(
        *received.lock().unwrap() <= 1 << 20,
        "the server got more than the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_header_maps_stops_at_the_resource_table_s_bound() {
    let host = Host::start().await;
    let hostile = probe("hostile", &[("behaviour", "header-flood")]);
    let error = within_the_host_memory_budget(host.stopped(&hostile, Limits::default())).await;
    assert!(error.contains("crashed"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_its_byte_budget_is_stopped_before_the_host_holds_it() {
    let host = Host::start().await;
    // Two million small records; the budget admits some fifty thousand.
    let hostile = probe(
        "hostile",
        &[
            ("behaviour", "records"),
            ("batches", "400"),
            ("batch-size", "5000"),
        ],
    );
    let limits = Limits {
        max_snapshot_bytes: 16 << 20,
        ..Limits::default()
    };
    let error = within_the_host_memory_budget(host.stopped(&hostile, limits)).await;
    assert!(
        error.contains("over the limit of 16777216 for one snapshot"),
        "{error}"
    );
    assert!(
        host.store
            .records_of("hostile", EntityKind::Person)
            .await
            .unwrap()
            .is_empty(),
        "a stopped read applies nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_large_records_is_stopped_at_its_byte_budget_within_the_host_s() {
    let host = Host::start().await;
    // 2,000 records of 200 KB each, 400 MB in all: the attack that took
    // the host to 4.2 GiB. The budget admits a tenth of it.
    let hostile = probe(
        "hostile",
        &[
            ("behaviour", "large-records"),
            ("batches", "40"),
            ("batch-size", "50"),
        ],
    );
    let limits = Limits {
        max_snapshot_bytes: 40 << 20,
        ..Limits::default()
    };
    let error = within_the_host_memory_budget(host.stopped(&hostile, limits)).await;
    assert!(
        error.contains("over the limit of 41943040 for one snapshot"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_files_are_checked_before_they_are_read() {
    let host = Host::start().await;
    let folder = host.runtime.plugin_dir().to_path_buf();
    // A sparse file the size that killed a serving host, and a link to a
    // file no plugin should reveal.
    std::fs::File::create(folder.join("huge.wasm"))
        .unwrap()
        .set_len(6 << 30)
        .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", folder.join("passwd.wasm")).unwrap();
    within_the_host_memory_budget(host.runtime.scan())
        .await
        .unwrap();
    let statuses = host.runtime.statuses();
    let error = |name: &str| {
        statuses
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.error.clone())
            .unwrap_or_else(|| panic!("{name} was not refused"))
    };
    assert!(
        matches!(error("huge"), LoadError::TooLarge { bytes, .. } if bytes == 6 << 30),
        "{}",
        error("huge")
    );
    let link = error("passwd");
    assert!(matches!(link, LoadError::NotARegularFile { .. }), "{link}");
    assert!(!link.to_string().contains("root"), "{link}");
    // The good plugin stays in service and syncs.
    let quiet = probe("quiet", &[("behaviour", "records")]);
    let report = host.beside_a_good_one(&quiet, Limits::default()).await;
    assert_ne!(report.status, RunStatus::Failed, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compilation_is_given_up_at_its_time_limit() {
    let plugins = tempfile::tempdir().unwrap();
    let path = install(plugins.path(), "probe", "probe");
    let runtime = Runtime::new(RuntimeConfig {
        compile_timeout: Duration::from_nanos(1),
        ..RuntimeConfig::in_folder(plugins.path())
    })
    .unwrap();
    let error = runtime.load_file(&path).await.unwrap_err();
    assert!(matches!(error, LoadError::CompileTimeout { .. }), "{error}");
    // A host with a realistic limit loads the same file and runs it.
    let host = Host::start().await;
    let quiet = probe("quiet", &[("behaviour", "records")]);
    let report = host.beside_a_good_one(&quiet, Limits::default()).await;
    assert_ne!(report.status, RunStatus::Failed, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_deadline_stops_a_connector_whose_calls_return_at_once() {
    let host = Host::start().await;
    let hostile = probe("hostile", &[("behaviour", "endless-empty")]);
    let limits = Limits {
        snapshot_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let error = host.stopped(&hostile, limits).await;
    assert!(
        error.contains("its snapshot ran longer than its time limit of 1 s"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_fields_are_clipped_with_the_cut_marked() {
    let host = Host::start().await;
    // Two hundred lines, each with a field of a megabyte.
    let hostile = probe("hostile", &[("behaviour", "log-flood")]);
    let report = host.beside_a_good_one(&hostile, Limits::default()).await;
    assert_ne!(report.status, RunStatus::Failed, "{report:?}");
    let lines = log_lines_with("flooding");
    assert_eq!(lines.len(), 200);
    assert!(
        lines
            .iter()
            .all(|line| line.len() < 2048 && line.contains("[cut: 1024 of 1048576 bytes shown]"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_cursor_is_refused_and_not_stored() {
    let host = Host::start().await;
    let hostile = probe("hostile", &[("behaviour", "huge-cursor")]);
    let error = host.stopped(&hostile, Limits::default()).await;
    assert!(
        error.contains("returned a cursor of 33554432 bytes, over the limit of 65536"),
        "{error}"
    );
    assert_eq!(host.store.last_cursor("hostile").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_id_or_error_text_reaches_no_message_whole() {
    let host = Host::start().await;
    for (behaviour, says) in [
        ("huge-id", "is 8388608 bytes long, over the limit of 1024"),
        ("huge-error", "[cut: 2048 of 67108864 bytes shown]"),
    ] {
        let hostile = probe(behaviour, &[("behaviour", behaviour)]);
        let report = host.sync(&hostile, Limits::default()).await;
        let error = report.error.clone().unwrap_or_default();
        assert!(
            error.contains(says) && error.len() < 4096,
            "{behaviour}: {}",
            &error[..error.len().min(300)]
        );
        let history = host.store.run_history(behaviour, 1).await.unwrap();
        let message = history[0].message.clone().unwrap_or_default();
        assert!(
            message.len() < 4096,
            "{behaviour}: a run message of {} bytes",
            message.len()
        );
    }
    let events = host.store.pending_events(100).await.unwrap();
    assert!(
        events.iter().all(|e| e.event.payload.len() < 8192),
        "an outbox payload carried the whole text"
    );
    let quiet = probe("quiet", &[("behaviour", "records")]);
    host.beside_a_good_one(&quiet, Limits::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_that_only_looks_valid_is_refused_naming_the_record() {
    let host = Host::start().await;
    for (behaviour, says) in [
        (
            "duplicate",
            "person \"P1\": field `id` appears twice in one snapshot",
        ),
        ("look-alike-id", "contains U+202E"),
        ("escape-name", "field `last-name` contains U+001B"),
        (
            "far-year",
            "\"+12345-01-01\", not a date in the form YYYY-MM-DD",
        ),
    ] {
        let hostile = probe(behaviour, &[("behaviour", behaviour)]);
        let report = host.sync(&hostile, Limits::default()).await;
        assert_eq!(report.status, RunStatus::Failed, "{behaviour}: {report:?}");
        let error = report.error.unwrap_or_default();
        assert!(error.contains(says), "{behaviour}: {error}");
    }
    let quiet = probe("quiet", &[("behaviour", "records")]);
    host.beside_a_good_one(&quiet, Limits::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_does_not_resolve_refuses_the_request() {
    let host = Host::start().await;
    // RFC 2606 keeps .invalid from ever resolving.
    let hostile = probe(
        "hostile",
        &[
            ("behaviour", "fetch"),
            ("base-url", "http://rostersync-test.invalid"),
            ("url", "http://rostersync-test.invalid/pupils"),
        ],
    );
    let error = host.stopped(&hostile, Limits::default()).await;
    assert!(
        error.contains("could not be resolved") && error.contains("rostersync-test.invalid"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_socket_attempt_appears_in_the_log() {
    let host = Host::start().await;
    let hostile = probe(
        "hostile",
        &[("behaviour", "tcp"), ("path", "192.0.2.7:5432")],
    );
    let report = host.beside_a_good_one(&hostile, Limits::default()).await;
    assert_ne!(report.status, RunStatus::Failed, "{report:?}");
    // Connecting starts with an implicit bind, which is the first thing
    // refused, and reported.
    let refused = log_lines_with("tried to use a socket");
    assert!(
        refused
            .iter()
            .any(|line| line.contains("refused") && line.contains("connector=probe")),
        "{refused:?}"
    );
}

/// `wasm` with a custom section appended: the same connector, another
/// build (another sha256), as a rebuilt or tampered file would be.
fn rebuilt(wasm: &[u8]) -> Vec<u8> {
    let (name, payload) = (b"note".as_slice(), b"rebuilt elsewhere".as_slice());
    let mut bytes = wasm.to_vec();
    bytes.push(0); // a custom section
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_plugin_gets_the_connection_s_secrets_only_once_an_operator_accepts_it() {
    let host = Host::start().await;
    let good = probe("good", &[("behaviour", "roster"), ("batch-size", "30")]);
    let first = host.sync(&good, Limits::default()).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let trusted = host.store.accepted_plugin("probe").await.unwrap().unwrap();
    assert_eq!(trusted.accepted_by, "first use");

    // The file is replaced under the same name: new code.
    let path = host.runtime.plugin("probe").unwrap().path.clone();
    std::fs::write(&path, rebuilt(&std::fs::read(&path).unwrap())).unwrap();
    host.runtime.scan().await.unwrap();
    let replaced = host.runtime.plugin("probe").unwrap().sha256.clone();
    assert_ne!(replaced, trusted.sha256);
    let refused = host.sync(&good, Limits::default()).await;
    assert_eq!(refused.status, RunStatus::Failed, "{refused:?}");
    let said = refused.error.unwrap();
    assert!(
        said.contains("was replaced since it was accepted")
            && said.contains("rostersync plugins accept probe"),
        "{said}"
    );
    assert_eq!(refused.records_read, 0, "the replaced plugin never ran");
    let views = rostersync_sync::plugin_views(&host.store, &host.runtime)
        .await
        .unwrap();
    assert!(
        views
            .iter()
            .any(|v| v.summary.name == "probe" && v.awaiting_acceptance)
    );

    // Accepting names the file reviewed; a stale review is refused.
    let stale = rostersync_sync::accept_in_service(
        &host.store,
        &host.runtime,
        "probe",
        Some(&trusted.sha256),
        "ops",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(stale, rostersync_sync::AcceptError::NotReviewed { .. }),
        "{stale}"
    );
    let (_, accepted) = rostersync_sync::accept_in_service(
        &host.store,
        &host.runtime,
        "probe",
        Some(&replaced),
        "ops",
    )
    .await
    .unwrap();
    assert!(
        matches!(&accepted, rostersync_sync::Accepted::Now { replaced: Some(before) } if before.sha256 == trusted.sha256),
        "{accepted:?}"
    );
    let audit = host.store.audit_log().await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "plugin.accept"
            && a.actor == "ops"
            && a.detail.contains("replacing")),
        "{audit:?}"
    );
    let after = host.sync(&good, Limits::default()).await;
    assert_ne!(after.status, RunStatus::Failed, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_filesystem_attempt_appears_in_the_log() {
    let host = Host::start().await;
    let hostile = probe(
        "hostile",
        &[("behaviour", "read-file"), ("path", "/etc/passwd")],
    );
    let report = host.beside_a_good_one(&hostile, Limits::default()).await;
    assert_ne!(report.status, RunStatus::Failed, "{report:?}");
    let refused = log_lines_with("tried to use the filesystem");
    assert!(
        refused
            .iter()
            .any(|line| line.contains("refused") && line.contains("connector=probe")),
        "{refused:?}"
    );
    assert_eq!(refused.len(), 1, "once per run: {refused:?}");
}
