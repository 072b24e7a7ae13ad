//! One discovery round: what ARM says exists, turned into the
//! workspaces and names to serve. Reads only; every request is a GET.
//!
//! API versions are the stable ones of the public REST specs
//! (Azure/azure-rest-api-specs, `specification/<service>/resource-manager`):
//! Microsoft.MachineLearningServices 2024-04-01 (workspaces, computes,
//! onlineEndpoints), Microsoft.Network 2023-09-01 (privateEndpoints,
//! networkInterfaces), Microsoft.Storage 2023-01-01, Microsoft.KeyVault
//! 2023-07-01, Microsoft.ContainerRegistry 2023-07-01.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use futures_util::StreamExt;
use serde_json::Value;
use tracing::debug;

use super::arm::Arm;
use super::discovery::{Discovery, Found, FoundName, FoundProject, Skipped, subscription_of};
use super::graph::{Inventory, Scope};
use super::http::Failure;
use crate::config::{AzureConfig, AzureInventory, PrivateEndpoints};
use crate::names::{self, AnswerMode, Cloud};

pub const ML_API: &str = "2024-04-01";
const NETWORK_API: &str = "2023-09-01";

/// The API version for a resource a workspace depends on, by provider; a
/// provider not listed gives nothing (a workspace names these three).
fn dependency_api(resource_id: &str) -> Option<&'static str> {
    let id = resource_id.to_ascii_lowercase();
    [
        (
            "/providers/microsoft.storage/storageaccounts/",
            "2023-01-01",
        ),
        ("/providers/microsoft.keyvault/vaults/", "2023-07-01"),
        (
            "/providers/microsoft.containerregistry/registries/",
            "2023-07-01",
        ),
    ]
    .into_iter()
    .find(|(p, _)| id.contains(p))
    .map(|(_, v)| v)
}

/// Workspaces looked at at once: enough to hide ARM's latency (a round of
/// 1,000 workspaces in well under a minute), few enough that one round
/// stays far under ARM's read limits' burst (README, "Discovery from Azure").
const CONCURRENCY: usize = 8;

/// A workspace as the list gives it.
#[derive(Debug)]
struct Listed {
    /// The subscription (as configured) whose list gave it.
    subscription: String,
    resource_id: String,
    name: String,
    /// Lower-case region short name.
    region: String,
    /// `default`, `hub` or `project` (lower-case).
    kind: String,
    /// Lower-case `properties.workspaceId`.
    id: String,
    notebook_fqdn: Option<String>,
    hub: Option<String>,
    /// Approved private endpoints' resource ids.
    endpoints: Vec<String>,
    /// Storage account, key vault, container registry.
    dependencies: Vec<String>,
}

/// What one round read: the workspaces of the subscriptions it could read,
/// what it left out, and what it could not read.
#[derive(Debug, Default)]
pub struct Round {
    /// Only what the subscriptions read whole gave.
    pub found: Discovery,
    pub skipped: Vec<Skipped>,
    /// Subscriptions (as configured) whose workspaces could not be read
    /// whole, and management groups whose queries failed, each with the
    /// first failure.
    pub failed: Vec<(Scope, Failure)>,
    /// The subscriptions whose inventory was read (lower-case).
    pub read: HashSet<String>,
}

impl Round {
    /// The subscriptions whose part of `last` (the discovery served) stays
    /// served: each that failed; and, while a management group's queries
    /// fail, each that `last` has and this round did not read, since which
    /// subscriptions the group holds is what could not be read (and the
    /// state file a start serves from does not say either).
    pub fn kept(&self, last: &Discovery) -> Vec<String> {
        let mut kept: Vec<String> = (self.failed.iter())
            .filter_map(|(scope, _)| scope.subscription())
            .map(str::to_ascii_lowercase)
            .collect();
        if (self.failed.iter()).any(|(scope, _)| matches!(scope, Scope::ManagementGroup(_))) {
            let ids = (last.workspaces.iter().map(|f| f.resource_id.as_str()))
                .chain(last.endpoints.iter().filter_map(|n| n.endpoint.as_deref()));
            kept.extend(
                ids.filter_map(subscription_of)
                    .map(str::to_ascii_lowercase)
                    .filter(|s| !self.read.contains(s)),
            );
        }
        kept.sort();
        kept.dedup();
        kept
    }
}

/// Runs one round over every subscription of `cfg`. A resource ARM
/// refuses or no longer has is left out and noted; any other failure
/// fails the subscription it belongs to, not the round.
pub async fn run(arm: &Arm, cfg: &AzureConfig) -> Round {
    let mut round = Round::default();
    let (inventory, workspaces, read) = inventory(arm, cfg, &mut round.failed).await;
    round.read = read;
    let arm = &inventory;
    let mut listed = Vec::new();
    for (sub, v) in &workspaces {
        match read_workspace(v, sub) {
            Ok(ws) if in_scope(&ws.resource_id, &cfg.resource_groups) => listed.push(ws),
            Ok(_) => {}
            Err(skip) if in_scope(&skip.resource, &cfg.resource_groups) => {
                round.skipped.push(skip);
            }
            Err(_) => {}
        }
    }
    // Hubs and workspaces behind a private endpoint of their own; projects
    // ride on their hub's addresses.
    let (projects, served): (Vec<&Listed>, Vec<&Listed>) =
        listed.iter().partition(|w| w.kind == "project");
    // Each found workspace with the subscription that listed it.
    let mut found: Vec<(&str, Found)> = Vec::new();
    let mut failed: Vec<(Scope, Failure)> = Vec::new();
    for w in served.iter().filter(|w| w.endpoints.is_empty()) {
        round.skipped.push(Skipped {
            quiet: true,
            ..Skipped::new(&w.resource_id, "no approved private endpoint")
        });
    }
    // Made before the stream: closures over borrowed workspaces held across
    // an await would not be `Send` (rust-lang/rust#102211).
    let reads: Vec<_> = served
        .iter()
        .filter(|w| !w.endpoints.is_empty())
        .map(|w| async move { (w.subscription.as_str(), workspace(arm, w, cfg).await) })
        .collect();
    let mut each = futures_util::stream::iter(reads).buffered(CONCURRENCY);
    while let Some((sub, read)) = each.next().await {
        match read {
            Ok((f, skipped)) => {
                found.extend(f.into_iter().map(|f| (sub, f)));
                round.skipped.extend(skipped);
            }
            Err(f) => failed.push((Scope::Subscription(sub.to_string()), f)),
        }
    }
    drop(each);
    let mut projects_of: BTreeMap<String, Vec<&Listed>> = BTreeMap::new();
    for p in projects {
        if let Some(hub) = &p.hub {
            projects_of
                .entry(hub.to_ascii_lowercase())
                .or_default()
                .push(p);
        }
    }
    for (sub, hub) in &mut found {
        for p in projects_of
            .get(&hub.resource_id.to_ascii_lowercase())
            .into_iter()
            .flatten()
        {
            let mut skipped = Vec::new();
            let read = async {
                let computes = compute_instances(arm, &p.resource_id, &mut skipped).await?;
                let endpoints = online_endpoints(arm, &p.resource_id, &mut skipped).await?;
                Ok::<_, Failure>((computes, endpoints))
            };
            // What the hub serves is incomplete without it: the hub's
            // subscription keeps its last good discovery.
            let (computes, endpoints) = match read.await {
                Ok(r) => r,
                Err(f) => {
                    failed.push((Scope::Subscription(sub.to_string()), f));
                    continue;
                }
            };
            round.skipped.extend(skipped);
            hub.projects.push(FoundProject {
                name: p.name.clone(),
                id: p.id.clone(),
                notebook_fqdn: p.notebook_fqdn.clone(),
            });
            hub.instances.extend(computes.instances);
            hub.online_endpoints.extend(endpoints);
            add_application_hosts(hub, &computes.hosts);
        }
    }
    let others = match cfg.private_endpoints {
        PrivateEndpoints::Workspaces => Vec::new(),
        PrivateEndpoints::All => {
            let used: HashSet<String> = (found.iter())
                .flat_map(|(_, f)| f.names.iter().filter_map(|n| n.endpoint.as_deref()))
                .map(str::to_ascii_lowercase)
                .collect();
            other_endpoints(
                arm,
                cfg,
                &round.read,
                &used,
                &mut round.skipped,
                &mut failed,
            )
            .await
        }
    };
    // One failure a subscription: the first.
    for (scope, f) in failed {
        if !round.failed.iter().any(|(s, _)| *s == scope) {
            round.failed.push((scope, f));
        }
    }
    let whole = |sub: &str| {
        !(round.failed.iter()).any(|(s, _)| {
            s.subscription()
                .is_some_and(|s| s.eq_ignore_ascii_case(sub))
        })
    };
    round.found.workspaces = found
        .into_iter()
        .filter(|(sub, _)| whole(sub))
        .map(|(_, f)| f)
        .collect();
    round.found.endpoints = (others.into_iter())
        .filter(|n| {
            (n.endpoint.as_deref())
                .and_then(subscription_of)
                .is_some_and(whole)
        })
        .collect();
    round.found.normalize();
    round
}

/// A read's answer, or `None` when ARM refuses the resource or no longer
/// has it (401, 403, 404): then it is noted in `skipped` and left out.
/// Any other failure is returned.
fn readable<T>(
    read: Result<T, Failure>,
    resource: &str,
    skipped: &mut Vec<Skipped>,
) -> Result<Option<T>, Failure> {
    let f = match read {
        Ok(v) => return Ok(Some(v)),
        Err(f) => f,
    };
    let why = match f.status() {
        Some(401) => "HTTP 401: ARM does not take the token for it (another tenant)".to_string(),
        Some(403) => "HTTP 403: the identity may not read it".to_string(),
        Some(404) => "HTTP 404: it no longer exists".to_string(),
        _ => return Err(f),
    };
    let code = f.arm().and_then(|a| a.code.as_deref());
    skipped.push(Skipped::new(
        resource,
        match code {
            Some(code) => format!("{why} ({code})"),
            None => why,
        },
    ));
    Ok(None)
}

/// Where the round reads from, as `inventory` says; every workspace of
/// the subscriptions it could list, with its subscription (as configured,
/// or as its id gives it when a management group covered it); and the
/// subscriptions read (lower-case). What could not be listed goes to
/// `failed`: with Resource Graph, one failed query fails all it covered.
async fn inventory<'a>(
    arm: &'a Arm,
    cfg: &AzureConfig,
    failed: &mut Vec<(Scope, Failure)>,
) -> (Inventory<'a>, Vec<(String, Value)>, HashSet<String>) {
    match cfg.inventory {
        AzureInventory::ResourceGraph => {
            let (inventory, rows, read) = Inventory::graph(arm, cfg, failed).await;
            let as_configured = |row: &Value| {
                let id = row.get("id").and_then(Value::as_str).unwrap_or("");
                let sub = subscription_of(id).unwrap_or("");
                (cfg.subscriptions.iter())
                    .find(|s| s.eq_ignore_ascii_case(sub))
                    .cloned()
                    .unwrap_or_else(|| sub.to_string())
            };
            let rows = rows
                .into_iter()
                .map(|row| (as_configured(&row), row))
                .collect();
            (inventory, rows, read)
        }
        AzureInventory::Arm => {
            let mut workspaces = Vec::new();
            let mut read = HashSet::new();
            for sub in &cfg.subscriptions {
                let path = format!(
                    "/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/workspaces"
                );
                match arm.list(&path, ML_API).await {
                    Ok(all) => {
                        read.insert(sub.to_ascii_lowercase());
                        workspaces.extend(all.into_iter().map(|v| (sub.clone(), v)));
                    }
                    Err(f) => failed.push((Scope::Subscription(sub.clone()), f)),
                }
            }
            (Inventory::arm(arm), workspaces, read)
        }
    }
}

/// `/subscriptions/s/resourceGroups/RG/...` is in one of `groups` (all when empty).
fn in_scope(resource_id: &str, groups: &[String]) -> bool {
    if groups.is_empty() {
        return true;
    }
    let mut parts = resource_id.split('/');
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("resourcegroups") {
            return parts
                .next()
                .is_some_and(|g| groups.iter().any(|w| w.eq_ignore_ascii_case(g)));
        }
    }
    false
}

fn text<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// The approved private endpoints of a resource's `privateEndpointConnections`.
fn approved_endpoints(v: &Value) -> Vec<String> {
    let Some(list) = v
        .pointer("/properties/privateEndpointConnections")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter(|c| {
            text(
                c,
                &["properties", "privateLinkServiceConnectionState", "status"],
            )
            .is_some_and(|s| s.eq_ignore_ascii_case("approved"))
        })
        .filter_map(|c| text(c, &["properties", "privateEndpoint", "id"]))
        .map(str::to_string)
        .collect()
}

/// A workspace of `subscription`'s list; one amldns cannot serve (a field
/// it needs missing: ARM's specs make `workspaceId` read-only, not
/// required) is skipped, with the reason.
fn read_workspace(v: &Value, subscription: &str) -> Result<Listed, Skipped> {
    let resource_id = text(v, &["id"])
        .or_else(|| text(v, &["name"]))
        .unwrap_or("a workspace without id or name");
    let need = |path: &[&str]| {
        text(v, path).ok_or_else(|| Skipped::new(resource_id, format!("no {}", path.join("."))))
    };
    Ok(Listed {
        subscription: subscription.to_string(),
        resource_id: need(&["id"])?.to_string(),
        name: need(&["name"])?.to_string(),
        // ARM gives the short name; the display form has spaces.
        region: need(&["location"])?.replace(' ', "").to_ascii_lowercase(),
        kind: text(v, &["kind"]).unwrap_or("Default").to_ascii_lowercase(),
        id: need(&["properties", "workspaceId"])?.to_ascii_lowercase(),
        notebook_fqdn: text(v, &["properties", "notebookInfo", "fqdn"]).map(str::to_string),
        hub: text(v, &["properties", "hubResourceId"]).map(str::to_string),
        endpoints: approved_endpoints(v),
        dependencies: ["storageAccount", "keyVault", "containerRegistry"]
            .iter()
            .filter_map(|k| text(v, &["properties", k]))
            .map(str::to_string)
            .collect(),
    })
}

/// Everything one workspace with approved private endpoints gives: one
/// [`Found`] per endpoint in scope that lists its API name, and what of it
/// was left out. Endpoints in several VNets each give their own addresses;
/// where they differ, the merge leaves the names out.
async fn workspace(
    arm: &Inventory<'_>,
    w: &Listed,
    cfg: &AzureConfig,
) -> Result<(Vec<Found>, Vec<Skipped>), Failure> {
    let nets = &cfg.virtual_networks;
    let mut skipped = Vec::new();
    let mut each = Vec::new();
    for pe in &w.endpoints {
        let pairs = endpoint_names(arm, pe, nets, &mut skipped).await?;
        if let Some(mut found) = from_endpoint(w, &pairs, cfg.cloud) {
            found.endpoint = Some(pe.clone());
            each.push(found);
        }
    }
    if each.is_empty() {
        skipped.push(Skipped::new(
            &w.resource_id,
            "its approved private endpoints in scope list no API name (yet)",
        ));
        return Ok((each, skipped));
    }
    let computes = compute_instances(arm, &w.resource_id, &mut skipped).await?;
    let endpoints = online_endpoints(arm, &w.resource_id, &mut skipped).await?;
    let mut dependencies = Vec::new();
    for dep in &w.dependencies {
        let Some(api) = dependency_api(dep) else {
            continue;
        };
        let Some(resource) = readable(arm.get(dep, api).await, dep, &mut skipped)? else {
            continue;
        };
        for pe in approved_endpoints(&resource) {
            for (name, addrs) in endpoint_names(arm, &pe, nets, &mut skipped).await? {
                dependencies.push(FoundName {
                    name,
                    addrs,
                    resource_id: dep.clone(),
                    endpoint: Some(pe.clone()),
                });
            }
        }
    }
    // Its dependencies come once, with the first endpoint's finding.
    each[0].names.extend(dependencies);
    for found in &mut each {
        found.instances.clone_from(&computes.instances);
        found.online_endpoints.clone_from(&endpoints);
        add_application_hosts(found, &computes.hosts);
    }
    Ok((each, skipped))
}

/// Adds to `found` the application hosts of its compute instances (each
/// with the instance it came from) that lie under an instances zone of
/// its cloud, at its API IP, as Azure answers an instance's own names;
/// those it derives already (Jupyter's is the instance's own name) once.
/// They are names of the workspace's own (its resource id, as what its
/// endpoint lists), so they go where the workspace goes: a `[[workspace]]`
/// of the file or a conflict that leaves it out leaves them out too. As
/// names, they need nothing new in the state file or the merge, and
/// `discover` prints them as `[[record]]`s, since a `[[workspace]]` has no
/// field that holds them.
fn add_application_hosts(found: &mut Found, hosts: &[(String, String)]) {
    // One that cannot be served is said by `Discovered::new`.
    let Ok(ws) = found.workspace() else {
        return;
    };
    let derived: HashSet<String> = names::derive(&ws, AnswerMode::A)
        .into_iter()
        .map(|d| d.name)
        .collect();
    for (compute, host) in hosts {
        if !names::is_instance_host(host, ws.cloud) {
            debug!(
                compute = compute.as_str(),
                host = host.as_str(),
                "an application host outside the instances zones of the workspace's cloud: \
                 not served"
            );
            continue;
        }
        if !derived.contains(host) {
            found.names.push(FoundName {
                name: host.clone(),
                addrs: vec![found.ip],
                resource_id: found.resource_id.clone(),
                endpoint: None,
            });
        }
    }
}

/// Whether a private endpoint (ARM's object) counts under
/// `virtual_networks`: every endpoint when that is empty, else one whose
/// `properties.subnet.id` lies in one of those VNets (resource ids,
/// case-insensitive).
fn in_networks(endpoint: &Value, nets: &[String]) -> bool {
    if nets.is_empty() {
        return true;
    }
    let Some(subnet) = text(endpoint, &["properties", "subnet", "id"]) else {
        return false;
    };
    let subnet = subnet.to_ascii_lowercase();
    nets.iter().any(|net| {
        let net = net.trim_end_matches('/').to_ascii_lowercase();
        subnet
            .strip_prefix(&net)
            .is_some_and(|rest| rest.starts_with("/subnets/"))
    })
}

/// The workspace `w` whose endpoints list `pairs` (see
/// [`crate::import::workspace_from_endpoint`]), and what they list beyond
/// its derived names (the inference wildcard, names Azure adds later),
/// served as listed, like an import.
fn from_endpoint(w: &Listed, pairs: &[(String, Vec<IpAddr>)], prefer: Cloud) -> Option<Found> {
    let ws = crate::import::workspace_from_endpoint(
        &w.name,
        &w.id,
        &w.region,
        w.notebook_fqdn.as_deref(),
        pairs,
        prefer,
    )?;
    let derived: Vec<String> = names::derive(&ws, AnswerMode::A)
        .into_iter()
        .map(|d| d.name)
        .collect();
    let names = pairs
        .iter()
        .filter(|(name, _)| !derived.contains(name))
        .map(|(name, addrs)| FoundName {
            name: name.clone(),
            addrs: addrs.clone(),
            resource_id: w.resource_id.clone(),
            endpoint: None,
        })
        .collect();
    Some(Found {
        resource_id: w.resource_id.clone(),
        name: ws.name,
        id: ws.id,
        region: ws.region,
        cloud: ws.cloud.as_str().to_string(),
        ip: ws.ip,
        notebook_ip: ws.notebook_ip,
        inference_ip: ws.inference_ip,
        notebook_fqdn: ws.notebook_fqdn,
        instances: Vec::new(),
        online_endpoints: Vec::new(),
        projects: Vec::new(),
        names,
        endpoint: None,
    })
}

/// Every (FQDN, addresses) a private endpoint lists: its `customDnsConfigs`,
/// or, once a private DNS zone group has emptied that, its NICs'; nothing
/// for an endpoint outside `nets` (see [`in_networks`]).
async fn endpoint_names(
    arm: &Inventory<'_>,
    pe: &str,
    nets: &[String],
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<(String, Vec<IpAddr>)>, Failure> {
    let Some(v) = readable(arm.get(pe, NETWORK_API).await, pe, skipped)? else {
        return Ok(Vec::new());
    };
    names_listed(arm, pe, &v, nets, skipped).await
}

/// What the private endpoint `pe`, as ARM shows it (`v`), lists; see
/// [`endpoint_names`].
async fn names_listed(
    arm: &Inventory<'_>,
    pe: &str,
    v: &Value,
    nets: &[String],
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<(String, Vec<IpAddr>)>, Failure> {
    if !in_networks(v, nets) {
        return Ok(Vec::new());
    }
    let configs = v
        .pointer("/properties/customDnsConfigs")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let mut out = parsed(pe, &configs)?;
    if out.is_empty() {
        let nics: Vec<String> = v
            .pointer("/properties/networkInterfaces")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| text(n, &["id"]))
            .map(str::to_string)
            .collect();
        for nic in nics {
            if let Some(n) = readable(arm.get(&nic, NETWORK_API).await, &nic, skipped)? {
                out.extend(parsed(&nic, &n)?);
            }
        }
    }
    Ok(out)
}

/// The resource an endpoint's approved connection reaches, from the
/// endpoint's own side (`privateLinkServiceConnections`, or the manual ones
/// a resource owner approved); `None` when no connection is approved.
fn approved_target(endpoint: &Value) -> Option<&str> {
    [
        "privateLinkServiceConnections",
        "manualPrivateLinkServiceConnections",
    ]
    .iter()
    .filter_map(|k| endpoint.pointer(&format!("/properties/{k}"))?.as_array())
    .flatten()
    .find(|c| {
        text(
            c,
            &["properties", "privateLinkServiceConnectionState", "status"],
        )
        .is_some_and(|s| s.eq_ignore_ascii_case("approved"))
    })
    .and_then(|c| text(c, &["properties", "privateLinkServiceId"]))
}

/// What every other approved private endpoint in scope lists, with
/// `private_endpoints = "all"`: those in the subscriptions `read` (Resource
/// Graph's rows, or ARM's list of each configured subscription), in the
/// resource groups and VNets of `cfg`, leaving out the workspaces' own
/// (their names are derived) and the endpoints already `used` for a
/// workspace's dependencies. A failure fails the endpoint's subscription.
async fn other_endpoints(
    arm: &Inventory<'_>,
    cfg: &AzureConfig,
    read: &HashSet<String>,
    used: &HashSet<String>,
    skipped: &mut Vec<Skipped>,
    failed: &mut Vec<(Scope, Failure)>,
) -> Vec<FoundName> {
    let endpoints = match arm.private_endpoints() {
        Some(rows) => rows,
        None => {
            let mut all = Vec::new();
            for sub in cfg.subscriptions.iter().filter(|s| read.contains(*s)) {
                let path =
                    format!("/subscriptions/{sub}/providers/Microsoft.Network/privateEndpoints");
                match arm.list(&path, NETWORK_API).await {
                    Ok(list) => all.extend(list),
                    Err(f) => failed.push((Scope::Subscription(sub.clone()), f)),
                }
            }
            all
        }
    };
    let mut out = Vec::new();
    for v in &endpoints {
        let Some(pe) = text(v, &["id"]) else {
            continue;
        };
        let Some(target) = approved_target(v) else {
            continue;
        };
        let workspace = target
            .to_ascii_lowercase()
            .contains("/providers/microsoft.machinelearningservices/workspaces/");
        if workspace
            || used.contains(&pe.to_ascii_lowercase())
            || !in_scope(pe, &cfg.resource_groups)
        {
            continue;
        }
        match names_listed(arm, pe, v, &cfg.virtual_networks, skipped).await {
            Ok(names) => out.extend(names.into_iter().map(|(name, addrs)| FoundName {
                name,
                addrs,
                resource_id: target.to_string(),
                endpoint: Some(pe.to_string()),
            })),
            Err(f) => {
                let sub = subscription_of(pe).unwrap_or_default().to_string();
                failed.push((Scope::Subscription(sub), f));
            }
        }
    }
    out
}

/// Names and addresses in an import shape (what `az network private-endpoint
/// show` or `az network nic show` prints), lower-cased and parsed.
fn parsed(url: &str, v: &Value) -> Result<Vec<(String, Vec<IpAddr>)>, Failure> {
    let pairs = crate::import::pairs(v)
        .ok_or_else(|| Failure::malformed(url, "not a private endpoint or NIC"))?;
    let mut out = Vec::new();
    for (fqdn, ips) in pairs {
        let name = names::domain_name(fqdn)
            .map_err(|why| Failure::malformed(url, format!("{fqdn:?}: {why}")))?;
        let addrs = ips
            .iter()
            .map(|ip| ip.trim().parse::<IpAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Failure::malformed(url, format!("{fqdn}: an address is not an IP")))?;
        if !addrs.is_empty() {
            out.push((name, addrs));
        }
    }
    Ok(out)
}

/// The entries of one of a workspace's lists (`computes`,
/// `onlineEndpoints`); none when ARM refuses it or it is gone, noted in
/// `skipped`.
async fn workspace_list(
    arm: &Inventory<'_>,
    workspace: &str,
    list: &str,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<Value>, Failure> {
    let path = format!("{workspace}/{list}");
    Ok(readable(arm.list(&path, ML_API).await, &path, skipped)?.unwrap_or_default())
}

/// What a workspace's compute list gives: its compute instances' names and
/// their applications' hosts.
#[derive(Debug, Default)]
struct Computes {
    instances: Vec<String>,
    /// (the instance's resource id, the host of one of its
    /// `properties.properties.applications[].endpointUri`), lower-case.
    hosts: Vec<(String, String)>,
}

/// Compute instances of a workspace, with their applications' hosts;
/// clusters (AmlCompute) and attached computes have no names of their own.
async fn compute_instances(
    arm: &Inventory<'_>,
    workspace: &str,
    skipped: &mut Vec<Skipped>,
) -> Result<Computes, Failure> {
    let list = workspace_list(arm, workspace, "computes", skipped).await?;
    let mut out = Computes::default();
    for c in list.iter().filter_map(crate::import::compute_instance) {
        let from = &c.resource_id;
        out.hosts
            .extend(c.hosts.into_iter().map(|h| (from.clone(), h)));
        out.instances.push(c.name);
    }
    Ok(out)
}

async fn online_endpoints(
    arm: &Inventory<'_>,
    workspace: &str,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<String>, Failure> {
    let list = workspace_list(arm, workspace, "onlineEndpoints", skipped).await?;
    Ok(list
        .iter()
        .filter_map(|e| text(e, &["name"]))
        .map(str::to_ascii_lowercase)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed subscription keeps its part; a failed management group,
    /// whose subscriptions are what could not be read, keeps every part
    /// the round did not read (a state file's, at a start, included).
    #[test]
    fn what_a_failed_management_group_may_hold_is_kept() {
        let found = |sub: &str| -> Found {
            serde_json::from_value(serde_json::json!({
                "resource_id": format!("/subscriptions/{sub}/resourceGroups/r/providers/x/workspaces/w"),
                "name": "w", "id": "i", "region": "eastus", "cloud": "public",
                "ip": "10.0.0.5", "notebook_ip": "10.0.0.6", "inference_ip": "10.0.0.7"}))
            .unwrap()
        };
        let last = Discovery {
            workspaces: vec![found("S-READ"), found("s-under"), found("s-failed")],
            // An endpoint's names go with the endpoint's subscription.
            endpoints: vec![FoundName {
                name: "srch.search.windows.net".into(),
                addrs: vec!["10.0.0.9".parse().unwrap()],
                resource_id: "/subscriptions/s-read/resourceGroups/r/providers/x/y/srch".into(),
                endpoint: Some("/subscriptions/s-ep/resourceGroups/r/providers/pe/srch".into()),
            }],
        };
        let failed = |scope| (scope, Failure::Unseen(String::new()));
        let mut round = Round {
            read: ["s-read".to_string()].into(),
            failed: vec![failed(Scope::Subscription("s-failed".into()))],
            ..Round::default()
        };
        assert_eq!(round.kept(&last), ["s-failed"]);
        round
            .failed
            .push(failed(Scope::ManagementGroup("mg-corp".into())));
        assert_eq!(round.kept(&last), ["s-ep", "s-failed", "s-under"]);
    }

    #[test]
    fn resource_groups_match_case_insensitively() {
        let id = "/subscriptions/s/resourceGroups/RG-ML/providers/Microsoft.MachineLearningServices/workspaces/w";
        assert!(in_scope(id, &[]));
        assert!(in_scope(id, &["rg-ml".into()]));
        assert!(!in_scope(id, &["rg-other".into()]));
    }

    #[test]
    fn virtual_networks_scope_endpoints_by_their_subnet() {
        let net =
            "/subscriptions/s/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks";
        let pe = |subnet: &str| serde_json::json!({"properties": {"subnet": {"id": subnet}}});
        let hub = pe(&format!("{net}/vnet-hub/subnets/pe"));
        let spoke = pe(&format!("{net}/VNET-SPOKE/subnets/pe"));
        assert!(in_networks(&hub, &[]));
        let only_hub = [format!("{net}/vnet-hub").to_ascii_uppercase()];
        assert!(in_networks(&hub, &only_hub));
        assert!(!in_networks(&spoke, &only_hub));
        // A VNet whose name starts like another's is another VNet.
        assert!(!in_networks(
            &pe(&format!("{net}/vnet-hub2/subnets/pe")),
            &only_hub
        ));
        assert!(!in_networks(&serde_json::json!({}), &only_hub));
    }

    #[test]
    fn only_approved_endpoints() {
        let v = serde_json::json!({"properties": {"privateEndpointConnections": [
            {"properties": {"privateEndpoint": {"id": "/pe/a"},
              "privateLinkServiceConnectionState": {"status": "Approved"}}},
            {"properties": {"privateEndpoint": {"id": "/pe/b"},
              "privateLinkServiceConnectionState": {"status": "Pending"}}}]}});
        assert_eq!(approved_endpoints(&v), vec!["/pe/a".to_string()]);
    }

    #[test]
    fn dependency_api_versions_by_provider() {
        assert_eq!(
            dependency_api(
                "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/st"
            ),
            Some("2023-01-01")
        );
        assert_eq!(
            dependency_api(
                "/subscriptions/s/resourceGroups/r/providers/microsoft.insights/components/ai"
            ),
            None
        );
    }
}
