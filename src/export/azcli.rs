//! Azure Private DNS, from the Azure CLI: `records` as zones of their own
//! ([`super::private_zones`]) linked to a VNet, which a bash script made and
//! keeps; or, with `--existing-zones`, as record sets in the zones a landing
//! zone keeps centrally ([`super::existing_zones`]). The program is
//! `scripts/records.sh`.

use super::existing_zones::ExistingZones;
use super::private_zones::private_zones;
use super::text::fill;
use crate::zone::ZoneTable;

/// Filled by [`script`]; its placeholders are described at its top.
const RECORDS: &str = include_str!("scripts/records.sh");

/// `--format azcli`: the script that makes, links and keeps the zones.
pub(super) fn records(table: &ZoneTable) -> String {
    script(table, "")
}

/// `--format azcli --existing-zones`: the same script with its mode, the
/// subscription and the resource group set, over the environment's.
pub(super) fn records_existing(table: &ZoneTable, at: &ExistingZones) -> String {
    let preset = format!(
        "# Written by amldns records --existing-zones: these win over the environment.\n\
         ZONES=existing SUBSCRIPTION='{}' RG='{}'\n",
        at.subscription, at.resource_group
    );
    script(table, &preset)
}

fn script(table: &ZoneTable, preset: &str) -> String {
    let pz = private_zones(table);
    let want: Vec<String> = pz
        .zones
        .iter()
        .flat_map(|(zone, sets)| {
            sets.iter().map(move |s| {
                format!(
                    "{zone}\t{}\t{}\t{}\t{}",
                    s.name,
                    s.kind.to_ascii_lowercase(),
                    s.ttl,
                    s.addrs.join(",")
                )
            })
        })
        .collect();
    fill(
        RECORDS,
        &[
            ("private_zones", &pz.about()),
            ("existing_zones", preset),
            ("want", &want.join("\n")),
        ],
    )
}
