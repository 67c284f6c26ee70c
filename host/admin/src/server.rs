//! The admin server's connections: HTTP/1.1 over TCP, or over TLS
//! (rustls) when `[admin] tls_cert` and `tls_key` are set. A client must
//! finish its request headers (and a TLS client its handshake) within the
//! header timeout, which also closes a keep-alive connection left idle
//! that long. At most `max_connections` are open: a new one closes the
//! oldest idle connection (one with no request being answered), so a
//! crowd of half-sent requests cannot keep `/healthz` or an operator out,
//! nor run the host out of file descriptors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt;

use crate::AdminConfig;

/// Serves `router` on `listener`, as `config` says, until `shutdown` turns
/// true (or its sender is dropped); requests being answered then finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: AdminConfig,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let tls = tls_config(&config)
        .map_err(std::io::Error::other)?
        .map(|tls| TlsAcceptor::from(Arc::new(tls)));
    let header_timeout = Duration::from_secs(config.header_timeout_seconds);
    let slots = Arc::new(Slots::new(config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before it
                    // was taken: wait a moment rather than spin.
                    tracing::warn!(%error, "the admin server could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        while connections.try_join_next().is_some() {}
        let Some(slot) = slots.admit() else {
            tracing::warn!(%peer, "the admin server is at its connection limit with every connection busy; closing the new one");
            continue;
        };
        let connection = Connection {
            router: router.clone(),
            peer,
            header_timeout,
            slot,
            shutdown: shutdown.clone(),
        };
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                Some(tls) => connection.serve_tls(stream, tls).await,
                None => connection.serve(stream).await,
            }
        });
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Resolves when `shutdown` turns true or its sender goes away.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// The TLS configuration `config` names, read and checked; none without
/// `tls_cert` and `tls_key`. The error names the field and file, never
/// key material.
pub(crate) fn tls_config(config: &AdminConfig) -> Result<Option<ServerConfig>, String> {
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err("tls_cert and tls_key go together: set both, or neither".into()),
    };
    let read = |field: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("{field} {}: cannot read it: {e}", path.display()))
    };
    let chain = CertificateDer::pem_slice_iter(&read("tls_cert", cert)?)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|chain| !chain.is_empty())
        .ok_or_else(|| format!("tls_cert {}: no PEM certificate in it", cert.display()))?;
    let private = PrivateKeyDer::from_pem_slice(&read("tls_key", key)?)
        .map_err(|_| format!("tls_key {}: no PEM private key in it", key.display()))?;
    ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| {
        builder
            .with_no_client_auth()
            .with_single_cert(chain, private)
    })
    .map(|mut tls| {
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(tls)
    })
    .map_err(|e| {
        format!(
            "tls_cert {} and tls_key {} do not make a usable pair: {e}",
            cert.display(),
            key.display()
        )
    })
}

/// One accepted connection and what it needs to be served.
struct Connection {
    router: Router,
    peer: SocketAddr,
    header_timeout: Duration,
    slot: Slot,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    async fn serve_tls(self, stream: TcpStream, tls: TlsAcceptor) {
        // A handshake gets as long as a request's headers would.
        match tokio::time::timeout(self.header_timeout, tls.accept(stream)).await {
            Ok(Ok(stream)) => self.serve(stream).await,
            Ok(Err(error)) => tracing::debug!(peer = %self.peer, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve(self, io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) {
        let Connection {
            router,
            peer,
            header_timeout,
            slot,
            mut shutdown,
        } = self;
        let state = Arc::clone(&slot.state);
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::new(&state);
            let router = router.clone();
            async move {
                let _busy = busy;
                router.oneshot(request.map(axum::body::Body::new)).await
            }
        });
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        let connection = http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut draining = false;
        loop {
            tokio::select! {
                _ = connection.as_mut() => break,
                () = slot.state.evict.notified() => break,
                () = stopped(&mut shutdown), if !draining => {
                    connection.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
        }
    }
}

/// The open connections, oldest first.
struct Slots {
    limit: usize,
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<SlotState>>>,
}

#[derive(Default)]
struct SlotState {
    /// Requests being answered on the connection.
    busy: AtomicUsize,
    /// Told when the connection must close to make room.
    evict: Notify,
}

/// A connection's place among the open ones, given back when dropped.
struct Slot {
    id: u64,
    state: Arc<SlotState>,
    slots: Arc<Slots>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.id);
    }
}

/// Marks a connection busy while one request on it is answered.
struct Busy(Arc<SlotState>);

impl Busy {
    fn new(state: &Arc<SlotState>) -> Self {
        state.busy.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(state))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            next: AtomicU64::new(0),
            open: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<SlotState>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new connection: at the limit, the oldest idle
    /// connection is told to close and gives up its place; with every
    /// connection busy, none.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.lock();
        if open.len() >= self.limit {
            let idle = open
                .iter()
                .find(|(_, state)| state.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id)?;
            if let Some(state) = open.remove(&idle) {
                state.evict.notify_one();
            }
        }
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let state = Arc::new(SlotState::default());
        open.insert(id, Arc::clone(&state));
        Some(Slot {
            id,
            state,
            slots: Arc::clone(self),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room_and_busy_ones_stay() {
        let slots = Arc::new(Slots::new(2));
        let first = slots.admit().unwrap();
        let second = slots.admit().unwrap();
        let _working = Busy::new(&first.state);
        let third = slots.admit().unwrap();
        assert_eq!(slots.lock().len(), 2);
        assert!(slots.lock().contains_key(&first.id), "busy, so kept");
        assert!(!slots.lock().contains_key(&second.id), "idle, so evicted");
        let _also_working = Busy::new(&third.state);
        assert!(slots.admit().is_none(), "every connection is busy");
    }
}
