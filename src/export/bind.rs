//! BIND: `records` as a response policy zone, `forwarders` as forward zones.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::rows::{resolved, rrs};
use super::text::comment;
use crate::zone::{Soa, ZoneTable};

/// The policy zone's name: never looked up by clients (RPZ).
const RPZ_ZONE: &str = "amldns.rpz";

const RPZ_HEADER: &str = "\
amldns records as a BIND response policy zone (RPZ): a recursive BIND answers
these names from here and resolves every other name as before.
named.conf:
  options {
      response-policy { zone \"amldns.rpz\"; } qname-wait-recurse no break-dnssec yes;
  };
  zone \"amldns.rpz\" { type primary; file \"/etc/bind/db.amldns.rpz\"; allow-query { none; }; };
Why a policy zone: a primary zone \"api.azureml.ms\" would answer NXDOMAIN for
every name under it that it does not list (eastus.api.azureml.ms, other
workspaces); policy records replace only the names listed. Like amldns, a
listed name gets NODATA for the types it lacks (AAAA...), never a public answer.
qname-wait-recurse no: answer without asking upstream first; break-dnssec yes:
rewrite even if the public zone is ever signed.
BIND resolves the target of a policy CNAME without the policy (it would ask
upstream), so an alias whose chain ends in this table is given its final
addresses; an alias out of the table stays a CNAME, resolved upstream.
Differs from amldns: a wildcard *.x here also matches names deeper below x.
Check: named-checkzone amldns.rpz db.amldns.rpz";

/// An RPZ zone (BIND 9.10+; also read by Unbound, Knot Resolver, PowerDNS
/// Recursor): owners are the names relative to the policy zone, and a
/// record whose data is not one of RPZ's special values is local data.
pub(super) fn records(table: &ZoneTable) -> String {
    let mut out = String::new();
    comment(&mut out, ";", RPZ_HEADER);
    let _ = writeln!(out, "$ORIGIN {RPZ_ZONE}.");
    rpz_apex(&mut out, table.soa(RPZ_ZONE));
    for n in table.nodes() {
        for (t, v) in rrs(resolved(table, n)) {
            let _ = writeln!(out, "{}\t{}\tIN\t{t}\t{v}", n.name, n.ttl);
        }
    }
    out
}

/// The policy zone's own apex records (RFC 1035 §5.2): nobody asks for it,
/// so its SOA and NS name no real server.
fn rpz_apex(out: &mut String, soa: Soa<'_>) {
    let _ = writeln!(
        out,
        "@\t{}\tIN\tSOA\tlocalhost. hostmaster.localhost. {} {} {} {} {}",
        soa.minimum, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
    );
    let _ = writeln!(out, "@\t{}\tIN\tNS\tlocalhost.", soa.minimum);
}

/// What BIND needs besides the forward zones: where the file goes, and how
/// amldns's private, unsigned answers get through.
pub(super) const FORWARDERS_NOTES: &str = "\
Include it from named.conf: include \"/etc/bind/named.conf.amldns\";
If the options block has deny-answer-addresses (DNS-rebind protection), add
these zones to its except-from list, or BIND drops amldns's private answers.
amldns's answers are unsigned: with dnssec-validation on, should one of these
zones be signed in public DNS, list it in validate-except { ... };.";

/// A `zone … { type forward; }` statement per zone.
pub(super) fn forwarders(out: &mut String, zones: &[String], to: &[SocketAddr]) {
    let forwarders: String = to
        .iter()
        .map(|a| match a.port() {
            53 => format!("{}; ", a.ip()),
            p => format!("{} port {p}; ", a.ip()),
        })
        .collect();
    for z in zones {
        let _ = writeln!(
            out,
            "zone \"{z}\" {{ type forward; forward only; forwarders {{ {forwarders}}}; }};"
        );
    }
}
