//! The DNS crates amldns is built from. hickory before
//! 0.26.2 sends non-EDNS UDP answers over 512 bytes and has
//! RUSTSEC-2026-0119; the old `trust-dns-*` names must not come back through
//! some dependency; and no DNSSEC code is compiled in (amldns does not
//! validate, and that code is attack surface).

/// `(name, version)` of every package in Cargo.lock.
fn locked() -> Vec<(String, String)> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            out.push((n, v.trim_matches('"').to_string()));
        }
    }
    out
}

fn version(v: &str) -> (u64, u64, u64) {
    let mut parts = v.split(['.', '-']).map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn hickory_is_recent_and_trust_dns_absent() {
    let pkgs = locked();
    let hickory: Vec<_> = pkgs
        .iter()
        .filter(|(n, _)| n.starts_with("hickory-"))
        .collect();
    assert!(!hickory.is_empty(), "Cargo.lock lists no hickory crate");
    for (n, v) in hickory {
        assert!(version(v) >= (0, 26, 2), "{n} {v} is older than 0.26.2");
    }
    let old: Vec<_> = pkgs
        .iter()
        .filter(|(n, _)| n.starts_with("trust-dns"))
        .collect();
    assert!(old.is_empty(), "trust-dns crates in Cargo.lock: {old:?}");
}

#[test]
fn no_dnssec_features() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    // Every mention of hickory outside comments is a one-line dependency
    // (not a [dependencies.hickory-*] table nor a renamed package, whose
    // features this check would not see), and there is at least the proto
    // crate: an empty match would check nothing.
    let hickory: Vec<&str> = manifest
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("hickory"))
        .collect();
    assert!(
        hickory.iter().any(|l| l.starts_with("hickory-proto = ")),
        "Cargo.toml names no hickory-proto dependency: {hickory:?}"
    );
    for line in hickory {
        assert!(line.starts_with("hickory-"), "{line}");
        assert!(
            !line.contains("dnssec") && line.contains("default-features = false"),
            "{line}"
        );
    }
}
