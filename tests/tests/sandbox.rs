//! One test per sandbox rule, each run against the real probe component:
//! the rule is broken on purpose, and the test fails if the host lets it
//! pass, or if the host stops serving other runs afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use rostersync_model::{Mode, Record, Settings, SyncError};
use rostersync_runtime::{AllowedHost, Limits, Plugin, Progress, RunError, Sandbox, Violation};
use rostersync_tests::{runtime_with, serve};

async fn probe() -> (tempfile::TempDir, Arc<Plugin>) {
    rostersync_tests::init_logs();
    let (dir, runtime) = runtime_with(&["probe"]).await;
    let plugin = runtime.plugin("probe").expect("the probe loads");
    (dir, plugin)
}

fn behaving(behaviour: &str) -> Settings {
    Settings::new().with("behaviour", behaviour)
}

/// Reads a whole full snapshot.
async fn read_all(
    plugin: &Arc<Plugin>,
    sandbox: &Sandbox,
    settings: &Settings,
) -> Result<Vec<Record>, RunError> {
    let mut snapshot = plugin.snapshot(sandbox, settings, Mode::Full).await?;
    let mut records = Vec::new();
    while let Some(batch) = snapshot.next_batch().await? {
        records.extend(batch);
    }
    Ok(records)
}

fn sandbox_for(plugin: &Plugin, settings: &Settings, limits: Limits) -> Sandbox {
    Sandbox::for_connection(&plugin.info, settings, &[], limits).unwrap()
}

/// The error a full read under these settings and limits ends with.
async fn failure(plugin: &Arc<Plugin>, settings: &Settings, limits: Limits) -> RunError {
    read_all(plugin, &sandbox_for(plugin, settings, limits), settings)
        .await
        .expect_err("the run should have been stopped")
}

/// The records of a full read under these settings and default limits.
async fn success(plugin: &Arc<Plugin>, settings: &Settings) -> Vec<Record> {
    read_all(
        plugin,
        &sandbox_for(plugin, settings, Limits::default()),
        settings,
    )
    .await
    .expect("the run should succeed")
}

/// The probe fetching `http://{addr}/data`, with `addr` as its base URL.
fn fetching(addr: std::net::SocketAddr) -> Settings {
    behaving("fetch")
        .with("base-url", format!("http://{addr}"))
        .with("url", format!("http://{addr}/data"))
}

/// The attributes of the probe's observation record.
fn observed(records: &[Record], name: &str) -> String {
    let Some(Record::Person(person)) = records.first() else {
        panic!("expected an observation, got {records:?}");
    };
    person
        .attributes
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no {name} in {person:?}"))
        .value
        .clone()
}

/// After any failure, the same plugin still serves a well-behaved run.
async fn still_serving(plugin: &Arc<Plugin>) {
    let settings = behaving("records").with("batch-size", "5");
    let records = read_all(
        plugin,
        &sandbox_for(plugin, &settings, Limits::default()),
        &settings,
    )
    .await
    .expect("a well-behaved run after a failure");
    assert_eq!(records.len(), 5);
}

/// A server that counts the requests it gets and answers with `body`.
async fn counting_server(body: &'static [u8]) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = Router::new().route(
        "/data",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { body }
        }),
    );
    (serve(router).await, hits)
}

#[tokio::test]
async fn a_crash_is_reported_with_the_connector_and_its_panic() {
    let (_dir, plugin) = probe().await;
    let settings = behaving("trap");
    let error = failure(&plugin, &settings, Limits::default()).await;
    let RunError::Trap { connector, message } = &error else {
        panic!("expected a trap, got {error}");
    };
    assert_eq!(connector, "probe");
    assert!(
        message.contains("the probe was asked to crash"),
        "{message}"
    );
    still_serving(&plugin).await;
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_call_time_limit() {
    let (_dir, plugin) = probe().await;
    let settings = behaving("spin");
    let limits = Limits {
        call_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let error = failure(&plugin, &settings, limits).await;
    assert!(
        matches!(&error, RunError::Timeout { limit, .. } if *limit == Duration::from_millis(500)),
        "{error}"
    );
    assert!(error.to_string().contains("time limit of 0.5 s"), "{error}");
    still_serving(&plugin).await;
}

#[tokio::test]
async fn waiting_forever_is_stopped_by_the_call_time_limit() {
    let (_dir, plugin) = probe().await;
    let settings = behaving("sleep");
    let limits = Limits {
        call_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let error = failure(&plugin, &settings, limits).await;
    assert!(matches!(error, RunError::Timeout { .. }), "{error}");
}

#[tokio::test]
async fn unbounded_allocation_is_stopped_at_the_memory_limit() {
    let (_dir, plugin) = probe().await;
    let settings = behaving("hog");
    let limits = Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let error = failure(&plugin, &settings, limits).await;
    assert!(
        matches!(error, RunError::MemoryLimit { limit_bytes, .. } if limit_bytes == 32 << 20),
        "{error}"
    );
    assert!(
        error.to_string().contains("memory limit of 32 MiB"),
        "{error}"
    );
    still_serving(&plugin).await;
}

#[tokio::test]
async fn an_allowed_host_is_reached() {
    let (_dir, plugin) = probe().await;
    let (addr, hits) = counting_server(b"twelve bytes").await;
    let settings = fetching(addr);
    let records = success(&plugin, &settings).await;
    assert_eq!(observed(&records, "bytes"), "12");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_host_not_allowed_is_refused_and_never_contacted() {
    let (_dir, plugin) = probe().await;
    let (addr, hits) = counting_server(b"secret").await;
    let settings = behaving("fetch")
        .with("base-url", "http://127.0.0.1:9")
        .with("url", format!("http://{addr}/data"));
    let error = failure(&plugin, &settings, Limits::default()).await;
    let RunError::Outbound {
        violation: Violation::HostNotAllowed { entry, .. },
        ..
    } = &error
    else {
        panic!("expected a refused host, got {error}");
    };
    assert_eq!(entry, &format!("http://{addr}"));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    still_serving(&plugin).await;
}

#[tokio::test]
async fn localhost_is_not_the_same_host_as_127_0_0_1() {
    let (_dir, plugin) = probe().await;
    let (addr, hits) = counting_server(b"x").await;
    let settings = behaving("fetch")
        .with("base-url", format!("http://{addr}"))
        .with("url", format!("http://localhost:{}/data", addr.port()));
    let error = failure(&plugin, &settings, Limits::default()).await;
    assert!(
        matches!(
            error,
            RunError::Outbound {
                violation: Violation::HostNotAllowed { .. },
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_extra_allowed_host_from_the_operator_is_reached() {
    let (_dir, plugin) = probe().await;
    let (addr, hits) = counting_server(b"ok").await;
    let settings = behaving("fetch").with("url", format!("http://localhost:{}/data", addr.port()));
    let extra: AllowedHost = format!("http://localhost:{}", addr.port()).parse().unwrap();
    let sandbox =
        Sandbox::for_connection(&plugin.info, &settings, &[extra], Limits::default()).unwrap();
    read_all(&plugin, &sandbox, &settings).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_refused() {
    let (_dir, plugin) = probe().await;
    static BIG: [u8; 300_000] = [b'x'; 300_000];
    let (addr, _) = counting_server(&BIG).await;
    let settings = fetching(addr);
    let limits = Limits {
        max_response_bytes: 100_000,
        ..Limits::default()
    };
    let error = failure(&plugin, &settings, limits).await;
    assert!(
        matches!(
            error,
            RunError::Outbound {
                violation: Violation::ResponseTooLarge { limit: 100_000, .. },
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_streamed_response_over_the_size_limit_is_cut_off() {
    let (_dir, plugin) = probe().await;
    // No Content-Length: the limit must hold while the body streams.
    let router = Router::new().route(
        "/data",
        get(|| async {
            let chunks = (0..50).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 10_000]));
            axum::body::Body::from_stream(futures_util::stream::iter(chunks))
        }),
    );
    let addr = serve(router).await;
    let settings = fetching(addr);
    let limits = Limits {
        max_response_bytes: 100_000,
        ..Limits::default()
    };
    let error = failure(&plugin, &settings, limits).await;
    assert!(
        matches!(
            error,
            RunError::Outbound {
                violation: Violation::ResponseTooLarge { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn requests_beyond_the_budget_are_refused() {
    let (_dir, plugin) = probe().await;
    let (addr, hits) = counting_server(b"ok").await;
    let settings = fetching(addr).with("requests", "5");
    let limits = Limits {
        max_requests: 3,
        ..Limits::default()
    };
    let error = failure(&plugin, &settings, limits).await;
    assert!(
        matches!(
            error,
            RunError::Outbound {
                violation: Violation::TooManyRequests { limit: 3 },
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

/// Every request's resources are freed when it is done: more requests in
/// one call than the resource table holds at once still succeed.
#[tokio::test]
async fn more_requests_in_one_call_than_the_resource_table_holds() {
    let (_dir, plugin) = probe().await;
    let (addr, hits) = counting_server(b"ok").await;
    let settings = fetching(addr).with("requests", "2500");
    let records = success(&plugin, &settings).await;
    assert_eq!(observed(&records, "requests"), "2500");
    assert_eq!(observed(&records, "bytes"), "2");
    assert_eq!(hits.load(Ordering::SeqCst), 2500);
}

#[tokio::test]
async fn a_batch_over_the_record_limit_is_refused() {
    let (_dir, plugin) = probe().await;
    let settings = behaving("giant-batch").with("batch-size", "50");
    let limits = Limits {
        max_batch_records: 10,
        ..Limits::default()
    };
    let error = failure(&plugin, &settings, limits).await;
    assert!(
        matches!(
            error,
            RunError::BatchTooLarge {
                records: 50,
                limit: 10,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_record_over_the_size_limit_is_refused() {
    let (_dir, plugin) = probe().await;
    let settings = behaving("huge-record");
    let error = failure(&plugin, &settings, Limits::default()).await;
    let RunError::RecordTooLarge { record, bytes, .. } = &error else {
        panic!("expected an oversized record, got {error}");
    };
    assert_eq!(record, "person \"huge\"");
    assert!(*bytes > 4_000_000);
}

#[tokio::test]
async fn malformed_records_are_refused_naming_record_and_field() {
    let (_dir, plugin) = probe().await;
    for (behaviour, field, text) in [
        (
            "malformed-date",
            "date-of-birth",
            "person \"P1\": field `date-of-birth` is \"31/02/2012\", not a date in the form YYYY-MM-DD",
        ),
        ("empty-id", "id", "person \"\": field `id` is empty"),
        ("removal-in-full", "removed", "only allowed in delta mode"),
    ] {
        let settings = behaving(behaviour);
        let error = failure(&plugin, &settings, Limits::default()).await;
        let RunError::Malformed {
            error: malformed, ..
        } = &error
        else {
            panic!("{behaviour}: expected a malformed record, got {error}");
        };
        assert_eq!(malformed.field, field, "{behaviour}");
        assert!(error.to_string().contains(text), "{behaviour}: {error}");
    }
}

#[tokio::test]
async fn the_connector_sees_no_environment_and_no_arguments() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("ROSTERSYNC_SHOULD_NOT_LEAK", "1") };
    let (_dir, plugin) = probe().await;
    let settings = behaving("environment");
    let records = success(&plugin, &settings).await;
    assert_eq!(observed(&records, "env"), "0");
    assert_eq!(observed(&records, "args"), "0");
}

#[tokio::test]
async fn the_connector_sees_no_filesystem() {
    let (_dir, plugin) = probe().await;
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "host secret").unwrap();
    let settings = behaving("read-file").with("path", secret.path().display().to_string());
    let records = success(&plugin, &settings).await;
    assert!(observed(&records, "read").starts_with("Err"), "{records:?}");
    assert!(observed(&records, "write").starts_with("Err"));
    assert!(!std::path::Path::new(&format!("{}.written", secret.path().display())).exists());
}

#[tokio::test]
async fn the_drop_folder_is_readable_and_nothing_else_is_writable() {
    let (_dir, plugin) = probe().await;
    let drop = tempfile::tempdir().unwrap();
    std::fs::write(drop.path().join("users.csv"), "sourcedId\nS1\n").unwrap();
    let settings = behaving("read-file").with("path", "/drop/users.csv");
    let sandbox = sandbox_for(&plugin, &settings, Limits::default()).with_drop_folder(drop.path());
    let records = read_all(&plugin, &sandbox, &settings).await.unwrap();
    assert_eq!(observed(&records, "read"), "Ok(\"sourcedId\\nS1\\n\")");
    assert!(observed(&records, "write").starts_with("Err"));
    assert!(!drop.path().join("users.csv.written").exists());
}

#[tokio::test]
async fn the_connector_cannot_open_sockets() {
    let (_dir, plugin) = probe().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let settings = behaving("tcp").with("path", listener.local_addr().unwrap().to_string());
    let records = success(&plugin, &settings).await;
    assert!(observed(&records, "tcp").starts_with("Err"), "{records:?}");
    assert!(listener.accept().is_err(), "the connector reached a socket");
}

#[tokio::test]
async fn a_failing_run_does_not_disturb_one_running_beside_it() {
    let (_dir, plugin) = probe().await;
    let bad = behaving("hog");
    let good = behaving("records")
        .with("batches", "20")
        .with("batch-size", "100");
    let limits = Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let (bad_sandbox, good_sandbox) = (
        sandbox_for(&plugin, &bad, limits.clone()),
        sandbox_for(&plugin, &good, limits),
    );
    let (bad_run, good_run) = tokio::join!(
        read_all(&plugin, &bad_sandbox, &bad),
        read_all(&plugin, &good_sandbox, &good),
    );
    assert!(matches!(bad_run, Err(RunError::MemoryLimit { .. })));
    assert_eq!(good_run.unwrap().len(), 2000);
}

#[tokio::test]
async fn progress_the_connector_reports_reaches_the_host() {
    let (_dir, plugin) = probe().await;
    let settings = behaving("records")
        .with("batches", "4")
        .with("batch-size", "25");
    let sandbox = sandbox_for(&plugin, &settings, Limits::default());
    let mut snapshot = plugin
        .snapshot(&sandbox, &settings, Mode::Full)
        .await
        .unwrap();
    let progress = snapshot.progress();
    snapshot.next_batch().await.unwrap().unwrap();
    assert_eq!(
        *progress.borrow(),
        Progress {
            pages_done: 1,
            pages_total: Some(4),
            records_done: 25
        }
    );
    while snapshot.next_batch().await.unwrap().is_some() {}
    assert_eq!(progress.borrow().pages_done, 4);
    assert_eq!(snapshot.records_read(), 100, "the host's own count agrees");
}

/// A server that answers `/data` with the given statuses in turn, the last
/// one for ever after, and counts the requests.
async fn scripted_server(
    statuses: &'static [(u16, Option<&'static str>)],
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = Router::new().route(
        "/data",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (status, retry_after) = statuses[n.min(statuses.len() - 1)];
            async move {
                let mut response = axum::response::Response::new(axum::body::Body::from("body"));
                *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", seconds.parse().unwrap());
                }
                response
            }
        }),
    );
    (serve(router).await, hits)
}

#[tokio::test]
async fn the_sdk_retries_transient_failures_and_then_succeeds() {
    let (_dir, plugin) = probe().await;
    static FLAKY: [(u16, Option<&str>); 3] = [(503, None), (429, Some("0")), (200, None)];
    let (addr, hits) = scripted_server(&FLAKY).await;
    let records = success(&plugin, &fetching(addr).with("retry", "yes")).await;
    assert_eq!(observed(&records, "bytes"), "4");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_sdk_gives_up_on_rate_limits_with_the_providers_retry_after() {
    let (_dir, plugin) = probe().await;
    static LIMITED: [(u16, Option<&str>); 1] = [(429, Some("0"))];
    let (addr, hits) = scripted_server(&LIMITED).await;
    let error = failure(
        &plugin,
        &fetching(addr).with("retry", "yes"),
        Limits::default(),
    )
    .await;
    assert!(
        matches!(
            error.clone(),
            RunError::Connector {
                error: SyncError::RateLimited {
                    retry_after_seconds: Some(0),
                    ..
                },
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        4,
        "the default policy makes four attempts"
    );
}

#[tokio::test]
async fn the_sdk_does_not_retry_refused_credentials() {
    let (_dir, plugin) = probe().await;
    static REFUSED: [(u16, Option<&str>); 1] = [(401, None)];
    let (addr, hits) = scripted_server(&REFUSED).await;
    let error = failure(
        &plugin,
        &fetching(addr).with("retry", "yes"),
        Limits::default(),
    )
    .await;
    let RunError::Connector {
        error: SyncError::Unauthorized(message),
        ..
    } = &error
    else {
        panic!("expected unauthorized, got {error}");
    };
    assert!(message.ends_with("/data answered HTTP 401"), "{message}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_drop_folder_that_does_not_exist_is_a_settings_error() {
    let (_dir, plugin) = probe().await;
    let settings = behaving("read-file").with("path", "/drop/users.csv");
    let sandbox =
        sandbox_for(&plugin, &settings, Limits::default()).with_drop_folder("/nonexistent/drop");
    let error = read_all(&plugin, &sandbox, &settings).await.unwrap_err();
    let RunError::Connector {
        error: SyncError::BadSettings(message),
        ..
    } = &error
    else {
        panic!("expected bad settings, got {error}");
    };
    assert!(
        message.starts_with("the drop folder cannot be opened"),
        "{message}"
    );
}
