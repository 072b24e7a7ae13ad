//! Unbound: `records` as local zones and local data, `forwarders` as
//! forward zones.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;

use super::rows::{resolved, rrs};
use super::text::{comment, wildcard_parent};
use crate::names;
use crate::zone::{Data, ZoneTable};

const UNBOUND_HEADER: &str = "\
amldns records as Unbound local data: include it from unbound.conf, or put it
in /etc/unbound/unbound.conf.d/.
Each private-link zone apex is a \"transparent\" local zone: a listed name
answers from here, with NODATA and the zone's SOA for the types it lacks
(AAAA...), never a public answer, and every other name under the apex is
resolved as before. A name in a public zone (api.azureml.ms...), whose SOA is
Azure's, is a transparent zone of its own with an SOA of its own, where amldns
gives Azure's SOA with its NODATA. (\"typetransparent\" would
resolve a listed name's other types upstream; \"static\" would answer NXDOMAIN
for every name not listed.)
Unbound does not follow a local CNAME to local data, so an alias whose chain
ends in this table is given its final addresses. An alias of a name outside
the table, and a wildcard *.x, become \"redirect\" zones, which unlike amldns
also answer every name below them (and x itself, for a wildcard); names
listed below a wildcard get a transparent zone of their own to keep their
answers.";

/// `--format unbound`: a local zone per apex, wildcard and alias out of the
/// table, each with an SOA, and the local data.
pub(super) fn records(table: &ZoneTable) -> String {
    let wildcard_parents: BTreeSet<&str> = table
        .nodes()
        .filter_map(|n| wildcard_parent(n.name))
        .collect();
    // Unbound takes the zones in any order, but one type per zone: a
    // redirect (an alias out of the table, a wildcard) wins over the
    // transparent zone of an apex or of a name below a wildcard. Each
    // zone's SOA numbers are those of the apex its names are under.
    let mut zones: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut zone = |name, kind: &'static str, apex| {
        let k = zones.entry(name).or_insert((kind, apex));
        if kind == "redirect" {
            k.0 = kind;
        }
    };
    let mut aliases = BTreeSet::new();
    let mut data = String::new();
    for n in table.nodes() {
        let apex = table.apex(n);
        // A public zone's SOA is Azure's, which Unbound gets from upstream:
        // a name there is a zone of its own, whose SOA is no one else's.
        let home = match names::is_public_zone(apex) {
            true => wildcard_parent(n.name).unwrap_or(n.name),
            false => apex,
        };
        zone(home, "transparent", apex);
        let end = resolved(table, n);
        let owner = match wildcard_parent(n.name) {
            Some(parent) => {
                zone(parent, "redirect", apex);
                parent
            }
            None => {
                let parent = n.name.split_once('.').map_or("", |(_, p)| p);
                if wildcard_parents.contains(parent) {
                    zone(n.name, "transparent", apex);
                }
                n.name
            }
        };
        // Only a redirect zone makes Unbound resolve a CNAME target.
        if let Data::Alias(_) = end {
            zone(owner, "redirect", apex);
            aliases.insert(owner);
        }
        for (t, v) in rrs(end) {
            let _ = writeln!(data, "    local-data: \"{owner}. {} IN {t} {v}\"", n.ttl);
        }
    }
    let mut out = String::new();
    comment(&mut out, "#", UNBOUND_HEADER);
    out.push_str("server:\n");
    for (name, (kind, _)) in &zones {
        let _ = writeln!(out, "    local-zone: \"{name}.\" {kind}");
    }
    // Without an SOA in its local data, Unbound answers NODATA with none
    // (RFC 2308 §3 wants one); at a private-link apex it is amldns's own.
    // An alias's zone has no NODATA to give, and Unbound takes no other
    // data beside its CNAME.
    for (name, (_, apex)) in zones.iter().filter(|(z, _)| !aliases.contains(*z)) {
        let soa = table.soa(apex);
        let _ = writeln!(
            out,
            "    local-data: \"{name}. {min} IN SOA ns.{name}. hostmaster.{name}. {} {} {} {} {min}\"",
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            min = soa.minimum
        );
    }
    out.push_str(&data);
    out
}

/// What Unbound needs besides the forward zones: where the file goes, and how
/// amldns's private, unsigned answers get through.
pub(super) const FORWARDERS_NOTES: &str = "\
Put it in /etc/unbound/unbound.conf.d/ (or include: it); check with
unbound-checkconf. private-domain keeps amldns's private answers when
private-address (DNS-rebind protection) is set; domain-insecure skips DNSSEC
validation of amldns's unsigned answers, which would fail if one of these
zones were signed in public DNS.";

/// A `forward-zone:` clause per zone, after the server options that let
/// amldns's answers through.
pub(super) fn forwarders(out: &mut String, zones: &[String], to: &[SocketAddr]) {
    out.push_str("server:\n");
    if to.iter().any(|a| a.ip().is_loopback()) {
        // Unbound never sends to 127.0.0.0/8 or ::1 by default
        // (do-not-query-localhost: yes), forward-addr included: the
        // forwarders would be ignored. This option is server-wide: it also
        // lets Unbound follow a delegation to a loopback address.
        out.push_str(
            "    # amldns is on this host: without this, Unbound ignores a loopback forward-addr.\n\
             \x20   do-not-query-localhost: no\n",
        );
    }
    for z in zones {
        let _ = writeln!(out, "    private-domain: \"{z}.\"");
    }
    for z in zones {
        let _ = writeln!(out, "    domain-insecure: \"{z}.\"");
    }
    for z in zones {
        let _ = writeln!(out, "forward-zone:\n    name: \"{z}.\"");
        for a in to {
            let _ = match a.port() {
                53 => writeln!(out, "    forward-addr: {}", a.ip()),
                p => writeln!(out, "    forward-addr: {}@{p}", a.ip()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::export::tests::table;
    use crate::export::{Format, render};

    #[test]
    fn unbound_gives_each_zone_one_type() {
        let text = render(&table(), Format::Unbound, &[]);
        let zones: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("local-zone: "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let unique: BTreeSet<&&str> = zones.iter().collect();
        assert_eq!(zones.len(), unique.len(), "{text}");
        // The alias out of the table is its own apex: redirect, not both.
        assert!(text.contains("local-zone: \"out.corp.example.\" redirect"));
        assert!(!text.contains("local-zone: \"out.corp.example.\" transparent"));
    }
}
