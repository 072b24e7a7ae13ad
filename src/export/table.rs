//! `--format table` and `json`: the rows ([`super::Row`]) for people and
//! for programs, from a config file or from a running server's `/records`.

use std::fmt::Write as _;

use super::rows::Row;

/// Aligned columns, one line per record, under a heading.
pub(super) fn table(rows: &[Row]) -> String {
    let rows: Vec<[String; 5]> = rows
        .iter()
        .flat_map(|r| {
            r.answers.records().into_iter().map(move |(t, v)| {
                [
                    r.name.clone(),
                    t.to_string(),
                    r.ttl.to_string(),
                    v,
                    r.source.clone(),
                ]
            })
        })
        .collect();
    columns(&["NAME", "TYPE", "TTL", "ANSWER", "SOURCE"], &rows)
}

/// `rows` in aligned columns under `head`, two spaces apart.
pub(super) fn columns<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let head = head.map(String::from);
    let mut widths = [0; N];
    for r in std::iter::once(&head).chain(rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// The rows as a JSON array, pretty-printed.
pub(super) fn json(rows: &[Row]) -> String {
    let mut s = serde_json::to_string_pretty(rows).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::export::tests::table;
    use crate::export::{Format, render};

    #[test]
    fn table_and_json_forms() {
        let t = table();
        let text = render(&t, Format::Table, &[]);
        assert!(text.starts_with("NAME"), "{text}");
        assert!(text.contains("workspace mlw (instance)"), "{text}");
        let list: serde_json::Value = serde_json::from_str(&render(&t, Format::Json, &[])).unwrap();
        let out = list
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "out.corp.example")
            .unwrap();
        assert_eq!(out["cname"], "www.example.com");
        assert_eq!(out["at"], "t.toml:16:8");
    }
}
