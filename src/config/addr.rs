//! Addresses as people write them in the config and on the command line.

use std::net::{IpAddr, SocketAddr};

/// A DNS server's address: `ip:port` (`[v6]:port`), or a bare IP, which
/// means port 53.
pub fn dns_server(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .ok()
}
