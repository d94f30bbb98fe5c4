//! Domain types shared by every wsgate crate. No I/O happens here.
//!
//! Modules, in reading order:
//! - [`version`]: API versions, where `1.0` and `1.0.0` name the same API.
//! - [`duration`]: the human duration strings of the config file (`"10s"`, `"500ms"`).
//! - [`endpoint`]: upstream endpoint URLs, parsed strictly, and the endpoint allow-list.
//! - [`upstream`]: an API's endpoint settings (timeouts, balancing, breaker, probe,
//!   keepalive) and its `Origin` allow-list.
//! - [`limits`]: throttling limits (rates, connection caps) as plans and APIs declare them.
//! - [`config`]: the TOML configuration, parsed, validated and then frozen.
//! - [`model`]: what the control plane manages: APIs, plans, users, applications, keys.
//! - [`session`]: session analytics records, from the gateway to the analytics writer.
//! - [`node`]: a node of a cluster as its heartbeat reports it, and whether it is up.

pub mod version;
pub mod duration;
pub mod endpoint;
pub mod upstream;
pub mod limits;
pub mod config;
pub mod model;
pub mod session;
pub mod node;
