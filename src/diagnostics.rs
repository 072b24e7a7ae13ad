//! What configuration errors and warnings are made of: a [`Location`] in a
//! file, [`Lines`] to find it from a byte offset, the [`ConfigError`] that
//! refuses a configuration and the [`Warning`] that does not. Shared by
//! [`crate::config`], [`crate::import`] and [`crate::zone`], which blame
//! their files in the same words.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A place in a file: what every error and warning points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Shared by every location in one file: a config of many records
    /// keeps one per record, in the configuration and in the table.
    pub file: Arc<Path>,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
}

impl Location {
    /// The start of `file`: for what a whole file does or lacks.
    pub fn start_of(file: &Path) -> Self {
        Location {
            file: file.into(),
            line: 1,
            col: 1,
        }
    }

    /// A place outside any file: an Azure resource that discovery read, shown as
    /// `azure <resource id>`. Line 0: there is no line to point at.
    pub fn azure(resource_id: &str) -> Self {
        Location {
            file: PathBuf::from(format!("azure {resource_id}")).into(),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}", self.file.display());
        }
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Turns byte offsets of one file's text into locations. Built once per
/// file: a config of 10,000 workspaces locates tens of thousands of values.
pub struct Lines<'a> {
    file: Arc<Path>,
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub fn new(file: &Path, text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines {
            file: file.into(),
            text,
            starts,
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The location of byte `offset`.
    pub fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        Location {
            file: self.file.clone(),
            line,
            col: self
                .text
                .get(start..offset)
                .map_or(0, |s| s.chars().count())
                + 1,
        }
    }

    /// The line holding byte `offset`, split there: (before, from it on).
    pub fn line_around(&self, offset: usize) -> (&'a str, &'a str) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let end = self.starts.get(line).map_or(self.text.len(), |&s| s - 1);
        (
            self.text.get(self.starts[line - 1]..offset).unwrap_or(""),
            self.text.get(offset..end.max(offset)).unwrap_or(""),
        )
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
}

/// Something legal but probably not what was meant; logged and printed by `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub at: Location,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.at, self.message)
    }
}

/// Past this many edits a suggestion guesses more than it helps.
const MAX_SUGGESTION_EDITS: usize = 2;

/// The candidate closest to `word` (case-insensitive), for a "did you mean";
/// none when every candidate is more than two edits away, or `word` is one.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edits(&word, &c.to_ascii_lowercase()), c))
        .filter(|&(d, _)| (1..=MAX_SUGGESTION_EDITS).contains(&d))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edits (insert, delete, replace a character, or swap two neighbours) that
/// turn `a` into `b`: the optimal string alignment distance, so that the
/// common typo of two swapped letters counts once.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two back (for swaps), the last, and this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_characters() {
        let lines = Lines::new(Path::new("f"), "a\né = x\n\nz");
        let at = |o| {
            let l = lines.locate(o);
            (l.line, l.col)
        };
        assert_eq!(lines.locate(6).to_string(), "f:2:4");
        assert_eq!(
            [at(0), at(1), at(2), at(9), at(10), at(99)],
            [(1, 1), (1, 2), (2, 1), (3, 1), (4, 1), (4, 2)]
        );
        assert_eq!(lines.line_around(6), ("é =", " x"));
        assert_eq!(lines.line_around(0), ("", "a"));
        assert_eq!(lines.line_around(9), ("", ""));
        assert_eq!(lines.line_around(10), ("", "z"));
    }

    #[test]
    fn edit_distances() {
        let cases = [
            ("", "", 0),
            ("abc", "abc", 0),
            ("notebok_ip", "notebook_ip", 1),
            ("lsiten", "listen", 1),
            ("eastuss", "eastus", 1),
            ("westus", "eastus", 2),
            ("kitten", "sitting", 3),
            ("", "ab", 2),
        ];
        for (a, b, want) in cases {
            assert_eq!(edits(a, b), want, "{a} → {b}");
            assert_eq!(edits(b, a), want, "{b} → {a}");
        }
    }

    #[test]
    fn suggestions() {
        let keys = ["name", "ip", "notebook_ip", "inference_ip", "region"];
        assert_eq!(closest("notebok_ip", keys), Some("notebook_ip"));
        assert_eq!(closest("Regoin", keys), Some("region"));
        assert_eq!(closest("colour", keys), None);
        // An exact match is not a typo.
        assert_eq!(closest("ip", keys), None);
    }
}
