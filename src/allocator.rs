//! The server's allocator is mimalloc (set in `main.rs`): glibc's malloc let
//! the cache of forwarded answers fragment the heap, holding ~3.6 KiB of RSS
//! per 0.8 KiB answer (372 MiB under the cold load against 103 MiB; see
//! BENCHMARKS.md, "Cold misses").
//!
//! By default mimalloc returns freed memory to the system only when the
//! thread that freed it allocates again, a second later; a server idle after
//! a reload would keep both tables' memory (10,000 workspaces: 132 MiB
//! after 5 reloads, against 33 MiB with [`tune`]).

/// mimalloc's option numbers, from `mi_option_e` in the `mimalloc.h` (v3)
/// that libmimalloc-sys 0.1.49 builds (pinned in Cargo.lock), which does not
/// name these two; the test below checks them by their defaults.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed is given back at once, and memory reserved is committed
/// only when used. Call it first thing in `main`.
pub fn tune() {
    // SAFETY: mi_option_set only stores an option's value, which mimalloc
    // reads under its own synchronisation.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
    }
}

/// Gives back to the system what a load freed on this thread (the parsed
/// file, the replaced table) now, rather than when the thread next
/// allocates: a reload runs on a blocking thread that may then sleep.
pub fn release_freed() {
    // SAFETY: mi_collect only walks this thread's mimalloc heap (and
    // abandoned ones), under mimalloc's own synchronisation.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers name the options meant: their defaults in mimalloc v3's
    /// `options.c` (purge_delay 1000 ms, arena_eager_commit 2) read back
    /// before `tune`.
    #[test]
    fn option_numbers_are_the_ones_meant() {
        // SAFETY: mi_option_get only reads an option's value.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        assert_eq!(get(PURGE_DELAY), 1000);
        assert_eq!(get(ARENA_EAGER_COMMIT), 2);
    }
}
