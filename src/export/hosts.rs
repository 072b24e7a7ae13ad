//! `--format hosts`: /etc/hosts lines, for hosts files and the servers that
//! read them (dnsmasq's `addn-hosts=`, CoreDNS's hosts plugin).

use std::fmt::Write as _;

use super::rows::resolved;
use super::text::comment;
use crate::zone::{Data, ZoneTable};

const HOSTS_HEADER: &str = "\
amldns records as /etc/hosts lines: append them to /etc/hosts (or to a file
that dnsmasq's addn-hosts= or CoreDNS's hosts plugin reads).
A hosts file holds addresses only: a name gets no NODATA for the types it
lacks, so a resolver may ask upstream for them; an alias whose chain ends in
this table is given its final addresses, and a wildcard or an alias out of
the table cannot be written (noted). The TTL is the reader's, not amldns's.";

/// `--format hosts`: an address and a name per line.
pub(super) fn records(table: &ZoneTable) -> String {
    let mut out = String::new();
    comment(&mut out, "#", HOSTS_HEADER);
    for n in table.nodes() {
        if n.name.starts_with("*.") {
            let _ = writeln!(
                out,
                "# {} is a wildcard: hosts files cannot hold it",
                n.name
            );
            continue;
        }
        match resolved(table, n) {
            Data::Addrs { v4, v6 } => {
                for a in v4
                    .iter()
                    .map(ToString::to_string)
                    .chain(v6.iter().map(ToString::to_string))
                {
                    let _ = writeln!(out, "{a}\t{}", n.name);
                }
            }
            Data::Alias(t) => {
                let _ = writeln!(out, "# {} is an alias of {t}, which is not local", n.name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::export::tests::table;
    use crate::export::{Format, render};

    #[test]
    fn hosts_form() {
        let t = table();
        let hosts = render(&t, Format::Hosts, &[]);
        assert!(hosts.contains("10.1.0.9\talias.corp.example\n"), "{hosts}");
        assert!(hosts.contains("fd00::9\talias.corp.example\n"), "{hosts}");
        assert!(
            hosts.contains("# out.corp.example is an alias of www.example.com, which is not local")
        );
        assert!(hosts.contains("# *.eastus.instances.azureml.ms is a wildcard"));

        assert!(
            hosts.starts_with("# amldns records as /etc/hosts lines"),
            "{hosts}"
        );
    }
}
