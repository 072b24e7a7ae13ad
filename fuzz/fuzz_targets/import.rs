//! Arbitrary bytes as an `[[import]]` file, through `import::parse` (what
//! `import::load` does with each file's text).
//!
//! Invariants, beyond "no panic": an error is located in the file, at a line
//! inside the text, and displays as `file:line:col: message`; every name
//! taken is stored as `names::domain_name` stores names (checking it again
//! changes nothing), has at least one address and no address twice, and is
//! located in the file.

#![no_main]

use std::path::Path;

use amldns::config::Location;
use amldns::names::domain_name;
use amldns::import::{self, ImportError};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "/fuzz/pe/import.json";

fn check_location(at: &Location, text: &str, what: &dyn std::fmt::Display) {
    assert_eq!(*at.file, *Path::new(FILE), "{what}: located in another file");
    let line = text
        .split('\n')
        .nth(at.line.wrapping_sub(1))
        .unwrap_or_else(|| panic!("{what}: line {} is past the text", at.line));
    // serde_json counts columns in bytes, our own locations in characters.
    assert!(
        at.col >= 1 && at.col <= line.len() + 1,
        "{what}: column {} is off line {} ({} bytes)",
        at.col,
        at.line,
        line.len()
    );
}

fuzz_target!(|data: &[u8]| {
    // `import::load` reads files as UTF-8 and fails before parsing otherwise.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match import::parse(Path::new(FILE), text) {
        Err(e) => {
            let ImportError::At { at, message } = &e else {
                panic!("parse reads no pattern: {e}");
            };
            check_location(at, text, &e);
            assert!(!message.trim().is_empty(), "{e}: says nothing");
            let prefix = format!("{FILE}:{}:{}: ", at.line, at.col);
            assert!(e.to_string().starts_with(&prefix), "{e}: not {prefix}…");
        }
        Ok(names) => {
            for n in &names {
                assert_eq!(domain_name(&n.name).as_ref(), Ok(&n.name), "{n:?}");
                assert!(!n.addrs.is_empty(), "{n:?}: no address");
                for (i, a) in n.addrs.iter().enumerate() {
                    assert!(!n.addrs[..i].contains(a), "{n:?}: {a} twice");
                }
                check_location(&n.at, text, &n.name);
            }
        }
    }
});
