//! What doctor expects of each name: the table's rows (from a running
//! server's `/records` or a config) → the names to ask and the addresses
//! each must give; the public names that must stay public; and where two
//! replicas' tables differ. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::export::{Answers, Row};
use crate::names::Cloud;
use crate::zone::MAX_CHAIN;

/// The label asked under a wildcard (`*.eastus.instances.azureml.ms`): any
/// one label must get the wildcard's answer, and this one is nobody's name.
pub const WILDCARD_LABEL: &str = "amldns-doctor-probe";

/// What one asked name must resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Its A records, sorted: the name's own, or its CNAME chain's end.
    Addrs(Vec<IpAddr>),
    /// Not asked, and why.
    Skipped(&'static str),
}

/// One name to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// As asked: a wildcard's name with [`WILDCARD_LABEL`] in place of `*`.
    pub name: String,
    pub expect: Expect,
}

/// Every name of the table, as doctor asks it.
pub fn checks(rows: &[Row]) -> Vec<Check> {
    let by_name: BTreeMap<&str, &Answers> =
        rows.iter().map(|r| (r.name.as_str(), &r.answers)).collect();
    rows.iter()
        .map(|r| Check {
            name: match r.name.strip_prefix("*.") {
                Some(parent) => format!("{WILDCARD_LABEL}.{parent}"),
                None => r.name.clone(),
            },
            expect: expect(&by_name, &r.answers),
        })
        .collect()
}

/// The A answer a name of the table gives, following CNAMEs inside it.
fn expect(by_name: &BTreeMap<&str, &Answers>, answers: &Answers) -> Expect {
    let mut at = answers;
    for _ in 0..=MAX_CHAIN {
        if let Some(target) = &at.cname {
            let Some(next) = lookup(by_name, target) else {
                return Expect::Skipped("its CNAME leaves the table");
            };
            at = next;
            continue;
        }
        if at.a.is_empty() {
            return Expect::Skipped("AAAA only");
        }
        let mut addrs: Vec<IpAddr> = at.a.iter().filter_map(|a| a.parse().ok()).collect();
        addrs.sort();
        return Expect::Addrs(addrs);
    }
    Expect::Skipped("its CNAME chain does not end in the table")
}

/// A name as the table answers it: the exact name, else the wildcard one
/// label above.
fn lookup<'r>(by_name: &BTreeMap<&str, &'r Answers>, name: &str) -> Option<&'r Answers> {
    let name = name.trim_end_matches('.');
    by_name.get(name).copied().or_else(|| {
        let (_, parent) = name.split_once('.')?;
        by_name.get(format!("*.{parent}").as_str()).copied()
    })
}

/// Public names under the parents of the table's names, which must keep
/// resolving publicly: `<region>.<api zone>` for each region the table has
/// workspaces in, and the studio's name of each such cloud.
pub fn public_names(rows: &[Row]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for cloud in Cloud::ALL {
        let api = cloud.api_zone();
        for row in rows {
            let Some(region) = region_of(&row.name, api) else {
                continue;
            };
            out.insert(format!("{region}.{api}"));
            if let Some(studio) = cloud.inference_zone().strip_prefix("inference.") {
                out.insert(studio.to_string());
            }
        }
    }
    out.into_iter().collect()
}

/// `eastus` of `<guid>.workspace.eastus[.cert][.privatelink].api.azureml.ms`.
fn region_of<'n>(name: &'n str, api: &str) -> Option<&'n str> {
    let below = name.strip_suffix(api)?.strip_suffix('.')?;
    let below = below.strip_suffix(".privatelink").unwrap_or(below);
    let below = below.strip_suffix(".cert").unwrap_or(below);
    let (rest, region) = below.rsplit_once('.')?;
    rest.ends_with(".workspace").then_some(region)
}

/// The names two replicas answer differently (answers or TTL; where a name
/// came from does not count), or only one of them has; sorted.
pub fn differing(a: &[Row], b: &[Row]) -> Vec<String> {
    let (a, b) = (served(a), served(b));
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .cloned()
        .collect()
}

/// What a replica serves for a name: its TTL and its records, sorted.
type Served = (u32, Vec<(&'static str, String)>);

fn served(rows: &[Row]) -> BTreeMap<String, Served> {
    rows.iter()
        .map(|r| {
            let mut records = r.answers.records();
            records.sort();
            (r.name.clone(), (r.ttl, records))
        })
        .collect()
}

/// A name's answer as one field (`10.1.0.5`, `CNAME x.`), for reports.
pub fn shown(rows: &[Row], name: &str) -> String {
    rows.iter().find(|r| r.name == name).map_or_else(
        || "(none)".to_string(),
        |r| {
            r.answers
                .records()
                .into_iter()
                .map(|(t, v)| if t == "A" { v } else { format!("{t} {v}") })
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, a: &[&str], aaaa: &[&str], cname: Option<&str>) -> Row {
        Row {
            name: name.into(),
            ttl: 60,
            zone: String::new(),
            source: "record".into(),
            at: "t.toml:1:1".into(),
            answers: Answers {
                a: a.iter().map(|s| s.to_string()).collect(),
                aaaa: aaaa.iter().map(|s| s.to_string()).collect(),
                cname: cname.map(str::to_string),
            },
        }
    }

    fn ips(s: &[&str]) -> Expect {
        Expect::Addrs(s.iter().map(|a| a.parse().unwrap()).collect())
    }

    #[test]
    fn each_name_expects_its_final_addresses() {
        let rows = vec![
            row(
                "st.privatelink.blob.core.windows.net",
                &["10.1.0.9", "10.1.0.8"],
                &[],
                None,
            ),
            row(
                "st.blob.core.windows.net",
                &[],
                &[],
                Some("st.privatelink.blob.core.windows.net"),
            ),
            row("*.eastus.instances.azureml.ms", &["10.1.0.7"], &[], None),
            row(
                "ci.alias.example",
                &[],
                &[],
                Some("ci-1.eastus.instances.azureml.ms"),
            ),
            row("v6.example", &[], &["fd00::1"], None),
            row("out.example", &[], &[], Some("www.example.com")),
        ];
        let got: Vec<(String, Expect)> = checks(&rows)
            .into_iter()
            .map(|c| (c.name, c.expect))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "st.privatelink.blob.core.windows.net".into(),
                    ips(&["10.1.0.8", "10.1.0.9"])
                ),
                (
                    "st.blob.core.windows.net".into(),
                    ips(&["10.1.0.8", "10.1.0.9"])
                ),
                (
                    format!("{WILDCARD_LABEL}.eastus.instances.azureml.ms"),
                    ips(&["10.1.0.7"])
                ),
                ("ci.alias.example".into(), ips(&["10.1.0.7"])),
                ("v6.example".into(), Expect::Skipped("AAAA only")),
                (
                    "out.example".into(),
                    Expect::Skipped("its CNAME leaves the table")
                ),
            ]
        );
    }

    #[test]
    fn public_names_are_the_regions_and_the_studio() {
        let g = crate::fixtures::GUID;
        let rows = vec![
            row(
                &format!("{g}.workspace.eastus.api.azureml.ms"),
                &["10.0.0.1"],
                &[],
                None,
            ),
            row(
                &format!("{g}.workspace.westeurope.cert.privatelink.api.azureml.ms"),
                &["10.0.0.1"],
                &[],
                None,
            ),
            row(
                &format!("{g}.workspace.chinaeast2.api.ml.azure.cn"),
                &["10.0.0.1"],
                &[],
                None,
            ),
            row("eastus.notebooks.azure.net", &["10.0.0.1"], &[], None),
        ];
        assert_eq!(
            public_names(&rows),
            [
                "chinaeast2.api.ml.azure.cn",
                "eastus.api.azureml.ms",
                "ml.azure.cn",
                "ml.azure.com",
                "westeurope.api.azureml.ms",
            ]
        );
    }

    #[test]
    fn replicas_differ_by_answer_ttl_or_presence_not_by_source() {
        let a = vec![
            row("a.example", &["10.0.0.1", "10.0.0.2"], &[], None),
            row("b.example", &["10.0.0.2"], &[], None),
            row("c.example", &["10.0.0.3"], &[], None),
            row("d.example", &["10.0.0.4"], &[], None),
        ];
        let mut b = a.clone();
        b[0].answers.a.reverse();
        b[0].source = "azure".into();
        b[1].answers.a = vec!["10.0.0.9".into()];
        b[2].ttl = 30;
        b.pop();
        b.push(row("e.example", &["10.0.0.5"], &[], None));
        assert_eq!(
            differing(&a, &b),
            ["b.example", "c.example", "d.example", "e.example"]
        );
        assert!(differing(&a, &a).is_empty());
    }
}
