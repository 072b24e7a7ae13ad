//! DNS expectations as a table of cases, in the manner of CoreDNS's
//! `test.Case`: a question, and the rcode, flags and records its reply must
//! hold. A failing case says which fields differ, expected against got, and
//! a table reports every failing case at once, not only the first.

use std::net::SocketAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use super::{record_lines, udp_query};

/// One question and what its reply must be. Sections are compared whole and
/// in order, each record as [`record_lines`] writes it ("owner TYPE data").
#[derive(Clone, Debug)]
pub struct Case {
    pub qname: String,
    pub qtype: RecordType,
    pub rcode: ResponseCode,
    /// AA: answered as the zone's authority.
    pub aa: bool,
    /// RA, when the case cares.
    pub ra: Option<bool>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
}

impl Case {
    /// A local name's answer: NOERROR, AA, and `answer`.
    pub fn local(qname: &str, qtype: RecordType, answer: &[&str]) -> Self {
        Case {
            qname: qname.to_string(),
            qtype,
            rcode: ResponseCode::NoError,
            aa: true,
            ra: None,
            answer: answer.iter().map(ToString::to_string).collect(),
            authority: Vec::new(),
        }
    }

    /// A forwarded reply: `rcode` and what the upstream sent, without AA.
    pub fn forwarded(qname: &str, qtype: RecordType, rcode: ResponseCode) -> Self {
        Case {
            rcode,
            aa: false,
            ..Self::local(qname, qtype, &[])
        }
    }

    /// The same case, with `answer` as its answer section.
    pub fn answer(self, answer: &[&str]) -> Self {
        Case {
            answer: answer.iter().map(ToString::to_string).collect(),
            ..self
        }
    }

    /// The same case, with `authority` as its authority section.
    pub fn authority(self, authority: &[&str]) -> Self {
        Case {
            authority: authority.iter().map(ToString::to_string).collect(),
            ..self
        }
    }

    /// [`Case::local`] with one A record, owned by the name as asked.
    pub fn local_a(qname: &str, ip: &str) -> Self {
        let owner = qname.trim_end_matches('.').to_lowercase();
        Self::local(qname, RecordType::A, &[&format!("{owner} A {ip}")])
    }

    /// NODATA from a zone amldns answers for: NOERROR, AA, no answer, and
    /// `soa` (a line of [`soa_line`]) in the authority section.
    pub fn nodata(qname: &str, qtype: RecordType, soa: &str) -> Self {
        Self::local(qname, qtype, &[]).authority(&[soa])
    }

    /// The same case, with RA checked.
    pub fn ra(self, ra: bool) -> Self {
        Case {
            ra: Some(ra),
            ..self
        }
    }

    /// What differs between this case and `reply`, one entry per field.
    pub fn diff(&self, reply: &Message) -> Vec<String> {
        let mut diffs = Vec::new();
        let mut field = |name: &str, expected: String, got: String| {
            if expected != got {
                diffs.push(format!("{name}: expected {expected}, got {got}"));
            }
        };
        field(
            "rcode",
            format!("{:?}", self.rcode),
            format!("{:?}", reply.metadata.response_code),
        );
        field(
            "AA",
            self.aa.to_string(),
            reply.metadata.authoritative.to_string(),
        );
        if let Some(ra) = self.ra {
            field(
                "RA",
                ra.to_string(),
                reply.metadata.recursion_available.to_string(),
            );
        }
        for (name, expected, got) in [
            ("answer", &self.answer, record_lines(&reply.answers)),
            (
                "authority",
                &self.authority,
                record_lines(&reply.authorities),
            ),
        ] {
            if *expected != got {
                let missing = expected.iter().filter(|l| !got.contains(l));
                let extra = got.iter().filter(|l| !expected.contains(l));
                let lines: Vec<String> = missing
                    .map(|l| format!("    - {l}"))
                    .chain(extra.map(|l| format!("    + {l}")))
                    .collect();
                let order = if lines.is_empty() { " (order)" } else { "" };
                diffs.push(format!(
                    "{name}{order}: expected {expected:?}, got {got:?}\n{}",
                    lines.join("\n")
                ));
            }
        }
        diffs
    }

    /// Asks each case over UDP (EDNS(0) 1232, as [`udp_query`]) and panics,
    /// after the last, listing every case whose reply differs and how.
    pub async fn run(server: SocketAddr, cases: &[Case]) {
        let mut failed = Vec::new();
        for case in cases {
            let reply = udp_query(server, &case.qname, case.qtype).await;
            let diffs = case.diff(&reply);
            if !diffs.is_empty() {
                failed.push(format!(
                    "{} {}:\n  {}",
                    case.qname,
                    case.qtype,
                    diffs.join("\n  ")
                ));
            }
        }
        assert!(
            failed.is_empty(),
            "{} of {} cases failed:\n{}",
            failed.len(),
            cases.len(),
            failed.join("\n")
        );
    }
}

/// The SOA Azure's DNS gives for its public `zone` ([`super::azure_soa`]),
/// as [`record_lines`] shows it.
pub fn azure_soa_line(zone: &str) -> String {
    format!(
        "{zone} SOA ns1-01.azure-dns.com. azuredns-hostmaster.microsoft.com. 1 3600 300 2419200 300"
    )
}

/// The SOA amldns writes at `apex`, as [`record_lines`] shows it, with the
/// table's generation as its serial and the negative TTL as its minimum.
pub fn soa_line(apex: &str, serial: u32, minimum: u32) -> String {
    format!("{apex} SOA ns.{apex}. hostmaster.{apex}. {serial} 3600 300 2419200 {minimum}")
}
