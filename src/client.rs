//! Who a client is, wherever one client's share of a limit is counted (the
//! metrics listener's connections, the questions in flight upstream): an
//! address; for IPv6 its /64, which one host can fill with addresses of its
//! own.

use std::net::IpAddr;

/// Whose share something counts in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(peer: IpAddr) -> Self {
        // A v4 client on a dual-stack listener shows up as ::ffff:a.b.c.d.
        Client(match peer.to_canonical() {
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & (!0u128 << 64)).into()),
            v4 => v4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// One IPv6 host can use every address of its /64; a v4 client may
    /// come as a mapped address.
    #[test]
    fn a_client_is_an_address_or_a_v6_64() {
        assert_eq!(
            Client::of(ip("2001:db8:1:2:aaaa::1")),
            Client::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Client::of(ip("2001:db8:1:2::1")),
            Client::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Client::of(ip("::ffff:127.0.0.2")),
            Client::of(ip("127.0.0.2"))
        );
        assert_ne!(Client::of(ip("127.0.0.2")), Client::of(ip("127.0.0.3")));
    }
}
