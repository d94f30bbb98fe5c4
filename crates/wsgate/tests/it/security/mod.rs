//! Security of the gateway end to end: a real control plane issues, revokes and blocks; a real
//! gateway follows its store; clients and upstreams are on real sockets. Each test builds its
//! own world on `127.0.0.1:0` with an SQLite store in a fresh directory.
//!
//! Reading order: `world` (the world and its sentences: publish, subscribe, get a token,
//! revoke, connect), `socket` (one upgrade attempt, a live socket: echo, close code and
//! reason), `tokens` (keys and JWTs crafted by hand, for tokens no issuer would sign),
//! then the tests: `seeds` (the tutorials' three wscat invocations and what the upstream sees),
//! `hostile` (tokens an attacker would try), `lifecycle` (which API states take connections),
//! `revocation` (live sockets closed when their right to exist goes), `expiry` (live sockets
//! closed at the token's `exp`, or not), `idp` (an external identity provider by JWKS),
//! `grants` (scopes a publisher granted, and withdrew).

pub(crate) mod world;
pub(crate) mod socket;
mod tokens;

mod seeds;
mod hostile;
mod lifecycle;
mod revocation;
mod expiry;
mod idp;
mod grants;
mod leaks;
