//! The only way out of the sandbox: every `wasi:http` request a connector
//! makes passes through [`OutboundHooks::send_request`], which enforces the
//! connection's allow-list, request budget, timeouts and response size, and
//! offers an interception seam for recorded fixtures.
//!
//! A refused request is an ordinary HTTP error to the guest (never a trap),
//! and is also recorded as a [`Violation`], which ends the run with a typed
//! error once the guest call returns.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::allow::{AllowList, AllowedHost, Destination, Scheme};
use crate::budget::{MAX_QUOTED_BYTES, clip};

/// A request as an interceptor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// A complete response an interceptor supplies or observes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// What an interceptor decides for one request.
pub enum Intercept {
    /// Send it for real.
    Continue,
    /// Answer it without touching the network.
    Respond(CannedResponse),
    /// Fail it, as if the network refused; the reason is recorded.
    Refuse(String),
}

/// The seam record-and-replay fixtures hang on. Requests reach it only
/// after the allow-list has passed them.
pub trait Interceptor: Send + Sync {
    fn intercept(&self, request: &OutboundRequest) -> Intercept;

    /// Called with every real response when [`Interceptor::wants_responses`].
    fn observe(&self, _request: &OutboundRequest, _response: &CannedResponse) {}

    fn wants_responses(&self) -> bool {
        false
    }
}

/// A rule the connector broke while making requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("requested {url}, but {entry} is not an allowed host for this connection")]
    HostNotAllowed { url: String, entry: String },
    #[error("requested {url}, whose host resolves to {addr}, an address that host may not use")]
    AddressNotAllowed { url: String, addr: String },
    #[error("made more than {limit} requests in one call")]
    TooManyRequests { limit: u32 },
    #[error("received a response from {url} larger than the {limit}-byte limit")]
    ResponseTooLarge { url: String, limit: u64 },
    #[error("sent a request the test fixtures do not cover: {0}")]
    Unrecorded(String),
    #[error("sent a request body to {url} larger than the {limit}-byte limit")]
    RequestTooLarge { url: String, limit: u64 },
    #[error(
        "requested {url}, but its host name could not be resolved ({message}), so the address could not be checked"
    )]
    NameNotResolved { url: String, message: String },
}

/// The per-run limits on outbound HTTP.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_requests: u32,
    pub max_response_bytes: u64,
    /// Size of one request body; bodies are streamed, never held whole
    /// (except up to this size for a recording interceptor).
    pub max_request_bytes: u64,
    /// Upper bound for connect, first-byte and between-bytes timeouts; a
    /// guest may ask for less, never more.
    pub timeout: Duration,
}

/// The `WasiHttpHooks` of one run's store.
pub struct OutboundHooks {
    allow: Arc<AllowList>,
    limits: HttpLimits,
    interceptor: Option<Arc<dyn Interceptor>>,
    violations: Arc<Mutex<Vec<Violation>>>,
    requests: u32,
}

impl OutboundHooks {
    pub fn new(
        allow: Arc<AllowList>,
        limits: HttpLimits,
        interceptor: Option<Arc<dyn Interceptor>>,
    ) -> Self {
        Self {
            allow,
            limits,
            interceptor,
            violations: Arc::default(),
            requests: 0,
        }
    }

    /// The first rule broken since the last call, if any.
    pub fn take_violation(&self) -> Option<Violation> {
        let mut violations = self.violations.lock().expect("violations lock");
        let first = violations.first().cloned();
        violations.clear();
        first
    }

    pub fn reset_request_budget(&mut self) {
        self.requests = 0;
    }

    fn clamp(&self, options: Option<RequestOptions>) -> RequestOptions {
        let cap = |asked: Option<Duration>| {
            Some(asked.map_or(self.limits.timeout, |t| t.min(self.limits.timeout)))
        };
        let options = options.unwrap_or_default();
        RequestOptions {
            connect_timeout: cap(options.connect_timeout),
            first_byte_timeout: cap(options.first_byte_timeout),
            between_bytes_timeout: cap(options.between_bytes_timeout),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendResult = Result<(http::Response<WasiBody>, IoFuture), HttpError>;

/// Records violations from inside the request's future.
#[derive(Clone)]
struct Recorder(Arc<Mutex<Vec<Violation>>>);

impl Recorder {
    fn refuse(&self, violation: Violation) -> HttpError {
        tracing::warn!(%violation, "outbound request refused");
        self.0.lock().expect("violations lock").push(violation);
        HttpError::HttpRequestDenied
    }
}

impl OutboundHooks {
    /// The allow-list entry that admits this request, after charging it to
    /// the request budget.
    fn admit(&mut self, uri: &http::Uri) -> Result<(AllowedHost, Destination), Violation> {
        self.requests += 1;
        if self.requests > self.limits.max_requests {
            return Err(Violation::TooManyRequests {
                limit: self.limits.max_requests,
            });
        }
        let dest = Destination::from_uri(uri).ok_or_else(|| Violation::HostNotAllowed {
            url: clip(&uri.to_string(), MAX_QUOTED_BYTES),
            entry: "a URL without a host".into(),
        })?;
        match self.allow.permits(&dest) {
            Some(entry) => Ok((entry.clone(), dest)),
            None => Err(Violation::HostNotAllowed {
                url: clip(&uri.to_string(), MAX_QUOTED_BYTES),
                entry: dest.as_entry(),
            }),
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let recorder = Recorder(self.violations.clone());
        let admitted = self
            .admit(request.uri())
            .map_err(|violation| recorder.refuse(violation));
        let options = self.clamp(options);
        let interceptor = self.interceptor.clone();
        let max_bytes = self.limits.max_response_bytes;
        let max_request_bytes = self.limits.max_request_bytes;
        Box::new(async move {
            let (entry, dest) = admitted?;
            let url = clip(&request.uri().to_string(), MAX_QUOTED_BYTES);
            let (parts, body) = request.into_parts();
            let body = CappedBody {
                inner: body,
                remaining: max_request_bytes,
                too_large: Violation::RequestTooLarge {
                    url: url.clone(),
                    limit: max_request_bytes,
                },
                recorder: recorder.clone(),
            }
            .boxed_unsync();
            let mut observer = None;
            let mut summary = None;
            let body = match interceptor {
                None => body,
                Some(interceptor) => {
                    // Fixtures match whole requests: collect the body, which
                    // the cap above keeps within its limit.
                    let body = body.collect().await?.to_bytes();
                    let request = OutboundRequest {
                        method: parts.method.to_string(),
                        url: parts.uri.to_string(),
                        headers: header_pairs(&parts.headers),
                        body: body.clone(),
                    };
                    match interceptor.intercept(&request) {
                        Intercept::Continue if interceptor.wants_responses() => {
                            observer = Some(interceptor)
                        }
                        Intercept::Continue => {}
                        Intercept::Respond(canned) => {
                            if canned.body.len() as u64 > max_bytes {
                                return Err(recorder.refuse(Violation::ResponseTooLarge {
                                    url,
                                    limit: max_bytes,
                                }));
                            }
                            return Ok((
                                canned_response(canned)?,
                                Box::new(async { Ok(()) }) as IoFuture,
                            ));
                        }
                        Intercept::Refuse(reason) => {
                            return Err(recorder.refuse(Violation::Unrecorded(reason)));
                        }
                    }
                    summary = Some(request);
                    full_body(body)
                }
            };
            let mut request = http::Request::from_parts(parts, body);
            pin_to_checked_address(&mut request, &entry, &dest)
                .await
                .map_err(|violation| recorder.refuse(violation))?;
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            if content_length(response.headers()).is_some_and(|len| len > max_bytes) {
                return Err(recorder.refuse(Violation::ResponseTooLarge {
                    url,
                    limit: max_bytes,
                }));
            }
            let (parts, body) = response.into_parts();
            let body = CappedBody {
                inner: body.boxed_unsync(),
                remaining: max_bytes,
                too_large: Violation::ResponseTooLarge {
                    url,
                    limit: max_bytes,
                },
                recorder,
            };
            let (Some(observer), Some(summary)) = (observer, summary) else {
                return Ok((
                    http::Response::from_parts(parts, body.boxed_unsync()),
                    Box::new(io) as IoFuture,
                ));
            };
            // Recording needs the whole body; the connection must be driven
            // while it is read.
            let (collected, io_result) = tokio::join!(body.collect(), io);
            let body = collected?.to_bytes();
            let canned = CannedResponse {
                status: parts.status.as_u16(),
                headers: header_pairs(&parts.headers),
                body: body.clone(),
            };
            observer.observe(&summary, &canned);
            Ok((
                http::Response::from_parts(parts, full_body(body)),
                Box::new(async move { io_result }) as IoFuture,
            ))
        })
    }
}

fn header_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn full_body(bytes: Bytes) -> WasiBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn canned_response(canned: CannedResponse) -> Result<http::Response<WasiBody>, HttpError> {
    let mut builder = http::Response::builder().status(canned.status);
    for (name, value) in &canned.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(full_body(canned.body))
        .map_err(|_| HttpError::HttpProtocolError)
}

/// Resolves the destination, refuses it if any address is one its entry may
/// not reach, and for plain HTTP connects to the very address it checked, so
/// a second DNS answer cannot differ (DNS rebinding). For HTTPS the
/// certificate check binds the connection to the name instead.
async fn pin_to_checked_address(
    request: &mut http::Request<WasiBody>,
    entry: &AllowedHost,
    dest: &Destination,
) -> Result<(), Violation> {
    // A failed lookup refuses the request: letting the send look the name
    // up again would trust an answer that was never checked.
    let url = clip(&request.uri().to_string(), MAX_QUOTED_BYTES);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((dest.host.as_str(), dest.port))
        .await
        .map_err(|e| Violation::NameNotResolved {
            url: url.clone(),
            message: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Violation::NameNotResolved {
            url,
            message: "no addresses".into(),
        });
    }
    if let Some(bad) = addrs.iter().find(|a| !entry.may_connect_to(a.ip())) {
        return Err(Violation::AddressNotAllowed {
            url,
            addr: bad.ip().to_string(),
        });
    }
    if let (Scheme::Http, Some(addr)) = (dest.scheme, addrs.first()) {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        if let Ok(uri) = http::Uri::builder()
            .scheme("http")
            .authority(addr.to_string())
            .path_and_query(path)
            .build()
        {
            *request.uri_mut() = uri;
        }
    }
    Ok(())
}

/// A body, either way, that fails once it passes its size limit, having
/// held no more than one frame of it.
struct CappedBody {
    inner: WasiBody,
    remaining: u64,
    /// What passing the limit breaks.
    too_large: Violation,
    recorder: Recorder,
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
            let len = data.map_or(0, |d| d.len() as u64);
            if len > self.remaining {
                self.remaining = 0;
                let violation = self.too_large.clone();
                return Poll::Ready(Some(Err(self.recorder.refuse(violation))));
            }
            self.remaining -= len;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
