//! Logs: human text by default, JSON on request, level from
//! `RUST_LOG`; and a rate limit for lines that a flood could repeat.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// INFO and above from every target; `RUST_LOG` is added on top, so it
/// can raise or lower any target (`RUST_LOG=amldns=debug`).
pub const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber, writing to stderr.
pub fn init(format: Format) {
    let user = std::env::var("RUST_LOG").unwrap_or_default();
    let filter =
        tracing_subscriber::EnvFilter::builder().parse_lossy(format!("{DEFAULT_FILTER},{user}"));
    // Colours only for a person at a terminal: journald, `kubectl logs` and
    // files would keep the escape codes as text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr);
    match format {
        Format::Text => builder.init(),
        Format::Json => builder.json().flatten_event(true).init(),
    }
}

/// Colour codes only for a person at a terminal: journald, `docker logs`
/// and files would store them as `\x1b[2m…` (https://no-color.org: a
/// non-empty `NO_COLOR` turns them off there too).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Logs every panic through tracing (so it reaches the JSON log too) and
/// counts it, then hands it to the hook that was there before (by default,
/// the message on stderr). A panic in a query's task loses that query, not
/// the server: tokio catches it, and this hook makes it seen and counted.
pub fn count_panics(metrics: Arc<crate::metrics::Metrics>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        metrics.process.panics.inc();
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            "panic (a bug, please report it): {info}"
        );
        previous(info);
    }));
}

/// Lets one event through per `every`, and counts what it held back, so a
/// flood of the same problem writes one line per interval, not per query.
pub struct RateLimited {
    every: Duration,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last line let through, plus one
    /// (0: never).
    last_ms: AtomicU64,
    held_back: AtomicU64,
}

impl RateLimited {
    pub fn new(every: Duration) -> Self {
        RateLimited {
            every,
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were held
    /// back since the last one; `None` when this one is held back.
    pub fn check(&self) -> Option<u64> {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= self.every.as_millis() as u64;
        if due
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }

    #[test]
    fn one_line_per_interval() {
        let r = RateLimited::new(Duration::from_secs(3600));
        assert_eq!(r.check(), Some(0));
        for _ in 0..5 {
            assert_eq!(r.check(), None);
        }
        let r = RateLimited::new(Duration::ZERO);
        assert_eq!(r.check(), Some(0));
        assert_eq!(r.check(), Some(0));
    }
}
