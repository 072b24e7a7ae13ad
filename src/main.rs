//! The `amldns` binary: everything is in the library (`amldns::cli`).

/// mimalloc rather than glibc's malloc: see Cargo.toml and BENCHMARKS.md
/// ("Cold misses"): the same cache in a third of the memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    amldns::cli::main()
}
