//! What one name's tries through one resolver add up to: the verdicts and
//! the rules that give them; pure.

use std::fmt;
use std::net::IpAddr;

use crate::config::is_private;

/// What one try got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// NOERROR with addresses of the asked type (after any CNAMEs), sorted.
    Addrs(Vec<IpAddr>),
    /// NOERROR without an address.
    NoData,
    NxDomain,
    Refused,
    /// SERVFAIL, or any other rcode a resolver fails a valid question with.
    ServFail,
    /// No answer within the per-query timeout (or the resolver was given up
    /// on after timeouts in a row).
    Timeout,
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Got::Addrs(a) => f.write_str(&join(a)),
            Got::NoData => f.write_str("NODATA"),
            Got::NxDomain => f.write_str("NXDOMAIN"),
            Got::Refused => f.write_str("REFUSED"),
            Got::ServFail => f.write_str("SERVFAIL"),
            Got::Timeout => f.write_str("timeout"),
        }
    }
}

/// Addresses as one field: comma-separated.
pub fn join(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What doctor says of one name through one resolver, or of one of its
/// other checks. Declared in the order the summary lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Every try gave exactly the table's addresses.
    Ok,
    /// Not asked: an AAAA-only name, or a CNAME that leaves the table.
    Skipped,
    /// The tries differ: the resolver sends it sometimes here, sometimes
    /// elsewhere (a forwarder missing on one of its paths).
    Flapping,
    /// An address neither in the table nor private: the public endpoint.
    Public,
    /// Private, but not the table's.
    Wrong,
    NoData,
    NxDomain,
    Refused,
    ServFail,
    Timeout,
    /// `ok`, but a TCP connection to an address it gave fails.
    Unreachable,
    /// A name that must stay public resolved to a private address.
    Captured,
    /// Firefox's DNS-over-HTTPS canary was not answered NXDOMAIN.
    Canary,
    /// Replicas serve different answers for a name.
    ReplicasDiffer,
}

impl Verdict {
    pub const ALL: [Verdict; 14] = [
        Verdict::Ok,
        Verdict::Skipped,
        Verdict::Flapping,
        Verdict::Public,
        Verdict::Wrong,
        Verdict::NoData,
        Verdict::NxDomain,
        Verdict::Refused,
        Verdict::ServFail,
        Verdict::Timeout,
        Verdict::Unreachable,
        Verdict::Captured,
        Verdict::Canary,
        Verdict::ReplicasDiffer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Skipped => "skipped",
            Verdict::Flapping => "flapping",
            Verdict::Public => "public",
            Verdict::Wrong => "wrong",
            Verdict::NoData => "nodata",
            Verdict::NxDomain => "nxdomain",
            Verdict::Refused => "refused",
            Verdict::ServFail => "servfail",
            Verdict::Timeout => "timeout",
            Verdict::Unreachable => "unreachable",
            Verdict::Captured => "captured",
            Verdict::Canary => "canary",
            Verdict::ReplicasDiffer => "replicas differ",
        }
    }

    /// Whether it is something to fix (and makes doctor exit 1).
    pub fn is_problem(self) -> bool {
        !matches!(self, Verdict::Ok | Verdict::Skipped)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one verdict for a name whose table answer is `expected` (sorted),
/// over all its tries (at least one).
pub fn judge(expected: &[IpAddr], tries: &[Got]) -> Verdict {
    let Some(first) = tries.first() else {
        return Verdict::Timeout;
    };
    if tries.iter().any(|t| t != first) {
        return Verdict::Flapping;
    }
    match first {
        Got::Addrs(got) if got == expected => Verdict::Ok,
        Got::Addrs(got) if got.iter().any(|a| !expected.contains(a) && !is_private(*a)) => {
            Verdict::Public
        }
        Got::Addrs(_) => Verdict::Wrong,
        Got::NoData => Verdict::NoData,
        Got::NxDomain => Verdict::NxDomain,
        Got::Refused => Verdict::Refused,
        Got::ServFail => Verdict::ServFail,
        Got::Timeout => Verdict::Timeout,
    }
}

/// Whether a name that must stay public came back private through some try.
pub fn is_captured(tries: &[Got]) -> bool {
    tries
        .iter()
        .any(|t| matches!(t, Got::Addrs(a) if a.iter().any(|a| is_private(*a))))
}

/// Whether the canary was answered as browsers need it to keep their DoH
/// off: NXDOMAIN, every time.
pub fn canary_holds(tries: &[Got]) -> bool {
    !tries.is_empty() && tries.iter().all(|t| *t == Got::NxDomain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(s: &str) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = s.split(',').map(|a| a.parse().unwrap()).collect();
        v.sort();
        v
    }

    fn addrs(s: &str) -> Got {
        Got::Addrs(ips(s))
    }

    #[test]
    fn one_verdict_over_all_tries() {
        let table = ips("10.1.0.5,10.1.0.6");
        let cases: Vec<(&str, Vec<Got>, Verdict)> = vec![
            (
                "the table's",
                vec![addrs("10.1.0.6,10.1.0.5"); 3],
                Verdict::Ok,
            ),
            (
                "public then private",
                vec![addrs("20.1.2.3"), addrs("10.1.0.5,10.1.0.6")],
                Verdict::Flapping,
            ),
            (
                "private then timeout",
                vec![addrs("10.1.0.5,10.1.0.6"), Got::Timeout],
                Verdict::Flapping,
            ),
            ("public", vec![addrs("20.1.2.3"); 2], Verdict::Public),
            (
                "one public among the table's",
                vec![addrs("10.1.0.5,20.1.2.3")],
                Verdict::Public,
            ),
            ("another private", vec![addrs("10.9.9.9")], Verdict::Wrong),
            ("a subset", vec![addrs("10.1.0.5")], Verdict::Wrong),
            ("shared space", vec![addrs("100.64.0.1")], Verdict::Wrong),
            ("ula", vec![addrs("fd00::1")], Verdict::Wrong),
            ("nodata", vec![Got::NoData], Verdict::NoData),
            ("nxdomain", vec![Got::NxDomain; 3], Verdict::NxDomain),
            ("refused", vec![Got::Refused], Verdict::Refused),
            ("servfail", vec![Got::ServFail], Verdict::ServFail),
            ("timeout", vec![Got::Timeout; 3], Verdict::Timeout),
        ];
        for (what, tries, want) in cases {
            assert_eq!(judge(&table, &tries), want, "{what}");
        }
    }

    #[test]
    fn captured_is_any_private_answer_and_the_canary_wants_nxdomain() {
        assert!(is_captured(&[addrs("20.1.2.3"), addrs("10.0.0.1")]));
        assert!(!is_captured(&[
            addrs("20.1.2.3"),
            Got::NxDomain,
            Got::Timeout
        ]));
        assert!(canary_holds(&[Got::NxDomain, Got::NxDomain]));
        for bad in [addrs("20.1.2.3"), Got::NoData, Got::ServFail, Got::Timeout] {
            assert!(!canary_holds(&[Got::NxDomain, bad.clone()]), "{bad}");
        }
        assert!(!canary_holds(&[]));
    }

    #[test]
    fn only_ok_and_skipped_are_fine() {
        let fine: Vec<Verdict> = Verdict::ALL
            .into_iter()
            .filter(|v| !v.is_problem())
            .collect();
        assert_eq!(fine, [Verdict::Ok, Verdict::Skipped]);
    }
}
