//! The command line: `serve`, `check`, `records`; `status`,
//! `flush` and `explain`, which ask a running server (or, for `records` and
//! `explain`, read the config file); `forwarders`, an addition that
//! writes on-premises DNS servers' forwarder config; and `doctor`, which
//! checks what clients' resolvers answer.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::{error, info, warn};

use crate::azure::Discovered;
use crate::config::{self, Config, ConfigError};
use crate::control::{self, ControlError, Flushed, ServerStatus};
use crate::diagnostics::Location;
use crate::doctor;
use crate::explain::{self, Explanation};
use crate::export::forwarders::{self, Server};
use crate::export::{self, Format, Row};
use crate::logging;
use crate::names::{self, Cloud};
use crate::reload::{ReloadError, WatchMode};
use crate::server::{self, Listeners, Options};
use crate::snapshot::{self, Built};

/// `amldns --version`: the version, the commit and the build date,
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

/// The running server to ask: its metrics listener.
#[derive(Debug, clap::Args)]
struct ServerArg {
    /// The metrics listener's URL.
    #[arg(long, short, env = "AMLDNS_SERVER", default_value = control::DEFAULT_SERVER)]
    server: String,
}

/// How `check`, `status`, `explain` and `zones` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
enum Output {
    /// For people.
    #[default]
    Text,
    /// For programs (CI pipelines, scripts).
    Json,
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
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// json: {"ok", "errors", "warnings"}, each with file, line, column, message.
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        format: Output,
    },
    /// Print every name answered locally and its answer: from the config
    /// file, or with --server the table a running server serves.
    Records {
        #[command(flatten)]
        config: ConfigArg,
        /// Ask the server at this URL (its metrics listener) instead of
        /// reading the file (formats table and json).
        #[arg(long)]
        server: Option<String>,
        #[arg(long, short, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// With --format zone: write one file per zone, DIR/<zone>.zone,
        /// instead of one stream.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// With --format azcli or powershell: a script that writes only
        /// record sets, into the Azure Private DNS zones that already exist
        /// in this resource group (a landing zone's central zones), and
        /// never creates, links or deletes a zone.
        #[arg(long, value_name = "SUBSCRIPTION/RESOURCE_GROUP", conflicts_with_all = ["server", "out_dir"])]
        existing_zones: Option<export::ExistingZones>,
    },
    /// Run one Azure discovery round (the config's [azure]) and print what
    /// it found as [[workspace]] entries; exit 1 with the reason if it fails.
    ///
    /// With --out, write it as a discovery file other amldns servers
    /// [[import]] instead; with --watch too, a round every interval_s.
    Discover {
        #[command(flatten)]
        config: ConfigArg,
        /// Write the discovery to FILE (atomically), in the JSON shape of
        /// the state file, for other replicas to [[import]].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// With --out: keep discovering, every [azure] interval_s, and
        /// write each good round.
        #[arg(long, requires = "out")]
        watch: bool,
    },
    /// Ask a running server what it serves and how it fares: table,
    /// last reload, upstreams, cache, problems.
    Status {
        #[command(flatten)]
        server: ServerArg,
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        format: Output,
    },
    /// Empty a running server's cache of forwarded answers (from an address
    /// in [metrics] control_allow).
    Flush {
        #[command(flatten)]
        server: ServerArg,
        /// Only this name (every type of it).
        #[arg(long)]
        name: Option<String>,
    },
    /// Say how a name is answered (local and from which source, wildcard,
    /// forwarded, refused) and why: from the config file, or with --server
    /// from the table a running server serves.
    Explain {
        name: String,
        /// The record type asked: A, AAAA, TXT, 65…
        #[arg(long = "type", short, default_value = "A")]
        qtype: String,
        /// The client asking (default: an address inside [server] allow).
        #[arg(long)]
        from: Option<std::net::IpAddr>,
        #[command(flatten)]
        config: ConfigArg,
        /// Ask the server at this URL (its metrics listener) instead of
        /// reading the file.
        #[arg(long)]
        server: Option<String>,
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        format: Output,
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
        #[arg(long, value_delimiter = ',')]
        cloud: Vec<Cloud>,
    },
    /// Print the private-link catalogue: each public zone, its privatelink
    /// zone, the service, and where the entry comes from. Names under these
    /// zones are the ones amldns serves from imports and discovery.
    Zones {
        /// Only this cloud's zones (public, china, usgov).
        #[arg(long)]
        cloud: Option<Cloud>,
        #[arg(long, short, value_enum, default_value_t = Output::Text)]
        format: Output,
    },
    /// Check from a client's side that every name of the table resolves to
    /// its private address through the resolvers the client uses, that the
    /// replicas agree, that public names stay public and that Firefox's
    /// DNS-over-HTTPS canary is NXDOMAIN. Exit 0: all ok; 1: problems; 2:
    /// it could not run.
    Doctor(DoctorArgs),
}

/// `amldns doctor`'s arguments.
#[derive(Debug, clap::Args)]
struct DoctorArgs {
    /// A running server's metrics listener to take the table from; several:
    /// replicas, compared first (default: http://127.0.0.1:9153).
    #[arg(long = "server", value_name = "URL", conflicts_with = "config")]
    servers: Vec<String>,
    /// Take the table from this config file instead.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// A resolver clients use, IP or IP:port (may repeat; default: the
    /// nameserver lines of /etc/resolv.conf).
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = forwarders::parse_target)]
    via: Vec<SocketAddr>,
    /// Ask over TCP too.
    #[arg(long)]
    tcp: bool,
    /// Tries per name, resolver and transport.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    repeat: u16,
    /// Also open a TCP connection to each ok address on this port.
    #[arg(long, value_name = "PORT")]
    connect: Option<u16>,
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    format: Output,
    /// Also write DIR/amldns_doctor.prom (node exporter's textfile format).
    #[arg(long, value_name = "DIR")]
    textfile: Option<PathBuf>,
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
        Command::Check { config, format } => match format {
            Output::Text => check(&config.config),
            Output::Json => check_json(&config.config),
        },
        Command::Records {
            config,
            server: None,
            format,
            existing_zones: Some(at),
            ..
        } => records_existing(&config.config, format, &at),
        Command::Records {
            config,
            server: None,
            format,
            out_dir,
            ..
        } => records(&config.config, format, out_dir.as_deref()),
        Command::Records {
            server: Some(server),
            format,
            ..
        } => records_from(&server, format),
        Command::Status { server, format } => status(&server.server, format),
        Command::Flush { server, name } => flush(&server.server, name.as_deref()),
        Command::Explain {
            name,
            qtype,
            from,
            config,
            server,
            format,
        } => explain(
            &name,
            &qtype,
            from,
            &config.config,
            server.as_deref(),
            format,
        ),
        Command::Discover { config, out, watch } => discover(&config.config, out.as_deref(), watch),
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
        Command::Zones { cloud, format } => {
            let zones = names::catalogue(cloud);
            emit(&match format {
                Output::Text => export::catalogue::text(&zones),
                Output::Json => export::catalogue::json(&zones),
            })
        }
        Command::Doctor(args) => doctor(args),
    }
}

/// Loads and builds as the server would at its start (with no discovery
/// from Azure), or prints the located error.
fn load(path: &std::path::Path) -> Option<(Config, Built)> {
    let compiled = config::load(path).and_then(|c| {
        let built = build(&c)?;
        Ok((c, built))
    });
    match compiled {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

fn build(config: &Config) -> Result<Built, ConfigError> {
    snapshot::build(config, &Discovered::default(), 1)
}

fn serve(path: &std::path::Path, watch: WatchMode, log_format: logging::Format) -> ExitCode {
    logging::init(log_format);
    // `systemctl reload` may come at any time after the start, and SIGHUP's
    // default action would end the process: ignored until the runtime's
    // handler takes over below.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code in
    // the handler, and no other thread exists yet.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    // The config comes first: it says how many threads the runtime gets.
    let config = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!("{}", ReloadError::from(e));
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        // First of all, so that no reload is lost.
        #[cfg(unix)]
        let sighup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("cannot listen for SIGHUP: {e}");
                None
            }
        };
        let metrics = config.metrics.as_ref().map(|m| m.listen);
        let listeners =
            Listeners::bind(&config.server.listen, config.server.threads, metrics).await?;
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
    let Some((config, built)) = load(path) else {
        return ExitCode::FAILURE;
    };
    let table = &built.snapshot.table;
    let mut out = String::new();
    for w in &config.warnings {
        let _ = writeln!(out, "{w}");
    }
    for ws in &config.workspaces {
        let w = &ws.value;
        let n = names::derive(w, config.zone.answer).len();
        let _ = writeln!(
            out,
            "workspace {} ({}, {} {}): {}",
            w.name,
            w.id,
            w.cloud.as_str(),
            w.region,
            control::count(n as u64, "name")
        );
    }
    if !config.records.is_empty() {
        let _ = writeln!(
            out,
            "records: {}",
            control::count(config.records.len() as u64, "name")
        );
    }
    if !config.imports.is_empty() {
        let _ = writeln!(
            out,
            "imports: {}",
            control::count(config.imports.len() as u64, "name")
        );
    }
    let _ = writeln!(
        out,
        "{}: OK, {}, upstreams {}",
        config.path.display(),
        control::count(table.len() as u64, "local name"),
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

fn discover(path: &std::path::Path, out: Option<&std::path::Path>, watch: bool) -> ExitCode {
    let Some((config, _)) = load(path) else {
        return ExitCode::FAILURE;
    };
    let Some(azure) = &config.azure else {
        eprintln!(
            "error: {}: no [azure] section to discover with",
            path.display()
        );
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(out) = out {
        return match runtime.block_on(crate::azure::publish(azure, out, watch)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let found = runtime
        .block_on(crate::azure::discover(azure))
        .map_err(|e| e.to_string());
    match found {
        Ok((text, skipped)) => {
            for s in skipped {
                eprintln!("{s}");
            }
            emit(&text)
        }
        Err(e) => {
            eprintln!("error: Azure discovery failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn records(path: &std::path::Path, format: Format, out_dir: Option<&std::path::Path>) -> ExitCode {
    let Some((_, built)) = load(path) else {
        return ExitCode::FAILURE;
    };
    let (table, ns_addrs) = (&built.snapshot.table, &built.snapshot.policy.ns_addrs);
    let Some(dir) = out_dir else {
        return emit(&export::render(table, format, ns_addrs));
    };
    if format != Format::Zone {
        eprintln!("error: --out-dir writes zone files: it needs --format zone");
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let files = export::zone::zone_files(table, ns_addrs);
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

/// `records --existing-zones`: that mode's script; for a format without
/// one, a usage error (exit status 2) before the config is read.
fn records_existing(
    path: &std::path::Path,
    format: Format,
    at: &export::ExistingZones,
) -> ExitCode {
    let Some(script) = export::existing_zones_script(format) else {
        use clap::CommandFactory as _;
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--existing-zones writes into Azure Private DNS zones: it needs --format azcli or powershell",
            )
            .exit();
    };
    let Some((_, built)) = load(path) else {
        return ExitCode::FAILURE;
    };
    emit(&script(&built.snapshot.table, at))
}

/// Writes `file` whole or not at all: a server that reloads it while it is
/// written reads the old zone or the new one, never half of one.
fn write_replacing(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, file)
}

fn forwarders(req: &forwarders::Request<'_>) -> ExitCode {
    let loaded = match req.config {
        Some(path) => match load(path) {
            Some(v) => Some(v),
            None => return ExitCode::FAILURE,
        },
        None => None,
    };
    let zones = forwarders::zones(
        loaded.as_ref().map(|(c, b)| (c, &b.snapshot.table)),
        req.clouds,
    );
    for name in &zones.outside {
        eprintln!(
            "warning: {name} lies in no zone of the private-link catalogue (`amldns zones`): \
             forwarded as a zone of its own; forward the public zone it belongs to instead if \
             clients reach it through a CNAME"
        );
    }
    match forwarders::render(req, &zones.zones) {
        Ok(text) => emit(&text),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `check --format json`: for CI pipelines that validate a config before
/// rollout. Exit 1 when there is an error.
fn check_json(path: &std::path::Path) -> ExitCode {
    let loaded = config::load(path).and_then(|c| build(&c).map(|_| c));
    let (errors, warnings) = match &loaded {
        Ok(c) => (
            Vec::new(),
            c.warnings
                .iter()
                .map(|w| diagnostic(Some(&w.at), &w.message))
                .collect(),
        ),
        Err(ConfigError::Invalid { at, message }) => {
            (vec![diagnostic(Some(at), message)], Vec::new())
        }
        Err(e @ ConfigError::Read { path, .. }) => {
            let mut d = diagnostic(None, &e.to_string());
            d["file"] = path.display().to_string().into();
            (vec![d], Vec::new())
        }
    };
    let ok = errors.is_empty();
    let body = serde_json::json!({
        "config": path.display().to_string(),
        "ok": ok,
        "errors": errors,
        "warnings": warnings,
    });
    let code = emit(&format!("{body:#}\n"));
    if ok { code } else { ExitCode::FAILURE }
}

/// One error or warning for `check --format json`; `line` and `column`
/// are null for what concerns a whole file it could not read.
fn diagnostic(at: Option<&Location>, message: &str) -> serde_json::Value {
    serde_json::json!({
        "file": at.map(|a| a.file.display().to_string()),
        "line": at.map(|a| a.line),
        "column": at.map(|a| a.col),
        "message": message,
    })
}

/// Runs a request to a server, or prints why it failed.
fn ask<T>(call: impl Future<Output = Result<T, ControlError>>) -> Option<T> {
    match control::block_on(call) {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            None
        }
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            None
        }
    }
}

fn records_from(server: &str, format: Format) -> ExitCode {
    let Some(rows) = ask(control::request_json::<Vec<Row>>(
        server,
        hyper::Method::GET,
        "/records",
    )) else {
        return ExitCode::FAILURE;
    };
    match export::render_rows(&rows, format) {
        Some(text) => emit(&text),
        None => {
            eprintln!("error: --server gives --format table or json; for the others, use --config");
            ExitCode::FAILURE
        }
    }
}

fn status(server: &str, format: Output) -> ExitCode {
    let Some(s) = ask(control::request_json::<ServerStatus>(
        server,
        hyper::Method::GET,
        "/status",
    )) else {
        return ExitCode::FAILURE;
    };
    match format {
        Output::Text => emit(&s.to_string()),
        Output::Json => emit(&format!("{:#}\n", serde_json::json!(s))),
    }
}

fn flush(server: &str, name: Option<&str>) -> ExitCode {
    let path = format!("/cache/flush{}", control::query_string(&[("name", name)]));
    let Some(f) = ask(control::request_json::<Flushed>(
        server,
        hyper::Method::POST,
        &path,
    )) else {
        return ExitCode::FAILURE;
    };
    let what = f.name.map_or("the whole cache".to_string(), |n| {
        format!("every type of {n}")
    });
    emit(&format!(
        "flushed {what}: {} dropped\n",
        control::count(f.flushed, "cached answer")
    ))
}

fn explain(
    name: &str,
    qtype: &str,
    from: Option<std::net::IpAddr>,
    config: &std::path::Path,
    server: Option<&str>,
    format: Output,
) -> ExitCode {
    let explained: Option<Explanation> = match server {
        Some(server) => {
            let from = from.map(|f| f.to_string());
            let path = format!(
                "/explain{}",
                control::query_string(&[
                    ("name", Some(name)),
                    ("type", Some(qtype)),
                    ("from", from.as_deref()),
                ])
            );
            ask(control::request_json(server, hyper::Method::GET, &path))
        }
        None => {
            let Some((_, built)) = load(config) else {
                return ExitCode::FAILURE;
            };
            let (snapshot, servers) = (&built.snapshot, &built.upstream.servers);
            explain::parse_type(qtype)
                .and_then(|t| {
                    explain::explain(&snapshot.table, &snapshot.policy, servers, name, t, from)
                })
                .map_err(|e| eprintln!("error: {e}"))
                .ok()
        }
    };
    let Some(x) = explained else {
        return ExitCode::FAILURE;
    };
    match format {
        Output::Text => emit(&x.to_string()),
        Output::Json => emit(&format!("{:#}\n", serde_json::json!(x))),
    }
}

/// `amldns doctor`: exit 0 when every check is fine, 1 when one is not, 2
/// when it could not run.
fn doctor(args: DoctorArgs) -> ExitCode {
    const CANNOT_RUN: u8 = 2;
    let DoctorArgs {
        servers,
        config,
        via,
        tcp,
        repeat,
        connect,
        format,
        textfile,
    } = args;
    let table = match config {
        Some(path) => match load(&path) {
            Some((_, built)) => doctor::Table::Rows(export::rows(&built.snapshot.table)),
            None => return ExitCode::from(CANNOT_RUN),
        },
        None if servers.is_empty() => doctor::Table::Servers(vec![control::DEFAULT_SERVER.into()]),
        None => doctor::Table::Servers(servers),
    };
    let via = if via.is_empty() {
        // Unreadable: no resolver, which `run` says.
        let text = std::fs::read_to_string(doctor::RESOLV_CONF).unwrap_or_default();
        doctor::nameservers(&text)
    } else {
        via
    };
    let request = doctor::Request {
        table,
        via,
        tcp,
        repeat: usize::from(repeat),
        connect,
    };
    let report = match control::block_on(doctor::run(request)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(CANNOT_RUN);
        }
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    if let Some(dir) = textfile {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let file = dir.join(doctor::report::TEXTFILE_NAME);
        if let Err(e) = write_replacing(&file, &report.textfile(now)) {
            eprintln!("error: cannot write {}: {e}", file.display());
            return ExitCode::from(CANNOT_RUN);
        }
    }
    let printed = match format {
        Output::Text => emit(&report.text()),
        Output::Json => emit(&report.json()),
    };
    if printed != ExitCode::SUCCESS {
        return ExitCode::from(CANNOT_RUN);
    }
    if report.has_problems() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
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
