//! The `wsgate` binary's library half: pieces the command line wires together and that the
//! integration tests start in-process.
//!
//! - [`echo`]: a conformant WebSocket echo server, the demo's and the tests' upstream.

pub mod echo;
