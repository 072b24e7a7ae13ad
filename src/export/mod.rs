//! `amldns records`: the effective table in the forms people and
//! other DNS servers read — a table, JSON, zone files, hosts lines, and config
//! for BIND, Unbound, dnsmasq, Windows DNS and Azure Private DNS; and
//! `amldns forwarders` ([`forwarders`]): the conditional forwarders an
//! on-premises BIND, Unbound, dnsmasq or Windows DNS needs to send amldns's
//! zones to it.
//!
//! One file per peer server holds both its outputs (`bind`, `unbound`,
//! `dnsmasq`, `powershell` for Windows DNS, `azcli` for Azure Private DNS),
//! next to the forms that are not any server's config (`table`, `zone`,
//! `hosts`). The PowerShell and bash programs are files under `scripts/`,
//! filled by `fill`.
//!
//! Pure: a [`ZoneTable`] in, text out. Each server has its own way to hold a
//! few names without capturing their neighbours (a zone of its own for a
//! public name would hide every other name under it, which must keep
//! resolving publicly) and without sending their other types upstream (a
//! name amldns holds is answered here for every type, NODATA if need be);
//! each output's header says which way it uses and where it still differs
//! from amldns, so that nobody finds out in production.

use std::net::IpAddr;

use crate::zone::ZoneTable;

mod azcli;
mod bind;
pub mod catalogue;
mod dnsmasq;
mod existing_zones;
pub mod forwarders;
mod hosts;
mod powershell;
mod private_zones;
mod rows;
mod table;
mod text;
mod unbound;
pub mod zone;

pub use existing_zones::{BadExistingZones, ExistingZones};
pub use rows::{Answers, Row, row_for, rows};

/// The forms `amldns records --format` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One object per name.
    Json,
    /// Master files (RFC 1035 §5), one per zone apex, with SOA and NS.
    Zone,
    /// /etc/hosts lines (addresses only; wildcards cannot be expressed).
    Hosts,
    /// A BIND response policy zone (RPZ): the names, not whole zones.
    Bind,
    /// Unbound `local-zone`/`local-data` lines.
    Unbound,
    /// dnsmasq `host-record`/`address`/`local` lines.
    Dnsmasq,
    /// Windows DNS PowerShell: each privatelink.* zone whole, any other name a zone of its own.
    Powershell,
    /// Azure CLI (bash): the same zones as Azure Private DNS zones, linked to a VNet.
    Azcli,
}

/// The whole output of `amldns records --format <format>`. `ns_addrs`: the
/// addresses amldns gives `ns.<apex>` ([`crate::resolve::ns_addrs`]), for the
/// zone files' NS.
pub fn render(table: &ZoneTable, format: Format, ns_addrs: &[IpAddr]) -> String {
    match format {
        Format::Table => table::table(&rows(table)),
        Format::Json => table::json(&rows(table)),
        Format::Zone => zone::stream(table, ns_addrs),
        Format::Hosts => hosts::records(table),
        Format::Bind => bind::records(table),
        Format::Unbound => unbound::records(table),
        Format::Dnsmasq => dnsmasq::records(table),
        Format::Powershell => powershell::records(table),
        Format::Azcli => azcli::records(table),
    }
}

/// A script that writes the table's record sets into existing Azure Private
/// DNS zones ([`ExistingZones`]).
pub type ExistingZonesScript = fn(&ZoneTable, &ExistingZones) -> String;

/// The script `amldns records --format <format> --existing-zones …` prints;
/// `None` for a format that has no such mode.
pub fn existing_zones_script(format: Format) -> Option<ExistingZonesScript> {
    match format {
        Format::Azcli => Some(azcli::records_existing),
        Format::Powershell => Some(powershell::records_existing),
        _ => None,
    }
}

/// `rows` as `--format table` or `json` print them; `None` for a format
/// that needs the whole table (zone files and the like).
pub fn render_rows(rows: &[Row], format: Format) -> Option<String> {
    match format {
        Format::Table => Some(table::table(rows)),
        Format::Json => Some(table::json(rows)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::path::Path;

    pub(super) const G: &str = crate::fixtures::GUID;

    /// A workspace with a wildcard and an instance under it, an AAAA record,
    /// a CNAME into the table and a CNAME out of it.
    pub(super) fn table() -> ZoneTable {
        let text = format!(
            "[[workspace]]\nname = \"mlw\"\nid = \"{G}\"\nregion = \"eastus\"\nip = \"10.1.0.5\"\n\
             instances = [\"ci-1\"]\ninstances_wildcard = true\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n\
             aaaa = [\"fd00::9\"]\n\
             [[record]]\nname = \"alias.corp.example\"\ncname = \"st.privatelink.blob.core.windows.net\"\n\
             [[record]]\nname = \"out.corp.example\"\ncname = \"www.example.com\"\n"
        );
        let c = config::parse(Path::new("t.toml"), &text).unwrap();
        crate::snapshot::build(&c, &Default::default(), 3)
            .unwrap()
            .snapshot
            .table
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    /// What each format says for a plain name, a wildcard, a name below the
    /// wildcard, AAAA, an alias into the table and one out of it.
    #[test]
    fn each_format_expresses_every_kind_of_name() {
        let t = table();
        let api = format!("{G}.workspace.eastus.api.azureml.ms");
        let cases: Vec<(Format, Vec<String>, Vec<&str>)> = vec![
            (
                Format::Bind,
                vec![
                    "$ORIGIN amldns.rpz.".into(),
                    "@\t60\tIN\tSOA\tlocalhost. hostmaster.localhost. 3 3600 300 2419200 60".into(),
                    format!("{api}\t60\tIN\tA\t10.1.0.5"),
                    "*.eastus.instances.azureml.ms\t60\tIN\tA\t10.1.0.5".into(),
                    "st.privatelink.blob.core.windows.net\t60\tIN\tAAAA\tfd00::9".into(),
                    // BIND would not apply the policy to the target.
                    "alias.corp.example\t60\tIN\tA\t10.1.0.9".into(),
                    "out.corp.example\t60\tIN\tCNAME\twww.example.com.".into(),
                ],
                vec![],
            ),
            (
                Format::Unbound,
                vec![
                    "server:".into(),
                    // A public zone's name is a zone of its own, with an SOA.
                    format!("    local-zone: \"{api}.\" transparent"),
                    format!(
                        "    local-data: \"{api}. 60 IN SOA ns.{api}. hostmaster.{api}. 3 3600 300 2419200 60\""
                    ),
                    format!("    local-data: \"{api}. 60 IN A 10.1.0.5\""),
                    "    local-data: \"privatelink.blob.core.windows.net. 60 IN SOA \
                     ns.privatelink.blob.core.windows.net. hostmaster.privatelink.blob.core.windows.net. \
                     3 3600 300 2419200 60\""
                        .into(),
                    "    local-zone: \"eastus.instances.azureml.ms.\" redirect".into(),
                    "    local-data: \"eastus.instances.azureml.ms. 60 IN A 10.1.0.5\"".into(),
                    "    local-zone: \"ci-1.eastus.instances.azureml.ms.\" transparent".into(),
                    "    local-data: \"ci-1.eastus.instances.azureml.ms. 60 IN A 10.1.0.5\"".into(),
                    "    local-data: \"st.privatelink.blob.core.windows.net. 60 IN AAAA fd00::9\""
                        .into(),
                    // Into the table: the final addresses; out: a redirect.
                    "    local-data: \"alias.corp.example. 60 IN A 10.1.0.9\"".into(),
                    "    local-data: \"alias.corp.example. 60 IN AAAA fd00::9\"".into(),
                    "    local-zone: \"out.corp.example.\" redirect".into(),
                    "    local-data: \"out.corp.example. 60 IN CNAME www.example.com.\"".into(),
                ],
                vec![
                    "local-zone: \"instances.azureml.ms.\" static",
                    "local-zone: \"api.azureml.ms.\"",
                    "\"out.corp.example. 60 IN SOA",
                ],
            ),
            (
                Format::Dnsmasq,
                vec![
                    format!("host-record={api},10.1.0.5,60"),
                    format!("local=/{api}/"),
                    "address=/eastus.instances.azureml.ms/10.1.0.5".into(),
                    "local=/eastus.instances.azureml.ms/".into(),
                    "host-record=ci-1.eastus.instances.azureml.ms,10.1.0.5,60".into(),
                    "host-record=st.privatelink.blob.core.windows.net,fd00::9,60".into(),
                    "host-record=alias.corp.example,10.1.0.9,60".into(),
                ],
                vec!["out.corp.example,", "local=/out.corp.example/"],
            ),
            (
                Format::Powershell,
                vec![
                    "    \"privatelink.blob.core.windows.net\" = @(".into(),
                    "        \"st AAAA 60 fd00::9\"".into(),
                    "    \"privatelink.api.azureml.ms\" = @(".into(),
                    format!("        \"{G}.workspace.eastus A 60 10.1.0.5\""),
                    "    \"eastus.instances.azureml.ms\" = @(".into(),
                    "        \"* A 60 10.1.0.5\"".into(),
                    "    \"alias.corp.example\" = @(".into(),
                    "        \"@ AAAA 60 fd00::9\"".into(),
                ],
                vec!["\"out.corp.example\" = @(", "\"api.azureml.ms\" = @("],
            ),
            (
                Format::Azcli,
                vec![
                    "privatelink.blob.core.windows.net\tst\taaaa\t60\tfd00::9".into(),
                    format!("privatelink.api.azureml.ms\t{G}.workspace.eastus\ta\t60\t10.1.0.5"),
                    "eastus.instances.azureml.ms\t*\ta\t60\t10.1.0.5".into(),
                    "alias.corp.example\t@\ta\t60\t10.1.0.9".into(),
                ],
                vec!["out.corp.example\t", "\napi.azureml.ms\t"],
            ),
        ];
        for (format, want, never) in cases {
            let text = render(&t, format, &[]);
            let body = lines(&text);
            for w in &want {
                assert!(
                    body.contains(&w.as_str()),
                    "{format:?} lacks {w:?}:\n{text}"
                );
            }
            for n in never {
                assert!(!text.contains(n), "{format:?} has {n:?}:\n{text}");
            }
            // A name that cannot be expressed is said so, not dropped silently.
            if matches!(format, Format::Dnsmasq | Format::Powershell | Format::Azcli) {
                assert!(
                    text.contains("# out.corp.example: CNAME www.example.com, which is not local"),
                    "{format:?}:\n{text}"
                );
            }
        }
    }

    /// Every placeholder of the scripts is filled, with `--existing-zones`
    /// too.
    #[test]
    fn no_placeholder_left() {
        let t = table();
        let at: ExistingZones = "sub/rg".parse().unwrap();
        for format in [Format::Powershell, Format::Azcli] {
            let script = existing_zones_script(format).unwrap();
            for text in [render(&t, format, &[]), script(&t, &at)] {
                assert!(!text.contains("{{"), "{format:?}:\n{text}");
            }
        }
    }
}
