//! The bounded label sets of DNS numbers: query types and response codes
//! with a label of their own, every other number counting as `other`, so
//! that a client cannot add series by sending odd types. The numbers the
//! answer rules use are theirs (`resolve::rtype`, `resolve::rcode`).

use crate::resolve::{rcode, rtype};

/// Query types with a label of their own; every other type counts as `other`.
pub(super) const QTYPES: [(u16, &str); 16] = [
    (rtype::A, "A"),
    (rtype::NS, "NS"),
    (rtype::CNAME, "CNAME"),
    (rtype::SOA, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (rtype::TXT, "TXT"),
    (rtype::AAAA, "AAAA"),
    (33, "SRV"),
    (rtype::DS, "DS"),
    (48, "DNSKEY"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (rtype::AXFR, "AXFR"),
    (rtype::ANY, "ANY"),
    (257, "CAA"),
];

/// Response codes with a label of their own (RFC 6895 §2.3); the rest are `other`.
pub(super) const RCODES: [(u16, &str); 7] = [
    (rcode::NOERROR, "NOERROR"),
    (rcode::FORMERR, "FORMERR"),
    (rcode::SERVFAIL, "SERVFAIL"),
    (rcode::NXDOMAIN, "NXDOMAIN"),
    (rcode::NOTIMP, "NOTIMP"),
    (rcode::REFUSED, "REFUSED"),
    (rcode::BADVERS, "BADVERS"),
];

/// Where `n` stands in a table of (number, label), or the table's length for `other`.
pub(super) fn index_in(table: &[(u16, &str)], n: u16) -> usize {
    table
        .iter()
        .position(|(x, _)| *x == n)
        .unwrap_or(table.len())
}

/// The label of `n` in a table of (number, label), or `other`.
fn label_in(table: &'static [(u16, &'static str)], n: u16) -> &'static str {
    label_at(table, index_in(table, n))
}

/// The label of an [`index_in`] index: past the table's end, `other`.
pub(super) fn label_at(table: &'static [(u16, &'static str)], i: usize) -> &'static str {
    table.get(i).map_or("other", |(_, l)| l)
}

/// The label for a query type number.
pub fn qtype_label(qtype: u16) -> &'static str {
    label_in(&QTYPES, qtype)
}

/// The number of a query type with a label of its own (`AAAA` → 28), any case.
pub fn qtype_number(label: &str) -> Option<u16> {
    QTYPES
        .iter()
        .find(|(_, l)| l.eq_ignore_ascii_case(label))
        .map(|(n, _)| *n)
}

/// The label for a response code number.
pub fn rcode_label(rcode: u16) -> &'static str {
    label_in(&RCODES, rcode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_bounded_sets() {
        assert_eq!(qtype_label(1), "A");
        assert_eq!(qtype_label(65), "HTTPS");
        assert_eq!(qtype_number("https"), Some(65));
        assert_eq!(qtype_number("other"), None);
        let others: std::collections::HashSet<_> = (0..=u16::MAX).map(qtype_label).collect();
        assert_eq!(others.len(), QTYPES.len() + 1);
        assert_eq!(rcode_label(3), "NXDOMAIN");
        assert_eq!(rcode_label(4095), "other");
    }
}
