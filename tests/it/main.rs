//! The integration tests, one module per subject, in one binary: one link,
//! and one run of tests that share the harness in `tests/common`. Tests that
//! need a process of their own (the panic hook, the allocator's options, the
//! process's descriptor count, thousands of sockets) are binaries beside it.

#[path = "../common/mod.rs"]
mod common;

mod azure;
mod both_paths;
mod cache;
mod cli;
mod defaults;
mod deps;
mod docs;
mod doctor;
mod encoders;
mod forwarding;
mod harness;
mod http_control;
mod local_answers;
mod metrics;
mod origins;
mod peers;
mod process;
mod reload;
mod sd_notify;
mod setup;
mod table_memory;
mod transport;
mod upstream_protection;
mod upstream_sockets;
