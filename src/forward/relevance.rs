//! What of an upstream's answer is kept and passed on: the rcodes that are
//! answers, the records that answer the question (with their DNSSEC
//! proofs for a client that set DO), their TTLs within bounds, and the
//! client's spelling of the question name. Pure: no I/O, no state.

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::cache::Reply;
use crate::upstream::Dnssec;

/// The longest TTL a positive answer from upstream keeps: a day, as
/// Unbound's `cache-max-ttl`. An upstream that says more is not trusted
/// with it, in the first answer a client sees as in the cached ones.
pub const MAX_TTL: u32 = 86_400;

/// The longest TTL of a negative answer's records, its SOA included: an
/// hour, as Unbound's `cache-max-negative-ttl`, so a name that appears is
/// seen within the hour.
pub const MAX_NEGATIVE_TTL: u32 = 3_600;

/// Why an upstream's answer is not passed on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("its CNAME chain loops")]
pub struct CnameLoop;

/// Keeps only what answers the question: the CNAME chain from `qname` and
/// the records of `qtype` at its end, and an SOA for negative answers. Asked
/// with DO, also the RRSIGs over what is kept, and the NSEC and NSEC3
/// records (with theirs) that prove a denial or a wildcard expansion (RFC
/// 4035 §3.1.1–3.1.3), which a validating client needs. The rest (unrelated
/// answers, NS and glue; and without DO, DNSSEC records the client did not
/// ask for by type, RFC 4035 §3.2.1) is dropped so that it can neither be
/// cached nor reach clients. TTLs are bounded (`cap_ttls`). Owner names
/// equal to `qname` are spelled as it is. A chain that loops is refused:
/// peers (Unbound, Knot Resolver) answer it SERVFAIL. Pure, and public for
/// the `upstream_reply` fuzz target.
pub fn keep_relevant(
    qname: &Name,
    qtype: RecordType,
    dnssec: Dnssec,
    reply: Reply,
) -> Result<Reply, CnameLoop> {
    let mut owner = qname.clone();
    let mut answers: Vec<Record> = Vec::new();
    // Upstreams list the chain in order, but nothing requires it: walk it by
    // name. Each step keeps a record not kept before, so the walk ends.
    while let Some(cname) = reply
        .answers
        .iter()
        .find(|r| r.name == owner && matches!(r.data, RData::CNAME(_)))
    {
        if answers.contains(cname) {
            return Err(CnameLoop);
        }
        answers.push(cname.clone());
        if qtype == RecordType::CNAME {
            break;
        }
        owner = cname_target(cname);
    }
    if qtype != RecordType::CNAME {
        answers.extend(
            reply
                .answers
                .iter()
                .filter(|r| {
                    let t = r.record_type();
                    r.name == owner
                        && (t == qtype || qtype == RecordType::ANY && (dnssec.ok || !t.is_dnssec()))
                })
                .filter(|r| !matches!(r.data, RData::CNAME(_)))
                .cloned(),
        );
    }
    // A chain that ends without data is a negative answer for its last name:
    // its SOA carries the negative TTL (RFC 2308 §2.1, §2.2).
    let answered = answers
        .iter()
        .any(|r| qtype == RecordType::CNAME || !matches!(r.data, RData::CNAME(_)));
    let mut authorities: Vec<Record> = if !answered {
        reply
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .take(1)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if dnssec.ok {
        authorities.extend(
            reply
                .authorities
                .iter()
                .filter(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3))
                .cloned(),
        );
        let signed = signatures(&reply.answers, &answers);
        answers.extend(signed);
        let signed = signatures(&reply.authorities, &authorities);
        authorities.extend(signed);
    }
    let mut kept = Reply {
        rcode: reply.rcode,
        answers,
        authorities,
    };
    cap_ttls(&mut kept);
    spell_as(qname, &mut kept);
    Ok(kept)
}

/// Bounds the TTLs of a kept answer where it enters, so that the client's
/// first answer and the cache's copies say the same, and the cache only
/// decides how long to keep what it was given. A TTL with the top bit set
/// is 0 (RFC 2181 §8); a positive answer's records at most [`MAX_TTL`]; a
/// negative answer's (one with an SOA: only negative answers keep it) at
/// most [`MAX_NEGATIVE_TTL`], its SOA at most the SOA's own minimum too,
/// the negative TTL (RFC 2308 §3, §5).
fn cap_ttls(reply: &mut Reply) {
    let negative = reply
        .authorities
        .iter()
        .any(|r| matches!(r.data, RData::SOA(_)));
    let cap = if negative { MAX_NEGATIVE_TTL } else { MAX_TTL };
    for r in reply.answers.iter_mut().chain(reply.authorities.iter_mut()) {
        let ttl = if r.ttl > i32::MAX as u32 { 0 } else { r.ttl };
        let ttl = match &r.data {
            RData::SOA(soa) if negative => ttl.min(soa.minimum),
            _ => ttl,
        };
        r.ttl = ttl.min(cap);
    }
}

/// The RRSIGs in `from` over a record set in `kept` (same owner, the type
/// they cover) and not in `kept` already.
fn signatures(from: &[Record], kept: &[Record]) -> Vec<Record> {
    from.iter()
        .filter(|sig| {
            covered(sig).is_some_and(|t| {
                kept.iter()
                    .any(|r| r.name == sig.name && r.record_type() == t)
            }) && !kept.contains(sig)
        })
        .cloned()
        .collect()
}

/// The type an RRSIG covers: the first two bytes of its RDATA (RFC 4034
/// §3.1). hickory without its `dnssec` features (we validate nothing) reads
/// RRSIGs as unknown records and writes them back byte for byte, the signer
/// name uncompressed as RFC 4034 §3.1.7 requires.
fn covered(sig: &Record) -> Option<RecordType> {
    match &sig.data {
        RData::Unknown {
            code: RecordType::RRSIG,
            rdata,
        } => rdata
            .anything
            .get(..2)
            .map(|t| RecordType::from(u16::from_be_bytes([t[0], t[1]]))),
        _ => None,
    }
}

/// Spells owner names equal to `qname` as `qname` is. Case carries no
/// meaning (RFC 4343), but a client sees the question's own spelling
/// echoed, as peers echo it, from the cache or not.
pub(super) fn spell_as(qname: &Name, reply: &mut Reply) {
    for r in reply.answers.iter_mut().chain(reply.authorities.iter_mut()) {
        if r.name == *qname && !r.name.eq_case(qname) {
            r.name = qname.clone();
        }
    }
}

/// The target of a CNAME record.
fn cname_target(r: &Record) -> Name {
    match &r.data {
        RData::CNAME(c) => c.0.clone(),
        _ => r.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::rdata::{A, CNAME, NULL, SOA};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// Records from short specs: "owner A", "owner CNAME target",
    /// "owner RRSIG covered", "owner SOA", and any other type as opaque
    /// bytes (NSEC, NSEC3, DNSKEY, NS…), as hickory reads them without its
    /// DNSSEC features.
    fn record(spec: &str) -> Record {
        let words: Vec<&str> = spec.split(' ').collect();
        let owner = name(words[0]);
        let data = match words[1] {
            "A" => RData::A(A::new(192, 0, 2, 1)),
            "CNAME" => RData::CNAME(CNAME(name(words[2]))),
            "SOA" => RData::SOA(SOA::new(owner.clone(), owner.clone(), 1, 1, 1, 1, 60)),
            "RRSIG" => {
                let covered = u16::from(words[2].parse::<RecordType>().unwrap());
                let mut rdata = covered.to_be_bytes().to_vec();
                rdata.extend_from_slice(&[13, 2, 0, 0, 1, 44]);
                RData::Unknown {
                    code: RecordType::RRSIG,
                    rdata: NULL::with(rdata),
                }
            }
            other => RData::Unknown {
                code: other.parse().unwrap(),
                rdata: NULL::with(vec![1, 2, 3]),
            },
        };
        Record::from_rdata(owner, 300, data)
    }

    fn reply(rcode: ResponseCode, answers: &[&str], authorities: &[&str]) -> Reply {
        Reply {
            rcode,
            answers: answers.iter().map(|s| record(s)).collect(),
            authorities: authorities.iter().map(|s| record(s)).collect(),
        }
    }

    /// A record as "owner TYPE", RRSIGs as "owner RRSIG(covered)".
    fn show(r: &Record) -> String {
        match covered(r) {
            Some(t) => format!("{} RRSIG({t})", r.name),
            None => format!("{} {}", r.name, r.record_type()),
        }
    }

    type Kept = Result<(Vec<&'static str>, Vec<&'static str>), CnameLoop>;

    #[test]
    fn what_is_kept_of_an_upstream_answer() {
        use ResponseCode::{NXDomain, NoError};
        let (plain, with_do) = (
            Dnssec::default(),
            Dnssec {
                ok: true,
                checking_disabled: false,
            },
        );
        let signed_a = ["w.x. A", "w.x. RRSIG A", "w.x. RRSIG AAAA", "o.x. RRSIG A"];
        let chain = [
            "w.x. CNAME t.x.",
            "w.x. RRSIG CNAME",
            "t.x. A",
            "t.x. RRSIG A",
        ];
        let denial = [
            "x. SOA",
            "x. RRSIG SOA",
            "w.x. NSEC",
            "w.x. RRSIG NSEC",
            "x. NS",
        ];
        let at_w = ["w.x. A", "w.x. RRSIG A", "w.x. NSEC", "w.x. DNSKEY"];
        let cases: Vec<(RecordType, Dnssec, Reply, Kept)> = vec![
            // Loops, however listed; a CNAME question takes only the first step.
            (
                RecordType::A,
                plain,
                reply(NoError, &["w.x. CNAME t.x.", "t.x. CNAME w.x."], &[]),
                Err(CnameLoop),
            ),
            (
                RecordType::A,
                plain,
                reply(
                    NoError,
                    &["t.x. CNAME w.x.", "w.x. CNAME t.x.", "t.x. A"],
                    &[],
                ),
                Err(CnameLoop),
            ),
            (
                RecordType::AAAA,
                with_do,
                reply(NoError, &["w.x. CNAME w.x."], &[]),
                Err(CnameLoop),
            ),
            (
                RecordType::CNAME,
                plain,
                reply(NoError, &["w.x. CNAME t.x.", "t.x. CNAME w.x."], &[]),
                Ok((vec!["w.x. CNAME"], vec![])),
            ),
            // Signatures: only with DO, only over what is kept.
            (
                RecordType::A,
                plain,
                reply(NoError, &signed_a, &[]),
                Ok((vec!["w.x. A"], vec![])),
            ),
            (
                RecordType::A,
                with_do,
                reply(NoError, &signed_a, &[]),
                Ok((vec!["w.x. A", "w.x. RRSIG(A)"], vec![])),
            ),
            (
                RecordType::A,
                plain,
                reply(NoError, &chain, &[]),
                Ok((vec!["w.x. CNAME", "t.x. A"], vec![])),
            ),
            (
                RecordType::A,
                with_do,
                reply(NoError, &chain, &[]),
                Ok((
                    vec!["w.x. CNAME", "t.x. A", "w.x. RRSIG(CNAME)", "t.x. RRSIG(A)"],
                    vec![],
                )),
            ),
            // Denial: the SOA alone, or with the NSEC proof and signatures.
            (
                RecordType::A,
                plain,
                reply(NXDomain, &[], &denial),
                Ok((vec![], vec!["x. SOA"])),
            ),
            (
                RecordType::A,
                with_do,
                reply(NXDomain, &[], &denial),
                Ok((
                    vec![],
                    vec!["x. SOA", "w.x. NSEC", "x. RRSIG(SOA)", "w.x. RRSIG(NSEC)"],
                )),
            ),
            // A wildcard answer's proof that no closer name exists.
            (
                RecordType::A,
                with_do,
                reply(
                    NoError,
                    &["w.x. A", "w.x. RRSIG A"],
                    &["v.x. NSEC", "v.x. RRSIG NSEC", "x. NS"],
                ),
                Ok((
                    vec!["w.x. A", "w.x. RRSIG(A)"],
                    vec!["v.x. NSEC", "v.x. RRSIG(NSEC)"],
                )),
            ),
            (
                RecordType::A,
                plain,
                reply(NoError, &["w.x. A"], &["v.x. NSEC", "v.x. RRSIG NSEC"]),
                Ok((vec!["w.x. A"], vec![])),
            ),
            // ANY: DNSSEC types only with DO; a type asked for by name always.
            (
                RecordType::ANY,
                plain,
                reply(NoError, &at_w, &[]),
                Ok((vec!["w.x. A"], vec![])),
            ),
            (
                RecordType::ANY,
                with_do,
                reply(NoError, &at_w, &[]),
                Ok((
                    vec!["w.x. A", "w.x. RRSIG(A)", "w.x. NSEC", "w.x. DNSKEY"],
                    vec![],
                )),
            ),
            (
                RecordType::DNSKEY,
                plain,
                reply(NoError, &at_w, &[]),
                Ok((vec!["w.x. DNSKEY"], vec![])),
            ),
            (
                RecordType::RRSIG,
                plain,
                reply(NoError, &at_w, &[]),
                Ok((vec!["w.x. RRSIG(A)"], vec![])),
            ),
        ];
        for (qtype, dnssec, reply, want) in cases {
            let what = format!("{qtype} DO={} {reply:?}", dnssec.ok);
            let got = keep_relevant(&name("w.x."), qtype, dnssec, reply).map(|r| {
                (
                    r.answers.iter().map(show).collect::<Vec<_>>(),
                    r.authorities.iter().map(show).collect::<Vec<_>>(),
                )
            });
            let want = want.map(|(a, b)| {
                let own = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
                (own(a), own(b))
            });
            assert_eq!(got, want, "{what}");
        }
    }

    /// TTLs are bounded as the answer enters: the top bit set is 0, a
    /// positive answer at most a day, a negative one at most an hour, its
    /// SOA at most its own minimum too.
    #[test]
    fn ttls_are_capped_where_an_answer_enters() {
        let with_ttl = |spec: &str, ttl: u32| {
            let mut r = record(spec);
            r.ttl = ttl;
            r
        };
        let soa = |ttl: u32, minimum: u32| {
            let owner = name("x.");
            let data = RData::SOA(SOA::new(owner.clone(), owner.clone(), 1, 1, 1, 1, minimum));
            Record::from_rdata(owner, ttl, data)
        };
        let ttls = |qtype, answers: Vec<Record>, authorities: Vec<Record>| {
            let rcode = match answers.is_empty() {
                true => ResponseCode::NXDomain,
                false => ResponseCode::NoError,
            };
            let reply = Reply {
                rcode,
                answers,
                authorities,
            };
            let kept = keep_relevant(&name("w.x."), qtype, Dnssec::default(), reply).unwrap();
            let all = kept.answers.iter().chain(&kept.authorities);
            all.map(|r| r.ttl).collect::<Vec<_>>()
        };
        let top_bit = 2_147_483_664;
        assert_eq!(
            ttls(RecordType::A, vec![with_ttl("w.x. A", top_bit)], vec![]),
            [0]
        );
        assert_eq!(
            ttls(RecordType::A, vec![with_ttl("w.x. A", 604_800)], vec![]),
            [MAX_TTL]
        );
        assert_eq!(
            ttls(RecordType::A, vec![with_ttl("w.x. A", 300)], vec![]),
            [300]
        );
        // An SOA asked for is a positive answer.
        let mut apex = soa(604_800, 600);
        apex.name = name("w.x.");
        assert_eq!(ttls(RecordType::SOA, vec![apex], vec![]), [MAX_TTL]);
        // Negative: the SOA's TTL, at most its minimum and an hour.
        assert_eq!(
            ttls(RecordType::A, vec![], vec![soa(u32::MAX, u32::MAX)]),
            [0]
        );
        assert_eq!(
            ttls(RecordType::A, vec![], vec![soa(86_400, 86_400)]),
            [MAX_NEGATIVE_TTL]
        );
        assert_eq!(ttls(RecordType::A, vec![], vec![soa(3_600, 900)]), [900]);
        // A chain that ends without data is negative as a whole.
        let chain = vec![with_ttl("w.x. CNAME t.x.", 86_400)];
        assert_eq!(
            ttls(RecordType::A, chain, vec![soa(600, 900)]),
            [MAX_NEGATIVE_TTL, 600]
        );
    }

    /// Owners that are the question name take its spelling, others keep theirs.
    #[test]
    fn owners_are_spelled_as_the_question() {
        let kept = keep_relevant(
            &name("WwW.Example."),
            RecordType::A,
            Dnssec::default(),
            reply(
                ResponseCode::NoError,
                &["www.example. CNAME T.example.", "T.example. A"],
                &[],
            ),
        )
        .unwrap();
        let owners: Vec<String> = kept.answers.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(owners, ["WwW.Example.", "T.example."]);
    }
}
