//! Upstream endpoint URLs, parsed strictly, and the optional allow-list of where endpoints may
//! point. Both the config file and the REST API go through [`Endpoint::parse`], so an endpoint
//! means the same from either side.
//!
//! An endpoint ends up in the upstream request line and `Host` header, so nothing in it may
//! split or bend an HTTP head: the URL is parsed by `http::Uri` (the parser hyper uses), must be
//! printable ASCII without spaces or control characters anywhere, and may hold only scheme,
//! host, port and path (no user info, query or fragment).

use std::net::IpAddr;

/// Scheme of an upstream endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ws,
    Wss,
}

/// A parsed `ws://host:port/path` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// Host as written, without brackets for IPv6 literals.
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash; empty for the root.
    pub base_path: String,
}

impl Endpoint {
    /// Parses `ws://` or `wss://` URLs; ports default to 80 and 443.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        if url.is_empty() {
            return Err("An endpoint is required: ws://host:port or wss://host:port, with a path if needed".into());
        }
        if let Some(bad) = url.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "{url:?} must be printable ASCII without spaces or control characters (found {bad:?}); \
                 write international host names in punycode"
            ));
        }
        if url.contains(['#', '\\']) {
            return Err(format!("{url:?} may hold only host, port and path"));
        }
        let uri: http::Uri = url.parse().map_err(|err| format!("{url:?} is not a URL: {err}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => Scheme::Ws,
            Some(s) if s.eq_ignore_ascii_case("wss") => Scheme::Wss,
            _ => return Err(format!("{url:?} must start with ws:// or wss://")),
        };
        let authority = uri.authority().ok_or_else(|| format!("{url:?} has no host"))?;
        if authority.as_str().contains('@') || uri.query().is_some() {
            return Err(format!("{url:?} may hold only host, port and path"));
        }
        let written_host = authority.host();
        // What follows the host: nothing, or `:port` with a port that is a non-zero u16.
        let port = match &authority.as_str()[written_host.len()..] {
            "" if scheme == Scheme::Ws => 80,
            "" => 443,
            tail => tail
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{url:?} has no valid host:port"))?,
        };
        let host = match written_host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
            Some(_) => return Err(format!("{url:?} has no valid host:port")),
            None if valid_host_name(written_host) => written_host,
            None => return Err(format!("{url:?} has no valid host:port")),
        };
        Ok(Endpoint {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// `host:port` as used in a `Host` header, with brackets around IPv6 literals.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `ws://host:port/path`, as logs name an endpoint (port always written).
impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.scheme == Scheme::Ws { "ws" } else { "wss" };
        write!(f, "{scheme}://{}{}", self.authority(), self.base_path)
    }
}

/// Letters, digits, `-`, `_` and dots between non-empty labels (an IPv4 literal is one too).
fn valid_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        })
}

/// Where endpoints may point, as `control.endpoint_allowlist` says: each entry is a host name
/// (`echo.internal`), a domain and its subdomains (`*.example.com`), an IP address or a CIDR
/// range (`203.0.113.0/24`, `2001:db8::/32`), optionally with `:port`. Empty: anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Allowed>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    target: Target,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Host(String),
    Domain(String),
    Network(IpAddr, u8),
}

impl AllowList {
    /// Parses the entries; the error names the index at fault.
    pub fn parse(entries: &[String]) -> Result<AllowList, (usize, String)> {
        let parsed = entries.iter().enumerate().map(|(i, entry)| Allowed::parse(entry).map_err(|problem| (i, problem)));
        Ok(AllowList { entries: parsed.collect::<Result<_, _>>()? })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `endpoint` is allowed (always, for an empty list). Names are compared as
    /// written, not resolved: list names whose DNS you control.
    pub fn allows(&self, endpoint: &Endpoint) -> bool {
        self.is_empty() || self.entries.iter().any(|entry| entry.allows(endpoint))
    }
}

impl Allowed {
    fn parse(entry: &str) -> Result<Allowed, String> {
        let problem =
            || format!("{entry:?} is not a host, *.domain, IP address or CIDR range (with an optional :port)");
        let (target, port) = match entry.strip_prefix('[') {
            Some(rest) => {
                let (inside, after) = rest.split_once(']').ok_or_else(problem)?;
                (inside, if after.is_empty() { None } else { Some(after.strip_prefix(':').ok_or_else(problem)?) })
            }
            // A bare IPv6 address or range has colons of its own and no port.
            None if entry.matches(':').count() > 1 => (entry, None),
            None => match entry.rsplit_once(':') {
                Some((target, port)) => (target, Some(port)),
                None => (entry, None),
            },
        };
        let port = port.map(|p| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(problem)).transpose()?;
        let target = if let Some((address, bits)) = target.split_once('/') {
            let address: IpAddr = address.parse().map_err(|_| problem())?;
            let bits: u8 = bits.parse().map_err(|_| problem())?;
            if bits > if address.is_ipv4() { 32 } else { 128 } {
                return Err(problem());
            }
            Target::Network(address, bits)
        } else if let Ok(address) = target.parse::<IpAddr>() {
            Target::Network(address, if address.is_ipv4() { 32 } else { 128 })
        } else if let Some(domain) = target.strip_prefix("*.") {
            if !valid_host_name(domain) {
                return Err(problem());
            }
            Target::Domain(domain.to_ascii_lowercase())
        } else if valid_host_name(target) {
            Target::Host(target.to_ascii_lowercase())
        } else {
            return Err(problem());
        };
        Ok(Allowed { target, port })
    }

    fn allows(&self, endpoint: &Endpoint) -> bool {
        if self.port.is_some_and(|port| port != endpoint.port) {
            return false;
        }
        let host = endpoint.host.as_str();
        match &self.target {
            Target::Host(name) => host == name,
            Target::Domain(domain) => {
                host.strip_suffix(domain.as_str()).is_some_and(|sub| sub.ends_with('.') && sub.len() > 1)
            }
            Target::Network(network, bits) => host.parse::<IpAddr>().is_ok_and(|ip| in_network(ip, *network, *bits)),
        }
    }
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_default_ports_and_ipv6() {
        let e = Endpoint::parse("ws://echo.example/base/").expect("valid");
        assert_eq!((e.port, e.base_path.as_str()), (80, "/base"));
        let e = Endpoint::parse("wss://[::1]:8443").expect("valid");
        assert_eq!((e.host.as_str(), e.port, e.authority()), ("::1", 8443, "[::1]:8443".into()));
        let e = Endpoint::parse("wss://Echo.Example:443/a%20b").expect("valid");
        assert_eq!((e.host.as_str(), e.base_path.as_str()), ("echo.example", "/a%20b"));
        for bad in [
            "ws://host:0",
            "ws://:80",
            "ws://host:",
            "ws://host/p?q",
            "ws://host/p#f",
            "ws://user@host/",
            "ws://host:99999",
            "http://host/",
            "ws:/host",
            "ws://[::1/",
            "ws://ho st/",
            "ws://host\\evil/",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn nothing_that_could_split_an_http_head_is_accepted() {
        for bad in [
            "ws://127.0.0.1:7070/x\r\nX-Injected: 1",
            "ws://127.0.0.1:7070/x\nHost: evil",
            "ws://127.0.0.1\r\n:7070/",
            "ws://127.0.0.1:7070/\0",
            "ws://127.0.0.1:7070/\t",
            "ws://127.0.0.1:7070/\u{7f}",
            "ws://127.0.0.1:7070/caf\u{e9}",
            "ws://127.0.0.1:7070/x\u{2028}y",
        ] {
            let refused = Endpoint::parse(bad).expect_err(bad);
            assert!(!refused.contains('\r') && !refused.contains('\n'), "the message is one line: {refused}");
        }
    }

    #[test]
    fn the_allow_list_matches_hosts_domains_and_ranges() {
        let list = AllowList::parse(&[
            "echo.internal".into(),
            "*.example.com:443".into(),
            "10.1.0.0/16".into(),
            "[2001:db8::]:8080".into(),
            "2001:db9::/32".into(),
        ])
        .expect("valid");
        let allows = |url: &str| list.allows(&Endpoint::parse(url).expect(url));
        assert!(allows("ws://echo.internal:7070/"));
        assert!(allows("wss://api.example.com/"));
        assert!(!allows("ws://api.example.com/"), "port 80 is not 443");
        assert!(!allows("wss://example.com/"), "*.example.com is the subdomains");
        assert!(!allows("wss://evilexample.com/"));
        assert!(allows("ws://10.1.200.3:9000/"));
        assert!(!allows("ws://10.2.0.1/"));
        assert!(!allows("ws://169.254.169.254/latest/meta-data"));
        assert!(allows("ws://[2001:db8::]:8080/"));
        assert!(allows("ws://[2001:db9:ffff::1]/"));
        assert!(AllowList::default().allows(&Endpoint::parse("ws://anything/").expect("valid")));
        for bad in ["", "10.0.0.0/33", "*.", "host:0", "host name", "[::1"] {
            assert!(AllowList::parse(&[bad.to_string()]).is_err(), "{bad:?} should be refused");
        }
    }
}
