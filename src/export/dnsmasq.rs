//! dnsmasq: `records` as host records, addresses and local domains,
//! `forwarders` as `server=` lines.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::rows::resolved;
use super::text::{comment, wildcard_parent};
use crate::zone::{Data, ZoneTable};

const DNSMASQ_HEADER: &str = "\
amldns records as dnsmasq config: conf-file= it, or put it in /etc/dnsmasq.d/.
host-record= answers A and AAAA. Without local=/name/, dnsmasq would forward
the other types of a listed name (an IPv4-only name's AAAA, TXT...) upstream
and hand out public answers; with it, they get NODATA, as from amldns. But
local= also covers every name below the listed one: those get NXDOMAIN where
amldns would forward them.
A wildcard *.x becomes address=/x/ (with local=/x/), which unlike amldns also
answers x itself and every name at any depth below x, with the TTL of
local-ttl= (default 0); names listed below x keep their own host-record.
dnsmasq's cname= can only point at names it holds itself (not at an
address= wildcard, nor outside): an alias whose chain ends in this table is
given its final addresses, one that leaves the table is left out (noted).";

/// `--format dnsmasq`: a `host-record=` or `address=` and a `local=` per name.
pub(super) fn records(table: &ZoneTable) -> String {
    let mut out = String::new();
    comment(&mut out, "#", DNSMASQ_HEADER);
    for n in table.nodes() {
        let Data::Addrs { v4, v6 } = resolved(table, n) else {
            let _ = writeln!(
                out,
                "# {}: {}, which is not local: dnsmasq cannot hold it",
                n.name, n.data
            );
            continue;
        };
        let addrs = v4
            .iter()
            .map(ToString::to_string)
            .chain(v6.iter().map(ToString::to_string));
        match wildcard_parent(n.name) {
            Some(parent) => {
                for a in addrs {
                    let _ = writeln!(out, "address=/{parent}/{a}");
                }
                let _ = writeln!(out, "local=/{parent}/");
            }
            None => {
                for a in addrs {
                    let _ = writeln!(out, "host-record={},{a},{}", n.name, n.ttl);
                }
                let _ = writeln!(out, "local=/{}/", n.name);
            }
        }
    }
    out
}

/// What dnsmasq needs besides the `server=` lines: where the file goes, and how
/// amldns's private, unsigned answers get through.
pub(super) const FORWARDERS_NOTES: &str = "\
Put it in /etc/dnsmasq.d/ (or conf-file= it); check with dnsmasq --test.
rebind-domain-ok keeps amldns's private answers when stop-dns-rebind (DNS-rebind
protection) is on. dnsmasq's dnssec has no per-zone exception: should one
of these zones be signed in public DNS, amldns's unsigned answers would fail.";

/// A `rebind-domain-ok=` line per zone, then a `server=` line per zone and
/// address.
pub(super) fn forwarders(out: &mut String, zones: &[String], to: &[SocketAddr]) {
    for z in zones {
        let _ = writeln!(out, "rebind-domain-ok=/{z}/");
    }
    for z in zones {
        for a in to {
            let _ = match a.port() {
                53 => writeln!(out, "server=/{z}/{}", a.ip()),
                p => writeln!(out, "server=/{z}/{}#{p}", a.ip()),
            };
        }
    }
}
