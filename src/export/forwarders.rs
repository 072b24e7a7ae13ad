//! `amldns forwarders`: the conditional-forwarder config an on-premises DNS
//! server needs to send to amldns the zones it answers in ([`zones`]): those
//! of a config, or the Azure ML zones of some or every cloud
//! ([`names::forwarder_zones`]), for BIND, Unbound, dnsmasq and Windows DNS.
//! `deploy/onprem/` holds its output for example addresses, and a test keeps
//! those files equal to it.
//!
//! Here: which zones, and the header every server's file starts with; each
//! server's own lines and notes are in its file beside this one.
//!
//! Pure: zones and addresses in, text out.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use super::text::comment;
use super::{bind, dnsmasq, powershell, unbound};
use crate::config::Config;
use crate::names::{self, Cloud};
use crate::zone::ZoneTable;

/// The on-premises servers `amldns forwarders --format` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Server {
    /// BIND `zone … { type forward; }` statements.
    Bind,
    /// Unbound `forward-zone:` clauses.
    Unbound,
    /// dnsmasq `server=/zone/ip` lines.
    Dnsmasq,
    /// Windows DNS: `Add-DnsServerConditionalForwarderZone` (PowerShell).
    Powershell,
}

impl Server {
    /// The `--format` spelling.
    fn as_str(self) -> &'static str {
        match self {
            Server::Bind => "bind",
            Server::Unbound => "unbound",
            Server::Dnsmasq => "dnsmasq",
            Server::Powershell => "powershell",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForwardersError {
    #[error(transparent)]
    WindowsPort(#[from] powershell::PortNot53),
}

/// `ip` or `ip:port` (`[v6]:port`); a bare IP means port 53. For `--to`.
pub fn parse_target(s: &str) -> Result<SocketAddr, String> {
    crate::config::dns_server(s).ok_or_else(|| format!("{s:?} is not an IP address or IP:port"))
}

/// What `amldns forwarders` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub server: Server,
    /// amldns's addresses as the on-premises server reaches them.
    pub to: &'a [SocketAddr],
    /// `--config`: forward the zones this config answers in.
    pub config: Option<&'a Path>,
    /// `--cloud`: forward these clouds' Azure ML zones too.
    pub clouds: &'a [Cloud],
}

/// What `amldns forwarders` forwards, and the names it could not place in
/// the private-link catalogue.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Zones {
    /// Sorted; none below another.
    pub zones: Vec<String>,
    /// Names of the table outside every catalogue zone: each is forwarded
    /// as a zone of its own, which covers it and nothing else; the
    /// operator is told, since the public zone it lies in is unknown.
    pub outside: Vec<String>,
}

/// The zones to forward: the Azure ML zones of `clouds` and of the clouds of
/// `config`'s workspaces (every cloud when there is neither), and for each
/// other name of its table the public zones a client asks in to reach it
/// ([`names::public_zones_of`]: `blob.core.windows.net` for
/// `st.privatelink.blob.core.windows.net`, whose public name
/// `st.blob.core.windows.net` is a CNAME into it, so the forwarder must see
/// both). A name outside the catalogue is forwarded as its zone (its
/// apex, or the public parent of its `privatelink` label), listed in
/// [`Zones::outside`]. A zone below another listed one is
/// covered by it and left out.
pub fn zones(config: Option<(&Config, &ZoneTable)>, clouds: &[Cloud]) -> Zones {
    let azure_ml: Vec<&str> = match config {
        None if clouds.is_empty() => names::forwarder_zones(),
        _ => clouds
            .iter()
            .copied()
            .chain(
                config
                    .iter()
                    .flat_map(|(c, _)| c.workspaces.iter().map(|w| w.value.cloud)),
            )
            .flat_map(Cloud::forwarder_zones)
            .collect(),
    };
    let mut all: BTreeSet<String> = azure_ml.into_iter().map(String::from).collect();
    let mut outside = BTreeSet::new();
    let table = config.map(|(_, t)| t);
    for (node, apex) in table
        .iter()
        .flat_map(|t| t.nodes().map(move |n| (n, t.apex(n))))
    {
        let public = names::public_zones_of(node.name);
        if public.is_empty() {
            outside.insert(node.name.to_string());
            let zone = apex
                .split_once("privatelink.")
                .filter(|(before, _)| before.is_empty() || before.ends_with('.'))
                .map_or(apex, |(_, parent)| parent);
            all.insert(zone.to_string());
        }
        all.extend(public.into_iter().map(String::from));
    }
    let listed = all.clone();
    all.retain(|z| {
        !listed
            .iter()
            .any(|parent| parent != z && names::is_at_or_below(z, parent))
    });
    Zones {
        zones: all.into_iter().collect(),
        outside: outside.into_iter().collect(),
    }
}

/// The config for `req.server`, forwarding `zones` to `req.to`.
pub fn render(req: &Request<'_>, zones: &[String]) -> Result<String, ForwardersError> {
    let mut out = String::new();
    let marker = match req.server {
        Server::Bind => "//",
        Server::Unbound | Server::Dnsmasq | Server::Powershell => "#",
    };
    let mut command = format!(
        "amldns forwarders --format {} --to {}",
        req.server.as_str(),
        req.to
            .iter()
            .map(|a| target(*a))
            .collect::<Vec<_>>()
            .join(",")
    );
    if let Some(p) = req.config {
        let _ = write!(command, " --config {}", p.display());
    }
    for c in req.clouds {
        let _ = write!(command, " --cloud {}", c.as_str());
    }
    let what = match (req.config, req.clouds.is_empty()) {
        (None, true) => "the Azure ML zones of every cloud",
        (None, false) => "the Azure ML zones of the clouds asked for",
        (Some(_), _) => {
            "the zones this config answers in (its clouds' Azure ML zones, its records' zones)"
        }
    };
    let head = format!(
        "Conditional forwarders: {what}, sent to amldns.
Generated by `{command}`:
run it with your amldns addresses, and again whenever the config gains a cloud
or a name in a new zone; add this server's address to amldns's [server] allow.
The privatelink.* zones sit under these zones, so they are covered.
See deploy/onprem/README.md."
    );
    comment(&mut out, marker, &head);
    comment(&mut out, marker, notes(req.server));
    let to = req.to;
    match req.server {
        Server::Bind => bind::forwarders(&mut out, zones, to),
        Server::Unbound => unbound::forwarders(&mut out, zones, to),
        Server::Dnsmasq => dnsmasq::forwarders(&mut out, zones, to),
        Server::Powershell => powershell::forwarders(&mut out, zones, to)?,
    }
    Ok(out)
}

/// How `--to` spells an address: the port only when it is not 53.
fn target(a: SocketAddr) -> String {
    if a.port() == 53 {
        a.ip().to_string()
    } else {
        a.to_string()
    }
}

/// Why each server needs more than the forwarders: amldns's answers are
/// private addresses (DNS-rebind protection drops them) and unsigned
/// (DNSSEC validation rejects them if a public zone is ever signed).
fn notes(server: Server) -> &'static str {
    match server {
        Server::Bind => bind::FORWARDERS_NOTES,
        Server::Unbound => unbound::FORWARDERS_NOTES,
        Server::Dnsmasq => dnsmasq::FORWARDERS_NOTES,
        Server::Powershell => powershell::FORWARDERS_NOTES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn to(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| parse_target(s).unwrap()).collect()
    }

    /// Every cloud's zones, as without --config and --cloud.
    fn every_cloud(server: Server, to: &[SocketAddr]) -> Result<String, ForwardersError> {
        let req = Request {
            server,
            to,
            config: None,
            clouds: &[],
        };
        render(&req, &zones(None, &[]).zones)
    }

    fn config(text: &str) -> (Config, ZoneTable) {
        let c = crate::config::parse(Path::new("t.toml"), text).unwrap();
        let t = crate::snapshot::table(&c).unwrap();
        (c, t)
    }

    /// A config's zones: its clouds' Azure ML zones, and the public zones
    /// of its other names (a private-link name's public parents); a name
    /// outside the catalogue is its own zone, and said.
    #[test]
    fn zones_of_a_config() {
        assert_eq!(zones(None, &[]).zones.len(), 16);
        assert_eq!(
            zones(None, &[Cloud::Public]).zones,
            Cloud::Public
                .forwarder_zones()
                .iter()
                .map(|z| z.to_string())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        let (c, t) = config(
            "[[workspace]]\nname = \"mlw\"\nid = \"fb7e20a0-8891-458b-b969-55ddb3382f51\"\n\
             region = \"eastus\"\nip = \"10.1.0.5\"\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n\
             [[record]]\nname = \"st2.privatelink.blob.core.windows.net\"\na = [\"10.1.0.10\"]\n\
             [[record]]\nname = \"kv.privatelink.vaultcore.azure.net\"\na = [\"10.1.0.11\"]\n\
             [[record]]\nname = \"acct.services.ai.azure.com\"\na = [\"10.1.0.13\"]\n\
             [[record]]\nname = \"git.corp.example\"\na = [\"10.1.0.14\"]\n\
             [[record]]\nname = \"ci-9.eastus.instances.azureml.ms\"\na = [\"10.1.0.12\"]\n",
        );
        let mut want: Vec<String> = Cloud::Public
            .forwarder_zones()
            .iter()
            .map(|z| z.to_string())
            .chain(
                [
                    "blob.core.windows.net",
                    "vault.azure.net",
                    "vaultcore.azure.net",
                    "services.ai.azure.com",
                    "git.corp.example",
                ]
                .map(String::from),
            )
            .collect();
        want.sort();
        let got = zones(Some((&c, &t)), &[]);
        assert_eq!(got.zones, want);
        assert_eq!(got.outside, ["git.corp.example"]);
        // --cloud adds a cloud's zones to the config's.
        let with_china = zones(Some((&c, &t)), &[Cloud::China]).zones;
        assert_eq!(with_china.len(), want.len() + 5, "{with_china:?}");
        assert!(with_china.contains(&"api.ml.azure.cn".to_string()));
        // A zone below a listed one is covered by it.
        let (c2, t2) = config(
            "[[record]]\nname = \"corp.example\"\na = [\"10.1.0.9\"]\n\
             [[record]]\nname = \"x.privatelink.corp.example\"\na = [\"10.1.0.9\"]\n\
             [[record]]\nname = \"x.corp.example\"\na = [\"10.1.0.9\"]\n",
        );
        assert_eq!(zones(Some((&c2, &t2)), &[]).zones, ["corp.example"]);
    }

    /// Unbound ignores a loopback forward-addr unless told otherwise.
    #[test]
    fn unbound_to_loopback() {
        let line = "    do-not-query-localhost: no\n";
        for (addr, want) in [("127.0.0.1:5353", true), ("::1", true), ("10.1.0.4", false)] {
            let text = every_cloud(Server::Unbound, &to(&[addr])).unwrap();
            assert_eq!(text.contains(line), want, "{addr}: {text}");
        }
    }

    #[test]
    fn the_header_gives_the_command() {
        let config = Path::new("/etc/amldns/amldns.toml");
        let req = Request {
            server: Server::Dnsmasq,
            to: &to(&["10.1.0.4"]),
            config: Some(config),
            clouds: &[Cloud::UsGov],
        };
        let text = render(&req, &["blob.core.windows.net".into()]).unwrap();
        assert!(
            text.contains("`amldns forwarders --format dnsmasq --to 10.1.0.4 --config /etc/amldns/amldns.toml --cloud usgov`"),
            "{text}"
        );
        assert!(text.contains("the zones this config answers in"), "{text}");
        assert!(
            text.contains("server=/blob.core.windows.net/10.1.0.4\n"),
            "{text}"
        );
        assert!(!text.contains("api.azureml.ms"), "{text}");
    }

    #[test]
    fn targets() {
        let cases = [
            ("10.1.0.4", Ok("10.1.0.4:53")),
            ("10.1.0.4:5353", Ok("10.1.0.4:5353")),
            ("fd00::4", Ok("[fd00::4]:53")),
            ("[fd00::4]:5353", Ok("[fd00::4]:5353")),
            (
                "amldns.corp",
                Err("\"amldns.corp\" is not an IP address or IP:port"),
            ),
        ];
        for (s, want) in cases {
            let got = parse_target(s).map(|a| a.to_string());
            assert_eq!(got, want.map(String::from).map_err(String::from), "{s}");
        }
    }

    /// Every zone appears with every address, in each server's syntax.
    #[test]
    fn every_zone_to_every_address() {
        let two = to(&["10.1.0.4", "10.1.0.5:5353"]);
        type Want = fn(&str) -> Vec<String>;
        let cases: [(Server, Want); 3] = [
            (Server::Bind, |z| {
                vec![format!(
                    "zone \"{z}\" {{ type forward; forward only; forwarders {{ 10.1.0.4; 10.1.0.5 port 5353; }}; }};"
                )]
            }),
            (Server::Unbound, |z| {
                vec![
                    format!("    private-domain: \"{z}.\""),
                    format!("    domain-insecure: \"{z}.\""),
                    format!(
                        "forward-zone:\n    name: \"{z}.\"\n    forward-addr: 10.1.0.4\n    forward-addr: 10.1.0.5@5353\n"
                    ),
                ]
            }),
            (Server::Dnsmasq, |z| {
                vec![
                    format!("rebind-domain-ok=/{z}/\n"),
                    format!("server=/{z}/10.1.0.4\nserver=/{z}/10.1.0.5#5353\n"),
                ]
            }),
        ];
        for (server, want) in cases {
            let text = every_cloud(server, &two).unwrap();
            assert!(
                text.contains("`amldns forwarders --format "),
                "{server:?}: {text}"
            );
            assert!(text.contains("--to 10.1.0.4,10.1.0.5:5353`"), "{text}");
            for z in names::forwarder_zones() {
                for w in want(z) {
                    assert!(text.contains(&w), "{server:?} lacks {w:?}:\n{text}");
                }
            }
            // No privatelink zone of its own: the parents cover them.
            assert!(!text.contains("\"privatelink."), "{text}");
        }
    }

    #[test]
    fn windows_dns() {
        let text = every_cloud(Server::Powershell, &to(&["10.1.0.4", "10.1.0.5"])).unwrap();
        assert!(
            text.contains("$MasterServers = @(\"10.1.0.4\", \"10.1.0.5\")\n"),
            "{text}"
        );
        for z in names::forwarder_zones() {
            assert!(text.contains(&format!("    \"{z}\"\n")), "{z}: {text}");
        }
        assert!(text.contains("Add-DnsServerConditionalForwarderZone -Name $Zone"));
        assert_eq!(
            every_cloud(Server::Powershell, &to(&["10.1.0.4:5353"])),
            Err(ForwardersError::WindowsPort(powershell::PortNot53(
                "10.1.0.4:5353".parse().unwrap()
            )))
        );
    }
}
