//! A TCP proxy for fault tests: put it in front of a real service (PostgreSQL, Redis) and switch
//! what the "network" does at run time, without ever stopping the shared service.
//!
//! Modes (see [`FaultMode`]):
//! - `Pass`: bytes flow both ways.
//! - `Refuse`: new connections are closed as soon as they are accepted and open ones are cut, as
//!   when the service is down.
//! - `Stall`: nothing flows any more (open connections hold their bytes, new connections are
//!   accepted but not connected upstream) until the mode changes; then the held bytes flow on.
//! - `CutAfter(n)`: `n` more client→server bytes are forwarded (counted over all connections from
//!   the moment the mode is set), then the connection that reaches the limit is closed mid-stream,
//!   and every later connection or client write is cut too.
//!
//! Dropping the proxy stops it and closes every connection.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    Pass,
    Refuse,
    Stall,
    CutAfter(u64),
}

struct Shared {
    mode: watch::Sender<FaultMode>,
    /// Client→server bytes still allowed under `CutAfter`.
    budget: AtomicU64,
    accepted: AtomicU64,
}

impl Shared {
    /// Take up to `n` bytes of budget; returns how many may be forwarded.
    fn take(&self, n: u64) -> u64 {
        let mut granted = 0;
        let _ = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                granted = left.min(n);
                Some(left - granted)
            });
        granted
    }
}

/// A running proxy on 127.0.0.1 (random port).
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `upstream`, starting in `Pass` mode.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(FaultMode::Pass);
        let shared = Arc::new(Shared {
            mode,
            budget: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, upstream, shared.clone()));
        Ok(FaultProxy { addr, shared, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switch the mode; open connections follow at once.
    pub fn set_mode(&self, mode: FaultMode) {
        if let FaultMode::CutAfter(n) = mode {
            self.shared.budget.store(n, Ordering::SeqCst);
        }
        self.shared.mode.send_replace(mode);
    }

    pub fn mode(&self) -> FaultMode {
        *self.shared.mode.borrow()
    }

    /// Connections accepted so far (whatever happened to them).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    // Owned here: aborting this task aborts every connection task with it.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                connections.spawn(serve(client, upstream, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Wait while the mode is `Stall`; false when the connection must be closed.
async fn wait_while_stalled(mode: &mut watch::Receiver<FaultMode>, shared: &Shared) -> bool {
    loop {
        let current = *mode.borrow_and_update();
        match current {
            FaultMode::Stall => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
            FaultMode::Refuse => return false,
            FaultMode::CutAfter(_) if shared.budget.load(Ordering::SeqCst) == 0 => return false,
            FaultMode::Pass | FaultMode::CutAfter(_) => return true,
        }
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut mode = shared.mode.subscribe();
    if !wait_while_stalled(&mut mode, &shared).await {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either direction ending ends the connection: both sockets are dropped together.
    tokio::select! {
        _ = pump(client_read, server_write, shared.clone(), true) => {}
        _ = pump(server_read, client_write, shared.clone(), false) => {}
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Arc<Shared>,
    upstream: bool,
) {
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !wait_while_stalled(&mut mode, &shared).await {
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            // The mode changed while waiting for bytes: look at it again.
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        // Bytes read during a stall are held until it ends.
        if !wait_while_stalled(&mut mode, &shared).await {
            return;
        }
        let mut len = n;
        let mut cut = false;
        if upstream && let FaultMode::CutAfter(_) = *mode.borrow() {
            let allowed = usize::try_from(shared.take(n as u64)).unwrap_or(n);
            cut = allowed < n;
            len = allowed;
        }
        if len > 0 && to.write_all(&buf[..len]).await.is_err() {
            return;
        }
        if cut {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server that counts the bytes it received.
    async fn echo_server() -> (SocketAddr, Arc<AtomicU64>) {
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        count.fetch_add(n as u64, Ordering::SeqCst);
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, received)
    }

    #[tokio::test]
    async fn modes_pass_stall_cut_and_refuse() {
        let (echo, received) = echo_server().await;
        let proxy = FaultProxy::start(echo).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");

        // Stalled: the bytes are held, then delivered once the proxy heals.
        proxy.set_mode(FaultMode::Stall);
        c.write_all(b"world").await.unwrap();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(200), c.read(&mut got)).await;
        assert!(waited.is_err(), "nothing may pass while stalled");
        proxy.set_mode(FaultMode::Pass);
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"world");

        // Cut after 3 client bytes: the server gets exactly 3 more, the client sees the close.
        proxy.set_mode(FaultMode::CutAfter(3));
        c.write_all(b"abcdef").await.unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest).await;
        assert!(b"abc".starts_with(&rest), "{rest:?}");
        for _ in 0..500 {
            if received.load(Ordering::SeqCst) >= 13 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(received.load(Ordering::SeqCst), 13);

        // Refused: a new connection is closed at once.
        proxy.set_mode(FaultMode::Refuse);
        let mut r = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest).await;
        assert!(rest.is_empty());

        proxy.set_mode(FaultMode::Pass);
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"again").await.unwrap();
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"again");
        assert!(proxy.accepted() >= 3);
    }
}
