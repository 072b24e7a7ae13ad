//! `--format zone`: master files (RFC 1035 §5), one per zone apex, for a
//! server that is to be authoritative for the zones amldns answers in, on
//! one stream or (`--out-dir`) as one file each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::rows::rrs;
use super::text::comment;
use crate::codec;
use crate::resolve::NS_LABEL;
use crate::zone::{Data, ZoneTable};

const ZONE_HEADER: &str = "\
amldns records as master files (RFC 1035 §5), one per zone apex, each with the
SOA and NS amldns serves at that apex; each loads in named-checkzone.
`amldns records --format zone --out-dir DIR` writes each to DIR/<zone>.zone;
on one stream, each starts at a line \"; ==== zone <zone> (<zone>.zone)\".
A server loading them is authoritative for every name under each apex
(api.azureml.ms included) and answers NXDOMAIN for the ones not listed, which
amldns forwards. For a resolver, use --format bind, unbound or dnsmasq.";

/// What a zone's NS record says when amldns has no address to give
/// `ns.<apex>` (it listens only on wildcard addresses): an in-zone NS target
/// without an address record does not load (RFC 1912 §2.3; named-checkzone
/// rejects it), so the NS names a host outside every zone instead.
const NS_WITHOUT_ADDRESS: &str = "localhost.";

/// One master file per zone apex (RFC 1035 §5), by apex. The apex carries the SOA amldns serves ([`codec::soa`]) and an NS
/// `ns.<apex>` ([`NS_LABEL`]) with `ns_addrs` as its addresses, as amldns
/// answers them at a private-link apex; with no address, an NS out of the
/// zone (`localhost.`). Names that cannot be held are in `notes`.
pub fn zone_files<'t>(table: &'t ZoneTable, ns_addrs: &[IpAddr]) -> ZoneFiles<'t> {
    let mut files = ZoneFiles::default();
    for n in table.nodes() {
        let apex = table.apex(n);
        // A CNAME cannot share its owner with the apex's SOA and NS
        // (RFC 1034 §3.6.2); `[[record]]` names outside privatelink zones
        // are their own apex.
        if let (Data::Alias(t), true) = (n.data, n.name == apex) {
            files.notes.push(format!(
                "{}: CNAME {t} at its own zone apex, which a zone file cannot hold",
                n.name
            ));
            continue;
        }
        let text = files
            .zones
            .entry(apex)
            .or_insert_with(|| apex_text(table, apex, ns_addrs));
        for (t, v) in rrs(n.data) {
            let _ = writeln!(text, "{}.\t{}\tIN\t{t}\t{v}", n.name, n.ttl);
        }
    }
    files
}

/// [`zone_files`]' result.
#[derive(Debug, Default)]
pub struct ZoneFiles<'t> {
    /// Apex → the file's text.
    pub zones: BTreeMap<&'t str, String>,
    /// Names left out, with why.
    pub notes: Vec<String>,
}

/// A zone file's first lines: where it comes from, `$ORIGIN`, SOA, NS and
/// the NS target's addresses.
fn apex_text(table: &ZoneTable, apex: &str, ns_addrs: &[IpAddr]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; zone {apex}: from `amldns records --format zone`; check: named-checkzone {apex} {apex}.zone"
    );
    let _ = writeln!(out, "$ORIGIN {apex}.");
    let soa = codec::soa(table, apex);
    let _ = writeln!(out, "{soa}");
    let ttl = soa.ttl;
    if ns_addrs.is_empty() {
        let _ = writeln!(
            out,
            "; amldns listens on wildcard addresses only: ns.{apex} has no address to give,\n\
             ; so the NS names {NS_WITHOUT_ADDRESS} Replace it with this server's name."
        );
        let _ = writeln!(out, "{apex}.\t{ttl}\tIN\tNS\t{NS_WITHOUT_ADDRESS}");
        return out;
    }
    let ns = format!("{NS_LABEL}.{apex}.");
    let _ = writeln!(out, "{apex}.\t{ttl}\tIN\tNS\t{ns}");
    for a in ns_addrs {
        let t = if a.is_ipv6() { "AAAA" } else { "A" };
        let _ = writeln!(out, "{ns}\t{ttl}\tIN\t{t}\t{a}");
    }
    out
}

/// The zone files on one stream, each after a line that names it.
pub(super) fn stream(table: &ZoneTable, ns_addrs: &[IpAddr]) -> String {
    let files = zone_files(table, ns_addrs);
    let mut out = String::new();
    comment(&mut out, ";", ZONE_HEADER);
    for note in &files.notes {
        let _ = writeln!(out, "; {note}");
    }
    for (zone, text) in files.zones {
        let _ = write!(out, "\n; ==== zone {zone} ({zone}.zone)\n{text}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::zone_files;
    use crate::codec;
    use crate::export::tests::table;
    use crate::export::{Format, render};

    /// The zone files carry the SOA and NS amldns serves: MNAME and NS
    /// `ns.<apex>`, with the listen addresses as its addresses.
    #[test]
    fn zone_files_carry_amldns_s_soa_and_ns() {
        let t = table();
        let addrs: [IpAddr; 2] = ["10.1.0.4".parse().unwrap(), "fd00::4".parse().unwrap()];
        let files = zone_files(&t, &addrs);
        let blob = "privatelink.blob.core.windows.net";
        let text = &files.zones[blob];
        for want in [
            format!("$ORIGIN {blob}.\n"),
            format!("{}\n", codec::soa(&t, blob)),
            format!("{blob}. 60 IN SOA ns.{blob}. hostmaster.{blob}. 3 3600 300 2419200 60\n"),
            format!("{blob}.\t60\tIN\tNS\tns.{blob}.\n"),
            format!("ns.{blob}.\t60\tIN\tA\t10.1.0.4\n"),
            format!("ns.{blob}.\t60\tIN\tAAAA\tfd00::4\n"),
            format!("st.{blob}.\t60\tIN\tAAAA\tfd00::9\n"),
        ] {
            assert!(text.contains(&want), "{want:?}:\n{text}");
        }
        assert_eq!(
            files.notes,
            [
                "alias.corp.example: CNAME st.privatelink.blob.core.windows.net at its own zone apex, which a zone file cannot hold",
                "out.corp.example: CNAME www.example.com at its own zone apex, which a zone file cannot hold",
            ]
        );
        // Listening on wildcard addresses only: no address for ns.<apex>,
        // so an NS out of the zone.
        let files = zone_files(&t, &[]);
        let text = &files.zones[blob];
        assert!(
            text.contains(&format!("{blob}.\t60\tIN\tNS\tlocalhost.\n")),
            "{text}"
        );
        assert!(!text.contains(&format!("\tns.{blob}.")), "{text}");

        let zone = render(&t, Format::Zone, &addrs);
        assert!(
            zone.starts_with("; amldns records as master files"),
            "{zone}"
        );
        assert!(
            zone.contains(&format!(
                "\n\n; ==== zone {blob} ({blob}.zone)\n; zone {blob}: "
            )),
            "{zone}"
        );
        assert!(zone.contains(
            "; alias.corp.example: CNAME st.privatelink.blob.core.windows.net at its own zone apex"
        ));
        assert!(!zone.contains("$ORIGIN alias.corp.example."), "{zone}");
    }
}
