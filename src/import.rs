//! `[[import]]`: what the Azure CLI prints about a private endpoint, taken as
//! is. Recognised shapes:
//!
//! - `az network private-endpoint show` (the whole object, or a list of them),
//!   whose `customDnsConfigs` holds `{fqdn, ipAddresses}`;
//! - that array alone (`--query customDnsConfigs`);
//! - the projected NIC form `[{IPAddress, FQDNs}]`;
//! - the raw NIC object (`ipConfigurations[].privateIPAddress` and
//!   `…privateLinkConnectionProperties.fqdns`, also under `properties`);
//! - a private DNS zone group (`az network private-endpoint dns-zone-group
//!   show`): `privateDnsZoneConfigs[].recordSets[]` of `{fqdn, ipAddresses}`;
//! - a private DNS zone's A records (`az network private-dns record-set a
//!   list`): `[{fqdn, aRecords: [{ipv4Address}]}]`;
//! - the workspace object (`az ml workspace show`, or ARM's, or a list of
//!   them): no addresses of its own, but with the names imported beside it
//!   it gives the workspace's whole name set, as `[[workspace]]` does
//!   (the private-link forms, the older notebooks form);
//! - a compute instance (`az ml compute show`, or ARM's, or a list of
//!   them): its names and its applications' hosts, served with the
//!   workspace its id names when that workspace is served;
//! - amldns's own discovery file (`{"amldns_discovery": 1, ...}`, what
//!   `amldns discover --watch --out` writes): served as discovery is, below
//!   the file's own names.
//!
//! Key case varies between CLI versions and ARM (`privateIpAddress`), so keys
//! are matched case-insensitively.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::azure::discovery::{Discovery, DiscoveryFile};
use crate::diagnostics::{Lines, Location};
use crate::names::{self, AnswerMode, Cloud, Workspace, domain_name};

/// One name from an import file and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedName {
    /// Lower-case, no final dot; `*.` first for a wildcard.
    pub name: String,
    pub addrs: Vec<IpAddr>,
    pub at: Location,
}

/// A workspace object: which workspace, not where it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedWorkspace {
    pub resource_id: String,
    pub name: String,
    /// Lower-case `workspaceId`.
    pub id: String,
    /// Lower-case region short name.
    pub region: String,
    pub notebook_fqdn: Option<String>,
    pub at: Location,
}

/// A compute instance object: which workspace it belongs to, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCompute {
    /// The workspace its resource id names (`…/workspaces/<workspace>/computes/…`).
    pub workspace: Option<String>,
    pub instance: ComputeInstance,
    pub at: Location,
}

/// What one `[[import]]` gave.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Files the path matched: a glob may match none yet.
    pub files: usize,
    pub names: Vec<ImportedName>,
    pub workspaces: Vec<ImportedWorkspace>,
    pub computes: Vec<ImportedCompute>,
    /// Discovery files, each with where it was read.
    pub discoveries: Vec<(Location, Discovery)>,
    /// Files of a known shape that list no names.
    pub empty: Vec<PathBuf>,
    /// A hash of every file's path and text, as read.
    pub digest: u64,
}

/// The folder a pattern's files live in (up to its first glob component),
/// for watching: a new file matching the glob appears there.
pub fn base_dir(config_path: &Path, pattern: &str) -> PathBuf {
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let mut base = dir.to_path_buf();
    let full = dir.join(pattern);
    let parts: Vec<_> = full.components().collect();
    for (i, c) in parts.iter().enumerate() {
        let is_last = i + 1 == parts.len();
        if is_last || c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        base = parts[..=i].iter().collect();
    }
    base
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The `path` itself is wrong; the caller locates it in the config.
    #[error("{0}")]
    Pattern(String),
    #[error("{at}: {message}")]
    At { at: Location, message: String },
}

/// The files `pattern` names now, relative to the config file's folder:
/// a glob's matches (maybe none), or the one file a plain path names (none
/// yet when the import is `optional`).
pub fn files(
    config_path: &Path,
    pattern: &str,
    optional: bool,
) -> Result<Vec<PathBuf>, ImportError> {
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let full = dir.join(pattern);
    if !pattern.contains(['*', '?', '[']) {
        if optional && !full.exists() {
            return Ok(Vec::new());
        }
        if !full.is_file() {
            return Err(ImportError::Pattern(format!(
                "import file {} does not exist",
                full.display()
            )));
        }
        return Ok(vec![full]);
    }
    let full = full
        .to_str()
        .ok_or_else(|| ImportError::Pattern(format!("import path {pattern:?} is not UTF-8")))?;
    let mut v = glob::glob(full)
        .map_err(|e| ImportError::Pattern(format!("import path {pattern:?}: {e}")))?
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect::<Vec<_>>();
    v.sort();
    Ok(v)
}

/// Reads every file `pattern` names, relative to the config file's folder.
pub fn load(config_path: &Path, pattern: &str, optional: bool) -> Result<Loaded, ImportError> {
    let paths = files(config_path, pattern, optional)?;
    let mut loaded = Loaded {
        files: paths.len(),
        ..Loaded::default()
    };
    let mut digest = DefaultHasher::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| ImportError::At {
            at: Location::start_of(&path),
            message: format!("cannot read: {e}"),
        })?;
        (&path, &text).hash(&mut digest);
        let value = json(&path, &text)?;
        if value.get("amldns_discovery").is_some() {
            let at = Location::start_of(&path);
            let found = DiscoveryFile::read(&text).map_err(|why| ImportError::At {
                at: at.clone(),
                message: format!("not an amldns discovery file: {why}"),
            })?;
            loaded.discoveries.push((at, found));
            continue;
        }
        if let Some(ws) = workspaces_in(&path, &value) {
            loaded.workspaces.extend(ws);
            continue;
        }
        if let Some(computes) = computes_in(&path, &value) {
            loaded.computes.extend(computes);
            continue;
        }
        let names = names_in(&path, &text, &value)?;
        if names.is_empty() {
            loaded.empty.push(path);
        }
        loaded.names.extend(names);
    }
    loaded.digest = digest.finish();
    Ok(loaded)
}

/// The workspace `name` (`id`, `region`) whose private endpoint lists
/// `pairs`, its addresses read off them: the API IP is the API name's, the
/// notebook IP the notebooks name's, the inference IP the inference
/// wildcard's, the workspace's own (`*.<id>.inference.…`) or else the
/// regional one of its region (`*.<region>.inference.…`, as Microsoft's
/// custom-DNS doc lists it), each defaulting to the API IP. The cloud is the
/// one whose API name is listed, `prefer` tried first; `None` when none is.
/// The notebooks FQDN is `notebook_fqdn` when it is this workspace's, else
/// the one listed. Discovery and imported workspace objects both use it.
pub fn workspace_from_endpoint(
    name: &str,
    id: &str,
    region: &str,
    notebook_fqdn: Option<&str>,
    pairs: &[(String, Vec<IpAddr>)],
    prefer: Cloud,
) -> Option<Workspace> {
    let addr_of = |pred: &dyn Fn(&str) -> bool| {
        pairs
            .iter()
            .find(|(n, a)| pred(n) && !a.is_empty())
            .map(|(_, a)| a[0])
    };
    let any = IpAddr::from([0, 0, 0, 0]);
    let mut ws = Workspace {
        name: name.to_string(),
        id: id.to_string(),
        region: region.to_string(),
        cloud: prefer,
        ip: any,
        notebook_ip: any,
        inference_ip: any,
        notebook_fqdn: None,
        instances: Vec::new(),
        instances_wildcard: false,
        online_endpoints: Vec::new(),
        inference_wildcard: false,
        projects: Vec::new(),
    };
    let mut clouds = Cloud::ALL.to_vec();
    clouds.sort_by_key(|c| *c != prefer);
    let (cloud, ip) = clouds.into_iter().find_map(|cloud| {
        ws.cloud = cloud;
        let api = names::derive(&ws, AnswerMode::A)
            .into_iter()
            .find(|d| d.purpose == names::Purpose::Api)?
            .name;
        Some((cloud, addr_of(&|n| n == api)?))
    })?;
    let notebooks = |n: &str| names::is_notebooks_name_of(n, id);
    ws.cloud = cloud;
    ws.ip = ip;
    ws.notebook_ip = addr_of(&notebooks).unwrap_or(ip);
    ws.inference_ip = addr_of(&|n| names::is_inference_wildcard_of(n, id))
        .or_else(|| addr_of(&|n| names::is_regional_inference_wildcard(n, cloud, region)))
        .unwrap_or(ip);
    ws.notebook_fqdn = notebook_fqdn
        .map(str::to_ascii_lowercase)
        .filter(|f| notebooks(f))
        .or_else(|| {
            pairs
                .iter()
                .map(|(n, _)| n)
                .find(|n| notebooks(n) && !n.contains(".privatelink."))
                .cloned()
        });
    Some(ws)
}

/// The workspace objects in `text`, if it is one or a list of them
/// (`workspaceId`, in ARM's or the CLI's spelling, marks one).
fn workspaces_in(file: &Path, value: &Value) -> Option<Vec<ImportedWorkspace>> {
    objects(value)?
        .into_iter()
        .map(|v| {
            let obj = v.as_object()?;
            let text = |k: &str| field(obj, k).and_then(Value::as_str);
            let id = text("workspaceId").or_else(|| text("workspace_id"))?;
            Some(ImportedWorkspace {
                resource_id: text("id").unwrap_or_default().to_string(),
                name: text("name")?.to_string(),
                id: id.to_ascii_lowercase(),
                region: text("location")?.replace(' ', "").to_ascii_lowercase(),
                notebook_fqdn: field(obj, "notebookInfo")
                    .and_then(Value::as_object)
                    .and_then(|n| get(n, "fqdn"))
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase),
                at: Location::start_of(file),
            })
        })
        .collect()
}

/// What a file of one object, or of a list of them, holds: the object, or
/// the list's items; `None` for anything else (an empty list among them).
fn objects(value: &Value) -> Option<Vec<&Value>> {
    match value {
        Value::Array(a) if !a.is_empty() => Some(a.iter().collect()),
        Value::Object(_) => Some(vec![value]),
        _ => None,
    }
}

/// The compute instances in `value`, if it is one or a list of them.
fn computes_in(file: &Path, value: &Value) -> Option<Vec<ImportedCompute>> {
    objects(value)?
        .into_iter()
        .map(|v| {
            let instance = compute_instance(v)?;
            Some(ImportedCompute {
                workspace: workspace_of_compute(&instance.resource_id).map(str::to_string),
                instance,
                at: Location::start_of(file),
            })
        })
        .collect()
}

/// The workspace a compute's resource id names:
/// `…/workspaces/<workspace>/computes/<compute>`.
fn workspace_of_compute(id: &str) -> Option<&str> {
    let mut parts = id.split('/');
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("workspaces") {
            let ws = parts.next().filter(|w| !w.is_empty())?;
            let computes = parts.next()?.eq_ignore_ascii_case("computes");
            return computes.then_some(ws);
        }
    }
    None
}

/// Names and addresses in one file's text.
pub fn parse(file: &Path, text: &str) -> Result<Vec<ImportedName>, ImportError> {
    names_in(file, text, &json(file, text)?)
}

fn json(file: &Path, text: &str) -> Result<Value, ImportError> {
    serde_json::from_str(text).map_err(|e| ImportError::At {
        at: Location {
            file: file.into(),
            line: e.line().max(1),
            col: e.column().max(1),
        },
        message: format!("not JSON: {e}"),
    })
}

/// Names and addresses in `value`, read from `text`.
fn names_in(file: &Path, text: &str, value: &Value) -> Result<Vec<ImportedName>, ImportError> {
    let pairs = pairs(value).ok_or(());
    let bad_shape = |why: &str| ImportError::At {
        at: Location::start_of(file),
        message: format!(
            "{why}: expected the output of `az network private-endpoint show` \
             (customDnsConfigs), of `az network nic show` (ipConfigurations, or the \
             [{{IPAddress, FQDNs}}] projection), of `az network private-endpoint \
             dns-zone-group show`, of `az network private-dns record-set a list`, of \
             `az ml workspace show` or of `az ml compute show` (a compute instance)"
        ),
    };
    // An empty list is a known shape: Azure empties customDnsConfigs once a
    // private DNS zone group is attached. The caller warns about it.
    let pairs = pairs.map_err(|_| bad_shape("not a private-endpoint or NIC shape"))?;

    // Values are met in document order (almost: object keys come sorted), so
    // each search starts where the last one matched, keeping a large file
    // linear; a miss searches again from the top.
    let lines = Lines::new(file, text);
    let cursor = std::cell::Cell::new(0);
    let locate = |s: &str| {
        let needle = format!("\"{s}\"");
        let from = cursor.get();
        let at = text[from..]
            .find(&needle)
            .map(|i| i + from)
            .or_else(|| text.find(&needle))
            .unwrap_or(0);
        cursor.set(at);
        lines.locate(at)
    };
    let mut out = Vec::new();
    for (fqdn, ips) in pairs {
        let name = domain_name(fqdn).map_err(|why| ImportError::At {
            at: locate(fqdn),
            message: format!("{fqdn:?} is not a domain name: {why}"),
        })?;
        if ips.is_empty() {
            return Err(ImportError::At {
                at: locate(fqdn),
                message: format!("{fqdn} has no IP address"),
            });
        }
        let mut addrs = Vec::new();
        for ip in ips {
            let addr = ip.trim().parse::<IpAddr>().map_err(|_| ImportError::At {
                at: locate(ip),
                message: format!("{ip:?} is not an IP address"),
            })?;
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        out.push(ImportedName {
            name,
            addrs,
            at: locate(fqdn),
        });
    }
    Ok(out)
}

/// (FQDN, its addresses) as found in the JSON.
pub type Pair<'a> = (&'a str, Vec<&'a str>);

/// The names and addresses in `v`, one of the shapes above; `None` when it
/// is none of them. Discovery reads ARM's private endpoints and NICs with it.
pub fn pairs(v: &Value) -> Option<Vec<Pair<'_>>> {
    let mut out = Ok(Vec::new());
    collect(v, &mut out);
    out.ok()
}

/// Walks one of the known shapes; `Err(())` when `v` is none of them.
fn collect<'a>(v: &'a Value, out: &mut Result<Vec<Pair<'a>>, ()>) {
    let Ok(pairs) = out else { return };
    match v {
        Value::Array(items) => {
            for item in items {
                collect(item, out);
            }
        }
        Value::Object(obj) => {
            // {fqdn, aRecords}: a private DNS zone's A record set.
            if let (Some(fqdn), Some(records)) = (
                get(obj, "fqdn").and_then(Value::as_str),
                field(obj, "aRecords").and_then(Value::as_array),
            ) {
                let ips = records
                    .iter()
                    .filter_map(|r| r.as_object().and_then(|r| get(r, "ipv4Address")))
                    .filter_map(Value::as_str)
                    .collect();
                pairs.push((fqdn, ips));
            // {fqdn, ipAddresses}: one entry of customDnsConfigs (or of a
            // zone group's recordSets).
            } else if let Some(fqdn) = get(obj, "fqdn").and_then(Value::as_str) {
                pairs.push((fqdn, strings(get(obj, "ipAddresses"))));
            // {IPAddress, FQDNs}: the projected NIC form.
            } else if let Some(fqdns) = get(obj, "FQDNs") {
                let ip = get(obj, "IPAddress").and_then(Value::as_str);
                for f in strings(Some(fqdns)) {
                    pairs.push((f, ip.into_iter().collect()));
                }
            } else if let Some(configs) = field(obj, "customDnsConfigs") {
                collect(configs, out);
            } else if let Some(zones) = field(obj, "privateDnsZoneConfigs") {
                let Some(list) = zones.as_array() else {
                    *out = Err(());
                    return;
                };
                for zone in list.iter().filter_map(Value::as_object) {
                    if let Some(sets) = field(zone, "recordSets") {
                        collect(sets, out);
                    }
                }
            } else if let Some(ipconfigs) = field(obj, "ipConfigurations") {
                let Some(list) = ipconfigs.as_array() else {
                    *out = Err(());
                    return;
                };
                for ipc in list.iter().filter_map(Value::as_object) {
                    let ip = field(ipc, "privateIPAddress").and_then(Value::as_str);
                    let fqdns = field(ipc, "privateLinkConnectionProperties")
                        .and_then(Value::as_object)
                        .and_then(|p| get(p, "fqdns"));
                    for f in strings(fqdns) {
                        pairs.push((f, ip.into_iter().collect()));
                    }
                }
            } else {
                *out = Err(());
            }
        }
        _ => *out = Err(()),
    }
}

/// A compute instance, as ARM lists a workspace's computes or as `az ml
/// compute show` prints one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeInstance {
    /// Lower-case.
    pub name: String,
    /// `…/workspaces/<workspace>/computes/<name>`, as given; empty when not.
    pub resource_id: String,
    /// The host of each of its applications' URIs, lower-case.
    pub hosts: Vec<String>,
}

/// The compute instance `v` is, if it is one: ARM's shape
/// (`properties.computeType` = `ComputeInstance`, the applications in
/// `properties.properties.applications[].endpointUri`, as the REST specs'
/// Compute/get/ComputeInstance.json has them) or the Azure CLI's (`type` =
/// `computeinstance`, `services[].endpoint_uri`: azure-ai-ml's
/// `ComputeInstanceSchema` dumps ARM's applications under that name, keys
/// in snake case). A cluster or an attached compute is not one.
pub fn compute_instance(v: &Value) -> Option<ComputeInstance> {
    let obj = v.as_object()?;
    let text = |k: &str| get(obj, k).and_then(Value::as_str);
    let by_arm = (field(obj, "computeType").and_then(Value::as_str))
        .is_some_and(|t| t.eq_ignore_ascii_case("ComputeInstance"));
    let by_cli = text("type").is_some_and(|t| t.eq_ignore_ascii_case("computeinstance"));
    if !by_arm && !by_cli {
        return None;
    }
    let arm_apps = (get(obj, "properties").and_then(Value::as_object))
        .and_then(|p| get(p, "properties"))
        .and_then(Value::as_object)
        .and_then(|p| get(p, "applications"));
    let hosts = (arm_apps.or_else(|| get(obj, "services")))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|a| get(a, "endpointUri").or_else(|| get(a, "endpoint_uri")))
        .filter_map(Value::as_str)
        .filter_map(uri_host)
        .collect();
    Some(ComputeInstance {
        name: text("name")?.to_ascii_lowercase(),
        resource_id: text("id").unwrap_or_default().to_string(),
        hosts,
    })
}

/// The host of a URI (`https://ci-8787.eastus.instances.azureml.ms/`), as
/// a domain name; `None` when it has none.
fn uri_host(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?.split(':').next()?;
    domain_name(host).ok()
}

/// A key of `obj`, in any letter case.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// A key of `obj` or of its ARM `properties` object.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    get(obj, key).or_else(|| {
        get(obj, "properties")
            .and_then(Value::as_object)
            .and_then(|p| get(p, key))
    })
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, Vec<String>)> {
        parse(Path::new("pe.json"), text)
            .unwrap()
            .into_iter()
            .map(|n| (n.name, n.addrs.iter().map(ToString::to_string).collect()))
            .collect()
    }

    fn err(text: &str) -> (usize, usize, String) {
        match parse(Path::new("pe.json"), text) {
            Err(ImportError::At { at, message }) => (at.line, at.col, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    const G: &str = crate::fixtures::GUID;

    /// Both shapes a compute instance comes in, and what is not one.
    #[test]
    fn compute_instances_as_arm_and_the_cli_give_them() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/\
                  workspaces/mlw/computes/ci-alice";
        let arm = serde_json::json!({"id": id, "name": "CI-Alice",
            "type": "Microsoft.MachineLearningServices/workspaces/computes",
            "properties": {"computeType": "ComputeInstance", "properties": {"applications": [
                {"displayName": "Jupyter", "endpointUri": "https://ci-alice.eastus.instances.azureml.ms/tree/"},
                {"displayName": "RStudio", "endpointUri": "https://CI-Alice-8787.eastus.instances.azureml.ms:443/"},
                {"displayName": "VS Code", "endpointUri": "vscode://ms-toolsai.vscode-ai-remote/open?x=1"},
                {"displayName": "Odd", "endpointUri": "not a uri"}]}}});
        let cli = serde_json::json!({"name": "ci-alice", "type": "computeinstance", "id": id,
            "location": "eastus", "services": [
                {"display_name": "Jupyter", "endpoint_uri": "https://ci-alice.eastus.instances.azureml.ms/tree/"},
                {"display_name": "RStudio", "endpoint_uri": "https://ci-alice-8787.eastus.instances.azureml.ms/"},
                {"display_name": "VS Code", "endpoint_uri": "vscode://ms-toolsai.vscode-ai-remote/open?x=1"},
                {"display_name": "Odd", "endpoint_uri": "not a uri"}]});
        let want = ComputeInstance {
            name: "ci-alice".into(),
            resource_id: id.into(),
            hosts: vec![
                "ci-alice.eastus.instances.azureml.ms".into(),
                "ci-alice-8787.eastus.instances.azureml.ms".into(),
                "ms-toolsai.vscode-ai-remote".into(),
            ],
        };
        assert_eq!(compute_instance(&arm), Some(want.clone()));
        assert_eq!(compute_instance(&cli), Some(want));
        let cluster =
            serde_json::json!({"name": "cpu", "properties": {"computeType": "AmlCompute"}});
        assert_eq!(compute_instance(&cluster), None);
        let cli_cluster = serde_json::json!({"name": "cpu", "type": "amlcompute"});
        assert_eq!(compute_instance(&cli_cluster), None);
    }

    #[test]
    fn private_endpoint_object() {
        let text = format!(
            r#"{{"name": "pe-mlw", "customDnsConfigs": [
                {{"fqdn": "{G}.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}},
                {{"fqdn": "*.{G}.inference.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.7"]}}
              ], "networkInterfaces": [{{"id": "/subscriptions/x"}}]}}"#
        );
        assert_eq!(
            names(&text),
            vec![
                (
                    format!("{G}.workspace.eastus.api.azureml.ms"),
                    vec!["10.1.0.5".into()]
                ),
                (
                    format!("*.{G}.inference.eastus.api.azureml.ms"),
                    vec!["10.1.0.7".into()]
                ),
            ]
        );
    }

    #[test]
    fn arm_properties_and_lists_of_endpoints() {
        let text = r#"[{"properties": {"customDnsConfigs": [
            {"FQDN": "A.Example.Com", "IPADDRESSES": ["10.0.0.1", "10.0.0.1", "10.0.0.2"]}]}}]"#;
        assert_eq!(
            names(text),
            vec![(
                "a.example.com".into(),
                vec!["10.0.0.1".into(), "10.0.0.2".into()]
            )]
        );
    }

    #[test]
    fn bare_custom_dns_configs_array() {
        let text =
            r#"[{"fqdn": "x.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}]"#;
        assert_eq!(
            names(text),
            vec![(
                "x.workspace.eastus.api.azureml.ms".into(),
                vec!["10.1.0.5".into()]
            )]
        );
    }

    #[test]
    fn projected_nic_form() {
        let text = r#"[{"IPAddress": "10.1.0.5", "FQDNs": ["a.api.azureml.ms", "b.api.azureml.ms"]},
                       {"ipAddress": "10.1.0.6", "fqdns": ["nb.notebooks.azure.net"]}]"#;
        assert_eq!(
            names(text),
            vec![
                ("a.api.azureml.ms".into(), vec!["10.1.0.5".into()]),
                ("b.api.azureml.ms".into(), vec!["10.1.0.5".into()]),
                ("nb.notebooks.azure.net".into(), vec!["10.1.0.6".into()]),
            ]
        );
    }

    #[test]
    fn raw_nic_object_in_both_key_spellings() {
        let text = r#"{"ipConfigurations": [
            {"privateIPAddress": "10.1.0.5",
             "privateLinkConnectionProperties": {"fqdns": ["a.api.azureml.ms"]}},
            {"properties": {"privateIpAddress": "10.1.0.6",
             "privateLinkConnectionProperties": {"fqdns": ["nb.notebooks.azure.net"]}}}]}"#;
        assert_eq!(
            names(text),
            vec![
                ("a.api.azureml.ms".into(), vec!["10.1.0.5".into()]),
                ("nb.notebooks.azure.net".into(), vec!["10.1.0.6".into()]),
            ]
        );
        let arm = r#"{"properties": {"ipConfigurations": [{"properties": {"privateIPAddress":
            "10.1.0.5", "privateLinkConnectionProperties": {"fqdns": ["a.api.azureml.ms"]}}}]}}"#;
        assert_eq!(
            names(arm),
            vec![("a.api.azureml.ms".into(), vec!["10.1.0.5".into()])]
        );
    }

    #[test]
    fn private_dns_zone_group() {
        let text = format!(
            r#"{{"name": "default", "privateDnsZoneConfigs": [
                {{"name": "privatelink-api-azureml-ms", "privateDnsZoneId": "/z/api",
                  "recordSets": [
                    {{"fqdn": "{G}.workspace.eastus.privatelink.api.azureml.ms",
                      "ipAddresses": ["10.1.0.5"], "recordSetName": "{G}.workspace.eastus",
                      "recordType": "A", "ttl": 10}}]}},
                {{"name": "privatelink-notebooks-azure-net", "properties": {{"recordSets": [
                    {{"fqdn": "ml-w-eastus-{G}.eastus.privatelink.notebooks.azure.net",
                      "ipAddresses": ["10.1.0.6"]}}]}}}}]}}"#
        );
        assert_eq!(
            names(&text),
            vec![
                (
                    format!("{G}.workspace.eastus.privatelink.api.azureml.ms"),
                    vec!["10.1.0.5".into()]
                ),
                (
                    format!("ml-w-eastus-{G}.eastus.privatelink.notebooks.azure.net"),
                    vec!["10.1.0.6".into()]
                ),
            ]
        );
    }

    #[test]
    fn private_dns_a_record_sets() {
        let text = format!(
            r#"[{{"aRecords": [{{"ipv4Address": "10.1.0.5"}}],
                 "fqdn": "{G}.workspace.eastus.privatelink.api.azureml.ms.",
                 "name": "{G}.workspace.eastus", "ttl": 10,
                 "type": "Microsoft.Network/privateDnsZones/A"}},
               {{"properties": {{"aRecords": [{{"ipv4Address": "10.1.0.7"}}, {{"ipv4Address": "10.1.0.8"}}]}},
                 "fqdn": "*.{G}.inference.eastus.privatelink.api.azureml.ms."}}]"#
        );
        assert_eq!(
            names(&text),
            vec![
                (
                    format!("{G}.workspace.eastus.privatelink.api.azureml.ms"),
                    vec!["10.1.0.5".into()]
                ),
                (
                    format!("*.{G}.inference.eastus.privatelink.api.azureml.ms"),
                    vec!["10.1.0.7".into(), "10.1.0.8".into()]
                ),
            ]
        );
    }

    #[test]
    fn workspace_objects_arm_and_cli() {
        let arm = format!(
            r#"{{"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/mlw",
                "name": "mlw", "location": "East US", "kind": "Default",
                "properties": {{"workspaceId": "{}", "notebookInfo": {{"fqdn": "ML-MLW-EASTUS-{G}.eastus.notebooks.azure.net"}}}}}}"#,
            G.to_ascii_uppercase()
        );
        let got =
            workspaces_in(Path::new("ws.json"), &serde_json::from_str(&arm).unwrap()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (
                got[0].name.as_str(),
                got[0].id.as_str(),
                got[0].region.as_str()
            ),
            ("mlw", G, "eastus")
        );
        assert_eq!(
            got[0].notebook_fqdn.as_deref(),
            Some(format!("ml-mlw-eastus-{G}.eastus.notebooks.azure.net").as_str())
        );
        let cli = format!(r#"[{{"name": "a", "location": "westeurope", "workspace_id": "{G}"}}]"#);
        assert_eq!(
            workspaces_in(Path::new("ws.json"), &serde_json::from_str(&cli).unwrap()).unwrap()[0]
                .region,
            "westeurope"
        );
        // A private endpoint is not a workspace object.
        assert!(
            workspaces_in(
                Path::new("pe.json"),
                &serde_json::json!({"customDnsConfigs": []})
            )
            .is_none()
        );
        assert!(workspaces_in(Path::new("pe.json"), &serde_json::json!([])).is_none());
    }

    #[test]
    fn base_dirs_for_watching() {
        let cfg = Path::new("/etc/amldns/amldns.toml");
        let cases = [
            ("pe/*.json", "/etc/amldns/pe"),
            ("pe/ws.json", "/etc/amldns/pe"),
            ("ws.json", "/etc/amldns"),
            ("*/pe.json", "/etc/amldns"),
            ("/var/lib/pe/*.json", "/var/lib/pe"),
        ];
        for (pattern, want) in cases {
            assert_eq!(base_dir(cfg, pattern), Path::new(want), "{pattern}");
        }
    }

    #[test]
    fn errors_are_located() {
        let (line, col, m) = err(
            "{\"customDnsConfigs\": [\n  {\"fqdn\": \"a.b\", \"ipAddresses\": [\"10.0.0.300\"]}]}",
        );
        assert_eq!((line, col), (2, 35), "{m}");
        assert!(m.contains("not an IP address"));

        let (line, col, m) = err("[{\"fqdn\": \"bad name.b\", \"ipAddresses\": [\"10.0.0.1\"]}]");
        assert_eq!((line, col), (1, 11));
        assert!(m.contains("not a domain name"));

        let (line, _, m) = err("{\n\"customDnsConfigs\": [,]}");
        assert_eq!(line, 2);
        assert!(m.contains("not JSON"));

        let (_, _, m) = err(r#"{"hello": "world"}"#);
        assert!(m.contains("not a private-endpoint or NIC shape"), "{m}");

        assert!(
            parse(Path::new("pe.json"), r#"{"customDnsConfigs": []}"#)
                .unwrap()
                .is_empty()
        );
        assert!(parse(Path::new("pe.json"), "[]").unwrap().is_empty());

        let (_, _, m) = err(r#"[{"fqdn": "a.b", "ipAddresses": []}]"#);
        assert!(m.contains("no IP address"), "{m}");
    }
}
