//! The command line (SPEC §5): `serve`, `check`, `records`; and `forwarders`,
//! an addition that writes on-premises DNS servers' forwarder config.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::export::{self, Format};
use crate::forwarders::{self, Server};
use crate::logging;
use crate::names::{self, Cloud};
use crate::reload::{ReloadError, WatchMode};
use crate::resolve;
use crate::server::{self, Listeners, Options};
use crate::zone::ZoneTable;

/// `amldns --version`: the version, the commit and the build date (SPEC §9),
/// stamped by build.rs.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AMLDNS_COMMIT"),
    ", built ",
    env!("AMLDNS_BUILD_DATE"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "amldns",
    version = VERSION,
    about = "DNS for Azure ML workspaces behind private endpoints: \
    answers their names from a table, forwards the rest"
)]
pub struct Cli {
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
        /// How to write logs (to stderr).
        #[arg(long, value_enum, default_value_t = logging::Format::Text)]
        log_format: logging::Format,
    },
    /// Validate the config: print what each workspace gives, exit 1 on errors.
    Check(ConfigArg),
    /// Print every name answered locally and its answer.
    Records {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, short, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// With --format zone: write one file per zone, DIR/<zone>.zone,
        /// instead of one stream.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Print the conditional forwarders an on-premises DNS server needs to
    /// send to amldns the zones it answers in.
    Forwarders {
        /// amldns's addresses as that server reaches them: IP or IP:port,
        /// comma-separated.
        #[arg(long, required = true, value_delimiter = ',', value_parser = forwarders::parse_target)]
        to: Vec<SocketAddr>,
        #[arg(long, short, value_enum)]
        format: Server,
        /// Forward only the zones this config answers in: its clouds' Azure
        /// ML zones and its records' zones. Without it and --cloud: every
        /// cloud's Azure ML zones.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Forward this cloud's Azure ML zones (public, china, usgov; may
        /// repeat, or comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = forwarders::parse_cloud)]
        cloud: Vec<Cloud>,
    },
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            watch,
            log_format,
        } => serve(&config.config, watch, log_format),
        Command::Check(c) => check(&c.config),
        Command::Records {
            config,
            format,
            out_dir,
        } => records(&config.config, format, out_dir.as_deref()),
        Command::Forwarders {
            to,
            format,
            config,
            cloud,
        } => forwarders(&forwarders::Request {
            server: format,
            to: &to,
            config: config.as_deref(),
            clouds: &cloud,
        }),
    }
}

/// Loads and compiles, or prints the located error.
fn load(path: &std::path::Path) -> Option<(Config, ZoneTable)> {
    let compiled = config::load(path).and_then(|c| {
        let t = c.table(1)?;
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

fn records(path: &std::path::Path, format: Format, out_dir: Option<&std::path::Path>) -> ExitCode {
    let Some((config, table)) = load(path) else {
        return ExitCode::FAILURE;
    };
    let ns_addrs = resolve::ns_addrs(&config.server.listen);
    let Some(dir) = out_dir else {
        return emit(&export::render(&table, format, &ns_addrs));
    };
    if format != Format::Zone {
        eprintln!("error: --out-dir writes zone files: it needs --format zone");
        return ExitCode::FAILURE;
    }
    let files = export::zone_files(&table, &ns_addrs);
    for note in &files.notes {
        eprintln!("note: {note}");
    }
    let mut out = String::new();
    for (zone, text) in &files.zones {
        let file = dir.join(format!("{zone}.zone"));
        if let Err(e) = write_replacing(&file, text) {
            eprintln!("error: cannot write {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
        let _ = writeln!(out, "{}", file.display());
    }
    emit(&out)
}

/// Writes `file` whole or not at all: a server that reloads it while it is
/// written reads the old zone or the new one, never half of one.
fn write_replacing(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, file)
}

fn forwarders(req: &forwarders::Request) -> ExitCode {
    let loaded = match req.config {
        Some(path) => match load(path) {
            Some(v) => Some(v),
            None => return ExitCode::FAILURE,
        },
        None => None,
    };
    let zones = forwarders::zones(loaded.as_ref().map(|(c, t)| (c, t)), req.clouds);
    match forwarders::render(req, &zones) {
        Ok(text) => emit(&text),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
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
