//! A TCP proxy between nodes and PostgreSQL that a test cuts and restores: the cable, not a
//! component a user runs, so it lives in the test process. Cutting it closes its listener and
//! every connection through it at once; restoring it listens again on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::within;

pub struct TcpProxy {
    /// Where clients connect (the same before and after a cut).
    pub addr: SocketAddr,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    /// Forwards `127.0.0.1:<free port>` to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the proxy listens");
        let addr = listener.local_addr().expect("its address");
        let mut proxy = TcpProxy { addr, target, accept: None, connections: Arc::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let (target, connections) = (self.target, self.connections.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
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
