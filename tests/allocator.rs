//! The mimalloc option amldns sets is the one meant. A process of its own,
//! so that no other test's table load changes the option while it reads.

use amldns::allocator::{SERVING_PURGE_DELAY_MS, loading, purge_delay_ms, tune};

/// mimalloc v3's default for purge_delay (`options.c`: 1000 ms) reads back
/// before any change, so the option number is purge_delay's; then serving
/// and loading set what they say.
#[test]
fn purge_delay_is_set_for_serving_and_for_loading() {
    assert_eq!(purge_delay_ms(), 1000);
    tune();
    assert_eq!(purge_delay_ms(), SERVING_PURGE_DELAY_MS);
    let l = loading();
    assert_eq!(purge_delay_ms(), 0);
    drop(l);
    assert_eq!(purge_delay_ms(), SERVING_PURGE_DELAY_MS);
}
