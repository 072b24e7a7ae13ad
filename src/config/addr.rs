//! Addresses as people write them in the config and on the command line.

use std::net::{IpAddr, SocketAddr};

/// A DNS server's address: `ip:port` (`[v6]:port`), or a bare IP, which
/// means port 53.
pub fn dns_server(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .ok()
}

/// The addresses a private endpoint can have: RFC 1918, shared address space
/// (RFC 6598, 100.64.0.0/10) and unique local IPv6 (RFC 4193, fc00::/7).
/// Also what `amldns doctor` tells a private endpoint's answer by.
pub fn is_private(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(a) => a.is_private() || (a.octets()[0] == 100 && a.octets()[1] & 0xc0 == 64),
        IpAddr::V6(a) => a.segments()[0] & 0xfe00 == 0xfc00,
    }
}
