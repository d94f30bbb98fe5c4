//! The store's integration tests, one binary: the shared suite run on SQLite and on
//! PostgreSQL, what only one backend has (several nodes, a server outage), and the harness.
//!
//! PostgreSQL tests use `WSGATE_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! each in a schema of its own that it drops at the end. When that server cannot be reached
//! they are skipped with a message, except under `CI=true`, where they fail. The outage test
//! runs a PostgreSQL server of its own (initdb, pg_ctl from `WSGATE_PG_BIN`, default
//! `/usr/lib/postgresql/15/bin`).

mod harness;
mod pg_server;
mod suite;
mod sqlite;
mod postgres;
mod outage;
