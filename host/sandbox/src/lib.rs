//! The provider sandbox: fake but faithful school-information-system APIs
//! over deterministic synthetic schools, for the demo, connector tests and
//! benchmarks.
//!
//! One HTTP server on one 127.0.0.1 port hosts every provider under its own
//! path prefix; each base URL is what a connector takes as a setting:
//!
//! | provider | base URL | auth |
//! |---|---|---|
//! | Wonde v1.0 | `http://127.0.0.1:P/wonde/v1.0` | token as Basic user or Bearer |
//! | Clever v3.0 | `http://127.0.0.1:P/clever/v3.0` | Bearer (one token per school) |
//! | Arbor REST v2 | `http://127.0.0.1:P/arbor/{school-host}/rest-v2` | HTTP Basic |
//! | Groupcall Xporter | `http://127.0.0.1:P/xporter/api` | `POST oauth/GetToken` (or the STS at `/xporter/idaas/sts/STS/GetToken`), then `Authorization: Idaas {token}` |
//! | Scholarpack | `http://127.0.0.1:P/scholarpack/api/v1` | Bearer |
//! | OneRoster 1.1 CSV | a drop folder ([`SandboxHandle::write_oneroster_drop`]) | none |
//!
//! ```no_run
//! # async fn demo() {
//! use rostersync_sandbox::{Sandbox, SandboxConfig, Provider, Mutation};
//! let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
//! let wonde = sandbox.base_url(Provider::Wonde, 0);
//! let token = sandbox.credentials(0).wonde_token;
//! sandbox.mutate(0, Mutation::AddPupil).unwrap();
//! sandbox.shutdown().await;
//! # }
//! ```

pub mod expected;
pub mod faults;
pub mod generator;
pub mod mutation;
pub mod oneroster;
mod providers;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rostersync_model::Settings;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use faults::{Fault, FaultKind};
pub use generator::{Size, World};
pub use mutation::{Mutation, MutationError, MutationOutcome};
pub use oneroster::{DropKind, DropSpec, Version as OneRosterVersion};

/// The providers the sandbox fakes over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Wonde,
    Clever,
    Arbor,
    Xporter,
    Scholarpack,
}

impl Provider {
    pub const ALL: [Provider; 5] = [
        Self::Wonde,
        Self::Clever,
        Self::Arbor,
        Self::Xporter,
        Self::Scholarpack,
    ];
    fn prefix(self) -> &'static str {
        match self {
            Self::Wonde => "wonde",
            Self::Clever => "clever",
            Self::Arbor => "arbor",
            Self::Xporter => "xporter",
            Self::Scholarpack => "scholarpack",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    pub seed: u64,
    pub size: Size,
    /// Address to bind; port 0 picks a free one.
    pub bind: SocketAddr,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            size: Size {
                schools: 2,
                pupils_per_school: 120,
            },
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// Per-school credentials for every provider, derived from the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    /// Wonde school id (`A…`), the path segment after `/schools/`.
    pub wonde_school_id: String,
    pub wonde_token: String,
    pub clever_token: String,
    /// Arbor's per-school host name, the path segment after `/arbor/`.
    pub arbor_host: String,
    pub arbor_user: String,
    pub arbor_password: String,
    pub xporter_estab: String,
    pub xporter_relying_party: String,
    pub xporter_secret: String,
    pub scholarpack_token: String,
}

fn secret(seed: u64, what: &str, school: usize) -> String {
    let digest = Sha256::digest(format!("{seed}/{what}/{school}").as_bytes());
    hex::encode(&digest[..20])
}

pub(crate) fn credentials_for(world: &World, school: usize) -> Credentials {
    let seed = world.seed;
    Credentials {
        wonde_school_id: providers::wonde::school_id(&world.schools[school]),
        wonde_token: secret(seed, "wonde", school),
        clever_token: secret(seed, "clever", school),
        arbor_host: format!("school{}.uk.arbor.sc", school + 1),
        arbor_user: format!("rostersync-{}", school + 1),
        arbor_password: secret(seed, "arbor", school),
        xporter_estab: world.schools[school].estab.clone(),
        xporter_relying_party: "rostersync.example.dev".into(),
        xporter_secret: secret(seed, "xporter", school),
        scholarpack_token: secret(seed, "scholarpack", school),
    }
}

/// Everything the server and the handle share.
pub(crate) struct Shared {
    pub world: World,
    pub faults: Vec<Fault>,
    pub revoked: BTreeSet<(Provider, usize)>,
    /// Xporter tokens handed out: token → school.
    pub xporter_tokens: Vec<(String, usize)>,
    pub base: String,
    pub pages: providers::Pages,
}

impl Shared {
    /// Applies one mutation; the pages rendered before it are stale.
    pub fn mutate(
        &mut self,
        school: usize,
        mutation: &Mutation,
    ) -> Result<MutationOutcome, MutationError> {
        self.pages.invalidate();
        self.world.mutate(school, mutation)
    }

    /// Which school a credential belongs to, unless revoked.
    pub fn school_for(
        &self,
        provider: Provider,
        check: impl Fn(&Credentials) -> bool,
    ) -> Option<usize> {
        (0..self.world.schools.len()).find(|&i| {
            check(&credentials_for(&self.world, i)) && !self.revoked.contains(&(provider, i))
        })
    }
}

pub(crate) type SharedState = Arc<Mutex<Shared>>;

pub(crate) fn lock(state: &SharedState) -> MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A parsed request handed to a provider fake.
pub(crate) struct Req {
    pub method: Method,
    /// Path after the provider prefix, starting with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn bearer(&self) -> Option<&str> {
        self.auth_scheme("Bearer")
    }
    pub fn auth_scheme(&self, scheme: &str) -> Option<&str> {
        let value = self.headers.get("authorization")?.to_str().ok()?;
        let (s, rest) = value.split_once(' ')?;
        s.eq_ignore_ascii_case(scheme).then_some(rest.trim())
    }
    /// HTTP Basic user and password.
    pub fn basic(&self) -> Option<(String, String)> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.auth_scheme("Basic")?)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

/// A running sandbox.
pub struct SandboxHandle {
    state: SharedState,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Entry point.
pub struct Sandbox;

impl Sandbox {
    /// Generates the schools and serves every provider on one port.
    pub async fn start(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(Shared {
            world: World::generate(config.seed, config.size),
            faults: Vec::new(),
            revoked: BTreeSet::new(),
            xporter_tokens: Vec::new(),
            base: format!("http://{addr}"),
            pages: providers::Pages::default(),
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        tracing::info!(%addr, "provider sandbox listening");
        Ok(SandboxHandle {
            state,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// One school as a connector sees it: where to point and what to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchoolEndpoints {
    pub index: usize,
    pub name: String,
    pub base_urls: std::collections::BTreeMap<Provider, String>,
    pub credentials: Credentials,
}

/// Serves the sandbox until Ctrl-C; what a `sandbox` CLI command calls.
/// `on_ready` gets every school's endpoints and credentials once the port
/// is bound (the CLI prints them).
pub async fn serve(
    config: SandboxConfig,
    on_ready: impl FnOnce(&[SchoolEndpoints]),
) -> std::io::Result<()> {
    let handle = Sandbox::start(config).await?;
    on_ready(&handle.describe());
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn schools(&self) -> usize {
        lock(&self.state).world.schools.len()
    }
    /// The base URL a connector takes as its setting.
    pub fn base_url(&self, provider: Provider, school: usize) -> String {
        let root = format!("http://{}", self.addr);
        match provider {
            Provider::Wonde => format!("{root}/wonde/v1.0"),
            Provider::Clever => format!("{root}/clever/v3.0"),
            Provider::Arbor => format!(
                "{root}/arbor/{}/rest-v2",
                self.credentials(school).arbor_host
            ),
            Provider::Xporter => format!("{root}/xporter/api"),
            Provider::Scholarpack => format!("{root}/scholarpack/api/v1"),
        }
    }
    /// Xporter's older STS token endpoint, which the recorded client posts
    /// to (Groupcall's documented `…/api/oauth/GetToken` is served too).
    pub fn xporter_sts_url(&self) -> String {
        format!("http://{}/xporter/idaas/sts/STS/GetToken", self.addr)
    }
    /// The settings the workspace's connector `connector` (its plugin
    /// name) needs to read `school` here: base URL and credentials. The
    /// OneRoster connector reads a drop folder and needs none.
    pub fn connector_settings(&self, connector: &str, school: usize) -> Settings {
        let c = self.credentials(school);
        let base = |provider| Settings::new().with("base-url", self.base_url(provider, school));
        match connector {
            "wonde" => base(Provider::Wonde)
                .with("school-id", c.wonde_school_id)
                .with("api-token", c.wonde_token),
            "clever" => base(Provider::Clever).with("api-token", c.clever_token),
            "arbor" => base(Provider::Arbor)
                .with("username", c.arbor_user)
                .with("password", c.arbor_password),
            "xporter" => base(Provider::Xporter)
                .with("token-url", self.xporter_sts_url())
                .with("estab", c.xporter_estab)
                .with("relying-party", c.xporter_relying_party)
                .with("secret", c.xporter_secret),
            "scholarpack" => base(Provider::Scholarpack).with("api-token", c.scholarpack_token),
            _ => Settings::new(),
        }
    }

    /// Admin endpoints (`POST {admin}/faults`, `DELETE {admin}/faults`, `POST {admin}/mutate/{school}`).
    pub fn admin_url(&self) -> String {
        format!("http://{}/_admin", self.addr)
    }
    /// Every school's base URLs and credentials.
    pub fn describe(&self) -> Vec<SchoolEndpoints> {
        (0..self.schools())
            .map(|i| {
                // Take the name first: base_url and credentials lock too.
                let name = lock(&self.state).world.schools[i].name.clone();
                SchoolEndpoints {
                    index: i,
                    name,
                    base_urls: Provider::ALL
                        .into_iter()
                        .map(|p| (p, self.base_url(p, i)))
                        .collect(),
                    credentials: self.credentials(i),
                }
            })
            .collect()
    }
    pub fn credentials(&self, school: usize) -> Credentials {
        credentials_for(&lock(&self.state).world, school)
    }
    /// A copy of the current data.
    pub fn world(&self) -> World {
        lock(&self.state).world.clone()
    }
    pub fn mutate(
        &self,
        school: usize,
        mutation: Mutation,
    ) -> Result<MutationOutcome, MutationError> {
        lock(&self.state).mutate(school, &mutation)
    }
    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.state).faults.push(fault);
    }
    pub fn clear_faults(&self) {
        lock(&self.state).faults.clear();
    }
    /// Makes a school's credentials for a provider fail (401) from now on.
    pub fn revoke_credentials(&self, provider: Provider, school: usize) {
        lock(&self.state).revoked.insert((provider, school));
    }
    pub fn restore_credentials(&self, provider: Provider, school: usize) {
        lock(&self.state).revoked.remove(&(provider, school));
    }
    /// Writes a OneRoster 1.1 CSV zip for a school into `dir` and returns its path.
    /// A delta holds what changed after `since_revision`.
    pub fn write_oneroster_drop(
        &self,
        dir: &Path,
        school: usize,
        kind: DropKind,
    ) -> std::io::Result<std::path::PathBuf> {
        let world = self.world();
        oneroster::write_drop(&world, school, kind, dir)
    }
    /// Writes the OneRoster zip `spec` describes (one school or several,
    /// 1.1 or 1.2) into `dir` and returns its path.
    pub fn write_oneroster(
        &self,
        dir: &Path,
        spec: &DropSpec,
    ) -> std::io::Result<std::path::PathBuf> {
        oneroster::write_spec(&self.world(), spec, dir)
    }
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn router(state: SharedState) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(
    State(state): State<SharedState>,
    method: Method,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/_admin") {
        return admin(&state, &method, rest, &body);
    }
    let Some((provider, rest)) = Provider::ALL.into_iter().find_map(|p| {
        let rest = path.strip_prefix('/')?.strip_prefix(p.prefix())?;
        (rest.is_empty() || rest.starts_with('/')).then(|| (p, rest.to_string()))
    }) else {
        return json_error(StatusCode::NOT_FOUND, "no such provider");
    };
    let req = Req {
        method,
        path: rest,
        query,
        headers,
        body,
    };
    let fault = faults::take(&mut lock(&state).faults, provider, &req.path);
    if let Some(kind) = &fault {
        if let Some(response) = faults::before(kind).await {
            return response;
        }
        if *kind == FaultKind::RevokeCredentials {
            // Revoke whatever school these credentials belong to, then let
            // the request fail the ordinary way.
            let mut shared = lock(&state);
            if let Some(school) = providers::identify(&shared, provider, &req) {
                shared.revoked.insert((provider, school));
            }
        }
    }
    let response = providers::handle(&state, provider, &req).await;
    match &fault {
        Some(kind) => faults::after(kind, response).await,
        None => response,
    }
}

fn admin(state: &SharedState, method: &Method, path: &str, body: &Bytes) -> Response {
    let mut shared = lock(state);
    match (method.as_str(), path) {
        ("POST", "/faults") => match serde_json::from_slice::<Fault>(body) {
            Ok(f) => {
                shared.faults.push(f);
                StatusCode::NO_CONTENT.into_response()
            }
            Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
        },
        ("DELETE", "/faults") => {
            shared.faults.clear();
            shared.revoked.clear();
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", p) if p.starts_with("/mutate/") => {
            let Ok(school) = p["/mutate/".len()..].parse::<usize>() else {
                return json_error(StatusCode::NOT_FOUND, "no such school");
            };
            let m: Mutation = match serde_json::from_slice(body) {
                Ok(m) => m,
                Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            match shared.mutate(school, &m) {
                Ok(o) => axum::Json(o).into_response(),
                Err(e) => json_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
            }
        }
        _ => json_error(StatusCode::NOT_FOUND, "no such admin endpoint"),
    }
}

#[cfg(test)]
mod tests;
