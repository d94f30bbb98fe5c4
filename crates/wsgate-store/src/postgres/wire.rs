//! What crosses the connection: parameters bound as PostgreSQL types, result columns read back
//! as [`Cell`]s, and the server's errors sorted into what the caller can act on.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use crate::StoreError;
use crate::schema::Rule;
use crate::sql::{Cell, Failure, Param, Row};

impl Param {
    /// Each variant binds as the Rust type whose PostgreSQL mapping matches its column:
    /// `i64` as BIGINT, `String` as TEXT, `Vec<u8>` as BYTEA.
    pub(super) fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Int(number) => number,
            Param::OptInt(number) => number,
            Param::Text(text) => text,
            Param::OptText(text) => text,
            Param::Bool(flag) => flag,
            Param::Bytes(bytes) => bytes,
        }
    }
}

pub(super) fn row(row: &tokio_postgres::Row, target: &str) -> Result<Row, Failure> {
    (0..row.len()).map(|index| cell(row, index, target)).collect::<Result<_, _>>().map(Row)
}

/// Reads a column by the type the server says it has; `SELECT 1` gives INT4, `COUNT(*)` INT8.
fn cell(row: &tokio_postgres::Row, index: usize, target: &str) -> Result<Cell, Failure> {
    let kind = row.columns().get(index).map(|column| column.type_().clone()).unwrap_or(Type::UNKNOWN);
    let fail = |error| classify(target, error);
    let cell = if kind == Type::INT8 {
        row.try_get::<_, Option<i64>>(index).map_err(fail)?.map(Cell::Int)
    } else if kind == Type::INT4 {
        row.try_get::<_, Option<i32>>(index).map_err(fail)?.map(|n| Cell::Int(n.into()))
    } else if kind == Type::BOOL {
        row.try_get::<_, Option<bool>>(index).map_err(fail)?.map(Cell::Bool)
    } else if kind == Type::TEXT || kind == Type::VARCHAR || kind == Type::NAME {
        row.try_get::<_, Option<String>>(index).map_err(fail)?.map(Cell::Text)
    } else if kind == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(index).map_err(fail)?.map(Cell::Bytes)
    } else {
        return Err(StoreError::Backend(format!("column {index} has the unexpected type {kind}")).into());
    };
    Ok(cell.unwrap_or(Cell::Null))
}

/// Whether an error means the connection is gone (it is then dropped and a new one made on the
/// next call).
pub(super) fn lost_connection(error: &tokio_postgres::Error) -> bool {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        return code.code().starts_with("08")
            || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code);
    }
    error.is_closed() || chain(error).any(|cause| cause.is::<std::io::Error>())
}

/// Unique and foreign-key violations become rules; lost connections, a server shutting down
/// or starting up, or out of connection slots are `Unavailable` (retrying later may work);
/// anything else is a backend error. `target` names the server without the password.
pub(super) fn classify(target: &str, error: tokio_postgres::Error) -> Failure {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return Failure::Unique(db.constraint().and_then(Rule::from_postgres_constraint));
        }
        if *code == SqlState::FOREIGN_KEY_VIOLATION {
            return Failure::MissingReference;
        }
        let message = format!("PostgreSQL at {target}: {} ({})", db.message(), code.code());
        if lost_connection(&error) || *code == SqlState::TOO_MANY_CONNECTIONS {
            return StoreError::Unavailable(message).into();
        }
        return StoreError::Backend(message).into();
    }
    let causes: Vec<String> = chain(&error).map(ToString::to_string).collect();
    let message = format!("PostgreSQL at {target}: {}", causes.join(": "));
    if lost_connection(&error) {
        return StoreError::Unavailable(message).into();
    }
    StoreError::Backend(message).into()
}

/// The error and its causes, outermost first ("error connecting to server", "Connection refused").
fn chain(error: &tokio_postgres::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    let first: &(dyn std::error::Error + 'static) = error;
    std::iter::successors(Some(first), |&cause| cause.source())
}
