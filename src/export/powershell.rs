//! Windows DNS, from PowerShell: `records` as zones of their own
//! ([`super::private_zones`]) that a script made and keeps, `forwarders` as
//! conditional forwarders. And Azure Private DNS, from the Az PowerShell
//! modules: with `--existing-zones`, `records` as record sets in the zones a
//! landing zone keeps centrally ([`super::existing_zones`]). The programs are
//! `scripts/records.ps1`, `scripts/records-existing.ps1` and
//! `scripts/forwarders.ps1`; both `records` scripts hold the same `$Want`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::existing_zones::ExistingZones;
use super::private_zones::{PrivateZones, private_zones};
use super::text::fill;
use crate::zone::ZoneTable;

/// Filled by [`records`]; its placeholders are described at its top.
const RECORDS: &str = include_str!("scripts/records.ps1");

/// Filled by [`records_existing`]; its placeholders are described at its top.
const RECORDS_EXISTING: &str = include_str!("scripts/records-existing.ps1");

/// Filled by [`forwarders`]; its placeholders are described at its top.
const FORWARDERS: &str = include_str!("scripts/forwarders.ps1");

/// `--format powershell`: the script that makes and keeps the zones.
pub(super) fn records(table: &ZoneTable) -> String {
    let pz = private_zones(table);
    fill(
        RECORDS,
        &[("private_zones", &pz.about()), ("want", &want(&pz))],
    )
}

/// `--format powershell --existing-zones`: the script that writes the record
/// sets into the zones that exist in `at`'s resource group.
pub(super) fn records_existing(table: &ZoneTable, at: &ExistingZones) -> String {
    let pz = private_zones(table);
    fill(
        RECORDS_EXISTING,
        &[
            ("private_zones", &pz.about()),
            ("want", &want(&pz)),
            ("subscription", &at.subscription),
            ("resource_group", &at.resource_group),
        ],
    )
}

/// The entries of both scripts' `$Want`: zone -> its records, each
/// "name type ttl address".
fn want(pz: &PrivateZones) -> String {
    let mut want = String::new();
    for (zone, sets) in &pz.zones {
        let _ = writeln!(want, "    \"{zone}\" = @(");
        for set in sets {
            for a in &set.addrs {
                let _ = writeln!(
                    want,
                    "        \"{} {} {} {a}\"",
                    set.name, set.kind, set.ttl
                );
            }
        }
        want.push_str("    )\n");
    }
    want
}

/// What Windows DNS needs besides the conditional forwarders: where to run
/// the script.
pub(super) const FORWARDERS_NOTES: &str = "\
Run in an elevated PowerShell on the DNS server (DnsServer module); it
adds a conditional forwarder per zone, or updates one that exists. On a domain
controller, add -ReplicationScope Forest to share them with every DNS server.";

/// An address `forwarders` was given that is not on port 53.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0}: Windows DNS conditional forwarders send to port 53 only; give amldns's address without a port"
)]
pub struct PortNot53(pub SocketAddr);

/// A conditional forwarder per zone, to `to`, which must all be on port 53.
pub(super) fn forwarders(
    out: &mut String,
    zones: &[String],
    to: &[SocketAddr],
) -> Result<(), PortNot53> {
    if let Some(a) = to.iter().find(|a| a.port() != 53) {
        return Err(PortNot53(*a));
    }
    let master_servers = to
        .iter()
        .map(|a| format!("\"{}\"", a.ip()))
        .collect::<Vec<_>>()
        .join(", ");
    let zones: String = zones.iter().map(|z| format!("    \"{z}\"\n")).collect();
    out.push_str(&fill(
        FORWARDERS,
        &[("master_servers", &master_servers), ("zones", &zones)],
    ));
    Ok(())
}
