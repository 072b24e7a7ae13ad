//! Arbitrary bytes as an upstream's reply to a question we asked
//! (`www.example.com.`, ID 0x2a2a, of type A, AAAA, CNAME or ANY: the reply's
//! question picks which), through `upstream::check_reply` and, for an answer,
//! the relevance filter `forward::keep_relevant`, as `Forwarder::fetch` does.
//!
//! Invariants, beyond "no panic": nothing but `Ignore` for another ID, a
//! query (QR=0) or another opcode; an accepted answer has our ID and our
//! question (or none, for a bare FORMERR/NOTIMP); every kept answer record is
//! from the reply and on the CNAME chain from the question name (each CNAME
//! owned by the previous target, then only records of the asked type at the
//! chain's end); at most one authority record is kept, an SOA, and only when
//! no data was kept (asked without DO, as here); a chain that loops is
//! refused.

#![no_main]

use amldns::cache::Reply;
use amldns::forward::{CnameLoop, Dnssec, keep_relevant};
use amldns::upstream::{Verdict, check_reply};
use hickory_proto::op::{MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use libfuzzer_sys::fuzz_target;

const ID: u16 = 0x2a2a;
const QTYPES: [RecordType; 4] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::ANY,
];

fuzz_target!(|data: &[u8]| {
    let qname = Name::from_ascii("www.example.com.").unwrap();
    for qtype in QTYPES {
        let question = Query::query(qname.clone(), qtype);
        let verdict = check_reply(ID, &question, data);
        if data.get(..2) != Some(&ID.to_be_bytes()[..]) {
            assert!(
                matches!(verdict, Verdict::Ignore(_)),
                "another ID taken: {verdict:?}"
            );
        }
        let msg = match verdict {
            Verdict::Answer(msg) => msg,
            Verdict::Truncated | Verdict::Ignore(_) => continue,
        };
        assert_eq!(msg.metadata.id, ID);
        assert_eq!(msg.metadata.message_type, MessageType::Response);
        assert_eq!(msg.metadata.op_code, OpCode::Query);
        assert!(!msg.metadata.truncation);
        let bare_error = msg.queries.is_empty()
            && matches!(
                msg.metadata.response_code,
                ResponseCode::FormErr | ResponseCode::NotImp
            );
        assert!(bare_error || msg.queries == [question.clone()]);

        let reply = Reply {
            rcode: msg.metadata.response_code,
            answers: msg.answers.clone(),
            authorities: msg.authorities.clone(),
        };
        let kept = match keep_relevant(&qname, qtype, Dnssec::default(), reply) {
            Ok(kept) => kept,
            Err(CnameLoop) => {
                assert_ne!(qtype, RecordType::CNAME, "one CNAME cannot loop");
                continue;
            }
        };
        assert_eq!(kept.rcode, msg.metadata.response_code);

        // Walk the kept answers: the chain first, then data at its end.
        let mut owner = qname.clone();
        let mut data_seen = false;
        for r in &kept.answers {
            assert!(msg.answers.contains(r), "kept a record the reply lacks");
            assert_eq!(r.name, owner, "kept a record off the chain: {r}");
            match &r.data {
                RData::CNAME(target) if !data_seen => {
                    if qtype != RecordType::CNAME {
                        owner = target.0.clone();
                    }
                }
                _ => {
                    assert!(
                        qtype == RecordType::ANY || r.record_type() == qtype,
                        "kept a record of another type: {r}"
                    );
                    assert!(
                        !matches!(r.data, RData::CNAME(_)),
                        "a CNAME after data: {r}"
                    );
                    data_seen = true;
                }
            }
        }
        if qtype == RecordType::CNAME {
            assert!(
                kept.answers.len() <= 1,
                "one CNAME answers a CNAME question"
            );
        }
        let answered = qtype == RecordType::CNAME && !kept.answers.is_empty() || data_seen;
        assert!(kept.authorities.len() <= 1);
        for r in &kept.authorities {
            assert!(!answered, "an SOA kept beside an answer");
            assert_eq!(r.record_type(), RecordType::SOA);
            assert!(msg.authorities.contains(r));
        }
    }
});
