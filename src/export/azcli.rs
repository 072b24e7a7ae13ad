//! Azure Private DNS, from the Azure CLI: `records` as zones of their own
//! ([`super::private_zones`]) linked to a VNet, which a bash script made and
//! keeps. The program is `scripts/records.sh`.

use super::private_zones::private_zones;
use super::text::fill;
use crate::zone::ZoneTable;

/// Filled by [`records`]; its placeholders are described at its top.
const RECORDS: &str = include_str!("scripts/records.sh");

/// `--format azcli`: the script that makes, links and keeps the zones.
pub(super) fn records(table: &ZoneTable) -> String {
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
        &[("private_zones", &pz.about()), ("want", &want.join("\n"))],
    )
}
