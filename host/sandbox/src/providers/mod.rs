//! The HTTP fakes, one module per provider, and what they share: auth
//! lookup, page slicing, and the rendered pages kept until the data
//! changes.

pub(crate) mod arbor;
pub(crate) mod clever;
pub(crate) mod scholarpack;
pub(crate) mod wonde;
pub(crate) mod xporter;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

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

/// What identifies a rendered page within one data version: the provider,
/// the school the credentials named, and the path and query asked for.
type PageKey = (Provider, usize, String, Vec<(String, String)>);

/// A rendered response, as sent.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// The pages rendered at the current data version: a GET is rendered once
/// per version and then served from here, so a benchmark measures the
/// client and not the fake. Every change to the data goes through
/// [`Shared::mutate`], which moves the version on and drops the pages.
/// Past [`Pages::BUDGET`] bytes, further pages are rendered per request.
#[derive(Default)]
pub(crate) struct Pages {
    version: u64,
    pages: HashMap<PageKey, Page>,
    bytes: usize,
}

impl Pages {
    const BUDGET: usize = 256 << 20;

    /// The data changed: what was rendered is stale.
    pub fn invalidate(&mut self) {
        self.version += 1;
        self.pages.clear();
        self.bytes = 0;
    }

    /// Keeps a page rendered at `version`, unless the data changed since.
    fn keep(&mut self, version: u64, key: PageKey, page: Page) {
        if version == self.version && self.bytes + page.body.len() <= Self::BUDGET {
            self.bytes += page.body.len();
            self.pages.insert(key, page);
        }
    }
}

impl Page {
    fn response(&self) -> Response {
        let mut response = (self.status, self.body.clone()).into_response();
        *response.headers_mut() = self.headers.clone();
        response
    }
}

pub(crate) async fn handle(state: &SharedState, provider: Provider, req: &Req) -> Response {
    let (version, key, response) = {
        let mut shared = lock(state);
        if provider == Provider::Xporter
            && (req.path == "/api/oauth/GetToken" || req.path == "/idaas/sts/STS/GetToken")
        {
            return xporter::get_token(&mut shared, req);
        }
        let Some(school) = identify(&shared, provider, req) else {
            return unauthorized(provider);
        };
        if req.method != Method::GET {
            return route(&shared, provider, school, req);
        }
        let key = (provider, school, req.path.clone(), req.query.clone());
        if let Some(page) = shared.pages.pages.get(&key) {
            return page.response();
        }
        let response = route(&shared, provider, school, req);
        (shared.pages.version, key, response)
    };
    // Rendered pages are whole in memory already; collecting them does
    // not wait on anything.
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "the page did not render");
    };
    let page = Page {
        status: parts.status,
        headers: parts.headers,
        body,
    };
    let response = page.response();
    lock(state).pages.keep(version, key, page);
    response
}

fn route(shared: &Shared, provider: Provider, school: usize, req: &Req) -> Response {
    match provider {
        Provider::Wonde => wonde::route(shared, school, req),
        Provider::Clever => clever::route(shared, school, req),
        Provider::Arbor => arbor::route(shared, school, req),
        Provider::Xporter => xporter::route(shared, school, req),
        Provider::Scholarpack => scholarpack::route(shared, school, req),
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
