//! How a name is written: labels, UUIDs, and a domain name as amldns
//! stores it.

/// The DNS label limit (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;

/// True when `name` is `zone` or a name below it (both lower-case, no final dot).
pub fn is_at_or_below(name: &str, zone: &str) -> bool {
    name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

/// Byte offset of the first label equal to `label`, if any.
pub(super) fn label_start(name: &str, label: &str) -> Option<usize> {
    let mut pos = 0;
    for l in name.split('.') {
        if l == label {
            return Some(pos);
        }
        pos += l.len() + 1;
    }
    None
}

/// `8-4-4-4-12` hex digits, either case.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A DNS label as host names use it (RFC 1123 §2.1): letters, digits and
/// hyphens, not starting or ending with a hyphen, 1–63 characters.
pub fn is_host_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// Checks a domain name as amldns stores it: lower-case, no final dot, labels
/// of 1–63 letters, digits, hyphens or underscores (RFC 2181 §11 allows more,
/// but private-endpoint names never need it), at most 253 characters, and `*`
/// only as a whole first label.
pub fn domain_name(raw: &str) -> Result<String, String> {
    let s = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if s.is_empty() {
        return Err("empty name".into());
    }
    if s.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    let body = s.strip_prefix("*.").unwrap_or(&s);
    if !body.contains('.') {
        return Err("expected a fully qualified name with at least two labels".into());
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > MAX_LABEL {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(format!(
                "label {label:?} has a character other than letters, digits, '-' or '_' \
                 ('*' only as the whole first label)"
            ));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = crate::fixtures::GUID;

    #[test]
    fn labels_and_uuids() {
        assert!(is_uuid(GUID));
        assert!(is_uuid(&GUID.to_uppercase()));
        assert!(!is_uuid("fb7e20a0-8891-458b-b969-55ddb3382f5"));
        assert!(!is_uuid("fb7e20a0x8891-458b-b969-55ddb3382f51"));
        assert!(is_host_label("eastus"));
        assert!(is_host_label("ci-alice"));
        assert!(!is_host_label("-ci"));
        assert!(!is_host_label("ci_alice"));
        assert!(!is_host_label(""));
        assert!(!is_host_label(&"a".repeat(64)));
    }

    #[test]
    fn domain_names() {
        assert_eq!(domain_name("A.B.").unwrap(), "a.b");
        assert_eq!(domain_name("*.x.y").unwrap(), "*.x.y");
        assert_eq!(domain_name("_sip._tcp.x.y").unwrap(), "_sip._tcp.x.y");
        assert!(domain_name("*").is_err());
        assert!(domain_name("a b.c").is_err());
        assert!(domain_name(&format!("{}.x", "a".repeat(64))).is_err());
        assert!(domain_name(&format!("{}x", "a.".repeat(127))).is_err());
    }
}
