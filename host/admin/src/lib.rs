//! The admin HTTP server: the JSON API (token scopes, OpenAPI document),
//! `/healthz`, Prometheus `/metrics`, and the dashboard, all over one
//! [`Service`]. The server holds no state of its own beyond dashboard
//! sessions: what it shows comes from the store and the service.

pub mod api;
mod assets;
pub mod auth;
pub mod csrf;
mod headers;
mod metrics;
pub mod openapi;
mod pages;
mod server;
mod session;
mod targets;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use rostersync_service::Service;
use serde::Deserialize;

pub use auth::{Caller, Scope, TokenConfig};
pub use server::serve;
pub use session::SessionLimits;

/// The `[admin]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where the API and dashboard listen; loopback unless told otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// A PEM certificate chain and its private key: with both, the server
    /// speaks HTTPS only.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// A dashboard session unused this long ends.
    #[serde(default = "default_session_idle_minutes")]
    pub session_idle_minutes: u64,
    /// Every dashboard session ends this long after sign-in.
    #[serde(default = "default_session_max_hours")]
    pub session_max_hours: u64,
    /// Connections open at once; past it the oldest idle one is closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client must send a request's headers within this, and a
    /// keep-alive connection idle this long is closed.
    #[serde(default = "default_header_timeout_seconds")]
    pub header_timeout_seconds: u64,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_session_idle_minutes() -> u64 {
    30
}

fn default_session_max_hours() -> u64 {
    12
}

fn default_max_connections() -> usize {
    256
}

fn default_header_timeout_seconds() -> u64 {
    10
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tokens: Vec::new(),
            tls_cert: None,
            tls_key: None,
            session_idle_minutes: default_session_idle_minutes(),
            session_max_hours: default_session_max_hours(),
            max_connections: default_max_connections(),
            header_timeout_seconds: default_header_timeout_seconds(),
        }
    }
}

impl AdminConfig {
    /// Reads every token from its environment variable and checks the
    /// rest of the section (limits, the TLS files); the error is one
    /// sentence naming the field.
    pub fn resolve(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        self.tokens
            .iter_mut()
            .try_for_each(|token| token.resolve(&env))?;
        for (field, value) in [
            ("session_idle_minutes", self.session_idle_minutes),
            ("session_max_hours", self.session_max_hours),
            ("max_connections", self.max_connections as u64),
            ("header_timeout_seconds", self.header_timeout_seconds),
        ] {
            if value == 0 {
                return Err(format!("{field} is 0; it must be at least 1"));
            }
        }
        server::tls_config(self).map(|_| ())
    }

    /// How long dashboard sessions last.
    pub fn session_limits(&self) -> SessionLimits {
        SessionLimits {
            idle: Duration::from_secs(self.session_idle_minutes * 60),
            absolute: Duration::from_secs(self.session_max_hours * 3600),
        }
    }

    /// Whether the server is told to speak TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// A warning for an operator when the dashboard and its tokens would
    /// cross a network in the clear.
    pub fn exposure_warning(&self, listen: SocketAddr) -> Option<String> {
        (!listen.ip().is_loopback() && !self.tls()).then(|| {
            format!(
                "warning: the dashboard listens on {listen}, beyond this machine, without TLS: tokens and pupils' data cross the network in the clear; set [admin] tls_cert and tls_key, or listen on 127.0.0.1 behind a TLS proxy"
            )
        })
    }
}

#[derive(Clone)]
pub struct AppState {
    pub(crate) service: Service,
    pub(crate) gate: Arc<auth::Gate>,
}

/// The whole admin surface over `service`, for the tokens and session
/// limits of `config`.
pub fn router(service: Service, config: &AdminConfig) -> Router {
    let state = AppState {
        service,
        gate: Arc::new(auth::Gate {
            tokens: auth::Tokens::new(&config.tokens),
            sessions: session::Sessions::new(config.session_limits()),
            throttle: auth::Throttle::default(),
            tls: config.tls(),
        }),
    };
    let api = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/v1/connections", get(api::connections))
        .route("/api/v1/connections/{id}", get(api::connection))
        .route(
            "/api/v1/connections/{id}/runs",
            get(api::history).post(api::start_run),
        )
        .route("/api/v1/queue", get(api::queue))
        .route("/api/v1/queue/{id}", get(api::queued))
        .route("/api/v1/runs/{id}/issues", get(api::issues))
        .route("/api/v1/runs/{id}/issues.csv", get(api::issues_csv))
        .route("/api/v1/holds", get(api::holds))
        .route("/api/v1/holds/{id}", get(api::hold))
        .route("/api/v1/holds/{id}/export.csv", get(api::hold_csv))
        .route("/api/v1/holds/{id}/confirm", post(api::confirm_hold))
        .route("/api/v1/holds/{id}/reject", post(api::reject_hold))
        .route("/api/v1/holds/{id}/answer", post(api::answer_hold))
        .route("/api/v1/holds/{id}/reconsider", post(api::reconsider_hold))
        .route("/api/v1/accounts/{id}", get(api::account))
        .route(
            "/api/v1/accounts/{id}/timeline",
            get(targets::account_timeline),
        )
        .route(
            "/api/v1/connections/{id}/people/{source_id}/timeline",
            get(targets::person),
        )
        .route("/api/v1/targets", get(targets::targets))
        .route("/api/v1/targets/{name}", get(targets::target))
        .route(
            "/api/v1/targets/{name}/renames/{account}",
            post(targets::rename),
        )
        .route(
            "/api/v1/targets/{name}/holds/{id}/confirm",
            post(targets::confirm_hold),
        )
        .route("/api/v1/accounts/{id}/delete", post(api::delete_account))
        .route("/api/v1/accounts/{id}/unlink", post(api::unlink_account))
        .route("/api/v1/plugins", get(api::plugins))
        .route(
            "/api/v1/plugins/{name}/accept",
            post(api::accept_plugin_api),
        )
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/notifications", get(api::notifications));
    let dashboard = Router::new()
        .route("/", get(pages::home))
        .route("/fragments/jobs", get(pages::jobs))
        .route("/connections/{id}", get(pages::connection))
        .route("/connections/{id}/refresh", post(pages::refresh))
        .route("/runs/{id}/issues", get(pages::issues))
        .route("/runs/{id}/issues.csv", get(pages::issues_csv))
        .route("/holds", get(pages::holds))
        .route("/holds/{id}", get(pages::hold))
        .route("/holds/{id}/evidence.csv", get(pages::hold_csv))
        .route("/holds/{id}/answer/{answer}", get(pages::answer_page))
        .route("/holds/{id}/answer", post(pages::answer))
        .route("/holds/{id}/reconsider", post(pages::reconsider))
        .route("/targets", get(pages::targets))
        .route("/targets/{name}", get(pages::target))
        .route(
            "/targets/{name}/holds/{id}/confirm",
            post(pages::confirm_target_hold),
        )
        .route("/accounts/{id}", get(pages::account))
        .route("/connections/{id}/people/{source_id}", get(pages::person))
        .route("/plugins", get(pages::plugins))
        .route("/plugins/{name}/accept", post(pages::accept_plugin))
        .route(
            "/targets/{name}/renames/{account}",
            post(pages::answer_rename),
        )
        .route("/notifications", get(pages::notifications))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/logout/everywhere", post(pages::logout_everywhere))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::guard,
        ));
    api.merge(dashboard)
        .merge(assets::routes())
        .layer(axum::middleware::from_fn(headers::secure))
        .with_state(state)
}
