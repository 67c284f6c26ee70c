//! Fault injection shared by every provider fake.
//!
//! A rule names a provider (or all), a path fragment and a fault; the first
//! matching rule fires on each request, optionally a limited number of
//! times, so a test can say "the second page of Wonde students fails once
//! with a 503" and watch the connector retry.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::Provider;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// Answer with this 5xx status.
    ServerError { status: u16 },
    /// 429 Too Many Requests with `Retry-After: {seconds}`.
    RateLimited { retry_after_secs: u64 },
    /// Wait before answering normally.
    Slow { millis: u64 },
    /// Answer normally but cut the body in half (the declared length is dropped).
    TruncatedBody,
    /// 200 with JSON of the wrong shape.
    WrongJson,
    /// Revoke the school's credentials for this provider from now on: every
    /// later request with them gets 401 until restored.
    RevokeCredentials,
}

/// When and how to misbehave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// `None` matches every provider.
    pub provider: Option<Provider>,
    /// Matches when the request path (after the provider prefix) contains it; empty matches all.
    #[serde(default)]
    pub path_contains: String,
    pub kind: FaultKind,
    /// How many requests it fires on; `None` means until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

impl Fault {
    pub fn new(provider: Provider, path_contains: &str, kind: FaultKind) -> Self {
        Self {
            provider: Some(provider),
            path_contains: path_contains.into(),
            kind,
            times: None,
        }
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    pub(crate) fn matches(&self, provider: Provider, path: &str) -> bool {
        self.provider.is_none_or(|p| p == provider) && path.contains(&self.path_contains)
    }
}

/// Picks the fault that fires for this request, consuming one use.
pub(crate) fn take(faults: &mut Vec<Fault>, provider: Provider, path: &str) -> Option<FaultKind> {
    let i = faults.iter().position(|f| f.matches(provider, path))?;
    let kind = faults[i].kind.clone();
    if let Some(n) = &mut faults[i].times {
        *n -= 1;
        if *n == 0 {
            faults.remove(i);
        }
    }
    Some(kind)
}

/// A fault that replaces the response outright, or `None` to go on.
pub(crate) async fn before(kind: &FaultKind) -> Option<Response> {
    match kind {
        FaultKind::ServerError { status } => Some(
            (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "upstream unavailable",
            )
                .into_response(),
        ),
        FaultKind::RateLimited { retry_after_secs } => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(serde_json::json!({"error": "Too Many Requests"})),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            Some(r)
        }
        FaultKind::Slow { millis } => {
            tokio::time::sleep(Duration::from_millis(*millis)).await;
            None
        }
        FaultKind::WrongJson => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"status":"ok","result":[["not","the","shape","you","expected"]]}"#,
            )
                .into_response(),
        ),
        FaultKind::TruncatedBody | FaultKind::RevokeCredentials => None,
    }
}

/// Applies a fault to a finished response (only truncation needs this).
pub(crate) async fn after(kind: &FaultKind, response: Response) -> Response {
    if *kind != FaultKind::TruncatedBody {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}
