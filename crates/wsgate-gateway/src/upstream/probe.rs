//! Active health checks, and the task that keeps the endpoint table in step with the snapshot.
//!
//! After every snapshot swap the task resolves each routed API's endpoints in the table (so the
//! control plane sees an edited API at once, and state of endpoints no longer routed is
//! forgotten) and runs one probe loop per endpoint of each API that asks for a probe: a TCP
//! connect, or a WebSocket upgrade that must be answered 101 (then closed with 1000). A probe
//! failing `unhealthy_after` times in a row marks the endpoint down, so clients skip it before
//! any of them pays its timeout; `healthy_after` passes mark it up again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use wsgate_core::config::{Endpoint, Scheme};
use wsgate_core::upstream::{ProbeKind, ProbeSettings};

use super::health::EndpointState;
use crate::Shared;
use crate::handshake::{accept_value, read_http_head};

/// How often the task looks for a new snapshot.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Keeps the endpoint table in step with the snapshots the gateway serves and runs the probes,
/// until `shutdown`.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let (handle, table) = (&shared.snapshot, &shared.endpoints);
    let mut seen = None;
    let mut probes: HashMap<(String, String), (ProbeSettings, CancellationToken)> = HashMap::new();
    loop {
        let snapshot = handle.current();
        if seen.as_ref().is_none_or(|s| !Arc::ptr_eq(s, &snapshot)) {
            let metrics = shared.observe.metrics.get();
            let mut wanted = HashSet::new();
            let apis = snapshot.routes.by_key();
            for (key, api) in &apis {
                let endpoints = api.upstream(table, metrics);
                let Some(settings) = &api.settings.probe else { continue };
                for (endpoint, state) in api.endpoints.iter().zip(&endpoints.states) {
                    let id = (key.clone(), state.url.clone());
                    wanted.insert(id.clone());
                    if probes.get(&id).is_some_and(|(running, _)| running == settings) {
                        continue;
                    }
                    let stop = shutdown.child_token();
                    let probe = Probe {
                        endpoint: endpoint.clone(),
                        tls: api.tls.clone(),
                        settings: settings.clone(),
                        state: state.clone(),
                    };
                    tokio::spawn(probe.run(stop.clone()));
                    if let Some((_, previous)) = probes.insert(id, (settings.clone(), stop)) {
                        previous.cancel();
                    }
                }
            }
            probes.retain(|id, (_, stop)| {
                let keep = wanted.contains(id);
                if !keep {
                    stop.cancel();
                }
                keep
            });
            table.retain(&apis.keys().cloned().collect());
            seen = Some(snapshot);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
    }
}

struct Probe {
    endpoint: Endpoint,
    tls: Option<Arc<ClientConfig>>,
    settings: ProbeSettings,
    state: Arc<EndpointState>,
}

impl Probe {
    async fn run(self, stop: CancellationToken) {
        let mut interval = tokio::time::interval(self.settings.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    // A probe that stops (API edited or gone) leaves no verdict behind.
                    self.state.set_probe_down(false, "probe removed");
                    return;
                }
                _ = interval.tick() => {}
            }
            let outcome = tokio::time::timeout(self.settings.timeout, self.check()).await.unwrap_or_else(|_| {
                Err(format!("no answer within {}", wsgate_core::duration::format(self.settings.timeout)))
            });
            self.record(outcome);
        }
    }

    fn record(&self, outcome: Result<(), String>) {
        let mut streak = self.state.probe_streak.lock().unwrap_or_else(PoisonError::into_inner);
        let (passed, failed) = &mut *streak;
        match outcome {
            Ok(()) => {
                (*passed, *failed) = (passed.saturating_add(1), 0);
                if *passed >= self.settings.healthy_after {
                    self.state.set_probe_down(false, "");
                }
            }
            Err(why) => {
                (*passed, *failed) = (0, failed.saturating_add(1));
                if *failed >= self.settings.unhealthy_after {
                    self.state.set_probe_down(true, &why);
                }
            }
        }
    }

    async fn check(&self) -> Result<(), String> {
        let endpoint = &self.endpoint;
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|err| format!("connect: {}", err.kind()))?;
        if self.settings.kind == ProbeKind::Tcp {
            return Ok(());
        }
        let _ = tcp.set_nodelay(true);
        match (endpoint.scheme, &self.tls) {
            (Scheme::Ws, _) => self.upgrade(tcp).await,
            (Scheme::Wss, Some(config)) => {
                let name =
                    ServerName::try_from(endpoint.host.clone()).map_err(|_| "not a TLS server name".to_string())?;
                let tls = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|err| wsgate_tls::failure::describe(&err, &endpoint.host, endpoint.port))?;
                self.upgrade(tls).await
            }
            (Scheme::Wss, None) => Err("no TLS settings for this API".into()),
        }
    }

    /// A minimal upgrade to `path`: only a 101 with the right accept value passes.
    async fn upgrade<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        &self,
        mut stream: S,
    ) -> Result<(), String> {
        const KEY: &str = "d3NnYXRlLWhlYWx0aC0xMg==";
        let endpoint = &self.endpoint;
        let path = format!("{}{}", endpoint.base_path, self.settings.path);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: wsgate-health-probe\r\n\r\n",
            endpoint.authority()
        );
        stream.write_all(request.as_bytes()).await.map_err(|err| format!("write: {}", err.kind()))?;
        let (head, len) = read_http_head(&mut stream, 16 * 1024, |bytes| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            httparse::Response::new(&mut headers).parse(bytes)
        })
        .await
        .map_err(|_| "no valid HTTP answer".to_string())?;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        response.parse(&head[..len]).map_err(|_| "no valid HTTP answer".to_string())?;
        let status = response.code.unwrap_or_default();
        if status != 101 {
            return Err(format!("answered {status} instead of 101"));
        }
        let accept = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"));
        if accept.map(|h| h.value.trim_ascii()) != Some(accept_value(KEY).as_bytes()) {
            return Err("wrong Sec-WebSocket-Accept".into());
        }
        // A masked close 1000 (mask 0: the payload is sent as is), then goodbye.
        let _ = stream.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).await;
        let _ = stream.shutdown().await;
        Ok(())
    }
}
