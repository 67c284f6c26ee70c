//! What one connector run or target call may do: its limits, its
//! allow-list, its optional drop folder, and the store state that enforces
//! them (WASI context with nothing granted, HTTP hooks, memory guard,
//! captured stderr, the host imports for logs and progress).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rostersync_model::target::TargetInfo;
use rostersync_model::{ConnectorInfo, SettingKind, SettingSpec, Settings};
use tokio::sync::watch;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::allow::{AllowList, AllowedHost, AllowedHostError};
use crate::bindings::{target_v0_1, v0_1, v0_2};
use crate::budget::{MAX_QUOTED_BYTES, clip};
use crate::outbound::{HttpLimits, Interceptor, OutboundHooks};

/// Where a drop-folder connector sees its connection's folder.
pub const DROP_FOLDER_GUEST_PATH: &str = "/drop";

/// Limits on one connector run. Every one is configurable per connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Linear memory an instance may grow to.
    pub memory_bytes: u64,
    /// Time one call into the connector may take: both the time it spends
    /// computing (the epoch ticks it runs through itself, so time the host
    /// gives other runs is not charged to it) and, separately, the time it
    /// spends waiting on the network (a timer that stops while the call
    /// waits for a CPU).
    pub call_timeout: Duration,
    /// Wall-clock time a whole snapshot may take, checked before every call.
    pub snapshot_timeout: Duration,
    /// Outbound requests one run may make.
    pub max_requests: u32,
    /// Size of one HTTP response body.
    pub max_response_bytes: u64,
    /// Upper bound on each HTTP connect, first-byte and between-bytes wait.
    pub http_timeout: Duration,
    /// Records in one batch.
    pub max_batch_records: usize,
    /// Text carried by one record.
    pub max_record_bytes: usize,
    /// Text carried by one whole snapshot, plus a fixed overhead per
    /// record: what bounds the host's memory for a run.
    pub max_snapshot_bytes: u64,
    /// Size of the cursor a snapshot hands back for the next delta.
    pub max_cursor_bytes: usize,
    /// Size of one HTTP request body the connector sends.
    pub max_request_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(120),
            snapshot_timeout: Duration::from_secs(2 * 60 * 60),
            max_requests: 100_000,
            max_response_bytes: 64 << 20,
            http_timeout: Duration::from_secs(30),
            max_batch_records: 20_000,
            max_record_bytes: 256 << 10,
            max_snapshot_bytes: 1 << 30,
            max_cursor_bytes: 64 << 10,
            max_request_bytes: 8 << 20,
        }
    }
}

/// Everything one connection's runs are allowed, decided by the host.
#[derive(Clone)]
pub struct Sandbox {
    pub allow: Arc<AllowList>,
    pub limits: Limits,
    /// Mounted read-only at [`DROP_FOLDER_GUEST_PATH`], and only for a
    /// connector that declares the drop-folder capability.
    pub drop_folder: Option<PathBuf>,
    /// Record-and-replay, for the conformance suite.
    pub interceptor: Option<Arc<dyn Interceptor>>,
}

impl Sandbox {
    /// A sandbox that allows nothing outbound.
    pub fn new(limits: Limits) -> Self {
        Self {
            allow: Arc::new(AllowList::default()),
            limits,
            drop_folder: None,
            interceptor: None,
        }
    }

    /// The sandbox for a connection: the hosts of the connector's base-url
    /// settings (as configured, else their defaults) plus `extra_hosts`.
    pub fn for_connection(
        info: &ConnectorInfo,
        settings: &Settings,
        extra_hosts: &[AllowedHost],
        limits: Limits,
    ) -> Result<Self, AllowedHostError> {
        Self::for_settings(&info.settings, settings, extra_hosts, limits)
    }

    /// The sandbox for a provisioning target, made exactly as a
    /// connection's is: the hosts of its base-url settings plus
    /// `extra_hosts`.
    pub fn for_target(
        info: &TargetInfo,
        settings: &Settings,
        extra_hosts: &[AllowedHost],
        limits: Limits,
    ) -> Result<Self, AllowedHostError> {
        Self::for_settings(&info.settings, settings, extra_hosts, limits)
    }

    fn for_settings(
        specs: &[SettingSpec],
        settings: &Settings,
        extra_hosts: &[AllowedHost],
        limits: Limits,
    ) -> Result<Self, AllowedHostError> {
        let mut allow = AllowList::new(extra_hosts.iter().cloned());
        for spec in specs.iter().filter(|s| s.kind == SettingKind::BaseUrl) {
            let configured = settings.get(&spec.name).or(spec.default_value.as_deref());
            if let Some(url) = configured {
                allow.allow_base_url(url)?;
            }
        }
        Ok(Self {
            allow: Arc::new(allow),
            ..Self::new(limits)
        })
    }

    pub fn with_drop_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.drop_folder = Some(folder.into());
        self
    }

    pub fn with_interceptor(mut self, interceptor: Arc<dyn Interceptor>) -> Self {
        self.interceptor = Some(interceptor);
        self
    }
}

/// Progress a connector reports while a snapshot runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    pub pages_done: u32,
    pub pages_total: Option<u32>,
    pub records_done: u64,
}

/// Caps total linear memory and remembers that the cap was hit, so a trap
/// can be reported as what it is.
pub(crate) struct MemoryGuard {
    limit: usize,
    in_use: usize,
    pub(crate) exceeded: bool,
}

impl MemoryGuard {
    pub(crate) fn limit_bytes(&self) -> u64 {
        self.limit as u64
    }
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.in_use - current.min(self.in_use) + desired;
        if after > self.limit {
            self.exceeded = true;
            // An error traps at once instead of letting the guest see a
            // failed grow and limp on.
            wasmtime::bail!("memory limit of {} bytes reached", self.limit);
        }
        self.in_use = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The most log lines one run may write, and the most bytes of them, so a
/// chatty connector cannot flood the host's logs.
const MAX_LOG_LINES: u32 = 10_000;
const MAX_LOG_BYTES: usize = 4 << 20;
const MAX_LOG_MESSAGE: usize = 4096;
/// Bytes kept of one log field's value, and fields kept per line.
const MAX_LOG_FIELD: usize = 1024;
const MAX_LOG_FIELDS: usize = 32;
const STDERR_CAPTURE: usize = 64 << 10;
/// The in-memory size one header map the connector builds may reach, and
/// how many resources (header maps, bodies, streams, ...) it may hold at
/// once: together they bound what its requests cost the host.
const MAX_FIELDS_BYTES: usize = 32 << 10;
const MAX_RESOURCES: usize = 2048;
/// Refused socket attempts reported per run; the rest are refused quietly.
const MAX_SOCKET_REPORTS: u32 = 10;

/// The store data of one run.
pub(crate) struct RunState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub(crate) hooks: OutboundHooks,
    pub(crate) memory: MemoryGuard,
    pub(crate) stderr: MemoryOutputPipe,
    progress: watch::Sender<Progress>,
    connector: String,
    log_lines: u32,
    log_bytes: usize,
    /// Epoch ticks the current call has run through, and how many it may.
    pub(crate) ticks_used: u64,
    pub(crate) tick_budget: u64,
    /// Whether the run was granted a folder; without one, looking for the
    /// filesystem is an attempt the operator hears of, once per run.
    files_granted: bool,
    files_reported: bool,
}

impl RunState {
    pub(crate) fn new(
        connector: &str,
        sandbox: &Sandbox,
        grant_drop_folder: bool,
    ) -> wasmtime::Result<Self> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let mut wasi = WasiCtxBuilder::new();
        // No env, no args, no stdin, no sockets: the builder grants none of
        // them unless asked; sockets are refused explicitly as well.
        // Sockets may be created but every address is refused, so each
        // attempt is reported to the operator instead of failing unseen.
        let connector_name = connector.to_string();
        let attempts = AtomicU32::new(0);
        wasi.stderr(stderr.clone())
            .allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |addr, use_| {
                if attempts.fetch_add(1, Ordering::Relaxed) < MAX_SOCKET_REPORTS {
                    tracing::warn!(target: "connector", connector = %connector_name, "refused: the connector tried to use a socket ({use_:?} {addr}); connectors reach the network only through wasi:http");
                }
                Box::pin(async { false })
            });
        let mut files_granted = false;
        if let (true, Some(folder)) = (grant_drop_folder, &sandbox.drop_folder) {
            wasi.preopened_dir(folder, DROP_FOLDER_GUEST_PATH, FsPerms::ReadOnly)?;
            files_granted = true;
        }
        let limits = &sandbox.limits;
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Ok(Self {
            wasi: wasi.build(),
            http,
            table,
            hooks: OutboundHooks::new(
                sandbox.allow.clone(),
                HttpLimits {
                    max_requests: limits.max_requests,
                    max_response_bytes: limits.max_response_bytes,
                    max_request_bytes: limits.max_request_bytes,
                    timeout: limits.http_timeout,
                },
                sandbox.interceptor.clone(),
            ),
            memory: MemoryGuard {
                limit: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                in_use: 0,
                exceeded: false,
            },
            stderr,
            progress: watch::Sender::new(Progress::default()),
            connector: connector.to_string(),
            log_lines: 0,
            log_bytes: 0,
            ticks_used: 0,
            tick_budget: u64::MAX,
            files_granted,
            files_reported: false,
        })
    }

    /// The connector asked which folders it may open (the guest's C
    /// library asks on its first path operation): without a folder
    /// granted, it tried to use files it is not given, and the operator is
    /// told once per run. It is given none either way.
    pub(crate) fn looked_for_files(&mut self) {
        if self.files_granted || self.files_reported {
            return;
        }
        self.files_reported = true;
        tracing::warn!(target: "connector", connector = %self.connector, "refused: the connector tried to use the filesystem; connectors are given no files, only a drop folder a connection grants");
    }

    pub(crate) fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// The last lines the guest wrote to stderr (a Rust panic message lands
    /// there), for crash reports.
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.stderr.contents()).into_owned();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
        (!tail.is_empty()).then(|| clip(&tail, MAX_LOG_MESSAGE))
    }

    fn log(&mut self, level: tracing::Level, message: &str, fields: Vec<(String, String)>) {
        // Once over a limit, every later line is dropped unread.
        if self.log_lines == u32::MAX {
            return;
        }
        self.log_lines += 1;
        let message = clip(message, MAX_LOG_MESSAGE);
        let fields = fields
            .iter()
            .take(MAX_LOG_FIELDS)
            .map(|(k, v)| format!("{}={}", clip(k, MAX_QUOTED_BYTES), clip(v, MAX_LOG_FIELD)))
            .collect::<Vec<_>>()
            .join(" ");
        self.log_bytes += message.len() + fields.len();
        if self.log_lines > MAX_LOG_LINES || self.log_bytes > MAX_LOG_BYTES {
            tracing::warn!(connector = %self.connector, "connector logged more than {MAX_LOG_LINES} lines or {MAX_LOG_BYTES} bytes; dropping the rest");
            self.log_lines = u32::MAX;
            return;
        }
        let connector = &self.connector;
        match level {
            tracing::Level::ERROR => {
                tracing::error!(target: "connector", %connector, %fields, "{message}")
            }
            tracing::Level::WARN => {
                tracing::warn!(target: "connector", %connector, %fields, "{message}")
            }
            tracing::Level::INFO => {
                tracing::info!(target: "connector", %connector, %fields, "{message}")
            }
            tracing::Level::DEBUG => {
                tracing::debug!(target: "connector", %connector, %fields, "{message}")
            }
            tracing::Level::TRACE => {
                tracing::trace!(target: "connector", %connector, %fields, "{message}")
            }
        }
    }

    fn report_progress(&mut self, pages_done: u32, pages_total: Option<u32>, records_done: u64) {
        self.progress.send_replace(Progress {
            pages_done,
            pages_total,
            records_done,
        });
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The host imports are the same in every version so far; each version's
/// generated trait forwards here.
macro_rules! host_imports {
    ($module:ident) => {
        impl $module::rostersync::connector::types::Host for RunState {}

        impl $module::rostersync::connector::host::Host for RunState {
            fn log(
                &mut self,
                level: $module::LogLevel,
                message: String,
                fields: Vec<$module::Attribute>,
            ) -> wasmtime::Result<()> {
                let fields = fields.into_iter().map(|a| (a.name, a.value)).collect();
                RunState::log(self, $module::log_level(level), &message, fields);
                Ok(())
            }

            fn progress(
                &mut self,
                pages_done: u32,
                pages_total: Option<u32>,
                records_done: u64,
            ) -> wasmtime::Result<()> {
                self.report_progress(pages_done, pages_total, records_done);
                Ok(())
            }
        }
    };
}

host_imports!(v0_1);
host_imports!(v0_2);

impl target_v0_1::rostersync::target::types::Host for RunState {}

impl target_v0_1::rostersync::target::host::Host for RunState {
    fn log(
        &mut self,
        level: target_v0_1::LogLevel,
        message: String,
        fields: Vec<target_v0_1::Attribute>,
    ) -> wasmtime::Result<()> {
        let fields = fields.into_iter().map(|a| (a.name, a.value)).collect();
        RunState::log(self, target_v0_1::log_level(level), &message, fields);
        Ok(())
    }
}
