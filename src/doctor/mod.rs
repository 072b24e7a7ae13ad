//! `amldns doctor`: whether clients get the private answers along the path
//! they really use. The table the servers serve (or a config compiles) is
//! asked, name by name, through each resolver a client asks (its VNet's DNS,
//! a conditional forwarder, a VPN's resolver), and each name gets one
//! verdict over all its tries; replicas are compared first, public names
//! that must stay public and Firefox's DNS-over-HTTPS canary are checked
//! too.
//!
//! `expect` (what each name must give: the rows, the public names, the
//! replicas' differences), `verdict` (what tries add up to) and `report`
//! (text, JSON, textfile metrics) are pure; `ask` is the DNS client; this
//! file runs one check from the request to the report.

pub mod ask;
pub mod expect;
pub mod report;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::rr::RecordType;
use tokio::task::JoinSet;

use crate::control::{self, ControlError, ServerStatus};
use crate::export::Row;
use crate::resolve::DOH_CANARY;
use ask::Resolver;
use expect::{Check, Expect};
pub use report::{Finding, Replica, Report};
use verdict::{Got, Verdict};

/// Where clients' resolvers are listed when `--via` is not given.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Where the expected table comes from.
#[derive(Debug, Clone)]
pub enum Table {
    /// Running servers' metrics listeners (`/records`, `/status`); the
    /// first one's table is the expected one.
    Servers(Vec<String>),
    /// The table a config compiles to.
    Rows(Vec<Row>),
}

/// One doctor run, as the command line asks it.
#[derive(Debug, Clone)]
pub struct Request {
    pub table: Table,
    /// The resolvers to ask through.
    pub via: Vec<SocketAddr>,
    /// Ask over TCP as well as UDP.
    pub tcp: bool,
    /// Tries per name, resolver and transport.
    pub repeat: usize,
    /// Connect to each `ok` address on this TCP port.
    pub connect: Option<u16>,
}

/// Why doctor could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    Server(#[from] ControlError),
    #[error(
        "no resolver to ask through: give --via ADDR[:PORT], or nameserver lines in {RESOLV_CONF}"
    )]
    NoResolver,
}

/// The `nameserver` lines of a resolv.conf (resolv.conf(5)), port 53; an
/// IPv6 address's `%zone` is dropped.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            let addr = words.next()?;
            let ip: IpAddr = addr.split('%').next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// Runs the checks `req` asks for.
pub async fn run(req: Request) -> Result<Report, DoctorError> {
    if req.via.is_empty() {
        return Err(DoctorError::NoResolver);
    }
    let mut report = Report {
        resolvers: req.via.iter().map(ToString::to_string).collect(),
        ..Report::default()
    };
    let rows = match req.table {
        Table::Rows(rows) => rows,
        Table::Servers(servers) => replicas(&servers, &mut report).await?,
    };
    let checks = expect::checks(&rows);
    report.names = checks.len();
    let public = expect::public_names(&rows);
    let mut asked: Vec<String> = checks
        .iter()
        .filter(|c| matches!(c.expect, Expect::Addrs(_)))
        .map(|c| c.name.clone())
        .collect();
    let (first_public, canary) = (asked.len(), asked.len() + public.len());
    asked.extend(public.iter().cloned());
    asked.push(DOH_CANARY.to_string());
    let asked = Arc::new(asked);
    let transports: &[bool] = if req.tcp { &[false, true] } else { &[false] };
    let mut per_via = JoinSet::new();
    for (i, &via) in req.via.iter().enumerate() {
        let asked = asked.clone();
        per_via.spawn(async move {
            (
                i,
                ask_all(Resolver::new(via), asked, transports, req.repeat).await,
            )
        });
    }
    let mut tries = vec![Vec::new(); req.via.len()];
    while let Some(done) = per_via.join_next().await {
        let (i, got) = done.expect("a resolver's questions do not panic");
        tries[i] = got;
    }
    let mut findings = Vec::new();
    for (via, tries) in report.resolvers.iter().zip(&tries) {
        let mut asked_tries = tries.iter();
        for check in &checks {
            let finding = match &check.expect {
                Expect::Skipped(why) => finding(check, via, why.to_string(), Verdict::Skipped),
                Expect::Addrs(want) => {
                    let got = asked_tries.next().expect("one set of tries per name asked");
                    finding(check, via, shown(got), verdict::judge(want, got))
                }
            };
            findings.push(finding);
        }
        for (name, got) in public.iter().zip(&tries[first_public..canary]) {
            if verdict::is_captured(got) {
                findings.push(Finding {
                    name: name.clone(),
                    expected: "a public address".into(),
                    via: via.clone(),
                    got: shown(got),
                    verdict: Verdict::Captured,
                });
            }
        }
        if !verdict::canary_holds(&tries[canary]) {
            findings.push(Finding {
                name: DOH_CANARY.into(),
                expected: "NXDOMAIN".into(),
                via: via.clone(),
                got: shown(&tries[canary]),
                verdict: Verdict::Canary,
            });
        }
    }
    if let Some(port) = req.connect {
        connect(&mut findings, &checks, port).await;
    }
    report.results.extend(findings);
    Ok(report)
}

/// Each server's `/status` and `/records`; the names the others serve
/// differently from the first are `replicas differ`. The first's rows are
/// the expected table.
async fn replicas(servers: &[String], report: &mut Report) -> Result<Vec<Row>, DoctorError> {
    let mut tables = Vec::new();
    for server in servers {
        let get = hyper::Method::GET;
        let status: ServerStatus = control::request_json(server, get.clone(), "/status").await?;
        let rows: Vec<Row> = control::request_json(server, get, "/records").await?;
        report.replicas.push(Replica {
            server: server.clone(),
            generation: status.generation,
            sha256: status.sha256,
        });
        tables.push(rows);
    }
    let mut tables = tables.into_iter();
    let first = tables.next().unwrap_or_default();
    for (other, rows) in servers.iter().skip(1).zip(tables) {
        for name in expect::differing(&first, &rows) {
            report.results.push(Finding {
                expected: expect::shown(&first, &name),
                got: expect::shown(&rows, &name),
                name,
                via: format!("{} / {other}", servers[0]),
                verdict: Verdict::ReplicasDiffer,
            });
        }
    }
    Ok(first)
}

/// Every name of `asked` through `resolver`, over each transport, `repeat`
/// times; each name's tries, in `asked`'s order.
async fn ask_all(
    resolver: Arc<Resolver>,
    asked: Arc<Vec<String>>,
    transports: &'static [bool],
    repeat: usize,
) -> Vec<Vec<Got>> {
    let mut tasks = JoinSet::new();
    for i in 0..asked.len() {
        for &tcp in transports {
            for _ in 0..repeat {
                let (resolver, asked) = (resolver.clone(), asked.clone());
                tasks.spawn(async move { (i, resolver.ask(&asked[i], RecordType::A, tcp).await) });
            }
        }
    }
    let mut tries = vec![Vec::new(); asked.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, got) = done.expect("a question does not panic");
        tries[i].push(got);
    }
    tries
}

/// With `--connect PORT`: an `ok` name one of whose addresses takes no TCP
/// connection on PORT is `unreachable`. Each address is tried once.
async fn connect(findings: &mut [Finding], checks: &[Check], port: u16) {
    let wanted: BTreeMap<&str, &[IpAddr]> = checks
        .iter()
        .filter_map(|c| match &c.expect {
            Expect::Addrs(a) => Some((c.name.as_str(), a.as_slice())),
            Expect::Skipped(_) => None,
        })
        .collect();
    let addrs: BTreeSet<IpAddr> = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Ok)
        .filter_map(|f| wanted.get(f.name.as_str()))
        .flat_map(|a| a.iter().copied())
        .collect();
    let slots = Arc::new(tokio::sync::Semaphore::new(ask::IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for ip in addrs {
        let slots = slots.clone();
        tasks.spawn(async move {
            let _slot = slots.acquire().await;
            (ip, ask::reachable(ip, port).await)
        });
    }
    let mut closed = BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        let (ip, open) = done.expect("a connection does not panic");
        if !open {
            closed.insert(ip);
        }
    }
    for f in findings.iter_mut().filter(|f| f.verdict == Verdict::Ok) {
        let shut: Vec<IpAddr> = wanted
            .get(f.name.as_str())
            .map(|a| a.iter().copied().filter(|ip| closed.contains(ip)).collect())
            .unwrap_or_default();
        if !shut.is_empty() {
            f.verdict = Verdict::Unreachable;
            f.got = format!(
                "{} (no TCP connection to port {port})",
                verdict::join(&shut)
            );
        }
    }
}

fn finding(check: &Check, via: &str, got: String, verdict: Verdict) -> Finding {
    Finding {
        name: check.name.clone(),
        expected: match &check.expect {
            Expect::Addrs(a) => verdict::join(a),
            Expect::Skipped(_) => "-".into(),
        },
        via: via.to_string(),
        got,
        verdict,
    }
}

/// The distinct results of a name's tries, in the order first seen.
fn shown(tries: &[Got]) -> String {
    let mut seen: Vec<&Got> = Vec::new();
    for t in tries {
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    seen.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_gives_its_nameservers_on_port_53() {
        let text = "# generated\nsearch example.com\nnameserver 10.0.0.2\n\
                    nameserver fe80::1%eth0\n  nameserver 168.63.129.16 # azure\n\
                    options ndots:5\nnameserver bad\n";
        let got: Vec<String> = nameservers(text).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["10.0.0.2:53", "[fe80::1]:53", "168.63.129.16:53"]);
    }
}
