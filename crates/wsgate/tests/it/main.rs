//! wsgate's integration tests: one binary, real sockets on `127.0.0.1:0`, the
//! gateway started in-process (or as the real binary where the process itself
//! is under test), and the upstreams and clients each test needs.
//!
//! Reading order: `harness` (how a test sets up its world), then the tests in
//! the order of a connection's life: `echo`, `routing`, `upstream_handshake`,
//! `bad_handshakes`, `smuggling`, `bad_frames`, `close_codes`,
//! `hostile_peers`, `timeouts`, `keepalive`, `tls`, `upstream_tls`, then the tests against tools and the
//! binary: `wscat`, `deflate`, `demo`, `startup`, `shutdown`, `reload`, `cluster_state` (real
//! nodes on one PostgreSQL: the issuer, the one-writer duties, key rotation), `nodes` (the node
//! list of real nodes), a cluster of real nodes behind HAProxy (`cluster`), the portals in a
//! real browser
//! (`portal`), and the Autobahn conformance run in `autobahn` (three echo
//! upstreams, one of them `fixtures/echo_peers.py`).
//!
//! External tools are found through `WSGATE_WSCAT`, `WSGATE_PYTHON`,
//! `WSGATE_CHROMIUM`, `WSGATE_E2E_NODE_MODULES` and `WSGATE_HAPROXY` (set by `scripts/test`); a
//! test whose tool is missing fails and says so.

// A test that cannot go on should stop at once with the reason; `expect` is
// used where the reason is worth a sentence.
#![allow(clippy::unwrap_used)]

mod harness;

mod bad_frames;
mod bad_handshakes;
mod cli;
mod close_codes;
mod cluster;
mod cluster_state;
mod control;
mod deflate;
mod demo;
mod echo;
mod hostile_peers;
mod keepalive;
mod nodes;
mod observability;
mod plans;
mod portal;
mod reload;
mod routing;
mod security;
mod shutdown;
mod smuggling;
mod startup;
mod timeouts;
mod tls;
mod upstream_handshake;
mod upstream_health;
mod upstream_tls;
mod wscat;

mod autobahn;
