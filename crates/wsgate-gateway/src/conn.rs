//! The context of one connection, made when it is accepted and read by everything that reports
//! on it (the access log today; metrics and analytics read the same).

use std::net::SocketAddr;
use std::time::Instant;

/// Who is calling and how, for the X-Forwarded-* headers and the logs.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub addr: SocketAddr,
    /// `"http"` or `"https"`, as the client reached the gateway.
    pub proto: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct ConnCtx {
    /// Unique within this process's life, in every log line of the connection.
    pub id: u64,
    pub started: Instant,
    pub client: ClientInfo,
}
