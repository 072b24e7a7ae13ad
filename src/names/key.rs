//! A query name keyed for table lookups, built from the wire without
//! allocating.

/// A query name as the table keys it: lower-case ASCII, labels joined by `.`,
/// no final dot; built on the stack so a lookup does not allocate.
pub struct NameKey {
    buf: [u8; 255],
    len: usize,
}

impl std::fmt::Debug for NameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("NameKey").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for NameKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl NameKey {
    /// `None` when the name cannot be local: a label holding a `.` or a
    /// non-ASCII byte (our names have neither), or the root.
    pub fn from_labels<'a>(labels: impl Iterator<Item = &'a [u8]>) -> Option<Self> {
        let mut key = NameKey::empty();
        let mut separators = 0u8;
        for label in labels {
            let sep = usize::from(key.len > 0);
            let end = key.len + sep + label.len();
            let room = key.buf.get_mut(key.len..end)?;
            if sep == 1 {
                room[0] = b'.';
                separators = separators.wrapping_add(1);
            }
            room[sep..].copy_from_slice(label);
            key.len = end;
        }
        key.check(separators).then_some(key)
    }

    /// No name yet: a key to [`NameKey::set_wire`] where it is kept.
    pub fn empty() -> Self {
        NameKey {
            buf: [0; 255],
            len: 0,
        }
    }

    /// Sets this key to a name as a query carries it (RFC 1035 §3.1):
    /// `labels` are its labels, each a length byte (1–63) and that many
    /// bytes, without the root label. Whether it is a key, as for
    /// [`NameKey::from_labels`]. Every query is keyed, so the name is
    /// copied in one piece and each length byte then made a dot (a copy per
    /// label took a fifth of a local answer), in place, as a key
    /// is 256 bytes to move.
    pub fn set_wire(&mut self, labels: &[u8]) -> bool {
        self.len = 0;
        let Some((&first, rest)) = labels.split_first() else {
            return false;
        };
        let Some(room) = self.buf.get_mut(..rest.len()) else {
            return false;
        };
        room.copy_from_slice(rest);
        self.len = rest.len();
        let mut separators = 0u8;
        let mut at = usize::from(first);
        while at < rest.len() {
            let len = self.buf[at];
            self.buf[at] = b'.';
            separators = separators.wrapping_add(1);
            at += 1 + usize::from(len);
        }
        // A length that runs past the end leaves no name.
        at == rest.len() && self.check(separators)
    }

    /// Whether the name, joined with `separators` dots, is a key; lower-cased
    /// and checked in one pass over it, which the compiler runs 16 bytes a step
    /// (u8 counters: 255 bytes hold at most 255 dots), rather than a byte
    /// at a time with the checks inside, which cost almost half of a local
    /// answer. A label holding a `.` shows as a dot more than the
    /// separators.
    fn check(&mut self, separators: u8) -> bool {
        let (mut high, mut dots) = (0u8, 0u8);
        for c in &mut self.buf[..self.len] {
            high |= *c;
            dots = dots.wrapping_add(u8::from(*c == b'.'));
            *c = c.to_ascii_lowercase();
        }
        self.len > 0 && high.is_ascii() && dots == separators
    }

    /// The key's labels, as [`NameKey::from_labels`] takes them.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        self.buf[..self.len].split(|&c| c == b'.')
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_keys() {
        let k = |labels: &[&[u8]]| {
            NameKey::from_labels(labels.iter().copied()).map(|k| k.as_str().to_string())
        };
        assert_eq!(
            k(&[b"WWW", b"Example", b"COM"]).as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            k(&[b"a.b", b"c"]),
            None,
            "a label holding a dot must not match two labels"
        );
        assert_eq!(k(&[b"\xc3\xa9", b"c"]), None);
        assert_eq!(k(&[]), None);
        let long: Vec<&[u8]> = std::iter::repeat_n(&b"abcdefghij"[..], 30).collect();
        assert_eq!(k(&long), None);
        let key = NameKey::from_labels([&b"A"[..], b"Bc"].into_iter()).unwrap();
        assert_eq!(key.labels().collect::<Vec<_>>(), [&b"a"[..], b"bc"]);
    }

    /// A name in wire form keys as its labels do.
    #[test]
    fn wire_name_keys() {
        let k = |wire: &[u8]| {
            let mut key = NameKey::empty();
            key.set_wire(wire).then(|| key.as_str().to_string())
        };
        assert_eq!(
            k(b"\x03WWW\x07Example\x03COM").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(k(b"\x01a").as_deref(), Some("a"));
        assert_eq!(k(b"\x03a.b\x01c"), None, "a label holding a dot");
        assert_eq!(k(b"\x02\xc3\xa9\x01c"), None);
        assert_eq!(k(b""), None);
        assert_eq!(k(b"\x03ab"), None, "a label past the end");
        assert_eq!(k(b"\x01a\x05bc"), None, "a label past the end");
        let mut long = Vec::new();
        for _ in 0..30 {
            long.push(10);
            long.extend_from_slice(b"abcdefghij");
        }
        assert_eq!(k(&long), None);
        assert_eq!(k(&long[..23 * 11]).map(|n| n.len()), Some(23 * 11 - 1));
    }
}
