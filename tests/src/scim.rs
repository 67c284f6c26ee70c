//! A real SCIM 2.0 service for the target suites: `scim2-server` from PyPI
//! (the test server of the `scim2` Python packages: RFC 7643 schemas, RFC
//! 7644 filters, PATCH, ETags and uniqueness, in memory), started on a free
//! 127.0.0.1 port per test, and a plain HTTP client that reads what it
//! holds directly, never through the plugin.
//!
//! `.ci/run` installs it (`pip install scim2-server`); where it is not
//! installed the suites say so and skip.
//!
//! [`GatewayFront`] stands where a reverse proxy would, in front of the
//! service, to take it down for maintenance or stop it partway through a
//! batch.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The Python module `scim2-server` runs.
const MODULE: &str = "scim2_server.testserver.cli";

/// A running `scim2-server`, stopped when dropped.
pub struct ScimServer {
    child: Arc<Mutex<Child>>,
    /// `http://127.0.0.1:PORT/v2`: the base URL the plugin is given.
    pub base: String,
    token: Option<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// Whether `scim2-server` is installed; prints why a suite skips if not.
pub fn installed() -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {MODULE}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "SKIPPED: scim2-server is not installed; `python3 -m pip install scim2-server` (as .ci/run does) to run the SCIM suites"
        );
    }
    found
}

impl ScimServer {
    /// Starts a server accepting every request.
    pub async fn start() -> ScimServer {
        Self::launch(None).await
    }

    /// Starts a server that accepts only `token` as a bearer token.
    pub async fn with_token(token: &str) -> ScimServer {
        Self::launch(Some(token.to_string())).await
    }

    async fn launch(token: Option<String>) -> ScimServer {
        let port = crate::free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("scim2-server.log");
        let mut command = Command::new("python3");
        command
            .args(["-m", MODULE, "--hostname", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("requests.log")).unwrap());
        if let Some(token) = &token {
            command.args(["--bearer-token", token]);
        }
        let child = command.spawn().expect("starting scim2-server");
        let server = ScimServer {
            child: Arc::new(Mutex::new(child)),
            base: format!("http://127.0.0.1:{port}/v2"),
            token,
            log,
            _dir: dir,
            http: reqwest::Client::new(),
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&self) {
        let started = Instant::now();
        loop {
            let answered = self
                .request(Method::GET, "/ServiceProviderConfig", None)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return;
            }
            if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
                panic!(
                    "scim2-server exited ({status}) before answering: {}",
                    std::fs::read_to_string(self.log.with_file_name("requests.log"))
                        .unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "scim2-server did not answer on {} within 30 s",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's process id, to read the CPU time it spent.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// How many requests the server has logged answering so far.
    pub fn requests_answered(&self) -> usize {
        std::fs::read_to_string(self.log.with_file_name("requests.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\" ") && l.contains(" HTTP/"))
            .count()
    }

    /// Stops the server (its in-memory store goes with it).
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// What stops this server, for a front that stops it partway.
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let child = self.child.clone();
        move || {
            let mut child = child.lock().unwrap();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn request(&self, method: Method, path: &str, body: Option<&Value>) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        request
    }

    /// Every resource of `endpoint` (`Users` or `Groups`), read page by
    /// page straight from the service.
    pub async fn all(&self, endpoint: &str) -> Vec<Value> {
        let mut resources = Vec::new();
        loop {
            let path = format!("/{endpoint}?startIndex={}&count=50", resources.len() + 1);
            let page: Value = self.json(Method::GET, &path, None).await;
            let got = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap_or(0) as usize;
            let empty = got.is_empty();
            resources.extend(got);
            if empty || resources.len() >= total {
                return resources;
            }
        }
    }

    pub async fn users(&self) -> Vec<Value> {
        self.all("Users").await
    }

    pub async fn groups(&self) -> Vec<Value> {
        self.all("Groups").await
    }

    /// Creates a user by hand, as an administrator would in the service.
    pub async fn create_user(&self, user: Value) -> Value {
        let mut user = user;
        user["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User"]);
        self.json(Method::POST, "/Users", Some(&user)).await
    }

    /// Takes a member out of a group by hand (an RFC 7644 §3.5.2.2 PATCH
    /// remove with a value filter), as an administrator would in the
    /// service.
    pub async fn remove_member(&self, group_id: &str, user_id: &str) {
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": format!("members[value eq \"{user_id}\"]")}],
        });
        let path = format!("/Groups/{group_id}");
        let response = self
            .request(Method::PATCH, &path, Some(&patch))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status.is_success(), "PATCH {path}: HTTP {status}");
    }

    /// Where the service listens, for a front put before it.
    pub fn addr(&self) -> SocketAddr {
        let authority = self
            .base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        authority.parse().unwrap()
    }

    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let response = self
            .request(method.clone(), path, body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status.is_success(),
            "{method} {path}: HTTP {status}: {text}"
        );
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the front does once it has passed on its share of requests.
#[derive(Clone)]
pub enum Trip {
    /// Answers 503 with `Retry-After`, as a service down for maintenance.
    Maintenance { retry_after: u32 },
    /// Stops the service, then answers 502 as a gateway whose upstream is
    /// gone.
    Stop(Arc<dyn Fn() + Send + Sync>),
}

/// A reverse proxy in front of a SCIM service: it passes on the first
/// `pass` requests, then trips. Records the ids of the resources the
/// service created while it passed requests on.
pub struct GatewayFront {
    /// The base URL to give the plugin instead of the service's.
    pub base: String,
    created: Arc<Mutex<Vec<String>>>,
}

impl GatewayFront {
    pub async fn start(upstream: &str, pass: usize, trip: Trip) -> GatewayFront {
        let upstream = upstream.trim_end_matches("/v2").to_string();
        let seen = Arc::new(AtomicUsize::new(0));
        let created: Arc<Mutex<Vec<String>>> = Arc::default();
        let http = reqwest::Client::new();
        let recorded = created.clone();
        let router = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (seen, trip, http, upstream, created) = (
                    seen.clone(),
                    trip.clone(),
                    http.clone(),
                    upstream.clone(),
                    recorded.clone(),
                );
                async move {
                    if seen.fetch_add(1, Ordering::SeqCst) >= pass {
                        return match trip {
                            Trip::Maintenance { retry_after } => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                [("retry-after", retry_after.to_string())],
                                "down for maintenance",
                            )
                                .into_response(),
                            Trip::Stop(stop) => {
                                stop();
                                (StatusCode::BAD_GATEWAY, "the SCIM service is gone")
                                    .into_response()
                            }
                        };
                    }
                    forward(&http, &upstream, method, uri, headers, body, &created).await
                }
            },
        );
        let addr: SocketAddr = crate::serve(router).await;
        GatewayFront {
            base: format!("http://{addr}/v2"),
            created,
        }
    }

    /// The ids of the resources the service created through the front.
    pub fn created(&self) -> Vec<String> {
        self.created.lock().unwrap().clone()
    }
}

async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    created: &Mutex<Vec<String>>,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut request = http.request(method, format!("{upstream}{path}")).body(body);
    for name in ["authorization", "content-type", "if-match", "accept"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    let Ok(answer) = request.send().await else {
        return (StatusCode::BAD_GATEWAY, "the SCIM service did not answer").into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut kept = Vec::new();
    for name in ["content-type", "etag", "location", "retry-after"] {
        if let Some(value) = answer.headers().get(name) {
            kept.push((name, value.to_str().unwrap_or_default().to_string()));
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    if status == StatusCode::CREATED
        && let Ok(resource) = serde_json::from_slice::<Value>(&bytes)
        && let Some(id) = resource["id"].as_str()
    {
        created.lock().unwrap().push(id.to_string());
    }
    let mut response = (status, bytes).into_response();
    for (name, value) in kept {
        response
            .headers_mut()
            .insert(name, value.parse().expect("a header value passes through"));
    }
    response
}
