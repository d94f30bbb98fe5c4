//! A TCP proxy between nodes and PostgreSQL that a test cuts and restores: the cable, not a
//! component a user runs, so it lives in the test process. Cutting it closes its listener and
//! every connection through it at once (a server that is gone: connects are refused); stalling
//! it keeps every connection open and accepts new ones but carries no byte (a server that
//! stopped answering, or a partition: only timeouts notice); restoring it listens again on the
//! same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::within;

pub struct TcpProxy {
    /// Where clients connect (the same before and after a cut).
    pub addr: SocketAddr,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    stall: Arc<Stall>,
}

/// Whether bytes stop flowing, and the signal that tells live connections so.
#[derive(Default)]
struct Stall {
    on: AtomicBool,
    now: Notify,
}

impl TcpProxy {
    /// Forwards `127.0.0.1:<free port>` to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the proxy listens");
        let addr = listener.local_addr().expect("its address");
        let mut proxy = TcpProxy { addr, target, accept: None, connections: Arc::default(), stall: Arc::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let (target, connections, stall) = (self.target, self.connections.clone(), self.stall.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let stall = stall.clone();
                let forward = tokio::spawn(async move {
                    let stalled = stall.now.notified();
                    if stall.on.load(Ordering::SeqCst) {
                        // Accepted, never answered: the sockets stay open until the cut.
                        return std::future::pending::<()>().await;
                    }
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = stalled => std::future::pending::<()>().await,
                    }
                });
                let mut live = connections.lock().expect("not poisoned");
                live.retain(|task| !task.is_finished());
                live.push(forward);
            }
        }));
    }

    /// Cuts the cable: no new connection is accepted (refused) and every open one ends now.
    pub async fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let open: Vec<_> = std::mem::take(&mut *self.connections.lock().expect("not poisoned"));
        for task in open {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stops carrying bytes without closing anything: what is in flight stays unanswered.
    pub fn stall(&self) {
        self.stall.on.store(true, Ordering::SeqCst);
        self.stall.now.notify_waiters();
    }

    /// Plugs the cable back in, on the same port.
    pub async fn restore(&mut self) {
        assert!(self.accept.is_none(), "restore only a cut proxy");
        let addr = self.addr;
        let listener = within(Duration::from_secs(5), "the proxy listens again on its port", async move {
            loop {
                match TcpListener::bind(addr).await {
                    Ok(listener) => return listener,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        self.serve(listener);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for task in self.connections.lock().map(|mut open| std::mem::take(&mut *open)).unwrap_or_default() {
            task.abort();
        }
    }
}
