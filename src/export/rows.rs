//! The table as rows: one per local name, with what it answers and where it
//! came from, as `--format table|json` and `GET /records` show it; and what
//! a name finally answers once a CNAME chain is followed inside the table.

use crate::zone::{Data, MAX_CHAIN, Node, ZoneTable};

/// One local name as `amldns records --format table|json` and `GET /records`
/// show it: what it answers and where it came from. The same rows whether
/// read from a config file or from a running server, so that both print
/// alike.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// Lower-case, no final dot; `*.` first for a wildcard.
    pub name: String,
    pub ttl: u32,
    /// The zone apex it is under (its negative answers' SOA).
    pub zone: String,
    /// What gave it: `workspace mlw (api)`, `record`, `import`, `azure`.
    pub source: String,
    /// Where that was written: `file:line:column`.
    pub at: String,
    #[serde(flatten)]
    pub answers: Answers,
}

impl Row {
    pub fn new(table: &ZoneTable, node: Node<'_>) -> Self {
        Row {
            name: node.name.to_string(),
            ttl: node.ttl,
            zone: table.apex(node).to_string(),
            source: table.source(node),
            at: table.origin(node).at.to_string(),
            answers: node.data.into(),
        }
    }
}

/// What a name answers, by type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Answers {
    #[serde(default)]
    pub a: Vec<String>,
    #[serde(default)]
    pub aaaa: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
}

impl From<Data<'_>> for Answers {
    fn from(data: Data<'_>) -> Self {
        match data {
            Data::Addrs { v4, v6 } => Answers {
                a: v4.iter().map(ToString::to_string).collect(),
                aaaa: v6.iter().map(ToString::to_string).collect(),
                cname: None,
            },
            Data::Alias(t) => Answers {
                a: Vec::new(),
                aaaa: Vec::new(),
                cname: Some(t.to_string()),
            },
        }
    }
}

impl Answers {
    /// (type, value) of each record; CNAME targets end in a dot.
    pub fn records(&self) -> Vec<(&'static str, String)> {
        let a = self.a.iter().map(|a| ("A", a.clone()));
        let aaaa = self.aaaa.iter().map(|a| ("AAAA", a.clone()));
        let cname = self.cname.iter().map(|t| ("CNAME", format!("{t}.")));
        a.chain(aaaa).chain(cname).collect()
    }
}

/// Every name of the table, as rows.
pub fn rows(table: &ZoneTable) -> Vec<Row> {
    table.nodes().map(|n| Row::new(table, n)).collect()
}

/// The row answering `name` (its own, or the wildcard's that matches it).
pub fn row_for(table: &ZoneTable, name: &str) -> Option<Row> {
    let key = name.trim_end_matches('.').to_ascii_lowercase();
    table.find(&key).map(|n| Row::new(table, n))
}

/// (type, value) of each record a node holds; CNAME targets end in a dot.
pub(super) fn rrs(data: Data<'_>) -> Vec<(&'static str, String)> {
    Answers::from(data).records()
}

/// What a name finally answers once its CNAME chain is followed inside the
/// table: addresses, or an alias of a name the table does not hold. Servers
/// that do not chase a local CNAME for the client (Unbound's local data, a
/// zone apex that cannot hold a CNAME, hosts files) get the end of the chain.
pub(super) fn resolved<'t>(table: &'t ZoneTable, node: Node<'t>) -> Data<'t> {
    let mut data = node.data;
    // compile() rejects loops and chains over MAX_CHAIN; the bound is a guard.
    for _ in 0..MAX_CHAIN {
        let Data::Alias(t) = data else { break };
        match table.find(t) {
            Some(next) => data = next.data,
            None => break,
        }
    }
    data
}
