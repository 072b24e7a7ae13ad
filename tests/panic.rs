//! The panic hook: a panic is counted and the process goes on. In a test
//! binary of its own, since the hook is process-wide.

use std::sync::Arc;

use amldns::logging::count_panics;
use amldns::metrics::{Metrics, PANICS_TOTAL};

#[test]
fn panics_are_counted_and_caught() {
    let metrics = Arc::new(Metrics::new());
    count_panics(metrics.clone());
    let caught = std::panic::catch_unwind(|| panic!("a bug in a query task"));
    let _ = std::panic::take_hook();
    assert!(caught.is_err());
    assert_eq!(metrics.process.panics.get(), 1);
    assert!(metrics.render().contains(&format!("{PANICS_TOTAL} 1")));
}
