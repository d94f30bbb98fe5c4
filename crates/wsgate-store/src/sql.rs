//! The narrow interface between the store's logic and a database: a read is one query, a write
//! is a list of statements run in one transaction. [`crate::tables`] writes every operation once
//! in these terms; `sqlite` and `postgres` each run them.
//!
//! SQL text is shared too: it is written with PostgreSQL's `$1` placeholders, which SQLite
//! accepts as `?1` (the SQLite backend swaps the sigil), in the dialect both understand.

use std::future::Future;

use tokio::sync::broadcast;

use crate::schema::Rule;
use crate::{Change, StoreError};

/// A value bound to a placeholder. Nulls are typed because PostgreSQL checks a parameter's
/// type against the column before it looks at the value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl From<&str> for Param {
    fn from(text: &str) -> Param {
        Param::Text(text.to_owned())
    }
}

impl From<String> for Param {
    fn from(text: String) -> Param {
        Param::Text(text)
    }
}

impl From<i64> for Param {
    fn from(number: i64) -> Param {
        Param::Int(number)
    }
}

impl From<bool> for Param {
    fn from(flag: bool) -> Param {
        Param::Bool(flag)
    }
}

/// A value read from a result column, whatever the backend's type for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// One result row; getters check the type so a schema mistake is an error, not a panic.
#[derive(Debug)]
pub(crate) struct Row(pub Vec<Cell>);

impl Row {
    fn cell(&self, index: usize) -> Result<&Cell, StoreError> {
        self.0.get(index).ok_or_else(|| StoreError::Backend(format!("result has no column {index}")))
    }

    fn mismatch(&self, index: usize, wanted: &str) -> StoreError {
        StoreError::Backend(format!("column {index} holds {:?}, expected {wanted}", self.0.get(index)))
    }

    pub fn text(&self, index: usize) -> Result<String, StoreError> {
        match self.cell(index)? {
            Cell::Text(text) => Ok(text.clone()),
            _ => Err(self.mismatch(index, "text")),
        }
    }

    pub fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            _ => self.text(index).map(Some),
        }
    }

    pub fn int(&self, index: usize) -> Result<i64, StoreError> {
        match self.cell(index)? {
            Cell::Int(number) => Ok(*number),
            _ => Err(self.mismatch(index, "an integer")),
        }
    }

    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            _ => self.int(index).map(Some),
        }
    }

    /// SQLite has no boolean storage class: it keeps 0 and 1.
    pub fn bool(&self, index: usize) -> Result<bool, StoreError> {
        match self.cell(index)? {
            Cell::Bool(flag) => Ok(*flag),
            Cell::Int(number @ (0 | 1)) => Ok(*number == 1),
            _ => Err(self.mismatch(index, "a boolean")),
        }
    }

    pub fn bytes(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        match self.cell(index)? {
            Cell::Bytes(bytes) => Ok(bytes.clone()),
            _ => Err(self.mismatch(index, "bytes")),
        }
    }
}

/// What a statement of a write must find for the write to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Runs for its effect; touching no row is fine.
    Anything,
    /// A modification that must touch at least one row, else the write fails with
    /// `NotFound { what }` (updating or deleting a record that is not there).
    Touches(&'static str),
    /// A query that must return at least one row, else `NotFound { what }` (a record the
    /// write refers to, checked first so the error names it).
    Finds(&'static str),
    /// A query that must return no row, else `Conflict(message)` (a record still in use).
    FindsNone(&'static str),
}

impl Expect {
    /// Whether a statement that touched or found `rows` rows met this expectation.
    pub fn met_by(self, rows: u64) -> Result<(), StoreError> {
        match self {
            Expect::Anything => Ok(()),
            Expect::Touches(what) | Expect::Finds(what) if rows == 0 => Err(StoreError::NotFound { what }),
            Expect::FindsNone(message) if rows > 0 => Err(StoreError::Conflict(message.into())),
            _ => Ok(()),
        }
    }

    /// Whether the statement is a query (its rows are counted) rather than a modification.
    pub fn is_query(self) -> bool {
        matches!(self, Expect::Finds(_) | Expect::FindsNone(_))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub sql: &'static str,
    pub params: Vec<Param>,
    pub expect: Expect,
}

impl Statement {
    pub fn new(sql: &'static str, params: Vec<Param>) -> Statement {
        Statement { sql, params, expect: Expect::Anything }
    }

    pub fn expect(mut self, expect: Expect) -> Statement {
        self.expect = expect;
        self
    }
}

/// One trait write: its statements, run in order in one transaction, and the changes to
/// announce once it has committed (none for sessions, which no node caches).
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub statements: Vec<Statement>,
    pub changes: Vec<Change>,
    /// Whether the write must run alone, every node's exclusive writes taking turns, because
    /// its checks read rows no constraint protects (is there a signing key?). PostgreSQL takes
    /// an advisory lock for the transaction first; SQLite's transactions already run alone.
    pub exclusive: bool,
}

/// Why a backend call failed, before the caller has put words on a broken rule.
#[derive(Debug, PartialEq)]
pub(crate) enum Failure {
    Store(StoreError),
    /// A unique constraint; `None` when the database named one the schema table does not know.
    Unique(Option<Rule>),
    /// A record the write refers to vanished between its check and its insert.
    MissingReference,
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::Store(error)
    }
}

impl Failure {
    /// The caller's error: `explain` words the broken rule with the values the caller wrote.
    pub fn explain(self, explain: impl FnOnce(Rule) -> String) -> StoreError {
        match self {
            Failure::Store(error) => error,
            Failure::Unique(Some(rule)) => StoreError::Conflict(explain(rule)),
            Failure::Unique(None) => StoreError::Conflict("a record with the same key already exists".into()),
            Failure::MissingReference => StoreError::NotFound { what: "referenced record" },
        }
    }

    /// The rule a write broke, if that is why it failed.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Failure::Unique(rule) => *rule,
            _ => None,
        }
    }

    /// Where no rule can break (reads, connecting, migrating).
    pub fn plain(self) -> StoreError {
        self.explain(|rule| format!("{rule:?} broken by a read"))
    }
}

/// A database the store runs on. Implemented by `sqlite::Sqlite` and `postgres::Postgres`.
pub(crate) trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Runs one query outside any explicit transaction and returns all its rows.
    fn query(&self, sql: &'static str, params: Vec<Param>) -> impl Future<Output = Result<Vec<Row>, Failure>> + Send;

    /// Runs the statements in one transaction; commits only when all met their expectation,
    /// and then announces the write's changes on the feed.
    fn write(&self, write: Write) -> impl Future<Output = Result<(), Failure>> + Send;

    /// A receiver of the feed the backend announces changes on.
    fn changes(&self) -> broadcast::Receiver<Change>;
}
