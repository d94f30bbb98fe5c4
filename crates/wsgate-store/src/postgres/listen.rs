//! The LISTEN connection: hears every node's change notifications and puts them on the feed.
//!
//! One task owns it for the store's life. When the connection is lost (server restarted,
//! network cut, or a periodic ping unanswered), the task reconnects with a growing pause, and
//! once it listens again it sends every [`Change`] on the feed: notifications sent while it was
//! away are lost, so readers must reload everything.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, timeout_at};
use tokio_postgres::{AsyncMessage, Client, Notification};

use super::{CALL_TIMEOUT, CHANNEL, Target, wire};
use crate::{Change, StoreError};

/// The pause before the first reconnection attempt, doubled after each failure up to
/// `RETRY_MAX`, so a restarted server is heard again within about a second and a long outage
/// costs one attempt every few seconds.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(3);

/// How often an idle LISTEN connection is checked: without traffic, a cut network would go
/// unnoticed (TCP keepalive takes hours), and with it every change.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Holds the LISTEN task for the store; dropping it stops the task.
#[derive(Debug)]
pub(super) struct Listener {
    _stop: oneshot::Sender<()>,
}

impl Listener {
    /// Starts the task and waits (bounded) until it listens, so no change committed after the
    /// store opened is missed.
    pub(super) async fn start(target: Arc<Target>, changes: broadcast::Sender<Change>) -> Result<Listener, StoreError> {
        let (stop, stopped) = oneshot::channel();
        let (ready, listening) = oneshot::channel();
        tokio::spawn(supervise(target, changes, stopped, ready));
        match tokio::time::timeout(CALL_TIMEOUT * 2, listening).await {
            Ok(Ok(Ok(()))) => Ok(Listener { _stop: stop }),
            Ok(Ok(Err(error))) => Err(error),
            Ok(Err(_)) => Err(StoreError::Backend("the LISTEN task ended before listening".into())),
            Err(_) => Err(StoreError::Unavailable("PostgreSQL did not accept LISTEN in time".into())),
        }
    }
}

/// Listens until stopped, reconnecting as needed. The first attempt's outcome goes to `ready`
/// (the store fails to open if it fails); later ones only to the log.
async fn supervise(
    target: Arc<Target>,
    changes: broadcast::Sender<Change>,
    mut stop: oneshot::Receiver<()>,
    ready: oneshot::Sender<Result<(), StoreError>>,
) {
    let mut ready = Some(ready);
    let mut pause = RETRY_MIN;
    loop {
        let attempt = tokio::select! {
            _ = &mut stop => return,
            attempt = Session::open(&target) => attempt,
        };
        match attempt {
            Ok(session) => {
                match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Ok(()));
                    }
                    None => {
                        tracing::info!(server = %target.name, "listening for changes again; announcing all as changed");
                        for change in Change::ALL {
                            let _ = changes.send(change);
                        }
                    }
                }
                pause = RETRY_MIN;
                let reason = tokio::select! {
                    _ = &mut stop => return,
                    reason = session.forward(&changes) => reason,
                };
                tracing::warn!(server = %target.name, %reason, "lost the LISTEN connection; reconnecting");
            }
            Err(error) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(error));
                    return;
                }
                tracing::debug!(server = %target.name, %error, "cannot listen yet");
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// One LISTEN connection. Its I/O runs on a driver task, which passes notifications through a
/// channel: the connection object is the only place they can be read, and it must be polled
/// continuously for the client's own queries (the ping) to complete.
struct Session {
    client: Client,
    notifications: mpsc::UnboundedReceiver<Notification>,
    driver: JoinHandle<()>,
    /// Only notifications from this schema are ours.
    schema: String,
    server: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    async fn open(target: &Target) -> Result<Session, StoreError> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        let (client, mut connection) = timeout_at(deadline, target.config.connect(tokio_postgres::NoTls))
            .await
            .map_err(|_| target.timed_out())?
            .map_err(|error| wire::classify(&target.name, error).plain())?;
        let (sender, notifications) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
                let AsyncMessage::Notification(notification) = message else { continue };
                if sender.send(notification).is_err() {
                    return;
                }
            }
        });
        let mut session = Session { client, notifications, driver, schema: String::new(), server: target.name.clone() };
        let fail = |error| wire::classify(&target.name, error).plain();
        let schema = timeout_at(deadline, session.client.query_one("SELECT current_schema()::text", &[]))
            .await
            .map_err(|_| target.timed_out())?
            .and_then(|row| row.try_get::<_, Option<String>>(0))
            .map_err(fail)?;
        session.schema = schema.ok_or_else(|| {
            StoreError::Backend(format!("PostgreSQL at {}: the search_path names no existing schema", target.name))
        })?;
        timeout_at(deadline, session.client.batch_execute(&format!("LISTEN {CHANNEL}")))
            .await
            .map_err(|_| target.timed_out())?
            .map_err(fail)?;
        Ok(session)
    }

    /// Puts this schema's notifications on the feed until the connection is lost; returns why.
    async fn forward(mut self, changes: &broadcast::Sender<Change>) -> String {
        let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                notification = self.notifications.recv() => match notification {
                    Some(notification) => self.announce(notification.payload(), changes),
                    None => return "the connection closed".into(),
                },
                _ = ping.tick() => {
                    let deadline = Instant::now() + CALL_TIMEOUT;
                    match timeout_at(deadline, self.client.batch_execute("SELECT 1")).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => return wire::classify(&self.server, error).plain().to_string(),
                        Err(_) => return format!("no answer to a ping within {} s", CALL_TIMEOUT.as_secs()),
                    }
                }
            }
        }
    }

    /// A payload is `<schema>/<change>`. An unknown change name (a newer node) is announced as
    /// every change, so readers reload rather than miss it.
    fn announce(&self, payload: &str, changes: &broadcast::Sender<Change>) {
        let Some((schema, name)) = payload.rsplit_once('/') else { return };
        if schema != self.schema {
            return;
        }
        match Change::parse(name) {
            Some(change) => {
                let _ = changes.send(change);
            }
            None => {
                tracing::debug!(name, "unknown change name; announcing all");
                for change in Change::ALL {
                    let _ = changes.send(change);
                }
            }
        }
    }
}
