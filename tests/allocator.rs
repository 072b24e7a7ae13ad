//! The mimalloc option amldns sets is the one meant, and `tune` turns
//! transparent huge pages off. A process of its own, so that no other
//! test's table load changes the option while it reads; one test, so that
//! `tune` runs after the default is read.

use amldns::allocator::{SERVING_PURGE_DELAY_MS, loading, purge_delay_ms, tune};

/// mimalloc v3's default for purge_delay (`options.c`: 1000 ms) reads back
/// before any change, so the option number is purge_delay's; then serving
/// and loading set what they say, and the kernel gives the process no
/// transparent huge pages.
#[test]
fn tune_and_loading_set_what_they_say() {
    let thp = |on: bool| format!("THP_enabled:\t{}", u8::from(on));
    let status = || std::fs::read_to_string("/proc/self/status").unwrap();
    // Where the kernel offers huge pages at all, they are on before `tune`.
    let offered = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|modes| !modes.contains("[never]"));
    if offered {
        assert!(status().contains(&thp(true)), "{}", status());
    }
    assert_eq!(purge_delay_ms(), 1000);
    tune();
    assert_eq!(purge_delay_ms(), SERVING_PURGE_DELAY_MS);
    assert!(status().contains(&thp(false)), "{}", status());
    let l = loading();
    assert_eq!(purge_delay_ms(), 0);
    drop(l);
    assert_eq!(purge_delay_ms(), SERVING_PURGE_DELAY_MS);
}
