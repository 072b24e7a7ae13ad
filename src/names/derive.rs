//! Every DNS name an Azure ML workspace behind a private endpoint needs,
//! and the workspace id in a name of that shape.

use std::net::IpAddr;

use super::catalogue::{Suffixes, notebooks_zone_of};
use super::cloud::Cloud;
use super::syntax::{MAX_LABEL, is_at_or_below, is_uuid};

/// An AI Studio / Foundry hub project: it gets its own api, cert.api and
/// notebooks names on the hub's private endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    /// Lower-case UUID.
    pub id: String,
    /// Azure's exact notebooks FQDN of the project, when given; its first
    /// label replaces the derived one, as a workspace's does.
    pub notebook_fqdn: Option<String>,
}

/// A validated workspace: ids and regions lower-case, IPs parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The workspace's name, which the notebooks label is cut from.
    pub name: String,
    /// Lower-case UUID (`properties.workspaceId`).
    pub id: String,
    /// Lower-case region short name, e.g. `eastus`.
    pub region: String,
    /// Which cloud's zones its names are in.
    pub cloud: Cloud,
    /// API IP: api, cert.api and compute instances.
    pub ip: IpAddr,
    /// The notebooks names' address.
    pub notebook_ip: IpAddr,
    /// The online endpoints' address.
    pub inference_ip: IpAddr,
    /// Azure's exact notebooks FQDN, when given; its first label replaces the
    /// derived one.
    pub notebook_fqdn: Option<String>,
    /// Compute instance names (lower-case labels); each also gets `-22`.
    pub instances: Vec<String>,
    /// Serve `*.<region>.instances.<zone>` at the API IP (opt-in: it also
    /// takes other workspaces' instances in the region).
    pub instances_wildcard: bool,
    /// Managed online endpoint names (lower-case labels).
    pub online_endpoints: Vec<String>,
    /// Serve `*.<region>.inference.<zone>` at the inference IP (opt-in, as
    /// above).
    pub inference_wildcard: bool,
    /// A hub's projects, served on the hub's addresses.
    pub projects: Vec<Project>,
}

/// How the public names are answered (`[zone] answer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerMode {
    /// Every name answered with its address directly.
    #[default]
    A,
    /// Azure's own shape: the public name is a CNAME to its `privatelink.` name,
    /// which holds the address.
    Cname,
}

/// What a derived name is for; shown by `amldns records` and counted by `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    Api,
    CertApi,
    Notebooks,
    Instance,
    InstanceSsh,
    InstancesWildcard,
    OnlineEndpoint,
    InferenceWildcard,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Api => "api",
            Purpose::CertApi => "cert.api",
            Purpose::Notebooks => "notebooks",
            Purpose::Instance => "instance",
            Purpose::InstanceSsh => "instance-ssh",
            Purpose::InstancesWildcard => "instances-wildcard",
            Purpose::OnlineEndpoint => "online-endpoint",
            Purpose::InferenceWildcard => "inference-wildcard",
        }
    }
}

/// What a name answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(IpAddr),
    /// A CNAME to another (derived) name.
    Alias(String),
}

/// One name of a workspace and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedName {
    /// Lower-case, no final dot; `*.` first for a one-label wildcard.
    pub name: String,
    pub purpose: Purpose,
    pub target: Target,
    /// The zone apex whose SOA goes with negative answers.
    pub zone: &'static str,
}

/// Azure's longest region names are under 20 characters; past 22 the
/// notebooks label would have no room left for the workspace name.
pub const MAX_REGION: usize = NOTEBOOK_NAME_BUDGET;

/// Room for the workspace name in `ml-<name>-<region>-<guid>`:
/// 63 − len("ml-") − 2 hyphens − 36 (UUID) = 22, less the region.
const NOTEBOOK_NAME_BUDGET: usize = MAX_LABEL - 3 - 2 - 36;

/// The first label of the notebooks name: `ml-<name,cut>-<region>-<guid>`.
/// Only the workspace name is shortened, from the right, lower-cased.
pub fn notebook_label(name: &str, region: &str, guid: &str) -> String {
    let keep = NOTEBOOK_NAME_BUDGET.saturating_sub(region.len());
    let cut = name
        .char_indices()
        .nth(keep)
        .map_or(name, |(i, _)| &name[..i]);
    let mut label = ["ml-", cut, "-", region, "-", guid].concat();
    label.make_ascii_lowercase();
    label
}

/// Every name `ws` needs, in a stable order: the hub's and each project's
/// API, certificate and notebooks names, then the compute instances', then
/// the online endpoints'.
///
/// Names are joined with `concat`, which allocates each once at its size:
/// a reload of 10,000 workspaces derives 140,000 names, and `format!` made
/// that step several times slower.
pub fn derive(ws: &Workspace, mode: AnswerMode) -> Vec<DerivedName> {
    let mut out = Derived {
        ws,
        s: ws.cloud.suffixes(),
        mode,
        names: Vec::new(),
    };
    // The hub itself, then each project, on the same private endpoint IPs.
    let label = |fqdn: Option<&str>, name: &str, id: &str| match fqdn {
        Some(f) => f.split('.').next().unwrap_or(f).to_string(),
        None => notebook_label(name, &ws.region, id),
    };
    out.identity(
        &ws.id,
        &label(ws.notebook_fqdn.as_deref(), &ws.name, &ws.id),
    );
    for p in &ws.projects {
        out.identity(&p.id, &label(p.notebook_fqdn.as_deref(), &p.name, &p.id));
    }
    out.instances();
    out.online_endpoints();
    out.names
}

/// The names of one workspace, as they are derived.
struct Derived<'w> {
    ws: &'w Workspace,
    s: &'static Suffixes,
    mode: AnswerMode,
    names: Vec<DerivedName>,
}

impl Derived<'_> {
    fn push(&mut self, name: String, purpose: Purpose, target: Target, zone: &'static str) {
        self.names.push(DerivedName {
            name,
            purpose,
            target,
            zone,
        });
    }

    /// A public name: the address itself, or (in CNAME mode) an alias of
    /// its private-link name, as Azure's own chain goes.
    fn public_target(&self, ip: IpAddr, private_link: &str) -> Target {
        match self.mode {
            AnswerMode::A => Target::Addr(ip),
            AnswerMode::Cname => Target::Alias(private_link.to_string()),
        }
    }

    /// The API, certificate API and notebooks names of the hub or a project
    /// (`guid`, its notebooks label `nb_label`), with their private-link names.
    fn identity(&mut self, guid: &str, nb_label: &str) {
        let (s, ws) = (self.s, self.ws);
        let r = ws.region.as_str();
        let api_pl = [guid, ".workspace.", r, ".", s.privatelink_api].concat();
        let cert_pl = [guid, ".workspace.", r, ".cert.", s.privatelink_api].concat();
        let nb_pl = [nb_label, ".", r, ".", s.privatelink_notebooks].concat();
        // The older notebooks form has a private-link twin of its own, also
        // without the region label.
        let nb_older_pl = [nb_label, ".", s.privatelink_notebooks].concat();
        let public = [
            (
                [guid, ".workspace.", r, ".", s.api].concat(),
                &api_pl,
                Purpose::Api,
                ws.ip,
                s.api,
            ),
            (
                [guid, ".workspace.", r, ".cert.", s.api].concat(),
                &cert_pl,
                Purpose::CertApi,
                ws.ip,
                s.api,
            ),
            (
                [nb_label, ".", r, ".", s.notebooks].concat(),
                &nb_pl,
                Purpose::Notebooks,
                ws.notebook_ip,
                s.notebooks,
            ),
            // The older notebooks form without the region label.
            (
                [nb_label, ".", s.notebooks].concat(),
                &nb_older_pl,
                Purpose::Notebooks,
                ws.notebook_ip,
                s.notebooks,
            ),
        ];
        for (name, pl, purpose, ip, zone) in public {
            let target = self.public_target(ip, pl);
            self.push(name, purpose, target, zone);
        }
        self.push(api_pl, Purpose::Api, Target::Addr(ws.ip), s.privatelink_api);
        self.push(
            cert_pl,
            Purpose::CertApi,
            Target::Addr(ws.ip),
            s.privatelink_api,
        );
        for pl in [nb_pl, nb_older_pl] {
            self.push(
                pl,
                Purpose::Notebooks,
                Target::Addr(ws.notebook_ip),
                s.privatelink_notebooks,
            );
        }
    }

    /// Compute instances answer the API IP, not their own: clients reach an
    /// instance through the workspace's private endpoint.
    fn instances(&mut self) {
        let (s, ws) = (self.s, self.ws);
        let r = ws.region.as_str();
        for zone in s.instances {
            for ci in &ws.instances {
                self.push(
                    [ci, ".", r, ".", zone].concat(),
                    Purpose::Instance,
                    Target::Addr(ws.ip),
                    zone,
                );
                self.push(
                    [ci, "-22.", r, ".", zone].concat(),
                    Purpose::InstanceSsh,
                    Target::Addr(ws.ip),
                    zone,
                );
            }
            if ws.instances_wildcard {
                self.push(
                    ["*.", r, ".", zone].concat(),
                    Purpose::InstancesWildcard,
                    Target::Addr(ws.ip),
                    zone,
                );
            }
        }
    }

    /// Managed online endpoints, on the inference IP; Azure's chain goes
    /// through their private-link inference names.
    fn online_endpoints(&mut self) {
        let (s, ws) = (self.s, self.ws);
        let r = ws.region.as_str();
        for ep in &ws.online_endpoints {
            let pl = inference_name(ep, &ws.id, r, s.privatelink_api);
            let target = self.public_target(ws.inference_ip, &pl);
            self.push(
                [ep, ".", r, ".", s.inference].concat(),
                Purpose::OnlineEndpoint,
                target,
                s.inference,
            );
            self.push(
                pl,
                Purpose::OnlineEndpoint,
                Target::Addr(ws.inference_ip),
                s.privatelink_api,
            );
        }
        if ws.inference_wildcard {
            self.push(
                ["*.", r, ".", s.inference].concat(),
                Purpose::InferenceWildcard,
                Target::Addr(ws.inference_ip),
                s.inference,
            );
            self.push(
                inference_name("*", &ws.id, r, s.privatelink_api),
                Purpose::InferenceWildcard,
                Target::Addr(ws.inference_ip),
                s.privatelink_api,
            );
        }
    }
}

/// `<first>.<guid>.inference.<region>.<zone>`: the name of a workspace's
/// managed online endpoint `first` (or, `first` being `*`, of all of them)
/// under an API zone.
fn inference_name(first: &str, guid: &str, region: &str, zone: &str) -> String {
    [first, ".", guid, ".inference.", region, ".", zone].concat()
}

/// Whether `fqdn` is the wildcard over workspace `id`'s online endpoints,
/// `*.<id>.inference.<region>.<zone>`, under any API zone: a private
/// endpoint lists it under the public one, its DNS zone holds it under the
/// private-link one.
pub fn is_inference_wildcard_of(fqdn: &str, id: &str) -> bool {
    fqdn.strip_prefix("*.")
        .and_then(|r| r.strip_prefix(id))
        .is_some_and(|r| r.starts_with(".inference."))
}

/// Whether `fqdn` is a regional wildcard of some cloud:
/// `*.<region>.inference.<zone>` (every online endpoint of the region) or
/// `*.<region>.instances.<zone>` (every compute instance). Microsoft's
/// custom-DNS doc shows a workspace's private endpoint listing
/// `*.eastus.inference.ml.azure.com` at its inference IP: the listing says
/// which address that is, but served it would capture every other
/// workspace's endpoints or instances in the region, so a name an endpoint
/// lists (an import, discovery) is never served as such.
pub fn is_regional_wildcard(fqdn: &str) -> bool {
    let Some((region, zone)) = fqdn.strip_prefix("*.").and_then(|r| r.split_once('.')) else {
        return false;
    };
    !region.is_empty()
        && Cloud::ALL.into_iter().any(|c| {
            let s = c.suffixes();
            zone == s.inference || s.instances.contains(&zone)
        })
}

/// Whether `host` lies under an instances zone of `cloud`, in either
/// spelling (`instances.azureml.ms`, `instances.ml.azure.ms`…): a compute
/// instance's application host, such as RStudio's
/// `<instance>-8787.<region>.instances.azureml.ms`, which the workspace's
/// API IP answers as the instance's own names do. Not a wildcard, not the
/// zone itself.
pub fn is_instance_host(host: &str, cloud: Cloud) -> bool {
    !host.starts_with("*.")
        && (cloud.suffixes().instances.iter()).any(|z| host != *z && is_at_or_below(host, z))
}

/// Whether `fqdn` is the regional wildcard over the online endpoints of
/// `region` in `cloud`, `*.<region>.inference.<zone>`: listed by a
/// workspace's endpoint, it marks the inference IP.
pub fn is_regional_inference_wildcard(fqdn: &str, cloud: Cloud, region: &str) -> bool {
    fqdn.strip_prefix("*.")
        .and_then(|r| r.strip_prefix(region))
        .and_then(|r| r.strip_prefix('.'))
        .is_some_and(|zone| zone == cloud.suffixes().inference)
}

/// Whether `fqdn` is a notebooks name (under a notebooks zone of some
/// cloud) of the workspace or project `id`: what Azure reports as
/// `notebookInfo.fqdn` is taken only then.
pub fn is_notebooks_name_of(fqdn: &str, id: &str) -> bool {
    notebooks_zone_of(fqdn).is_some() && workspace_id_in(fqdn) == Some(id)
}

/// If `fqdn` looks like a workspace name (`<uuid>.workspace.<region>.api…` or
/// `ml-…-<uuid>.…notebooks…`), the workspace id in it.
pub fn workspace_id_in(fqdn: &str) -> Option<&str> {
    // Asked of every forwarded query: a byte search, not `split`'s
    // searcher, which costs more to set up than the label takes to read.
    let first = &fqdn[..fqdn.bytes().position(|c| c == b'.').unwrap_or(fqdn.len())];
    if let Some(rest) = fqdn
        .strip_prefix(first)
        .and_then(|r| r.strip_prefix(".workspace."))
        && is_uuid(first)
        && Cloud::ALL
            .iter()
            .any(|c| is_at_or_below(rest, c.suffixes().api))
    {
        return Some(first);
    }
    if first.starts_with("ml-") && first.len() >= 36 && notebooks_zone_of(fqdn).is_some() {
        let tail = &first[first.len() - 36..];
        if is_uuid(tail) {
            return Some(tail);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{apex_of, is_at_or_below};

    const GUID: &str = crate::fixtures::GUID;

    fn ws(cloud: Cloud) -> Workspace {
        Workspace {
            name: crate::fixtures::NAME.into(),
            id: GUID.into(),
            region: "eastus".into(),
            cloud,
            ip: "10.1.0.5".parse().unwrap(),
            notebook_ip: "10.1.0.6".parse().unwrap(),
            inference_ip: "10.1.0.7".parse().unwrap(),
            notebook_fqdn: None,
            instances: vec![],
            instances_wildcard: false,
            online_endpoints: vec![],
            inference_wildcard: false,
            projects: vec![],
        }
    }

    fn answers(names: &[DerivedName]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|d| {
                let t = match &d.target {
                    Target::Addr(ip) => ip.to_string(),
                    Target::Alias(n) => format!("CNAME {n}"),
                };
                (d.name.clone(), t)
            })
            .collect()
    }

    fn has(names: &[DerivedName], name: &str, target: &str) -> bool {
        answers(names).iter().any(|(n, t)| n == name && t == target)
    }

    #[test]
    fn notebook_label_cut_worked_examples() {
        let cases = [
            // The worked examples of the notebook label cut (docs/configuration.md).
            (
                "contoso-research-ml-workspace-001",
                "eastus",
                GUID,
                "ml-contoso-research-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            (
                "contoso-research-ml-workspace-001",
                "australiaeast",
                GUID,
                "ml-contoso-r-australiaeast-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            (
                "mlworkspace-portal02",
                "eastus",
                "03ce50c0-2e18-48ad-9e4a-ca338f571072",
                "ml-mlworkspace-port-eastus-03ce50c0-2e18-48ad-9e4a-ca338f571072",
            ),
            // A name that fits is unchanged.
            (
                "mlw1",
                "eastus",
                GUID,
                "ml-mlw1-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            // Long region: 22 - 18 = 4 characters of the name remain.
            (
                "contoso-research",
                "germanywestcentral",
                GUID,
                "ml-cont-germanywestcentral-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            // Upper-case input is lower-cased, and the cut counts characters.
            (
                "Contoso-Research-ML",
                "EastUS",
                "FB7E20A0-8891-458B-B969-55DDB3382F51",
                "ml-contoso-research-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            // Exactly 16 characters in eastus: fits, unchanged.
            (
                "abcdefghijklmnop",
                "eastus",
                GUID,
                "ml-abcdefghijklmnop-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
        ];
        for (name, region, guid, want) in cases {
            let got = notebook_label(name, region, guid);
            assert_eq!(got, want, "{name} in {region}");
            assert!(got.len() <= MAX_LABEL, "{got} is {} long", got.len());
        }
    }

    #[test]
    fn every_cloud_gets_its_own_suffixes() {
        let cases = [
            (
                Cloud::Public,
                "api.azureml.ms",
                "notebooks.azure.net",
                "instances.azureml.ms",
                "instances.ml.azure.ms",
                "inference.ml.azure.com",
            ),
            (
                Cloud::China,
                "api.ml.azure.cn",
                "notebooks.chinacloudapi.cn",
                "instances.azureml.cn",
                "instances.ml.azure.cn",
                "inference.ml.azure.cn",
            ),
            (
                Cloud::UsGov,
                "api.ml.azure.us",
                "notebooks.usgovcloudapi.net",
                "instances.azureml.us",
                "instances.ml.azure.us",
                "inference.ml.azure.us",
            ),
        ];
        let nb = crate::fixtures::NOTEBOOK_LABEL;
        for (cloud, api, notebooks, inst1, inst2, inference) in cases {
            let mut w = ws(cloud);
            w.instances = vec!["ci-alice".into()];
            w.online_endpoints = vec!["fraud-score".into()];
            let d = derive(&w, AnswerMode::A);
            let want = [
                (format!("{GUID}.workspace.eastus.{api}"), "10.1.0.5"),
                (format!("{GUID}.workspace.eastus.cert.{api}"), "10.1.0.5"),
                (
                    format!("{GUID}.workspace.eastus.privatelink.{api}"),
                    "10.1.0.5",
                ),
                (
                    format!("{GUID}.workspace.eastus.cert.privatelink.{api}"),
                    "10.1.0.5",
                ),
                (format!("{nb}.eastus.{notebooks}"), "10.1.0.6"),
                (format!("{nb}.{notebooks}"), "10.1.0.6"),
                (format!("{nb}.eastus.privatelink.{notebooks}"), "10.1.0.6"),
                (format!("{nb}.privatelink.{notebooks}"), "10.1.0.6"),
                (format!("ci-alice.eastus.{inst1}"), "10.1.0.5"),
                (format!("ci-alice-22.eastus.{inst1}"), "10.1.0.5"),
                (format!("ci-alice.eastus.{inst2}"), "10.1.0.5"),
                (format!("ci-alice-22.eastus.{inst2}"), "10.1.0.5"),
                (format!("fraud-score.eastus.{inference}"), "10.1.0.7"),
                (
                    format!("fraud-score.{GUID}.inference.eastus.privatelink.{api}"),
                    "10.1.0.7",
                ),
            ];
            for (name, ip) in &want {
                assert!(
                    has(&d, name, ip),
                    "{cloud:?}: missing {name} -> {ip} in {d:#?}"
                );
            }
            assert_eq!(d.len(), want.len(), "{cloud:?}: unexpected extra names");
        }
    }

    /// The older notebooks form (no region label) and its private-link twin,
    /// per cloud, for the hub and a project, at the notebook IP.
    #[test]
    fn older_notebooks_form_has_its_private_link_twin() {
        let p = "0d5c2f4e-1111-2222-3333-444455556666";
        let hub = crate::fixtures::NOTEBOOK_LABEL.to_string();
        let proj = format!("ml-proj-a-eastus-{p}");
        let cases = [
            (Cloud::Public, &hub, "privatelink.notebooks.azure.net"),
            (Cloud::Public, &proj, "privatelink.notebooks.azure.net"),
            (Cloud::China, &hub, "privatelink.notebooks.chinacloudapi.cn"),
            (
                Cloud::China,
                &proj,
                "privatelink.notebooks.chinacloudapi.cn",
            ),
            (
                Cloud::UsGov,
                &hub,
                "privatelink.notebooks.usgovcloudapi.net",
            ),
            (
                Cloud::UsGov,
                &proj,
                "privatelink.notebooks.usgovcloudapi.net",
            ),
        ];
        for (cloud, label, zone) in cases {
            let mut w = ws(cloud);
            w.projects = vec![Project {
                name: "proj-a".into(),
                id: p.into(),
                notebook_fqdn: None,
            }];
            let twin = format!("{label}.{zone}");
            let d = derive(&w, AnswerMode::A);
            let found = d.iter().find(|n| n.name == twin);
            let found = found.unwrap_or_else(|| panic!("{cloud:?}: no {twin} in {d:#?}"));
            assert_eq!(found.target, Target::Addr("10.1.0.6".parse().unwrap()));
            assert_eq!(found.purpose, Purpose::Notebooks);
            assert_eq!(found.zone, zone);
            let public = format!("{label}.{}", zone.strip_prefix("privatelink.").unwrap());
            let d = derive(&w, AnswerMode::Cname);
            assert!(
                has(&d, &public, &format!("CNAME {twin}")),
                "{cloud:?}: {public}"
            );
        }
    }

    #[test]
    fn cname_mode_follows_azures_chain() {
        let mut w = ws(Cloud::Public);
        w.online_endpoints = vec!["fraud-score".into()];
        w.instances = vec!["ci-1".into()];
        let d = derive(&w, AnswerMode::Cname);
        let nb = crate::fixtures::NOTEBOOK_LABEL;
        let cases = [
            (
                format!("{GUID}.workspace.eastus.api.azureml.ms"),
                format!("CNAME {GUID}.workspace.eastus.privatelink.api.azureml.ms"),
            ),
            (
                format!("{GUID}.workspace.eastus.cert.api.azureml.ms"),
                format!("CNAME {GUID}.workspace.eastus.cert.privatelink.api.azureml.ms"),
            ),
            (
                format!("{nb}.eastus.notebooks.azure.net"),
                format!("CNAME {nb}.eastus.privatelink.notebooks.azure.net"),
            ),
            // The older form goes through its own private-link twin.
            (
                format!("{nb}.notebooks.azure.net"),
                format!("CNAME {nb}.privatelink.notebooks.azure.net"),
            ),
            (
                format!("{nb}.privatelink.notebooks.azure.net"),
                "10.1.0.6".to_string(),
            ),
            (
                "fraud-score.eastus.inference.ml.azure.com".to_string(),
                format!("CNAME fraud-score.{GUID}.inference.eastus.privatelink.api.azureml.ms"),
            ),
            (
                format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
                "10.1.0.5".to_string(),
            ),
            // Instances have no private-link form: always an address.
            (
                "ci-1.eastus.instances.azureml.ms".to_string(),
                "10.1.0.5".to_string(),
            ),
        ];
        for (name, target) in cases {
            assert!(has(&d, &name, &target), "missing {name} -> {target}");
        }
    }

    #[test]
    fn wildcards_are_opt_in() {
        let w = ws(Cloud::Public);
        let d = derive(&w, AnswerMode::A);
        assert!(d.iter().all(|n| !n.name.starts_with("*.")));

        let mut w = ws(Cloud::UsGov);
        w.instances_wildcard = true;
        w.inference_wildcard = true;
        let d = derive(&w, AnswerMode::A);
        assert!(has(&d, "*.eastus.instances.azureml.us", "10.1.0.5"));
        assert!(has(&d, "*.eastus.instances.ml.azure.us", "10.1.0.5"));
        assert!(has(&d, "*.eastus.inference.ml.azure.us", "10.1.0.7"));
        assert!(has(
            &d,
            &format!("*.{GUID}.inference.eastus.privatelink.api.ml.azure.us"),
            "10.1.0.7"
        ));
    }

    #[test]
    fn hub_projects_get_their_own_names_on_the_hubs_ips() {
        let mut w = ws(Cloud::Public);
        w.projects = vec![Project {
            name: "proj-a".into(),
            id: "0d5c2f4e-1111-2222-3333-444455556666".into(),
            notebook_fqdn: None,
        }];
        let d = derive(&w, AnswerMode::A);
        let p = "0d5c2f4e-1111-2222-3333-444455556666";
        assert!(has(
            &d,
            &format!("{p}.workspace.eastus.api.azureml.ms"),
            "10.1.0.5"
        ));
        assert!(has(
            &d,
            &format!("{p}.workspace.eastus.cert.api.azureml.ms"),
            "10.1.0.5"
        ));
        assert!(has(
            &d,
            &format!("ml-proj-a-eastus-{p}.eastus.notebooks.azure.net"),
            "10.1.0.6"
        ));
        // The hub keeps its own names too.
        assert!(has(
            &d,
            &format!("{GUID}.workspace.eastus.api.azureml.ms"),
            "10.1.0.5"
        ));
    }

    #[test]
    fn notebook_fqdn_overrides_the_derived_label() {
        let mut w = ws(Cloud::Public);
        w.notebook_fqdn = Some(format!(
            "ml-contoso_research-eastus-{GUID}.eastus.notebooks.azure.net"
        ));
        let d = derive(&w, AnswerMode::A);
        let label = format!("ml-contoso_research-eastus-{GUID}");
        assert!(has(
            &d,
            &format!("{label}.eastus.notebooks.azure.net"),
            "10.1.0.6"
        ));
        assert!(has(&d, &format!("{label}.notebooks.azure.net"), "10.1.0.6"));
        assert!(has(
            &d,
            &format!("{label}.eastus.privatelink.notebooks.azure.net"),
            "10.1.0.6"
        ));
        assert!(!d.iter().any(|n| n.name.starts_with("ml-contoso-research-")));
    }

    #[test]
    fn a_projects_notebook_fqdn_overrides_its_derived_label() {
        let p = "0d5c2f4e-1111-2222-3333-444455556666";
        let mut w = ws(Cloud::Public);
        w.projects = vec![Project {
            name: "proj-a".into(),
            id: p.into(),
            notebook_fqdn: Some(format!("ml-proj_a-eastus-{p}.eastus.notebooks.azure.net")),
        }];
        let d = derive(&w, AnswerMode::A);
        let label = format!("ml-proj_a-eastus-{p}");
        for name in [
            format!("{label}.eastus.notebooks.azure.net"),
            format!("{label}.notebooks.azure.net"),
            format!("{label}.eastus.privatelink.notebooks.azure.net"),
            format!("{label}.privatelink.notebooks.azure.net"),
        ] {
            assert!(has(&d, &name, "10.1.0.6"), "missing {name}");
        }
        assert!(!d.iter().any(|n| n.name.starts_with("ml-proj-a-")));
        // The hub keeps its derived label.
        let hub = crate::fixtures::NOTEBOOK_LABEL;
        assert!(has(
            &d,
            &format!("{hub}.eastus.notebooks.azure.net"),
            "10.1.0.6"
        ));
    }

    /// Forwarding these zones is enough: every name amldns derives, in both
    /// answer modes and with every option on, sits at or below one of them.
    #[test]
    fn forwarder_zones_cover_every_derived_name() {
        for cloud in Cloud::ALL {
            let mut w = ws(cloud);
            w.instances = vec!["ci-1".into()];
            w.instances_wildcard = true;
            w.online_endpoints = vec!["ep".into()];
            w.inference_wildcard = true;
            w.projects = vec![Project {
                name: "p".into(),
                id: "0d5c2f4e-1111-2222-3333-444455556666".into(),
                notebook_fqdn: None,
            }];
            for mode in [AnswerMode::A, AnswerMode::Cname] {
                for d in derive(&w, mode) {
                    let name = d.name.strip_prefix("*.").unwrap_or(&d.name);
                    assert!(
                        cloud
                            .forwarder_zones()
                            .iter()
                            .any(|z| is_at_or_below(name, z)),
                        "{} ({cloud:?}) is under no forwarder zone",
                        d.name
                    );
                }
            }
        }
    }

    #[test]
    fn derived_names_sit_in_their_zone() {
        for cloud in Cloud::ALL {
            for d in derive(&ws(cloud), AnswerMode::A) {
                assert_eq!(apex_of(&d.name), d.zone, "{}", d.name);
            }
        }
    }

    #[test]
    fn inference_wildcards_are_known_by_their_shape() {
        for cloud in Cloud::ALL {
            let mut w = ws(cloud);
            w.inference_wildcard = true;
            let pl = derive(&w, AnswerMode::A)
                .into_iter()
                .find(|d| {
                    d.purpose == Purpose::InferenceWildcard && d.name.contains(".privatelink.")
                })
                .unwrap();
            assert!(is_inference_wildcard_of(&pl.name, GUID), "{}", pl.name);
        }
        let public = format!("*.{GUID}.inference.eastus.api.azureml.ms");
        assert!(is_inference_wildcard_of(&public, GUID));
        assert!(!is_inference_wildcard_of(
            "*.eastus.inference.ml.azure.com",
            GUID
        ));
        assert!(!is_inference_wildcard_of(
            &format!("ep.{GUID}.inference.eastus.privatelink.api.azureml.ms"),
            GUID
        ));
        assert!(!is_inference_wildcard_of(
            &format!("*.{GUID}.workspace.eastus.api.azureml.ms"),
            GUID
        ));
    }

    #[test]
    fn regional_wildcards_are_known_in_every_cloud() {
        for (name, regional) in [
            ("*.eastus.inference.ml.azure.com", true),
            ("*.chinaeast2.inference.ml.azure.cn", true),
            ("*.usgovvirginia.inference.ml.azure.us", true),
            ("*.eastus.instances.azureml.ms", true),
            ("*.eastus.instances.ml.azure.ms", true),
            ("ep.eastus.inference.ml.azure.com", false),
            ("*.inference.ml.azure.com", false),
            ("*.eastus.api.azureml.ms", false),
        ] {
            assert_eq!(is_regional_wildcard(name), regional, "{name}");
        }
        let workspace_scoped = format!("*.{GUID}.inference.eastus.api.azureml.ms");
        assert!(!is_regional_wildcard(&workspace_scoped));
        let docs = "*.eastus.inference.ml.azure.com";
        assert!(is_regional_inference_wildcard(
            docs,
            Cloud::Public,
            "eastus"
        ));
        assert!(!is_regional_inference_wildcard(
            docs,
            Cloud::Public,
            "westus"
        ));
        assert!(!is_regional_inference_wildcard(
            docs,
            Cloud::China,
            "eastus"
        ));
        assert!(!is_regional_inference_wildcard(
            "*.eastus.instances.azureml.ms",
            Cloud::Public,
            "eastus"
        ));
    }

    #[test]
    fn instance_hosts_lie_under_their_clouds_instances_zones() {
        let cases = [
            ("ci-1-8787.eastus.instances.azureml.ms", Cloud::Public, true),
            (
                "ci-1-8787.eastus.instances.ml.azure.ms",
                Cloud::Public,
                true,
            ),
            ("ci-1.chinaeast2.instances.azureml.cn", Cloud::China, true),
            ("ci-1.chinaeast2.instances.ml.azure.cn", Cloud::China, true),
            (
                "ci-1.usgovvirginia.instances.azureml.us",
                Cloud::UsGov,
                true,
            ),
            (
                "ci-1.usgovvirginia.instances.ml.azure.us",
                Cloud::UsGov,
                true,
            ),
            // Another cloud's zone, the zone itself, a wildcard, elsewhere.
            ("ci-1.eastus.instances.azureml.ms", Cloud::China, false),
            ("instances.azureml.ms", Cloud::Public, false),
            ("*.eastus.instances.azureml.ms", Cloud::Public, false),
            ("compute123.eastus2.azureml.net", Cloud::Public, false),
            ("x.eastus.notinstances.azureml.ms", Cloud::Public, false),
        ];
        for (host, cloud, want) in cases {
            assert_eq!(is_instance_host(host, cloud), want, "{host} in {cloud:?}");
        }
    }

    #[test]
    fn workspace_shaped_names() {
        let cases = [
            (
                format!("{GUID}.workspace.eastus.api.azureml.ms"),
                Some(GUID),
            ),
            (
                format!("{GUID}.workspace.eastus.cert.api.ml.azure.cn"),
                Some(GUID),
            ),
            (
                format!("ml-contoso-eastus-{GUID}.eastus.notebooks.azure.net"),
                Some(GUID),
            ),
            ("eastus.api.azureml.ms".to_string(), None),
            ("ml.azure.com".to_string(), None),
            (
                "not-a-uuid.workspace.eastus.api.azureml.ms".to_string(),
                None,
            ),
        ];
        for (name, want) in cases {
            assert_eq!(workspace_id_in(&name), want, "{name}");
        }
    }
}
