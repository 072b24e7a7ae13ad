//! The server's allocator is mimalloc (set in `main.rs`): glibc's malloc let
//! the cache of forwarded answers fragment the heap, holding about four
//! times each answer's size in RSS, over three times mimalloc's peak under
//! a load of cache misses (BENCHMARKS.md).
//!
//! When mimalloc gives freed memory back to the system is a trade: at once
//! costs the cold path a fifth more CPU (a page given back per few misses),
//! mimalloc's own second keeps a replaced table's memory while the server
//! is idle after a reload. So: [`SERVING_PURGE_DELAY_MS`] while serving,
//! at once while a table is loaded ([`loading`]).

/// mimalloc's option number for `purge_delay`, from `mi_option_e` in the
/// `mimalloc.h` (v3) that libmimalloc-sys 0.1.49 builds (pinned in
/// Cargo.lock), which does not name it; `tests/allocator.rs` checks it by
/// its default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system this long after (mimalloc v2's
/// default): under a flood of misses as cheap as never, and soon enough
/// that RSS follows the cache.
pub const SERVING_PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Sets the delay for serving, and turns transparent huge pages off for
/// the process. Call it first thing in `main`.
///
/// mimalloc asks for huge pages on its arenas (`MADV_HUGEPAGE`), which
/// Debian's default (`enabled=madvise`, `defrag=madvise`) grants: a first
/// touch then clears 2 MiB, compacting memory first if it must, on the
/// thread answering a query. Under the cold load that was the general path
/// stalled for 5 ms at a time; turning huge pages off took a miss's p99
/// from 8–10 ms to 3.3–4.8 ms (BENCHMARKS.md, where the rest went). The
/// process flag covers what was mapped before `main` too (Linux 5.0 and
/// later), and is inherited by what amldns runs (`az`), to no harm.
pub fn tune() {
    set_purge_delay(SERVING_PURGE_DELAY_MS);
    // SAFETY: PR_SET_THP_DISABLE takes integers and changes only a flag of
    // this process; a kernel without it returns EINVAL, which leaves
    // things as they were.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0)
    };
}

/// While a table is loaded, memory freed goes back at once: the parse, the
/// validation and the replaced table do not stay resident beside the new
/// one. Dropping it goes back to [`SERVING_PURGE_DELAY_MS`] and gives back
/// what is still held freed (10,000 workspaces: reload peak 67 MiB, 82
/// without; BENCHMARKS.md).
pub struct Loading(());

pub fn loading() -> Loading {
    set_purge_delay(0);
    Loading(())
}

impl Drop for Loading {
    fn drop(&mut self) {
        set_purge_delay(SERVING_PURGE_DELAY_MS);
        // SAFETY: mi_collect only walks mimalloc's heaps and arenas, under
        // its own synchronisation.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
}

fn set_purge_delay(ms: std::ffi::c_long) {
    // SAFETY: mi_option_set only stores an option's value, which mimalloc
    // reads atomically.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, ms) };
}

/// The delay in force, in milliseconds.
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: mi_option_get only reads an option's value.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}
