//! The command line (SPEC §5): `serve`, `check`, `records`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::logging;
use crate::names;
use crate::reload::{ReloadError, WatchMode};
use crate::server::{self, Listeners, Options};
use crate::zone::{Data, ZoneTable};

#[derive(Debug, Parser)]
#[command(
    name = "amldns",
    version,
    about = "DNS for Azure ML workspaces behind private endpoints: \
    answers their names from a table, forwards the rest"
)]
pub struct Cli {
    /// How `serve` writes its logs (to stderr).
    #[arg(long, global = true, value_enum, default_value_t = logging::Format::Text)]
    log_format: logging::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The config file.
    #[arg(long, short, env = "AMLDNS_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the DNS server.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// How to notice config changes: inotify, polling every second, or
        /// only SIGHUP and POST /reload.
        #[arg(long, value_enum, default_value_t = WatchMode::Notify)]
        watch: WatchMode,
    },
    /// Validate the config: print what each workspace gives, exit 1 on errors.
    Check(ConfigArg),
    /// Print every name answered locally and its answer.
    Records {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, short, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Aligned columns for people.
    Table,
    /// One object per name.
    Json,
    /// Zone-file records (RFC 1035 master file syntax) grouped by zone.
    Zone,
    /// /etc/hosts lines (addresses only; wildcards cannot be expressed).
    Hosts,
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, watch } => serve(&config.config, watch, cli.log_format),
        Command::Check(c) => check(&c.config),
        Command::Records { config, format } => records(&config.config, format),
    }
}

/// Loads and compiles, or prints the located error.
fn load(path: &std::path::Path) -> Option<(Config, ZoneTable)> {
    let compiled = config::load(path).and_then(|c| {
        let t = ZoneTable::compile(&c, 1)?;
        Ok((c, t))
    });
    match compiled {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

fn serve(path: &std::path::Path, watch: WatchMode, log_format: logging::Format) -> ExitCode {
    logging::init(log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        // First of all: SIGHUP's default action would end the process, and
        // `systemctl reload` may come at any time after the start.
        #[cfg(unix)]
        let sighup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("cannot listen for SIGHUP: {e}");
                None
            }
        };
        let config = config::load(path).map_err(ReloadError::from)?;
        for w in &config.warnings {
            warn!("{w}");
        }
        let metrics = config.metrics.as_ref().map(|m| m.listen);
        let listeners = Listeners::bind(&config.server.listen, metrics).await?;
        let options = Options {
            watch,
            #[cfg(unix)]
            sighup,
        };
        server::run(config, listeners, options, shutdown_signal()).await
    });
    match served {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let Some((config, table)) = load(path) else {
        return ExitCode::FAILURE;
    };
    let mut out = String::new();
    for w in &config.warnings {
        let _ = writeln!(out, "{w}");
    }
    for ws in &config.workspaces {
        let w = &ws.value;
        let n = names::derive(w, config.zone.answer).len();
        let _ = writeln!(
            out,
            "workspace {} ({}, {} {}): {n} names",
            w.name,
            w.id,
            w.cloud.as_str(),
            w.region
        );
    }
    if !config.records.is_empty() {
        let _ = writeln!(out, "records: {} names", config.records.len());
    }
    if !config.imports.is_empty() {
        let _ = writeln!(out, "imports: {} names", config.imports.len());
    }
    let _ = writeln!(
        out,
        "{}: OK, {} local names, upstreams {}",
        config.path.display(),
        table.len(),
        config
            .upstream
            .servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    emit(&out)
}

fn records(path: &std::path::Path, format: Format) -> ExitCode {
    let Some((_, table)) = load(path) else {
        return ExitCode::FAILURE;
    };
    let out = match format {
        Format::Table => format_table(&table),
        Format::Json => format_json(&table),
        Format::Zone => format_zone(&table),
        Format::Hosts => format_hosts(&table),
    };
    emit(&out)
}

/// Writes `text` to stdout. A reader that stops early (`amldns records |
/// head`) is not an error.
fn emit(text: &str) -> ExitCode {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write: {e}");
            ExitCode::FAILURE
        }
    }
}

/// (type, values) of a node's records.
fn rrs(data: &Data) -> Vec<(&'static str, String)> {
    match data {
        Data::Addrs { v4, v6 } => v4
            .iter()
            .map(|a| ("A", a.to_string()))
            .chain(v6.iter().map(|a| ("AAAA", a.to_string())))
            .collect(),
        Data::Alias(t) => vec![("CNAME", format!("{t}."))],
    }
}

fn format_table(table: &ZoneTable) -> String {
    let rows: Vec<[String; 5]> = table
        .nodes()
        .iter()
        .flat_map(|n| {
            rrs(&n.data).into_iter().map(move |(t, v)| {
                [
                    n.name.to_string(),
                    t.to_string(),
                    n.ttl.to_string(),
                    v,
                    table.source(n),
                ]
            })
        })
        .collect();
    let head = ["NAME", "TYPE", "TTL", "ANSWER", "SOURCE"].map(String::from);
    let mut widths = [0; 5];
    for r in std::iter::once(&head).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn format_json(table: &ZoneTable) -> String {
    let list: Vec<serde_json::Value> = table
        .nodes()
        .iter()
        .map(|n| {
            let mut v = serde_json::json!({
                "name": n.name.as_ref(),
                "ttl": n.ttl,
                "zone": table.apex(n),
                "source": table.source(n),
                "at": table.origin(n).at.to_string(),
            });
            match &n.data {
                Data::Addrs { v4, v6 } => {
                    v["a"] = v4.iter().map(ToString::to_string).collect();
                    v["aaaa"] = v6.iter().map(ToString::to_string).collect();
                }
                Data::Alias(t) => v["cname"] = t.as_ref().into(),
            }
            v
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&list).unwrap_or_default();
    s.push('\n');
    s
}

/// Master-file text (RFC 1035 §5), one zone per apex with the SOA amldns
/// serves and an NS record, so that another server can load it.
fn format_zone(table: &ZoneTable) -> String {
    let mut zones: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for n in table.nodes() {
        for (t, v) in rrs(&n.data) {
            zones
                .entry(table.apex(n))
                .or_default()
                .push(format!("{}.\t{}\tIN\t{t}\t{v}", n.name, n.ttl));
        }
    }
    let mut out = String::new();
    for (zone, lines) in zones {
        let soa = table.soa(zone);
        let _ = writeln!(out, "; zone {zone}\n$ORIGIN {zone}.");
        let _ = writeln!(
            out,
            "@\t{}\tIN\tSOA\t{zone}. hostmaster.{zone}. {} {} {} {} {}",
            soa.minimum, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
        );
        let _ = writeln!(out, "@\t{}\tIN\tNS\tlocalhost.", soa.minimum);
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        out.push('\n');
    }
    out
}

fn format_hosts(table: &ZoneTable) -> String {
    let mut out = String::new();
    for n in table.nodes() {
        if n.name.starts_with("*.") {
            let _ = writeln!(
                out,
                "# {} is a wildcard: hosts files cannot hold it",
                n.name
            );
            continue;
        }
        // Hosts files have no aliases: follow the chain inside the table.
        let mut data = &n.data;
        for _ in 0..crate::zone::MAX_CHAIN {
            let Data::Alias(t) = data else { break };
            match table.find(t) {
                Some(next) => data = &next.data,
                None => break,
            }
        }
        match data {
            Data::Addrs { v4, v6 } => {
                for a in v4
                    .iter()
                    .map(ToString::to_string)
                    .chain(v6.iter().map(ToString::to_string))
                {
                    let _ = writeln!(out, "{a}\t{}", n.name);
                }
            }
            Data::Alias(t) => {
                let _ = writeln!(out, "# {} is an alias of {t}, which is not local", n.name);
            }
        }
    }
    out
}
