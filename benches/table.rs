//! Table size: what a reload of a big config costs, step by step,
//! without a server. `benches/table.sh` measures the whole reload and the
//! memory of a running server.

use std::path::Path;

use amldns::config;

mod common;

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [100, 10_000];

/// TOML text to a validated config.
#[divan::bench(args = SIZES)]
fn parse(bencher: divan::Bencher<'_, '_>, workspaces: usize) {
    let text = common::config_text(workspaces);
    bencher.bench(|| config::parse(Path::new("bench.toml"), divan::black_box(&text)).unwrap());
}

/// A validated config to the table the handler reads.
#[divan::bench(args = SIZES)]
fn compile(bencher: divan::Bencher<'_, '_>, workspaces: usize) {
    let config = config::parse(Path::new("bench.toml"), &common::config_text(workspaces)).unwrap();
    bencher.bench(|| amldns::snapshot::table(divan::black_box(&config)).unwrap());
}

/// Records that are each an apex of their own: compiling them is linear
/// (the apexes were once found by a scan per name, 5 s for 40,000).
#[divan::bench(args = [10_000, 40_000])]
fn compile_records(bencher: divan::Bencher<'_, '_>, records: usize) {
    let config = config::parse(Path::new("bench.toml"), &records_text(records)).unwrap();
    bencher.bench(|| amldns::snapshot::table(divan::black_box(&config)).unwrap());
}

/// A config of `records` `[[record]]`s, each under no private-link zone.
fn records_text(records: usize) -> String {
    let mut text = String::from("[upstream]\nservers = [\"127.0.0.1:9\"]\n");
    for i in 0..records {
        text += &format!(
            "[[record]]\nname = \"host{i}.corp.contoso.internal\"\na = [\"10.{}.{}.{}\"]\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        );
    }
    text
}

/// Freeing a table, which a reload does to the one it replaces.
#[divan::bench(args = SIZES)]
fn drop_table(bencher: divan::Bencher<'_, '_>, workspaces: usize) {
    let config = config::parse(Path::new("bench.toml"), &common::config_text(workspaces)).unwrap();
    bencher
        .with_inputs(|| amldns::snapshot::table(&config).unwrap())
        .bench_values(drop);
}
