//! Which hosts a connection may reach: the allow-list grammar and the checks
//! on URLs and on resolved addresses.
//!
//! Entries are `scheme://host[:port]` (Spin's `allowed_outbound_hosts`
//! model): deny-all by default, no paths, `*.` allowed as a leading label
//! wildcard, the port defaulting to the scheme's. A name that resolves to a
//! loopback, private or link-local address is refused unless the entry
//! itself names such an address (an IP literal or `localhost`): that is what
//! stops a provider's DNS, or an attacker's, from pointing a connector at the
//! inside of the school's network.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A URL scheme a connector may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    /// A DNS name, lower-cased, e.g. `api.wonde.com`.
    Name(String),
    /// `*.example.com`: any name strictly below `example.com`.
    Suffix(String),
    /// An IP literal.
    Ip(IpAddr),
}

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedHost {
    scheme: Scheme,
    host: HostPattern,
    port: u16,
}

/// Why an allow-list entry did not parse; the message is for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?} is not an allowed host: {reason} (write it as scheme://host[:port], e.g. https://api.wonde.com)"
)]
pub struct AllowedHostError {
    pub entry: String,
    pub reason: &'static str,
}

impl FromStr for AllowedHost {
    type Err = AllowedHostError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let fail = |reason| AllowedHostError {
            entry: entry.to_string(),
            reason,
        };
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| fail("it has no scheme"))?;
        let scheme =
            Scheme::parse(scheme).ok_or_else(|| fail("the scheme must be http or https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(fail("it must not have a path"));
        }
        if rest.contains('@') {
            return Err(fail("it must not carry credentials"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| fail("its port is not a number"))?;
        if host.is_empty() {
            return Err(fail("it has no host"));
        }
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(fail("a wildcard must be followed by a domain"));
            }
            HostPattern::Suffix(suffix.to_ascii_lowercase())
        } else if host.contains('*') {
            return Err(fail(
                "a wildcard may only be the first label, as in *.example.com",
            ));
        } else if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            HostPattern::Ip(ip)
        } else {
            HostPattern::Name(host.to_ascii_lowercase())
        };
        Ok(AllowedHost {
            scheme,
            host,
            port: port.unwrap_or(scheme.default_port()),
        })
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Name(name) => write!(f, "{}://{name}:{}", self.scheme, self.port),
            HostPattern::Suffix(suffix) => write!(f, "{}://*.{suffix}:{}", self.scheme, self.port),
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "{}://[{ip}]:{}", self.scheme, self.port),
            HostPattern::Ip(ip) => write!(f, "{}://{ip}:{}", self.scheme, self.port),
        }
    }
}

/// `host[:port]`, with IPv6 literals in brackets. `None` for a bad port.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

/// Where one outbound request is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub scheme: Scheme,
    /// Lower-cased, IPv6 without brackets.
    pub host: String,
    pub port: u16,
}

impl Destination {
    pub fn from_uri(uri: &http::Uri) -> Option<Destination> {
        let scheme = Scheme::parse(uri.scheme_str()?)?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        Some(Destination {
            scheme,
            host: host.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(scheme.default_port()),
        })
    }

    /// The `scheme://host:port` an operator would add to allow this.
    pub fn as_entry(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("{}://[{ip}]:{}", self.scheme, self.port),
            _ => format!("{}://{}:{}", self.scheme, self.host, self.port),
        }
    }
}

/// A connection's outbound allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<AllowedHost>,
}

impl AllowList {
    pub fn new(entries: impl IntoIterator<Item = AllowedHost>) -> Self {
        let mut list = AllowList::default();
        for entry in entries {
            list.add(entry);
        }
        list
    }

    pub fn add(&mut self, entry: AllowedHost) {
        if !self.entries.contains(&entry) {
            self.entries.push(entry);
        }
    }

    /// Allows the scheme, host and port of a base URL such as
    /// `https://api.wonde.com/v1.0/`.
    pub fn allow_base_url(&mut self, url: &str) -> Result<(), AllowedHostError> {
        let parsed = url::Url::parse(url).map_err(|_| AllowedHostError {
            entry: url.to_string(),
            reason: "it is not a URL",
        })?;
        let origin = format!(
            "{}://{}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        self.add(origin.parse()?);
        Ok(())
    }

    pub fn entries(&self) -> &[AllowedHost] {
        &self.entries
    }

    /// The entry that allows this destination, if any.
    pub fn permits(&self, dest: &Destination) -> Option<&AllowedHost> {
        self.entries.iter().find(|entry| {
            entry.scheme == dest.scheme
                && entry.port == dest.port
                && match &entry.host {
                    HostPattern::Name(name) => *name == dest.host,
                    HostPattern::Suffix(suffix) => dest
                        .host
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.ends_with('.') && head.len() > 1),
                    HostPattern::Ip(ip) => dest.host.parse::<IpAddr>().ok() == Some(*ip),
                }
        })
    }
}

impl AllowedHost {
    /// Whether a connection made for this entry may go to `addr`.
    ///
    /// An IP entry reaches exactly that address; `localhost` reaches
    /// loopback only; any other name reaches public addresses only.
    pub fn may_connect_to(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        match &self.host {
            HostPattern::Ip(ip) => canonical(*ip) == addr,
            HostPattern::Name(name) if name == "localhost" => addr.is_loopback(),
            HostPattern::Name(_) | HostPattern::Suffix(_) => is_public(addr),
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are judged as the IPv4
/// address they carry, so they cannot sneak past the private-range check.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn is_public(addr: IpAddr) -> bool {
    match canonical(addr) {
        IpAddr::V4(ip) => {
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_documentation()
                || is_shared_v4(ip))
        }
        IpAddr::V6(ip) => {
            !(ip.is_loopback()
                || ip.is_unspecified()
                || is_unique_local_v6(ip)
                || is_link_local_v6(ip))
        }
    }
}

/// 100.64.0.0/10, carrier-grade NAT.
fn is_shared_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 100 && (64..128).contains(&b)
}

fn is_unique_local_v6(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xfe00 == 0xfc00
}

fn is_link_local_v6(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(uri: &str) -> Destination {
        Destination::from_uri(&uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn parses_and_explains_bad_entries() {
        let ok: AllowedHost = "https://api.wonde.com".parse().unwrap();
        assert_eq!(ok.to_string(), "https://api.wonde.com:443");
        let cases = [
            ("api.wonde.com", "it has no scheme"),
            ("ftp://x.org", "the scheme must be http or https"),
            ("https://x.org/v1.0", "it must not have a path"),
            ("https://x.org:http", "its port is not a number"),
            (
                "https://a.*.org",
                "a wildcard may only be the first label, as in *.example.com",
            ),
            ("https://user:pw@x.org", "it must not carry credentials"),
        ];
        for (entry, reason) in cases {
            let err = entry.parse::<AllowedHost>().unwrap_err();
            assert_eq!(err.reason, reason, "{entry}");
            assert!(err.to_string().contains("scheme://host[:port]"));
        }
    }

    #[test]
    fn matches_scheme_host_and_port_exactly() {
        let mut list = AllowList::default();
        list.allow_base_url("https://api.wonde.com/v1.0/schools/")
            .unwrap();
        list.add("http://127.0.0.1:8080".parse().unwrap());
        list.add("https://*.arbor.sc".parse().unwrap());
        assert!(
            list.permits(&dest("https://api.wonde.com/v1.0/x"))
                .is_some()
        );
        assert!(list.permits(&dest("https://API.WONDE.COM/")).is_some());
        assert!(list.permits(&dest("http://api.wonde.com/")).is_none());
        assert!(list.permits(&dest("https://api.wonde.com:8443/")).is_none());
        assert!(
            list.permits(&dest("https://evil.com/?https://api.wonde.com"))
                .is_none()
        );
        assert!(list.permits(&dest("http://127.0.0.1:8080/")).is_some());
        // `localhost` is not `127.0.0.1`: the string must match.
        assert!(list.permits(&dest("http://localhost:8080/")).is_none());
        assert!(list.permits(&dest("https://school1.arbor.sc/")).is_some());
        assert!(list.permits(&dest("https://arbor.sc/")).is_none());
        assert!(list.permits(&dest("https://evilarbor.sc/")).is_none());
    }

    #[test]
    fn names_may_only_resolve_to_public_addresses() {
        let name: AllowedHost = "https://api.wonde.com".parse().unwrap();
        assert!(name.may_connect_to("18.130.1.1".parse().unwrap()));
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.10",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!name.may_connect_to(inside.parse().unwrap()), "{inside}");
        }
        let ip: AllowedHost = "http://127.0.0.1:9000".parse().unwrap();
        assert!(ip.may_connect_to("127.0.0.1".parse().unwrap()));
        assert!(ip.may_connect_to("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!ip.may_connect_to("127.0.0.2".parse().unwrap()));
        let localhost: AllowedHost = "http://localhost:9000".parse().unwrap();
        assert!(localhost.may_connect_to("::1".parse().unwrap()));
        assert!(!localhost.may_connect_to("10.0.0.1".parse().unwrap()));
    }
}
