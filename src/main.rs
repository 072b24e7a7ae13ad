//! The `amldns` binary: everything is in the library (`amldns::cli`).

/// mimalloc rather than glibc's malloc: see `amldns::allocator`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    amldns::allocator::tune();
    amldns::cli::main()
}
