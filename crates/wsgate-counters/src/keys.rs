//! How counters are named: what is limited (a subscription, an application, an API, one client
//! address of an API) and what is counted. Ids are the store's, so every node names the same
//! subscription's counters the same way.

use std::net::IpAddr;

/// Whose traffic a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope<'a> {
    Subscription(&'a str),
    Application(&'a str),
    Api(&'a str),
    /// One client address of one API (keyless APIs' limits).
    Client {
        api: &'a str,
        addr: IpAddr,
    },
}

impl Scope<'_> {
    /// The word a close reason or a refusal uses for it.
    pub fn noun(self) -> &'static str {
        match self {
            Scope::Subscription(_) => "subscription",
            Scope::Application(_) => "application",
            Scope::Api(_) => "API",
            Scope::Client { .. } => "client address",
        }
    }
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counted {
    Messages,
    Bytes,
    /// Connections open at once.
    Connections,
    /// New connections per period.
    NewConnections,
}

impl Counted {
    fn suffix(self) -> &'static str {
        match self {
            Counted::Messages => "msg",
            Counted::Bytes => "bytes",
            Counted::Connections => "conn",
            Counted::NewConnections => "new",
        }
    }
}

/// The counter's key, e.g. `sub:3f2a…:msg` or `ip:9c1d…:192.0.2.7:conn`.
pub fn key(scope: Scope<'_>, counted: Counted) -> String {
    let what = counted.suffix();
    match scope {
        Scope::Subscription(id) => format!("sub:{id}:{what}"),
        Scope::Application(id) => format!("app:{id}:{what}"),
        Scope::Api(id) => format!("api:{id}:{what}"),
        Scope::Client { api, addr } => format!("ip:{api}:{addr}:{what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_scope_and_what_is_counted() {
        assert_eq!(key(Scope::Subscription("s1"), Counted::Messages), "sub:s1:msg");
        let addr: IpAddr = "2001:db8::1".parse().expect("ip");
        assert_eq!(key(Scope::Client { api: "a", addr }, Counted::Connections), "ip:a:2001:db8::1:conn");
    }
}
