//! What a doctor run found, as a person reads it, as JSON, and as node
//! exporter textfile metrics; pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::verdict::Verdict;
use crate::control;

/// The textfile's metric of results: how many checks of each resolver
/// ended with each verdict.
pub const RESULTS_METRIC: &str = "amldns_doctor_results";
/// The textfile's metric of when doctor last ran, so that an alert also
/// fires when it stops running.
pub const LAST_RUN_METRIC: &str = "amldns_doctor_last_run_timestamp_seconds";
/// The file doctor writes in `--textfile DIR`.
pub const TEXTFILE_NAME: &str = "amldns_doctor.prom";

/// One verdict on one name (or public name, or the canary) through one
/// resolver, or on one name between two replicas.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub name: String,
    /// What the table says (or what the check wants).
    pub expected: String,
    /// The resolver asked (`ip:port`); for `replicas differ`, the two
    /// servers compared (`URL / URL`).
    pub via: String,
    /// What came back: each distinct result of the tries, `|` between them.
    pub got: String,
    pub verdict: Verdict,
}

impl serde::Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a replica's `/status` says of the table it serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Replica {
    pub server: String,
    pub generation: u64,
    pub sha256: String,
}

/// A whole run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The table's names asked (each wildcard once).
    pub names: usize,
    /// The resolvers asked, as `ip:port`.
    pub resolvers: Vec<String>,
    /// With `--server`: each replica's table, as its `/status` says.
    pub replicas: Vec<Replica>,
    /// Every name through every resolver, then the other checks' problems.
    pub results: Vec<Finding>,
}

impl Report {
    /// Whether anything needs fixing: doctor then exits 1.
    pub fn has_problems(&self) -> bool {
        self.results.iter().any(|f| f.verdict.is_problem())
    }

    fn counts(&self) -> BTreeMap<Verdict, usize> {
        let mut counts = BTreeMap::new();
        for f in &self.results {
            *counts.entry(f.verdict).or_default() += 1;
        }
        counts
    }

    /// `N names via M resolvers: X ok, Y public, …`.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts()
            .into_iter()
            .map(|(v, n)| format!("{n} {v}"))
            .collect();
        format!(
            "{} via {}: {}",
            control::count(self.names as u64, "name"),
            control::count(self.resolvers.len() as u64, "resolver"),
            if counts.is_empty() {
                "nothing asked".to_string()
            } else {
                counts.join(", ")
            }
        )
    }

    /// For a person: the replicas, one line per problem, the summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for r in &self.replicas {
            let _ = writeln!(
                out,
                "replica {}: generation {}, config sha256 {}",
                r.server, r.generation, r.sha256
            );
        }
        let problems: Vec<&Finding> = self
            .results
            .iter()
            .filter(|f| f.verdict.is_problem())
            .collect();
        if !problems.is_empty() {
            let head = ["VERDICT", "NAME", "VIA", "EXPECTED", "GOT"];
            let rows: Vec<[&str; 5]> = problems
                .iter()
                .map(|f| [f.verdict.as_str(), &f.name, &f.via, &f.expected, &f.got])
                .collect();
            let mut width = head.map(str::len);
            for row in &rows {
                for (w, cell) in width.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            for row in std::iter::once(&head).chain(&rows) {
                let mut line = String::new();
                for (i, cell) in row.iter().enumerate() {
                    let _ = write!(line, "{cell:<w$}  ", w = width[i]);
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    /// For programs: the whole report, one JSON document.
    pub fn json(&self) -> String {
        let summary: BTreeMap<&str, usize> = self
            .counts()
            .into_iter()
            .map(|(v, n)| (v.as_str(), n))
            .collect();
        let body = serde_json::json!({
            "names": self.names,
            "resolvers": self.resolvers,
            "replicas": self.replicas,
            "results": self.results,
            "summary": summary,
            "ok": !self.has_problems(),
        });
        format!("{body:#}\n")
    }

    /// The node exporter's textfile format: every verdict of every `via`
    /// (zeros included, so that an alert's series exists before it fires),
    /// and the time of this run (Unix seconds).
    pub fn textfile(&self, now: f64) -> String {
        let mut per_via: BTreeMap<&str, BTreeMap<Verdict, usize>> = BTreeMap::new();
        for via in &self.resolvers {
            per_via.entry(via).or_default();
        }
        for f in &self.results {
            *per_via
                .entry(&f.via)
                .or_default()
                .entry(f.verdict)
                .or_default() += 1;
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP {RESULTS_METRIC} Checks in amldns doctor's last run, by resolver and verdict.\n\
             # TYPE {RESULTS_METRIC} gauge"
        );
        for (via, counts) in &per_via {
            for v in Verdict::ALL {
                let n = counts.get(&v).copied().unwrap_or(0);
                let _ = writeln!(out, "{RESULTS_METRIC}{{via=\"{via}\",verdict=\"{v}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP {LAST_RUN_METRIC} When amldns doctor last ran (Unix time).\n\
             # TYPE {LAST_RUN_METRIC} gauge\n\
             {LAST_RUN_METRIC} {now:.3}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(name: &str, via: &str, verdict: Verdict) -> Finding {
        Finding {
            name: name.into(),
            expected: "10.1.0.5".into(),
            via: via.into(),
            got: "20.1.2.3".into(),
            verdict,
        }
    }

    fn report() -> Report {
        Report {
            names: 2,
            resolvers: vec!["10.0.0.2:53".into(), "10.0.0.3:53".into()],
            replicas: Vec::new(),
            results: vec![
                finding("a.example", "10.0.0.2:53", Verdict::Ok),
                finding("b.example", "10.0.0.2:53", Verdict::Ok),
                finding("a.example", "10.0.0.3:53", Verdict::Public),
                finding("b.example", "10.0.0.3:53", Verdict::Ok),
                finding("use-application-dns.net", "10.0.0.3:53", Verdict::Canary),
            ],
        }
    }

    #[test]
    fn text_lists_the_problems_then_the_summary() {
        let r = report();
        assert!(r.has_problems());
        let text = r.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("VERDICT"), "{text}");
        assert!(
            lines[1].starts_with("public ") && lines[1].contains("a.example"),
            "{text}"
        );
        assert!(lines[2].starts_with("canary "), "{text}");
        assert_eq!(
            lines[3],
            "2 names via 2 resolvers: 3 ok, 1 public, 1 canary"
        );
    }

    #[test]
    fn json_has_every_result_and_textfile_every_verdict() {
        let r = report();
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["results"].as_array().unwrap().len(), 5);
        assert_eq!(v["results"][2]["verdict"], "public");
        assert_eq!(v["summary"]["ok"], 3);
        assert_eq!(v["ok"], false);
        let t = r.textfile(1_700_000_000.0);
        assert!(
            t.contains(r#"amldns_doctor_results{via="10.0.0.3:53",verdict="public"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"amldns_doctor_results{via="10.0.0.2:53",verdict="public"} 0"#),
            "{t}"
        );
        let series = t.lines().filter(|l| l.starts_with(RESULTS_METRIC)).count();
        assert_eq!(series, 2 * Verdict::ALL.len());
        assert!(
            t.contains("amldns_doctor_last_run_timestamp_seconds 1700000000.000"),
            "{t}"
        );
    }
}
