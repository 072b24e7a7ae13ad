//! `amldns explain` and `GET /explain`: how a name is answered,
//! and why. Told from the plan the server answers with ([`resolve::plan`])
//! and from the table's own record of where each name came from, so that
//! the explanation cannot drift from what is served: `--config` runs this
//! on a table compiled from the file, `--server` asks the running server to
//! run it on the table it serves.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::cache::{Cache, Held};
use crate::metrics;
use crate::names::{self, NameKey};
use crate::resolve::{
    self, ApexAnswer, Asked, CLASS_IN, Outcome, Plan, Policy, Question, Reason, Transport,
};
use crate::zone::{self, End, ZoneTable};

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0:?} is not a domain name")]
    Name(String),
    #[error("{0:?} is not a record type (A, AAAA, TXT, 28, TYPE65…)")]
    Type(String),
}

/// Reads a record type as people write it: `A`, `aaaa`, `28`, `TYPE65`
/// (RFC 3597 §5).
pub fn parse_type(s: &str) -> Result<u16, ExplainError> {
    let up = s.trim().to_ascii_uppercase();
    up.parse::<u16>()
        .ok()
        .or_else(|| up.strip_prefix("TYPE")?.parse().ok())
        .or_else(|| metrics::qtype_number(&up))
        .ok_or_else(|| ExplainError::Type(s.to_string()))
}

/// A type's name, or `TYPEn` for one without a label of its own (RFC 3597 §5).
fn type_name(qtype: u16) -> String {
    match metrics::qtype_label(qtype) {
        "other" => format!("TYPE{qtype}"),
        label => label.to_string(),
    }
}

/// How a question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// From the table, authoritatively.
    Local,
    /// At a private-link zone apex amldns is the authority of.
    Apex,
    /// Asked of the upstreams (the cache first).
    Forwarded,
    /// TC=1: asked again over TCP, then forwarded.
    Truncated,
    Refused,
    /// An error rcode, no answer.
    Error,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Local => "local",
            Verdict::Apex => "local (zone apex)",
            Verdict::Forwarded => "forwarded",
            Verdict::Truncated => "truncated",
            Verdict::Refused => "refused",
            Verdict::Error => "error",
        }
    }
}

/// A name of the table that took part in the answer, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// The name asked or followed.
    pub name: String,
    /// The table's name that answered it: the same, or `*.parent`.
    pub matched: String,
    pub wildcard: bool,
    /// What gave it: `workspace mlw (api)`, `record`, `import`, `azure`.
    pub source: String,
    /// `file:line:column`.
    pub at: String,
}

/// How `name`/`type` is answered, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Explanation {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    /// The client the question was asked as (over UDP).
    pub from: IpAddr,
    /// The table it was answered from.
    pub generation: u64,
    pub verdict: Verdict,
    /// The names of the table used, in order.
    pub steps: Vec<Step>,
    /// The records amldns itself puts in the answer section.
    pub answer: Vec<String>,
    pub why: String,
    /// For a forwarded name asked of a running server: what its cache holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
}

/// Explains how `name` `qtype`, asked by `from` over UDP, is answered from
/// `table` under `policy`; without `from`, by a client inside `allow`.
pub fn explain(
    table: &ZoneTable,
    policy: &Policy,
    upstreams: &[SocketAddr],
    name: &str,
    qtype: u16,
    from: Option<IpAddr>,
) -> Result<Explanation, ExplainError> {
    let trimmed = name.trim().trim_end_matches('.');
    let key = (!trimmed.is_empty())
        .then(|| NameKey::from_labels(trimmed.split('.').map(str::as_bytes)))
        .flatten()
        .filter(|_| !trimmed.split('.').any(str::is_empty))
        .ok_or_else(|| ExplainError::Name(name.to_string()))?;
    // A client the policy lets in: the first address of `allow`'s first
    // network (a whole /0 or /32 included).
    let from = from.unwrap_or_else(|| {
        policy
            .allow
            .first()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |n| {
                n.hosts().next().unwrap_or(n.network())
            })
    });
    let asked = Asked {
        client: from,
        transport: Transport::Udp,
        opcode: 0,
        recursion_desired: true,
        question: Some(Question {
            name: Some(&key),
            qtype,
            qclass: CLASS_IN,
        }),
        edns: None,
    };
    let type_name = type_name(qtype);
    let mut e = Explanation {
        name: key.as_str().to_string(),
        qtype: type_name.clone(),
        from,
        generation: table.generation(),
        verdict: Verdict::Local,
        steps: Vec::new(),
        answer: Vec::new(),
        why: String::new(),
        cache: None,
    };
    match resolve::plan(table, policy, &asked, false) {
        Plan::Local(answer) => local(&mut e, table, &answer, &type_name),
        Plan::Apex { apex, answer } => {
            e.verdict = Verdict::Apex;
            e.why = at_apex(apex, answer);
        }
        Plan::Forward { zone } => {
            e.verdict = Verdict::Forwarded;
            e.why = forwarded(&e.name, zone, upstreams);
        }
        // Asked in class CH only, which `explain` never asks.
        Plan::Identity => {
            e.why = "id.server / hostname.bind in class CH: the server's identity \
                     ([server] identity)"
                .into();
        }
        Plan::Truncated => {
            e.verdict = Verdict::Truncated;
            e.why = "ANY over UDP for a name not in the table: TC=1, so that the client \
                     asks again over TCP, where it is forwarded (RFC 8482 §4.4)"
                .into();
        }
        Plan::Bare(reason) => {
            e.verdict = match reason.outcome() {
                Outcome::Refused => Verdict::Refused,
                Outcome::Local => Verdict::Local,
                _ => Verdict::Error,
            };
            e.why = bare(reason, from, &type_name);
        }
    }
    Ok(e)
}

/// A name the table holds: its node (or the wildcard that matched), the
/// chain inside the table, and how it ends.
fn local(e: &mut Explanation, table: &ZoneTable, answer: &zone::Answer<'_>, type_name: &str) {
    // The asked name, then each CNAME target the table holds.
    e.steps.extend(step(table, &e.name));
    let mut owner = e.name.clone();
    for (target, ttl) in &answer.chain {
        e.answer.push(format!("{owner} {ttl} CNAME {target}."));
        e.steps.extend(step(table, target));
        owner = target.to_string();
    }
    // The asked name's own node: exact, or the wildcard that matched.
    let mut why = match e.steps.first() {
        Some(s) if s.wildcard => format!(
            "{} matches the wildcard {} of the table, given by {} at {}",
            s.name, s.matched, s.source, s.at
        ),
        Some(s) => format!(
            "{} is in the table, given by {} at {}",
            s.name, s.source, s.at
        ),
        None => format!("{} is in the table", e.name),
    };
    why += ": answered from the table, authoritatively, for every type; never \
            forwarded";
    match answer.end {
        End::Addrs { v4, v6, ttl } => {
            let a = v4.iter().map(|a| format!("{owner} {ttl} A {a}"));
            let aaaa = v6.iter().map(|a| format!("{owner} {ttl} AAAA {a}"));
            e.answer.extend(a.chain(aaaa));
        }
        End::NoData { apex } if names::is_public_zone(apex) => {
            why += &format!(
                "; {owner} has no {type_name} record: NODATA, with the SOA the upstream \
                 gives for {apex} (a public zone) in the authority section, once amldns \
                 has asked for it (RFC 2308 §2.2)"
            );
        }
        End::NoData { apex } => {
            why += &format!(
                "; {owner} has no {type_name} record: NODATA, with the SOA of {apex} \
                 in the authority section (RFC 2308 §2.2)"
            );
        }
        End::Chain => why += "; a CNAME question is answered by the CNAME itself",
        End::Forward(target) => {
            why += &format!(
                "; the CNAME chain leaves the table at {target}: its {type_name} \
                 records are asked upstream and appended"
            );
        }
    }
    e.why = why;
}

/// What amldns answers itself at a private-link apex.
fn at_apex(apex: &str, answer: ApexAnswer) -> String {
    let what = match answer {
        ApexAnswer::Soa => "its SOA",
        ApexAnswer::Ns => "its NS, with glue",
        ApexAnswer::Any => "its SOA and NS",
        ApexAnswer::NsAddrs { .. } => "the address of its name server",
        ApexAnswer::NoData => "NODATA with its SOA",
    };
    format!(
        "{apex} is a private-link zone the table holds names in: amldns is its \
         authority and answers {what} itself, as Azure's linked private DNS zone \
         does"
    )
}

/// A name not in the table: who is asked, and what amldns still decides.
fn forwarded(name: &str, zone: Option<&str>, upstreams: &[SocketAddr]) -> String {
    let list: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
    let mut why = format!(
        "{name} is not in the table: asked of the upstreams ({}), the cache first",
        list.join(", ")
    );
    if let Some(zone) = zone {
        why += &format!(
            "; it is under {zone}, which amldns serves: a negative answer from \
             upstream is given as {zone}'s own (AA=1, its SOA)"
        );
    }
    if let Some(id) = names::workspace_id_in(name) {
        why += &format!(
            "; it is shaped like a name of workspace {id}, which the table does not \
             hold: its clients will reach the public endpoint \
             (amldns_workspace_missing_total)"
        );
    }
    why
}

/// Why a question is answered with no records.
fn bare(reason: Reason, from: IpAddr, type_name: &str) -> String {
    let rcode = metrics::rcode_label(reason.rcode());
    match reason {
        Reason::NotAllowed => {
            format!("the client {from} is not in [server] allow: {rcode}")
        }
        Reason::ZoneTransfer => {
            format!("{type_name} (a zone transfer) is refused: the table is not a zone to copy")
        }
        Reason::MetaType => {
            format!("{type_name} is a meta type, not a question (RFC 6895 §3.1): {rcode}")
        }
        Reason::Canary => format!(
            "Firefox's DNS-over-HTTPS canary ([server] doh_canary): {rcode} here, never \
             forwarded, so that browsers keep using this resolver"
        ),
        // `explain` asks one IN question, as a standard query with RD,
        // without EDNS, of a server that is not stopping.
        Reason::Stopping
        | Reason::NoRecursion
        | Reason::Opcode
        | Reason::EdnsVersion
        | Reason::NotOneQuestion
        | Reason::Class => format!("{reason:?}: {rcode}"),
    }
}

impl Explanation {
    /// Adds what a running server's cache holds for a forwarded name (a
    /// local name is never cached: the table answers it).
    pub fn with_cache(mut self, cache: &Cache, qtype: u16) -> Self {
        if self.verdict == Verdict::Forwarded {
            self.cache = Some(match cache.held(&self.name, qtype) {
                Some(Held::Fresh { ttl_left }) => format!(
                    "an answer is cached for {ttl_left} s more (`amldns flush --name {}` drops it)",
                    self.name
                ),
                Some(Held::Stale) => "a stale answer is cached: served only while every \
                                      upstream fails (RFC 8767)"
                    .into(),
                None => "nothing cached: the next question goes upstream".into(),
            });
        }
        self
    }
}

/// The table's node for `name`, as a step; `None` when the table lacks it.
fn step(table: &ZoneTable, name: &str) -> Option<Step> {
    let node = table.find(name)?;
    Some(Step {
        name: name.to_string(),
        matched: node.name.to_string(),
        wildcard: node.name.starts_with("*."),
        source: table.source(node),
        at: table.origin(node).at.to_string(),
    })
}

/// For a person: the verdict, the names used, the answer, and why.
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}: {} (asked from {} over UDP; table generation {})",
            self.name,
            self.qtype,
            self.verdict.as_str(),
            self.from,
            self.generation
        )?;
        for s in &self.steps {
            let how = if s.wildcard {
                format!("wildcard {}", s.matched)
            } else {
                "exact name".into()
            };
            writeln!(f, "  {}: {how}, {} at {}", s.name, s.source, s.at)?;
        }
        if !self.answer.is_empty() {
            writeln!(f, "answer:")?;
            for a in &self.answer {
                writeln!(f, "  {a}")?;
            }
        }
        writeln!(f, "why: {}", self.why)?;
        if let Some(c) = &self.cache {
            writeln!(f, "cache: {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const G: &str = crate::fixtures::GUID;

    fn table() -> ZoneTable {
        let text = format!(
            "[[workspace]]\nname = \"mlw\"\nid = \"{G}\"\nregion = \"eastus\"\nip = \"10.1.0.5\"\n\
             instances_wildcard = true\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n\
             [[record]]\nname = \"alias.corp.example\"\ncname = \"st.privatelink.blob.core.windows.net\"\n\
             [[record]]\nname = \"out.corp.example\"\ncname = \"www.example.com\"\n"
        );
        let c = crate::config::parse(Path::new("t.toml"), &text).unwrap();
        crate::snapshot::build(&c, &Default::default(), 4)
            .unwrap()
            .snapshot
            .table
    }

    fn policy() -> Policy {
        Policy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            ..Policy::default()
        }
    }

    fn ex(name: &str, qtype: &str, from: Option<&str>) -> Explanation {
        let up: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        explain(
            &table(),
            &policy(),
            &[up],
            name,
            parse_type(qtype).unwrap(),
            from.map(|f| f.parse().unwrap()),
        )
        .unwrap()
    }

    /// name, type, from, verdict, the table's names used, answer, words in why.
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Verdict,
        Vec<&'a str>,
        Vec<&'a str>,
        &'a str,
    );

    #[test]
    fn each_way_a_name_is_answered() {
        let cases: Vec<Case<'_>> = vec![
            (
                "ST.privatelink.blob.core.windows.net.",
                "a",
                None,
                Verdict::Local,
                vec!["st.privatelink.blob.core.windows.net"],
                vec!["st.privatelink.blob.core.windows.net 60 A 10.1.0.9"],
                "st.privatelink.blob.core.windows.net is in the table, given by record at t.toml:8:8",
            ),
            (
                "ci-9.eastus.instances.azureml.ms",
                "A",
                None,
                Verdict::Local,
                vec!["*.eastus.instances.azureml.ms"],
                vec!["ci-9.eastus.instances.azureml.ms 60 A 10.1.0.5"],
                "matches the wildcard *.eastus.instances.azureml.ms of the table, given by workspace mlw",
            ),
            (
                "st.privatelink.blob.core.windows.net",
                "AAAA",
                None,
                Verdict::Local,
                vec!["st.privatelink.blob.core.windows.net"],
                vec![],
                "NODATA, with the SOA of privatelink.blob.core.windows.net",
            ),
            (
                "alias.corp.example",
                "A",
                None,
                Verdict::Local,
                vec!["alias.corp.example", "st.privatelink.blob.core.windows.net"],
                vec![
                    "alias.corp.example 60 CNAME st.privatelink.blob.core.windows.net.",
                    "st.privatelink.blob.core.windows.net 60 A 10.1.0.9",
                ],
                "alias.corp.example is in the table, given by record at t.toml:11:8",
            ),
            (
                "out.corp.example",
                "A",
                None,
                Verdict::Local,
                vec!["out.corp.example"],
                vec!["out.corp.example 60 CNAME www.example.com."],
                "leaves the table at www.example.com",
            ),
            (
                "www.example.com",
                "A",
                None,
                Verdict::Forwarded,
                vec![],
                vec![],
                "asked of the upstreams (127.0.0.1:5300)",
            ),
            (
                "other.privatelink.blob.core.windows.net",
                "A",
                None,
                Verdict::Forwarded,
                vec![],
                vec![],
                "under privatelink.blob.core.windows.net, which amldns serves",
            ),
            (
                "0d5c2f4e-1111-2222-3333-444455556666.workspace.eastus.api.azureml.ms",
                "A",
                None,
                Verdict::Forwarded,
                vec![],
                vec![],
                "workspace 0d5c2f4e-1111-2222-3333-444455556666, which the table does not hold",
            ),
            (
                "privatelink.blob.core.windows.net",
                "SOA",
                None,
                Verdict::Apex,
                vec![],
                vec![],
                "amldns is its authority and answers its SOA",
            ),
            (
                "www.example.com",
                "ANY",
                None,
                Verdict::Truncated,
                vec![],
                vec![],
                "RFC 8482",
            ),
            (
                "st.privatelink.blob.core.windows.net",
                "A",
                Some("192.0.2.1"),
                Verdict::Refused,
                vec![],
                vec![],
                "the client 192.0.2.1 is not in [server] allow",
            ),
            (
                "st.privatelink.blob.core.windows.net",
                "AXFR",
                None,
                Verdict::Refused,
                vec![],
                vec![],
                "zone transfer",
            ),
        ];
        for (name, qtype, from, verdict, matched, answer, why) in cases {
            let e = ex(name, qtype, from);
            let what = format!("{name} {qtype}: {e:#?}");
            assert_eq!(e.verdict, verdict, "{what}");
            let m: Vec<&str> = e.steps.iter().map(|s| s.matched.as_str()).collect();
            assert_eq!(m, matched, "{what}");
            assert_eq!(e.answer, answer, "{what}");
            assert!(e.why.contains(why), "{what}");
            assert_eq!(e.generation, 4);
        }
    }

    #[test]
    fn defaults_to_a_client_inside_allow_and_reads_types_and_names() {
        let e = ex("st.privatelink.blob.core.windows.net", "1", None);
        assert_eq!(e.from, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(e.qtype, "A");
        assert_eq!(parse_type("TYPE65").unwrap(), 65);
        assert_eq!(parse_type("https").unwrap(), 65);
        assert!(parse_type("nope").is_err());
        assert_eq!(type_name(35), "TYPE35");
        let up: Vec<SocketAddr> = Vec::new();
        for bad in ["", ".", "a..b"] {
            assert!(
                explain(&table(), &policy(), &up, bad, 1, None).is_err(),
                "{bad:?}"
            );
        }
        let text = ex("ci-9.eastus.instances.azureml.ms", "A", None).to_string();
        assert!(
            text.starts_with(
                "ci-9.eastus.instances.azureml.ms A: local (asked from 10.0.0.1 over UDP; table generation 4)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  ci-9.eastus.instances.azureml.ms: wildcard *.eastus.instances.azureml.ms, workspace mlw (instances-wildcard) at t.toml:3:6"),
            "{text}"
        );
    }
}
