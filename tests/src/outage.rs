//! A TCP front for a real server that fails on cue: it forwards bytes both
//! ways until the client has sent a set number more, then cuts every open
//! connection and refuses new ones until it is restored. It stands where a
//! network path or load balancer would, so an outage lands in the middle
//! of a delivery whatever the protocol (HTTP for SCIM, LDAP for a
//! directory) and the server behind keeps its data.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    /// Client bytes still allowed through; negative once cut.
    budget: AtomicI64,
    armed: AtomicBool,
    down: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

impl State {
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Whether `bytes` more may pass; the one that runs the budget out
    /// cuts everything.
    fn spend(&self, bytes: usize) -> bool {
        if self.down.load(Ordering::SeqCst) {
            return false;
        }
        if !self.armed.load(Ordering::SeqCst) {
            return true;
        }
        let left = self.budget.fetch_sub(bytes as i64, Ordering::SeqCst) - bytes as i64;
        if left < 0 {
            self.cut();
            return false;
        }
        true
    }
}

/// The front; it stops accepting when dropped.
pub struct Outage {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: AbortHandle,
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.accept.abort();
        self.state.cut();
    }
}

impl Outage {
    /// A front on a free 127.0.0.1 port forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let pump = tokio::spawn(forward(client, server, Arc::clone(&shared)));
                shared.connections.lock().unwrap().push(pump.abort_handle());
            }
        })
        .abort_handle();
        Outage {
            addr,
            state,
            accept,
        }
    }

    /// Cuts everything once the client has sent `bytes` more.
    pub fn fail_after(&self, bytes: i64) {
        self.state.budget.store(bytes, Ordering::SeqCst);
        self.state.armed.store(true, Ordering::SeqCst);
    }

    /// Whether the outage has begun.
    pub fn is_down(&self) -> bool {
        self.state.down.load(Ordering::SeqCst)
    }

    /// Back in service, with no budget.
    pub fn restore(&self) {
        self.state.armed.store(false, Ordering::SeqCst);
        self.state.down.store(false, Ordering::SeqCst);
    }
}

async fn forward(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buffer).await?;
            if n == 0 || !state.spend(n) {
                return Ok::<_, std::io::Error>(());
            }
            server_write.write_all(&buffer[..n]).await?;
        }
    };
    let downstream = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = server_read.read(&mut buffer).await?;
            if n == 0 || state.down.load(Ordering::SeqCst) {
                return Ok::<_, std::io::Error>(());
            }
            client_write.write_all(&buffer[..n]).await?;
        }
    };
    // Either direction ending ends the connection, as a cut cable would.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
