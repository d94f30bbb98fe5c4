//! The shared backend: PostgreSQL, for several gateway nodes working from one configuration.
//!
//! Calls go through one query connection behind an async mutex (a write holds it for its whole
//! transaction). Every call is bounded by [`CALL_TIMEOUT`], waiting for the mutex included, so
//! a dead or partitioned server costs a caller at most that long and ends in
//! [`StoreError::Unavailable`]. A connection that failed or timed out is dropped; the next call
//! connects again, which is how the store recovers by itself once the server is back.
//!
//! Writes announce their changes with `pg_notify` inside their own transaction, so the
//! notification leaves only if the write commits; `listen` hears them — this node's and every
//! other node's — on a second connection and puts them on the change feed.
//!
//! Connections are made without TLS: the server is expected on loopback or a private network.
//!
//! - `wire`: parameters, result cells and error classification.
//! - `listen`: the LISTEN connection and its reconnection.

mod listen;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, broadcast};
use tokio::time::{Instant, timeout_at};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls, Transaction};

use crate::schema;
use crate::sql::{Backend, Failure, Param, Row, Statement, Write};
use crate::tables::seed_plans;
use crate::{CHANGE_FEED_CAPACITY, Change, StoreError};

/// The longest a store call may take, from waiting for the connection to the answer.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Migrations may wait for another node's migrations (the advisory lock) and create tables.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The key of the advisory lock that serialises migrations between nodes ("wsgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x7773_6761_7465;

/// The key of the advisory lock that exclusive writes take turns on ("wsgate-x" in ASCII).
const EXCLUSIVE_LOCK: i64 = 0x7773_6761_7465_2d78;

/// The NOTIFY channel. NOTIFY is database-wide while a store lives in one schema, so the payload
/// is `<schema>/<change>` and a listener ignores other schemas' payloads.
const CHANNEL: &str = "wsgate_changes";
const NOTIFY: &str = "SELECT pg_notify('wsgate_changes', current_schema()::text || '/' || $1::text)";

/// Where the store connects, and how that server is named in messages (never with the password).
#[derive(Debug)]
struct Target {
    config: Config,
    name: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, StoreError> {
        let mut config: Config =
            url.parse().map_err(|error| StoreError::Backend(format!("the store url is not valid: {error}")))?;
        if config.get_application_name().is_none() {
            config.application_name("wsgate");
        }
        config.connect_timeout(CALL_TIMEOUT);
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(other) => format!("{other:?}"),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let name = format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default());
        Ok(Target { config, name })
    }

    /// A new connection whose I/O runs on its own task until the client is dropped or the
    /// server goes away.
    async fn connect(&self, deadline: Instant) -> Result<Client, StoreError> {
        let (client, connection) = timeout_at(deadline, self.config.connect(NoTls))
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|error| wire::classify(&self.name, error).plain())?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(server = %name, %error, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    fn timed_out(&self) -> StoreError {
        StoreError::Unavailable(format!(
            "PostgreSQL at {} did not answer within {} s",
            self.name,
            CALL_TIMEOUT.as_secs()
        ))
    }
}

pub(crate) struct Postgres {
    target: Arc<Target>,
    /// The query connection; `None` after it failed, until the next call connects again.
    client: Mutex<Option<Client>>,
    /// Fed only by the LISTEN task, this node's writes included, so every node sees the same
    /// feed.
    changes: broadcast::Sender<Change>,
    /// Dropping it stops the LISTEN task.
    _listener: listen::Listener,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("server", &self.target.name).finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connects, migrates, and returns once the LISTEN connection is up, so that every change
    /// committed after this returns reaches the feed.
    pub(crate) async fn open(url: &str) -> Result<Postgres, StoreError> {
        let target = Arc::new(Target::parse(url)?);
        let mut client = target.connect(Instant::now() + CALL_TIMEOUT).await?;
        timeout_at(Instant::now() + MIGRATION_TIMEOUT, migrate(&mut client, &target.name))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "migrating PostgreSQL at {} took longer than {} s",
                    target.name,
                    MIGRATION_TIMEOUT.as_secs()
                ))
            })?
            .map_err(Failure::plain)?;
        let (changes, _) = broadcast::channel(CHANGE_FEED_CAPACITY);
        let listener = listen::Listener::start(Arc::clone(&target), changes.clone()).await?;
        Ok(Postgres { target, client: Mutex::new(Some(client)), changes, _listener: listener })
    }

    /// Runs `work` on a live connection within [`CALL_TIMEOUT`]; drops the connection when the
    /// call shows it is gone or stuck.
    async fn call<T>(
        &self,
        work: impl AsyncFnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, Failure> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut slot = timeout_at(deadline, self.client.lock()).await.map_err(|_| self.target.timed_out())?;
        let client = match slot.take() {
            Some(client) if !client.is_closed() => slot.insert(client),
            _ => slot.insert(self.target.connect(deadline).await?),
        };
        match timeout_at(deadline, work(client)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if wire::lost_connection(&error) || client.is_closed() {
                    *slot = None;
                }
                Err(wire::classify(&self.target.name, error))
            }
            Err(_) => {
                // The answer may still come, on a connection now in an unknown state: start over.
                *slot = None;
                Err(self.target.timed_out().into())
            }
        }
    }
}

impl Backend for Postgres {
    async fn query(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Row>, Failure> {
        let rows = self.call(async |client| client.query(sql, &sql_params(&params)).await).await?;
        rows.iter().map(|row| wire::row(row, &self.target.name)).collect()
    }

    async fn write(&self, write: Write) -> Result<(), Failure> {
        // A statement that finds nothing to work on ends the write with `NotFound`; it travels
        // out of the closure inside `Ok` because only database errors may decide the
        // connection's fate. Rollbacks are awaited, not left to the transaction's drop, so no
        // lock outlives the call.
        let outcome = self
            .call(async |client| {
                let transaction = client.transaction().await?;
                match run_write(&transaction, &write).await {
                    Ok(Ok(())) => transaction.commit().await.map(Ok),
                    Ok(Err(what)) => transaction.rollback().await.map(|()| Err(what)),
                    Err(error) => {
                        // The write's error is the one to report, whatever the rollback says.
                        let _ = transaction.rollback().await;
                        Err(error)
                    }
                }
            })
            .await?;
        outcome.map_err(Failure::Store)
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

fn sql_params(params: &[Param]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params.iter().map(Param::as_sql).collect()
}

/// Runs a write's statements, then its notifications; `Ok(Err(unmet))` when a statement did
/// not meet its expectation (nothing after it runs).
async fn run_write(
    transaction: &Transaction<'_>,
    write: &Write,
) -> Result<Result<(), StoreError>, tokio_postgres::Error> {
    if write.exclusive {
        // Held until commit or rollback; each later statement reads what the previous holder
        // committed (READ COMMITTED takes a snapshot per statement).
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&EXCLUSIVE_LOCK]).await?;
    }
    for statement in &write.statements {
        if let Err(unmet) = run_statement(transaction, statement).await? {
            return Ok(Err(unmet));
        }
    }
    for change in &write.changes {
        transaction.execute(NOTIFY, &[&change.as_str()]).await?;
    }
    Ok(Ok(()))
}

/// Runs one statement of a write; `Ok(Err(unmet))` when it did not meet its expectation.
async fn run_statement(
    transaction: &Transaction<'_>,
    statement: &Statement,
) -> Result<Result<(), StoreError>, tokio_postgres::Error> {
    let params = sql_params(&statement.params);
    let rows = if statement.expect.is_query() {
        transaction.query(statement.sql, &params).await?.len() as u64
    } else {
        transaction.execute(statement.sql, &params).await?
    };
    Ok(statement.expect.met_by(rows))
}

/// Applies pending migrations and seeds a new store in one transaction holding an advisory
/// lock, so nodes starting together take turns and the second finds nothing left to do.
async fn migrate(client: &mut Client, target: &str) -> Result<(), Failure> {
    let fail = |error| wire::classify(target, error);
    let transaction = client.transaction().await.map_err(fail)?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(fail)?;
    transaction.batch_execute(schema::MIGRATIONS_TABLE).await.map_err(fail)?;
    let applied = transaction.query(schema::APPLIED, &[]).await.map_err(fail)?;
    let applied = applied.iter().map(|row| row.try_get::<_, i64>(0)).collect::<Result<Vec<_>, _>>().map_err(fail)?;
    for migration in schema::pending(&applied)? {
        transaction.batch_execute(migration.sql).await.map_err(fail)?;
        let record: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&migration.version, &migration.name, &schema::now()];
        transaction.execute(schema::RECORD, &record).await.map_err(fail)?;
        tracing::info!(version = migration.version, name = migration.name, "applied PostgreSQL migration");
    }
    // A new store gets the default plans; plans a user deleted later stay deleted.
    if applied.is_empty() {
        for statement in seed_plans()? {
            run_statement(&transaction, &statement).await.map_err(fail)??;
        }
    }
    transaction.commit().await.map_err(fail)
}
