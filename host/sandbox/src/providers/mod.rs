//! The HTTP fakes, one module per provider, and what they share: auth
//! lookup and page slicing.

pub(crate) mod arbor;
pub(crate) mod clever;
pub(crate) mod scholarpack;
pub(crate) mod wonde;
pub(crate) mod xporter;

use axum::http::StatusCode;
use axum::response::Response;

use crate::{Provider, Req, Shared, SharedState, json_error, lock};

/// Which school the request's credentials belong to (ignoring revocation is
/// not wanted: a revoked credential identifies nobody).
pub(crate) fn identify(shared: &Shared, provider: Provider, req: &Req) -> Option<usize> {
    match provider {
        Provider::Wonde => wonde::authenticate(shared, req),
        Provider::Clever => {
            let token = req.bearer()?;
            shared.school_for(provider, |c| c.clever_token == token)
        }
        Provider::Arbor => arbor::authenticate(shared, req),
        Provider::Xporter => xporter::authenticate(shared, req),
        Provider::Scholarpack => {
            let token = req.bearer()?;
            shared.school_for(provider, |c| c.scholarpack_token == token)
        }
    }
}

pub(crate) fn handle(state: &SharedState, provider: Provider, req: &Req) -> Response {
    let mut shared = lock(state);
    if provider == Provider::Xporter
        && (req.path == "/api/oauth/GetToken" || req.path == "/idaas/sts/STS/GetToken")
    {
        return xporter::get_token(&mut shared, req);
    }
    let Some(school) = identify(&shared, provider, req) else {
        return unauthorized(provider);
    };
    match provider {
        Provider::Wonde => wonde::route(&shared, school, req),
        Provider::Clever => clever::route(&shared, school, req),
        Provider::Arbor => arbor::route(&shared, school, req),
        Provider::Xporter => xporter::route(&shared, school, req),
        Provider::Scholarpack => scholarpack::route(&shared, school, req),
    }
}

fn unauthorized(provider: Provider) -> Response {
    let mut r = json_error(StatusCode::UNAUTHORIZED, "Unauthenticated.");
    let challenge = match provider {
        Provider::Arbor => "Basic realm=\"Arbor\"",
        Provider::Xporter => "Idaas",
        _ => "Bearer",
    };
    r.headers_mut()
        .insert("www-authenticate", challenge.parse().unwrap());
    r
}

/// A 1-based page of `items`.
pub(crate) fn page<T: Clone>(items: &[T], page: usize, per_page: usize) -> (Vec<T>, bool) {
    let start = (page.saturating_sub(1)) * per_page;
    let slice: Vec<T> = items.iter().skip(start).take(per_page).cloned().collect();
    (slice, start + per_page < items.len())
}

/// Rebuilds a URL on `base` with `path` and the query, one parameter replaced.
pub(crate) fn url_with(
    base: &str,
    path: &str,
    query: &[(String, String)],
    set: &[(&str, String)],
) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
        .cloned()
        .collect();
    pairs.extend(set.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{base}{path}?{}", q.join("&"))
}

/// Percent-encodes a query component.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(crate) fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "Not Found")
}
