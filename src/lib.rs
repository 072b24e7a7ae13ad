//! amldns: a DNS server that answers the names of Azure Machine Learning
//! workspaces behind private endpoints from its own table, and forwards every
//! other query to Azure's resolver.
//!
//! Data flows one way: [`config`] (the TOML file and its [`import`]s) →
//! [`names`] (every name a workspace needs) → [`zone`] (an immutable table) →
//! swapped into the server behind `ArcSwap` → [`handler`] reads a snapshot
//! per query → [`resolve`] decides the answer (a plan) → an encoder writes
//! it ([`wire`] for the hot cases, [`codec`] for the rest), after asking
//! [`forward`] (with its [`cache`]) where the plan says so. Configuration
//! errors and warnings, wherever found, are made of [`diagnostics`].
//! What an operator asks the running server ([`http`]) and the commands
//! that ask it are in [`control`]; [`explain`] tells how a name is answered
//! from the same plan the server answers with; [`doctor`] checks, from a
//! client's side, that the resolvers on its path give the table's answers.

pub mod allocator;
pub mod azure;
pub mod cache;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod control;
pub mod diagnostics;
pub mod doctor;
pub mod explain;
pub mod export;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod forward;
pub mod handler;
pub mod health;
pub mod http;
pub mod import;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod reload;
pub mod resolve;
pub mod server;
pub mod snapshot;
pub mod soa;
pub mod tcp;
pub mod udp;
pub mod upstream;
pub mod wire;
pub mod zone;
