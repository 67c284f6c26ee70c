//! The admin HTTP server: the JSON API (token scopes, OpenAPI document),
//! `/healthz`, Prometheus `/metrics`, and the dashboard, all over one
//! [`Service`]. The server holds no state of its own beyond dashboard
//! sessions: what it shows comes from the store and the service.

pub mod api;
pub mod auth;
mod metrics;
pub mod openapi;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use rostersync_service::Service;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::{Caller, Scope, TokenConfig};

/// The `[admin]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where the API and dashboard listen; loopback unless told otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tokens: Vec::new(),
        }
    }
}

impl AdminConfig {
    /// Reads every token from its environment variable.
    pub fn resolve_tokens(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        self.tokens
            .iter_mut()
            .try_for_each(|token| token.resolve(&env))
    }
}

#[derive(Clone)]
pub struct AppState {
    pub(crate) service: Service,
    pub(crate) tokens: Arc<auth::Tokens>,
}

/// The whole admin surface over `service`, for `tokens`.
pub fn router(service: Service, tokens: &[TokenConfig]) -> Router {
    let state = AppState {
        service,
        tokens: Arc::new(auth::Tokens::new(tokens)),
    };
    Router::new()
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
        .route("/api/v1/accounts/{id}", get(api::account))
        .route("/api/v1/accounts/{id}/delete", post(api::delete_account))
        .route("/api/v1/accounts/{id}/unlink", post(api::unlink_account))
        .route("/api/v1/plugins", get(api::plugins))
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/notifications", get(api::notifications))
        .route("/", get(pages::home))
        .route("/fragments/jobs", get(pages::jobs))
        .route("/connections/{id}", get(pages::connection))
        .route("/connections/{id}/refresh", post(pages::refresh))
        .route("/runs/{id}/issues", get(pages::issues))
        .route("/holds", get(pages::holds))
        .route("/holds/{id}", get(pages::hold))
        .route("/holds/{id}/confirm", post(pages::confirm))
        .route("/holds/{id}/reject", post(pages::reject))
        .route("/plugins", get(pages::plugins))
        .route("/notifications", get(pages::notifications))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}
