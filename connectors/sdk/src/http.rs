//! HTTP over `wasi:http`, with provider failures turned into the
//! contract's typed errors. Connectors and targets share it; a target turns
//! its errors into its own with `?`.
//!
//! A GET never opens a request body: writing an empty body after the host
//! has sent the request is what makes some wasi:http clients fail one GET
//! in three with "connection reset".
//!
//! Built natively (unit tests, the native side of the connector
//! benchmark), the same requests go over a plain blocking HTTP client, so
//! a connector's own code runs unchanged outside the sandbox.

use std::time::Duration;

use serde::de::DeserializeOwned;
use wasip2::http::types::{Method, Scheme};
#[cfg(target_arch = "wasm32")]
use wasip2::http::{
    outgoing_handler,
    types::{ErrorCode, Fields, IncomingBody, OutgoingBody, OutgoingRequest},
};
#[cfg(target_arch = "wasm32")]
use wasip2::io::streams::StreamError;

use crate::{RateLimit, SyncError};

/// An outgoing request.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// When and how often to retry rate-limited and failing requests.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first_wait: Duration,
    /// No single wait is longer, whatever Retry-After says.
    pub longest_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_wait: Duration::from_millis(500),
            longest_wait: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// No retries: the first failure is the answer.
    pub const NEVER: Retry = Retry {
        attempts: 1,
        first_wait: Duration::ZERO,
        longest_wait: Duration::ZERO,
    };
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn basic(self, user: &str, password: &str) -> Self {
        let encoded = base64(format!("{user}:{password}").as_bytes());
        self.header("authorization", format!("Basic {encoded}"))
    }

    /// A JSON body (for token exchanges and the like).
    pub fn json(self, body: &impl serde::Serialize) -> Self {
        self.json_as("application/json", body)
    }

    /// A JSON body under another media type, e.g. `application/scim+json`.
    pub fn json_as(mut self, content_type: &str, body: &impl serde::Serialize) -> Self {
        self.body = Some(serde_json::to_vec(body).expect("serialising a request body"));
        self.header("content-type", content_type)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends with the default [`Retry`] and returns a 2xx response; any
    /// other outcome is a typed error naming the URL.
    pub fn send(&self) -> Result<Response, SyncError> {
        self.send_with(Retry::default())
    }

    /// Sends, retrying 429s, 5xx and network failures with exponential
    /// backoff that honours Retry-After.
    pub fn send_with(&self, retry: Retry) -> Result<Response, SyncError> {
        let mut wait = retry.first_wait;
        let mut attempt = 1;
        loop {
            let outcome = self.send_once().and_then(Response::success);
            let error = match outcome {
                Ok(response) => return Ok(response),
                Err(error) if !is_transient(&error) || attempt >= retry.attempts => {
                    return Err(error);
                }
                Err(error) => error,
            };
            let asked = match &error {
                SyncError::RateLimited(RateLimit {
                    retry_after_seconds: Some(seconds),
                    ..
                }) => Duration::from_secs(u64::from(*seconds)),
                _ => wait,
            };
            sleep(asked.min(retry.longest_wait));
            wait *= 2;
            attempt += 1;
        }
    }

    /// Sends once and returns whatever status came back.
    pub fn send_once(&self) -> Result<Response, SyncError> {
        let parts = UrlParts::parse(&self.url)?;
        self.exchange(parts)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn exchange(&self, parts: UrlParts) -> Result<Response, SyncError> {
        use std::io::Read;
        let method = match &self.method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            other => unreachable!("requests are not built as {other:?}"),
        };
        let scheme = match parts.scheme {
            Scheme::Http => "http",
            _ => "https",
        };
        let url = format!("{scheme}://{}{}", parts.authority, parts.path_and_query);
        let mut request = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(120))
            .build()
            .request(method, &url);
        for (name, value) in &self.headers {
            request = request.set(name, value);
        }
        let outcome = match &self.body {
            Some(body) => request.send_bytes(body),
            None => request.call(),
        };
        let response = match outcome {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(error)) => {
                return Err(SyncError::Unavailable(format!("{}: {error}", self.url)));
            }
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = response.header(&name)?.to_string();
                Some((name, value))
            })
            .collect();
        let mut body = Vec::new();
        response.into_reader().read_to_end(&mut body).map_err(|e| {
            SyncError::Unavailable(format!("{}: the response body broke off: {e}", self.url))
        })?;
        Ok(Response {
            url: self.url.clone(),
            status,
            headers,
            body,
        })
    }

    #[cfg(target_arch = "wasm32")]
    fn exchange(&self, parts: UrlParts) -> Result<Response, SyncError> {
        self.start(parts)?.finish()
    }

    /// Hands the request to the host, which sends it while the guest goes
    /// on; [`InFlight::finish`] waits for the response.
    #[cfg(target_arch = "wasm32")]
    fn start(&self, parts: UrlParts) -> Result<InFlight<'_>, SyncError> {
        let mut pairs: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        // A body goes with its length: without it the host sends the body
        // chunked, which HTTP/1.0 servers (Python's wsgiref among them)
        // read as empty.
        if let Some(body) = &self.body {
            pairs.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        let fields = Fields::from_list(&pairs).map_err(|e| {
            SyncError::BadSettings(format!("{}: a request header is invalid: {e:?}", self.url))
        })?;
        let request = OutgoingRequest::new(fields);
        let set = request
            .set_method(&self.method)
            .and(request.set_scheme(Some(&parts.scheme)))
            .and(request.set_authority(Some(&parts.authority)))
            .and(request.set_path_with_query(Some(&parts.path_and_query)));
        if set.is_err() {
            return Err(SyncError::BadSettings(format!(
                "{} is not a valid URL",
                self.url
            )));
        }
        // Only a request with a body opens one (see the module docs).
        let outgoing_body = self
            .body
            .as_ref()
            .map(|_| request.body().expect("a new request's body is available"));
        // No request options: the host applies the connection's timeouts
        // to a request that names none, and a `request-options` handed to
        // `handle` is never freed by the host (wasmtime-wasi-http 48), so
        // one per request would fill the resource table after about 2,000
        // requests in one call.
        let future =
            outgoing_handler::handle(request, None).map_err(|code| self.network_error(code))?;
        if let (Some(outgoing), Some(bytes)) = (outgoing_body, &self.body) {
            write_body(outgoing, bytes).map_err(|m| {
                SyncError::Unavailable(format!(
                    "{}: sending the request body failed: {m}",
                    self.url
                ))
            })?;
        }
        Ok(InFlight {
            request: self,
            future,
        })
    }

    #[cfg(target_arch = "wasm32")]
    fn network_error(&self, code: ErrorCode) -> SyncError {
        match code {
            ErrorCode::HttpRequestDenied => SyncError::Forbidden(format!(
                "{}: the host refused the request: this host is not allowed for the connection",
                self.url
            )),
            other => SyncError::Unavailable(format!("{}: {other:?}", self.url)),
        }
    }
}

/// How many requests [`send_all_once`] keeps in flight at once.
pub const CONCURRENT_REQUESTS: usize = 16;

/// Sends each request once, up to [`CONCURRENT_REQUESTS`] at a time, and
/// returns their outcomes in the order asked, whatever status came back
/// (as [`Request::send_once`] does for one). In the sandbox the host sends
/// a request as soon as it is handed over, so a batch takes about as long
/// as its slowest request; natively the requests go one after the other.
pub fn send_all_once(requests: &[Request]) -> Vec<Result<Response, SyncError>> {
    let mut outcomes = Vec::with_capacity(requests.len());
    for batch in requests.chunks(CONCURRENT_REQUESTS) {
        outcomes.extend(send_batch(batch));
    }
    outcomes
}

#[cfg(not(target_arch = "wasm32"))]
fn send_batch(batch: &[Request]) -> Vec<Result<Response, SyncError>> {
    batch.iter().map(Request::send_once).collect()
}

#[cfg(target_arch = "wasm32")]
fn send_batch(batch: &[Request]) -> Vec<Result<Response, SyncError>> {
    // All of the batch is handed over before any response is waited for.
    let started: Vec<Result<InFlight<'_>, SyncError>> = batch
        .iter()
        .map(|request| UrlParts::parse(&request.url).and_then(|parts| request.start(parts)))
        .collect();
    started
        .into_iter()
        .map(|started| started.and_then(InFlight::finish))
        .collect()
}

/// A request the host is sending.
#[cfg(target_arch = "wasm32")]
struct InFlight<'a> {
    request: &'a Request,
    future: wasip2::http::types::FutureIncomingResponse,
}

#[cfg(target_arch = "wasm32")]
impl InFlight<'_> {
    /// Waits for the response and reads its body.
    fn finish(self) -> Result<Response, SyncError> {
        let InFlight { request, future } = self;
        future.subscribe().block();
        let response = future
            .get()
            .expect("the response is ready once its pollable fires")
            .expect("the response is taken only once")
            .map_err(|code| request.network_error(code))?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let body = response.consume().expect("the body is consumed only once");
        let body = read_body(body).map_err(|m| {
            SyncError::Unavailable(format!("{}: the response body broke off: {m}", request.url))
        })?;
        Ok(Response {
            url: request.url.clone(),
            status,
            headers,
            body,
        })
    }
}

fn is_transient(error: &SyncError) -> bool {
    matches!(error, SyncError::RateLimited(_) | SyncError::Unavailable(_))
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// This response if it is a 2xx, else the typed error its status means.
    pub fn success(self) -> Result<Response, SyncError> {
        let what = format!("{} answered HTTP {}", self.url, self.status);
        match self.status {
            200..=299 => Ok(self),
            401 => Err(SyncError::Unauthorized(what)),
            403 => Err(SyncError::Forbidden(what)),
            429 => Err(SyncError::RateLimited(RateLimit {
                retry_after_seconds: self
                    .header("retry-after")
                    .and_then(|v| v.trim().parse().ok()),
                message: what,
            })),
            500..=599 => Err(SyncError::Unavailable(what)),
            _ => Err(SyncError::BadResponse(format!(
                "{what}: {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            ))),
        }
    }

    /// The body as JSON of type `T`, or a `BadResponse` naming the URL and
    /// what did not fit.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, SyncError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            SyncError::BadResponse(format!(
                "{}: the response is not what was expected: {e}",
                self.url
            ))
        })
    }
}

struct UrlParts {
    scheme: Scheme,
    authority: String,
    path_and_query: String,
}

impl UrlParts {
    fn parse(url: &str) -> Result<UrlParts, SyncError> {
        let bad = || SyncError::BadSettings(format!("{url:?} is not an http:// or https:// URL"));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(bad()),
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(bad());
        }
        let path_and_query = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Ok(UrlParts {
            scheme,
            authority: authority.to_string(),
            path_and_query,
        })
    }
}

#[cfg(target_arch = "wasm32")]
fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    {
        let stream = body.write().map_err(|()| "no body stream".to_string())?;
        for chunk in bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))
}

#[cfg(target_arch = "wasm32")]
fn read_body(body: IncomingBody) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| "no body stream".to_string())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
            }
        }
    }
    drop(body);
    Ok(bytes)
}

#[cfg(target_arch = "wasm32")]
fn sleep(duration: Duration) {
    if !duration.is_zero() {
        wasip2::clocks::monotonic_clock::subscribe_duration(duration.as_nanos() as u64).block();
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}

/// Percent-encodes everything but RFC 3986's unreserved characters (§2.3),
/// for a path segment or a query value.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Standard base64, for Basic auth; not worth a dependency in every
/// connector.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("token:", "dG9rZW46"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn statuses_become_typed_errors() {
        let response = |status, headers: Vec<(&str, &str)>| Response {
            url: "https://api.example.com/x".into(),
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            body: b"nope".to_vec(),
        };
        assert!(response(200, vec![]).success().is_ok());
        assert!(matches!(
            response(401, vec![]).success(),
            Err(SyncError::Unauthorized(_))
        ));
        assert!(matches!(
            response(403, vec![]).success(),
            Err(SyncError::Forbidden(_))
        ));
        assert!(matches!(
            response(429, vec![("Retry-After", "7")]).success(),
            Err(SyncError::RateLimited(RateLimit {
                retry_after_seconds: Some(7),
                ..
            }))
        ));
        assert!(matches!(
            response(503, vec![]).success(),
            Err(SyncError::Unavailable(_))
        ));
        assert!(
            matches!(response(404, vec![]).success(), Err(SyncError::BadResponse(m)) if m.contains("nope"))
        );
    }

    #[test]
    fn percent_encoding_keeps_unreserved_characters() {
        assert_eq!(percent_encode("A19-x_y.z~"), "A19-x_y.z~");
        assert_eq!(percent_encode("a b:c/é"), "a%20b%3Ac%2F%C3%A9");
    }

    #[test]
    fn urls_split_into_wasi_parts() {
        let parts = UrlParts::parse("http://127.0.0.1:8080/v1.0/schools?page=2").unwrap();
        assert_eq!(parts.authority, "127.0.0.1:8080");
        assert_eq!(parts.path_and_query, "/v1.0/schools?page=2");
        assert_eq!(
            UrlParts::parse("https://api.wonde.com")
                .unwrap()
                .path_and_query,
            "/"
        );
        assert!(UrlParts::parse("ftp://x").is_err());
        assert!(UrlParts::parse("https:///x").is_err());
    }
}
