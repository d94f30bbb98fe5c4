//! The embedded backend: one SQLite file, one connection.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool with the connection
//! behind a mutex. One connection is enough: the store's calls are short, and SQLite allows one
//! writer at a time anyway. The file is in WAL mode (readers in other processes, such as a
//! backup, do not block the writer) with `synchronous=FULL`, so a write acknowledged to the
//! caller survives power loss, not only a crash of the process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, TransactionBehavior, ffi};
use tokio::sync::broadcast;

use crate::schema::{self, Rule};
use crate::sql::{Backend, Cell, Failure, Param, Row, Statement, Write};
use crate::tables::seed_plans;
use crate::{CHANGE_FEED_CAPACITY, Change, StoreError};

/// How long a write waits for another process holding the file's write lock before giving up
/// with `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Sqlite {
    connection: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
    /// Sent to from the blocking thread right after commit, still holding the connection, so the
    /// feed's order is the commit order.
    changes: broadcast::Sender<Change>,
}

impl Sqlite {
    /// Opens (creating if needed) the file, configures the connection and migrates the schema.
    pub(crate) async fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let path = Arc::new(path.to_owned());
        let opening = Arc::clone(&path);
        let connection = tokio::task::spawn_blocking(move || {
            create_private(&opening)?;
            let mut connection = Connection::open(opening.as_path()).map_err(|error| failure(&opening, error))?;
            configure(&connection).map_err(|error| failure(&opening, error))?;
            migrate(&mut connection, &opening)?;
            Ok::<_, Failure>(connection)
        })
        .await
        .map_err(|error| StoreError::Backend(format!("opening the SQLite database failed: {error}")))?
        .map_err(Failure::plain)?;
        let (changes, _) = broadcast::channel(CHANGE_FEED_CAPACITY);
        Ok(Sqlite { connection: Arc::new(Mutex::new(connection)), path, changes })
    }

    /// Runs `work` on the blocking pool with the connection.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &Path) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let connection = Arc::clone(&self.connection);
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier call dropped its transaction (rolled back), so the connection
            // behind a poisoned lock is still sound.
            let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut connection, &path)
        })
        .await
        .map_err(|error| Failure::Store(StoreError::Backend(format!("a store task failed: {error}"))))?
    }
}

impl Backend for Sqlite {
    async fn query(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Row>, Failure> {
        self.run(move |connection, path| query(connection, path, sql, &params)).await
    }

    async fn write(&self, write: Write) -> Result<(), Failure> {
        let changes = self.changes.clone();
        self.run(move |connection, path| {
            // IMMEDIATE takes the write lock at BEGIN: a writer in another process then makes us
            // wait (busy timeout) up front instead of failing half-way when a read lock cannot
            // be upgraded.
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| failure(path, error))?;
            for statement in &write.statements {
                run_statement(&transaction, path, statement)?;
            }
            transaction.commit().map_err(|error| failure(path, error))?;
            for change in write.changes {
                // No receiver is not an error: nobody is listening yet.
                let _ = changes.send(change);
            }
            Ok(())
        })
        .await
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

/// Creates the file readable by its owner only, if it does not exist: it holds password hashes
/// and signing keys. SQLite gives its WAL and shared-memory files the same permissions.
fn create_private(path: &Path) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(|error| {
        StoreError::Unavailable(format!("cannot create the SQLite database {}: {error}", path.display())).into()
    })
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite did not switch to WAL mode");
    }
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(BUSY_TIMEOUT)
}

/// Applies pending migrations and seeds a new store, in one IMMEDIATE transaction: a second
/// process opening the same file at the same moment waits, then finds nothing left to do.
fn migrate(connection: &mut Connection, path: &Path) -> Result<(), Failure> {
    let transaction =
        connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|error| failure(path, error))?;
    transaction.execute_batch(schema::MIGRATIONS_TABLE).map_err(|error| failure(path, error))?;
    let applied =
        query(&transaction, path, schema::APPLIED, &[])?.iter().map(|row| row.int(0)).collect::<Result<Vec<_>, _>>()?;
    for migration in schema::pending(&applied)? {
        transaction.execute_batch(migration.sql).map_err(|error| failure(path, error))?;
        let record = [Param::Int(migration.version), migration.name.into(), Param::Int(schema::now())];
        run_statement(&transaction, path, &Statement::new(schema::RECORD, record.to_vec()))?;
        tracing::info!(version = migration.version, name = migration.name, "applied SQLite migration");
    }
    // A new store gets the default plans; plans a user deleted later stay deleted.
    if applied.is_empty() {
        for statement in seed_plans()? {
            run_statement(&transaction, path, &statement)?;
        }
    }
    transaction.commit().map_err(|error| failure(path, error))
}

/// SQLite reads `?1` where PostgreSQL reads `$1`; the shared SQL has no other `$`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

fn query(connection: &Connection, path: &Path, sql: &str, params: &[Param]) -> Result<Vec<Row>, Failure> {
    let fail = |error| failure(path, error);
    let mut statement = connection.prepare_cached(&sqlite_sql(sql)).map_err(fail)?;
    let columns = statement.column_count();
    let mut rows = statement.query(rusqlite::params_from_iter(params)).map_err(fail)?;
    let mut result = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        let cells = (0..columns).map(|index| row.get_ref(index).map_err(fail).and_then(cell));
        result.push(Row(cells.collect::<Result<_, _>>()?));
    }
    Ok(result)
}

fn run_statement(connection: &Connection, path: &Path, statement: &Statement) -> Result<(), Failure> {
    let fail = |error| failure(path, error);
    let mut prepared = connection.prepare_cached(&sqlite_sql(statement.sql)).map_err(fail)?;
    let params = rusqlite::params_from_iter(&statement.params);
    let rows = if statement.expect.is_query() {
        u64::from(prepared.exists(params).map_err(fail)?)
    } else {
        prepared.execute(params).map_err(fail)? as u64
    };
    statement.expect.met_by(rows).map_err(Failure::Store)
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Int(number) | Param::OptInt(Some(number)) => ToSqlOutput::from(*number),
            Param::Text(text) | Param::OptText(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::OptInt(None) | Param::OptText(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Bool(flag) => ToSqlOutput::from(*flag),
            Param::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

fn cell(value: ValueRef<'_>) -> Result<Cell, Failure> {
    match value {
        ValueRef::Null => Ok(Cell::Null),
        ValueRef::Integer(number) => Ok(Cell::Int(number)),
        ValueRef::Text(text) => String::from_utf8(text.to_vec())
            .map(Cell::Text)
            .map_err(|_| StoreError::Backend("stored text is not UTF-8".into()).into()),
        ValueRef::Blob(bytes) => Ok(Cell::Bytes(bytes.to_vec())),
        ValueRef::Real(_) => Err(StoreError::Backend("a stored value is a floating-point number".into()).into()),
    }
}

/// Constraint failures become rules; a file that cannot be opened, read, locked or written is
/// `Unavailable` (the call may succeed later); anything else is a backend error.
fn failure(path: &Path, error: rusqlite::Error) -> Failure {
    if let rusqlite::Error::SqliteFailure(code, message) = &error {
        match code.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return Failure::Unique(message.as_deref().and_then(Rule::from_sqlite_message));
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return Failure::MissingReference,
            _ => {}
        }
        if matches!(
            code.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
        ) {
            return StoreError::Unavailable(format!("SQLite database {}: {error}", path.display())).into();
        }
    }
    StoreError::Backend(format!("SQLite database {}: {error}", path.display())).into()
}
