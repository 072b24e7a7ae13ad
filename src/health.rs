//! What `/healthz` reports: the process is up, and what keeps it from
//! serving what its sources say. Each source of trouble (a reload, an Azure
//! discovery round) sets its problem when it fails and
//! clears it when it succeeds again; `/healthz` shows every problem set.
//!
//! Degraded is not down: the last good table keeps serving, so a liveness
//! probe must not restart the process for it (the HTTP status stays 200).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

/// Where a problem comes from; each has at most one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The last reload failed: the files on disk are not what is served.
    Reload,
    /// The last Azure discovery round failed or was held: the
    /// last good discovery serves.
    Azure,
}

impl Source {
    /// The key in `/healthz`'s `problems`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Reload => "reload",
            Source::Azure => "azure",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Reload => "the last reload failed",
            Source::Azure => "Azure discovery",
        })
    }
}

/// The problems now, one per source.
#[derive(Debug, Default)]
pub struct Health {
    problems: Mutex<BTreeMap<Source, String>>,
}

impl Health {
    /// `source` failed with `reason`, replacing its earlier problem.
    pub fn set(&self, source: Source, reason: String) {
        self.lock().insert(source, reason);
    }

    /// `source` works again.
    pub fn clear(&self, source: Source) {
        self.lock().remove(&source);
    }

    /// Every problem, in a fixed order; empty when all is well.
    pub fn problems(&self) -> Vec<(Source, String)> {
        self.lock().iter().map(|(s, r)| (*s, r.clone())).collect()
    }

    /// `None` when all is well, else every problem in one sentence.
    pub fn reason(&self) -> Option<String> {
        let problems = self.problems();
        (!problems.is_empty()).then(|| {
            problems
                .iter()
                .map(|(s, r)| format!("{s}: {r}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Source, String>> {
        self.problems.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_sets_replaces_and_clears_its_problem() {
        let h = Health::default();
        assert_eq!(h.reason(), None);
        h.set(Source::Reload, "a.toml:1:1: bad".into());
        h.set(Source::Reload, "a.toml:2:1: worse".into());
        assert_eq!(
            h.problems(),
            vec![(Source::Reload, "a.toml:2:1: worse".to_string())]
        );
        assert_eq!(
            h.reason().as_deref(),
            Some("the last reload failed: a.toml:2:1: worse")
        );
        h.clear(Source::Reload);
        assert!(h.problems().is_empty());
        assert_eq!(h.reason(), None);
    }
}
