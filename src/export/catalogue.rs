//! `amldns zones`: the private-link catalogue ([`crate::names::catalogue`]) for
//! people, aligned columns with each source given once below them, and for
//! programs, JSON.

use std::fmt::Write as _;

use super::table::columns;
use crate::names::{Source, Zone};

/// The entries as a table; a zone without a private-link zone of its own
/// shows `-`.
pub fn text(zones: &[Zone]) -> String {
    let mut sources: Vec<Source> = Vec::new();
    let rows: Vec<[String; 5]> = zones
        .iter()
        .map(|z| {
            let n = match sources.iter().position(|s| *s == z.source) {
                Some(i) => i + 1,
                None => {
                    sources.push(z.source);
                    sources.len()
                }
            };
            [
                z.cloud.to_string(),
                z.public.to_string(),
                z.private.unwrap_or("-").to_string(),
                z.service.to_string(),
                format!("[{n}]"),
            ]
        })
        .collect();
    let mut out = columns(
        &[
            "CLOUD",
            "PUBLIC ZONE",
            "PRIVATE-LINK ZONE",
            "SERVICE",
            "SOURCE",
        ],
        &rows,
    );
    out.push('\n');
    for (i, s) in sources.iter().enumerate() {
        let _ = writeln!(
            out,
            "[{}] {}, {} (dated {})",
            i + 1,
            s.title,
            s.url,
            s.dated
        );
    }
    out
}

/// The entries as a JSON array, pretty-printed.
pub fn json(zones: &[Zone]) -> String {
    let mut s = serde_json::to_string_pretty(zones).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{Cloud, catalogue};

    #[test]
    fn every_entry_once_with_its_source() {
        let zones = catalogue(Some(Cloud::Public));
        let t = text(&zones);
        let mut lines = t.lines();
        assert!(lines.next().unwrap().starts_with("CLOUD"), "{t}");
        let rows: Vec<&str> = lines.by_ref().take_while(|l| !l.is_empty()).collect();
        assert_eq!(rows.len(), zones.len(), "{t}");
        let blob = rows
            .iter()
            .find(|r| r.contains(" blob.core.windows.net "))
            .unwrap();
        assert!(blob.contains("privatelink.blob.core.windows.net"), "{blob}");
        let instances = rows
            .iter()
            .find(|r| r.contains(" instances.azureml.ms "))
            .unwrap();
        assert!(instances.contains(" - "), "{instances}");
        // The sources, each once, numbered as the rows cite them.
        let notes: Vec<&str> = lines.collect();
        assert!(notes.len() >= 2, "{t}");
        assert!(
            notes[0].starts_with("[1] ") && notes[0].contains("https://"),
            "{t}"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&zones)).unwrap();
        let first = &v[0];
        assert_eq!(first["cloud"], "public");
        assert_eq!(first["public"], "api.azureml.ms");
        assert_eq!(first["private"], "privatelink.api.azureml.ms");
        assert!(
            first["source"]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
    }
}
