//! The table as zones of their own, for the servers that answer every name
//! under a zone they hold: Windows DNS ([`super::powershell`]) and Azure
//! Private DNS ([`super::azcli`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::rows::resolved;
use super::text::{comment, wildcard_parent};
use crate::names;
use crate::zone::{Data, ZoneTable};

/// One A or AAAA record set of a [`private_zones`] zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecordSet {
    /// Relative to the zone: `@`, `*`, `x.workspace.eastus`...
    pub(super) name: String,
    /// `A` or `AAAA`.
    pub(super) kind: &'static str,
    pub(super) ttl: u32,
    /// Sorted as strings, which is how the scripts compare them.
    pub(super) addrs: Vec<String>,
}

/// [`private_zones`]' result: zone → record sets, and the names left out.
#[derive(Debug, Default)]
pub(super) struct PrivateZones {
    pub(super) zones: BTreeMap<String, Vec<RecordSet>>,
    notes: Vec<String>,
}

impl PrivateZones {
    /// What both scripts say first: how names become zones
    /// ([`PRIVATE_ZONES_TEXT`]), and the names left out.
    pub(super) fn about(&self) -> String {
        let mut out = String::new();
        comment(&mut out, "#", PRIVATE_ZONES_TEXT);
        for note in &self.notes {
            let _ = writeln!(out, "# {note}");
        }
        out
    }
}

/// The table as zones for Azure Private DNS and Windows DNS, which answer
/// every name under a zone they hold:
/// - a `privatelink.*` zone is held whole, as Azure does for private
///   endpoints: nothing public lives under it;
/// - a name in a public zone of the private-link catalogue whose names
///   public DNS CNAMEs into a private-link zone ([`names::private_twin`]:
///   `kv.vault.azure.net` to `kv.privatelink.vaultcore.azure.net`) is
///   written there, as its twin, the way a private endpoint's DNS zone group
///   writes it; when the table holds the twin itself, the twin's answer is
///   the one written;
/// - any other name in a public zone gets a zone of its own (a wildcard
///   `*.x`: the record `*` of zone `x`), since a zone `instances.azureml.ms`
///   would answer NXDOMAIN for every public name under it it does not list.
///
/// A zone apex cannot be a CNAME, and these servers do not follow one into
/// another zone for the client: aliases are given their final addresses.
pub(super) fn private_zones(table: &ZoneTable) -> PrivateZones {
    let mut out = PrivateZones::default();
    // (public zone, private-link zone) → names left to their twins.
    let mut twins: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for n in table.nodes() {
        let apex = table.apex(n);
        let twin = names::private_twin(n.name);
        let (zone, rel) = if apex.starts_with("privatelink.") {
            let rel = n
                .name
                .strip_suffix(apex)
                .and_then(|r| r.strip_suffix('.'))
                .unwrap_or("@");
            (apex.to_string(), rel.to_string())
        } else if let Some(twin) = twin {
            let entry = names::zone_of(n.name);
            let public = entry.map_or("", |z| z.public);
            let private = entry.and_then(|z| z.private).unwrap_or_default();
            if table.find(&twin).is_some_and(|t| t.name == twin) {
                *twins.entry((public, private)).or_default() += 1;
                continue;
            }
            let rel = twin
                .strip_suffix(private)
                .and_then(|r| r.strip_suffix('.'))
                .unwrap_or("@");
            (private.to_string(), rel.to_string())
        } else {
            match wildcard_parent(n.name) {
                Some(parent) => (parent.to_string(), "*".to_string()),
                None => (n.name.to_string(), "@".to_string()),
            }
        };
        let Data::Addrs { v4, v6 } = resolved(table, n) else {
            out.notes.push(format!(
                "{}: {}, which is not local: a zone cannot hold it",
                n.name, n.data
            ));
            continue;
        };
        let sets = out.zones.entry(zone).or_default();
        let v4: Vec<String> = v4.iter().map(ToString::to_string).collect();
        let v6: Vec<String> = v6.iter().map(ToString::to_string).collect();
        for (kind, mut addrs) in [("A", v4), ("AAAA", v6)] {
            if addrs.is_empty() {
                continue;
            }
            addrs.sort();
            sets.push(RecordSet {
                name: rel.clone(),
                kind,
                ttl: n.ttl,
                addrs,
            });
        }
    }
    for ((public, private), count) in twins {
        out.notes.push(format!(
            "names under {public} ({count}): left to {private}, which public DNS CNAMEs them into"
        ));
    }
    out
}

/// What both scripts say of the zones they make.
const PRIVATE_ZONES_TEXT: &str = "\
Zones: each privatelink.* zone whole, as Azure does for private endpoints. A
name in a public zone that public DNS CNAMEs into a privatelink zone
(x.api.azureml.ms to x.privatelink.api.azureml.ms, kv.vault.azure.net to
kv.privatelink.vaultcore.azure.net; see `amldns zones`) is written there as
its twin, or left to the twin the table lists. Any other name in a public
zone gets a zone of its own: a zone
\"instances.azureml.ms\" would answer NXDOMAIN for every public name under it
that it does not list, while a zone named after the name answers only it. A
wildcard *.x is the record * of zone x (x itself then gets NODATA). Aliases
are given their final addresses (a zone apex cannot be a CNAME).
Idempotent: run it again after the table changes; it writes what is
missing, corrects what differs, removes what it wrote earlier that the
table no longer has (as said above), and changes nothing else.";

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::private_zones;
    use crate::export::tests::table;

    /// A name a private endpoint lists in a public zone of the catalogue
    /// goes into the private-link zone public DNS CNAMEs it into, as the
    /// endpoint's DNS zone group would write it; its twin, when listed too,
    /// is written once.
    #[test]
    fn public_names_go_to_their_private_link_zone() {
        let c = crate::config::parse(
            Path::new("t.toml"),
            "[[record]]\nname = \"kv.vault.azure.net\"\na = [\"10.1.0.11\"]\n\
             [[record]]\nname = \"st.blob.core.windows.net\"\na = [\"10.1.0.12\"]\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.12\"]\n\
             [[record]]\nname = \"git.corp.example\"\na = [\"10.1.0.13\"]\n",
        )
        .unwrap();
        let t = crate::snapshot::table(&c).unwrap();
        let pz = private_zones(&t);
        let zones: Vec<&str> = pz.zones.keys().map(String::as_str).collect();
        assert_eq!(
            zones,
            [
                "git.corp.example",
                "privatelink.blob.core.windows.net",
                "privatelink.vaultcore.azure.net",
            ]
        );
        let kv = &pz.zones["privatelink.vaultcore.azure.net"];
        assert_eq!(
            (kv[0].name.as_str(), &kv[0].addrs[..]),
            ("kv", &["10.1.0.11".to_string()][..])
        );
        assert_eq!(pz.zones["privatelink.blob.core.windows.net"].len(), 1);
        assert!(
            pz.notes
                .iter()
                .any(|n| n.contains("names under blob.core.windows.net (1)")),
            "{:?}",
            pz.notes
        );
    }

    /// Private-link zones whole, a public name left to its twin or written
    /// as it, other names in zones of their own (a wildcard as `*` of its
    /// parent).
    #[test]
    fn private_zones_per_zone_where_safe() {
        let pz = private_zones(&table());
        let zones: Vec<&str> = pz.zones.keys().map(String::as_str).collect();
        assert_eq!(
            zones,
            [
                "alias.corp.example",
                "ci-1-22.eastus.instances.azureml.ms",
                "ci-1-22.eastus.instances.ml.azure.ms",
                "ci-1.eastus.instances.azureml.ms",
                "ci-1.eastus.instances.ml.azure.ms",
                "eastus.instances.azureml.ms",
                "eastus.instances.ml.azure.ms",
                "privatelink.api.azureml.ms",
                "privatelink.blob.core.windows.net",
                "privatelink.notebooks.azure.net",
            ]
        );
        let w = &pz.zones["eastus.instances.azureml.ms"];
        assert_eq!((w[0].name.as_str(), w[0].kind), ("*", "A"));
        // An alias into the table: its own zone, with the final addresses.
        let a = &pz.zones["alias.corp.example"];
        assert_eq!(a[0].addrs, ["10.1.0.9"]);
        assert_eq!(a[1].addrs, ["fd00::9"]);
        assert_eq!(
            pz.notes,
            [
                "out.corp.example: CNAME www.example.com, which is not local: a zone cannot hold it",
                "names under api.azureml.ms (2): left to privatelink.api.azureml.ms, which public DNS CNAMEs them into",
                "names under notebooks.azure.net (2): left to privatelink.notebooks.azure.net, which public DNS CNAMEs them into",
            ]
        );
    }
}
