//! A whole host for the end-to-end suites: the provider sandbox, real
//! connector components in a plugin folder, a store, the service
//! (scheduler, queue, workers) and the admin server on 127.0.0.1, with an
//! admin and a read-only token.

use std::net::SocketAddr;
use std::sync::Arc;

use rostersync_admin::{AdminConfig, Scope, TokenConfig};
use rostersync_core::HoldPolicy;
use rostersync_deliver::{Backoff, TargetConfig};
use rostersync_model::ContactType;
use rostersync_notify::{Channel, RetryPolicy};
use rostersync_runtime::Runtime;
use rostersync_sandbox::{SandboxConfig, SandboxHandle, Size};
use rostersync_schedule::ScheduleConfig;
use rostersync_service::{DeliveryOptions, Service, ServiceOptions};
use rostersync_store::Store;
use rostersync_sync::ConnectionConfig;
use tokio::sync::watch;

use crate::runtime_with;

pub const ADMIN_TOKEN: &str = "admin-token-for-the-suites-0001";
pub const READ_TOKEN: &str = "read-only-token-for-the-suites-01";

/// A connection per (id, connector, school).
pub struct HostSpec<'a> {
    pub size: Size,
    pub connections: Vec<(String, &'a str, usize)>,
    pub schedule: ScheduleConfig,
    pub concurrency: usize,
    /// Whether the workers and scheduler start at once; a test of the
    /// queue may want requests to wait.
    pub start: bool,
    /// Where operator notifications go.
    pub notifications: Vec<Channel>,
    /// The admin server's settings (its tokens are the suites' two).
    pub admin: AdminConfig,
    /// Provisioning targets the host delivers after runs; a plugin
    /// target's component is put in the plugin folder beside the
    /// connectors.
    pub targets: Vec<TargetConfig>,
}

impl Default for HostSpec<'_> {
    fn default() -> Self {
        Self {
            size: Size {
                schools: 1,
                pupils_per_school: 60,
            },
            connections: vec![("north".into(), "wonde", 0)],
            schedule: ScheduleConfig::default(),
            concurrency: 2,
            start: true,
            notifications: Vec::new(),
            admin: AdminConfig::default(),
            targets: Vec::new(),
        }
    }
}

pub struct Host {
    pub sandbox: SandboxHandle,
    pub service: Service,
    pub store: Arc<Store>,
    /// Where the admin API and dashboard listen.
    pub addr: SocketAddr,
    pub runtime: Runtime,
    stop: watch::Sender<bool>,
    /// The admin server serves until the host is dropped.
    _stop_admin: watch::Sender<bool>,
    host: Option<tokio::task::JoinHandle<Result<(), rostersync_service::ServiceError>>>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Policies that let the sandbox's first full read apply (its pupils have
/// up to seven contacts of every type) and still hold a mass removal.
pub fn first_read_applies() -> HoldPolicy {
    HoldPolicy {
        max_contacts_per_student: 10,
        max_removal_share: 0.05,
        accepted_contact_types: vec![
            ContactType::Primary,
            ContactType::Secondary,
            ContactType::Emergency,
            ContactType::Other,
        ],
        ..HoldPolicy::default()
    }
}

impl Host {
    pub async fn start(spec: HostSpec<'_>) -> Host {
        crate::init_logs();
        let connectors: Vec<&str> = {
            let mut c: Vec<&str> = spec.connections.iter().map(|(_, c, _)| *c).collect();
            c.extend(spec.targets.iter().filter_map(|t| t.plugin.as_deref()));
            c.sort();
            c.dedup();
            c
        };
        let (plugin_dir, runtime) = runtime_with(&connectors).await;
        let sandbox = rostersync_sandbox::Sandbox::start(SandboxConfig {
            size: spec.size,
            ..SandboxConfig::default()
        })
        .await
        .expect("the provider sandbox starts");
        let store_dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", store_dir.path().join("store.db").display());
        let store = Arc::new(Store::open(&url).await.unwrap());
        let connections = spec
            .connections
            .iter()
            .map(|(id, connector, school)| {
                let mut connection = ConnectionConfig::new(
                    id.clone(),
                    *connector,
                    sandbox.connector_settings(connector, *school),
                );
                connection.holds = first_read_applies();
                connection.schedule = spec.schedule.clone();
                connection
            })
            .collect();
        let service = Service::new(
            Arc::clone(&store),
            runtime.clone(),
            connections,
            ServiceOptions {
                concurrency: spec.concurrency,
                tick: std::time::Duration::from_millis(200),
                notifications: spec.notifications,
                notify_every: std::time::Duration::from_millis(200),
                // Short, so a test of a dead run need not wait a minute.
                run_lease: std::time::Duration::from_secs(2),
                notify_retry: RetryPolicy {
                    base: std::time::Duration::from_millis(100),
                    ..RetryPolicy::default()
                },
                targets: spec.targets,
                delivery: DeliveryOptions {
                    tick: std::time::Duration::from_millis(200),
                    patience: std::time::Duration::from_secs(2),
                    backoff: Backoff {
                        base: std::time::Duration::from_millis(50),
                        max: std::time::Duration::from_millis(400),
                    },
                    ..DeliveryOptions::default()
                },
                ..ServiceOptions::default()
            },
        )
        .unwrap();
        let admin = AdminConfig {
            tokens: vec![
                TokenConfig::new("ops", Scope::Admin, ADMIN_TOKEN),
                TokenConfig::new("viewer", Scope::Read, READ_TOKEN),
            ],
            ..spec.admin
        };
        let router = rostersync_admin::router(service.clone(), &admin);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_admin, admin_stopped) = watch::channel(false);
        tokio::spawn(rostersync_admin::serve(
            listener,
            router,
            admin,
            admin_stopped,
        ));
        let (stop, _) = watch::channel(false);
        let mut host = Host {
            sandbox,
            service,
            store,
            addr,
            runtime,
            stop,
            _stop_admin: stop_admin,
            host: None,
            _dirs: (plugin_dir, store_dir),
        };
        if spec.start {
            host.run();
        }
        host
    }

    /// Starts the scheduler and workers.
    pub fn run(&mut self) {
        let shutdown = self.stop.subscribe();
        self.host = Some(tokio::spawn(self.service.clone().run(shutdown)));
    }

    /// Stops the scheduler and workers, letting running runs finish.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(host) = self.host.take() {
            host.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts a host delivering to `targets` and runs a full sync of its
    /// first connection, which succeeds.
    pub async fn synced(targets: Vec<TargetConfig>) -> Host {
        let host = Host::start(HostSpec {
            targets,
            ..HostSpec::default()
        })
        .await;
        let connection = HostSpec::default().connections[0].0.clone();
        host.service
            .request_run(&connection, rostersync_store::RunMode::Full, "test")
            .await
            .unwrap();
        host.succeeded(&connection).await;
        host
    }

    /// Waits for the connection's run to end and asserts that it
    /// succeeded (the sandbox's schools have issues by design, so with
    /// issues counts).
    pub async fn succeeded(&self, connection: &str) {
        let status = self.settled(connection).await;
        assert!(
            status == "succeeded" || status == "succeeded-with-issues",
            "{connection}'s run ended {status}"
        );
    }

    /// Runs `connection` (school 0) over the API, then again once a third
    /// of its pupils left, so the second run is held; the hold's id.
    pub async fn held_removal(&self, connection: &str) -> i64 {
        let run = || {
            reqwest::Client::new()
                .post(self.url(&format!("/api/v1/connections/{connection}/runs")))
                .bearer_auth(ADMIN_TOKEN)
                .json(&serde_json::json!({ "mode": "delta" }))
                .send()
        };
        assert!(run().await.unwrap().status().is_success());
        self.succeeded(connection).await;
        for _ in 0..20 {
            self.sandbox
                .mutate(0, rostersync_sandbox::Mutation::RemovePupil { pupil: None })
                .unwrap();
        }
        assert!(run().await.unwrap().status().is_success());
        assert_eq!(self.settled(connection).await, "held");
        self.store.open_hold(connection).await.unwrap().unwrap().id
    }

    /// Waits (up to a minute) until the connection has no queued or
    /// running run; returns its newest history row's status.
    pub async fn settled(&self, connection: &str) -> String {
        for _ in 0..600 {
            if self.store.active_run(connection).await.unwrap().is_none()
                && let Some(run) = self.store.run_history(connection, 1).await.unwrap().first()
            {
                return run.status.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("connection {connection} did not finish a run within a minute");
    }
}
