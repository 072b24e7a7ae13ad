//! The `amldns` binary: everything is in the library (`amldns::cli`).

fn main() -> std::process::ExitCode {
    amldns::cli::main()
}
