//! Business plans that throttle, end to end: a real control plane defines plans and
//! subscriptions, a real gateway enforces them on real sockets, the project's echo answers.
//!
//! Reading order: `traffic` (clients that flood and count), then the tests: `messages`
//! (message and byte rates, throttle and close, both directions), `connections` (caps and
//! new-connection rates, per subscription, application, API and client address), `changes`
//! (a plan changed under a live connection), `cluster` (three nodes on one PostgreSQL and one
//! Redis).

pub(crate) mod traffic;

mod messages;
mod connections;
mod changes;
mod cluster;
