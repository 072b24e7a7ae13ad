//! The configuration's unit tests: what a file becomes, and every error and
//! warning where it is written.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::validate::import_warnings;
use super::{AzureAuth, AzureInventory, Config, ConfigError, Location, RecordAnswer, parse};
use crate::import::ImportedName;
use crate::names::{AnswerMode, Cloud};

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new("test.toml"), text)
}

/// Asserts that `text` fails at `line:col` with a message containing `needle`.
fn fails_at(text: &str, line: usize, col: usize, needle: &str) {
    match parse_str(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(ConfigError::Invalid { at, message }) => {
            assert_eq!(
                (at.line, at.col),
                (line, col),
                "wrong place for {message:?} in:\n{text}"
            );
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            assert_eq!(*at.file, *Path::new("test.toml"));
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

const WS: &str = r#"
[[workspace]]
name = "mlw-contoso-prod"
id = "fb7e20a0-8891-458b-b969-55ddb3382f51"
region = "eastus"
ip = "10.1.0.5"
"#;

/// One local name, for configs about something else: appended, it
/// moves no line of what comes before it.
const LOCAL: &str = "\n[[record]]\nname = \"probe.privatelink.blob.core.windows.net\"\n\
                     a = [\"10.9.9.9\"]\n";

/// The warnings `text` (which must be valid) gets: (line, col, message).
fn warnings(text: &str) -> Vec<(usize, usize, String)> {
    let c = parse_str(text).unwrap_or_else(|e| panic!("{e} in:\n{text}"));
    c.warnings
        .into_iter()
        .map(|w| (w.at.line, w.at.col, w.message))
        .collect()
}

#[test]
fn a_workspace_object_beside_its_endpoint_gives_every_name() {
    let g = crate::fixtures::GUID;
    let dir = tempfile::tempdir().unwrap();
    // The 4 names a private endpoint lists...
    std::fs::write(
        dir.path().join("pe.json"),
        format!(
            r#"{{"customDnsConfigs": [
                {{"fqdn": "{g}.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}},
                {{"fqdn": "{g}.workspace.eastus.cert.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}},
                {{"fqdn": "ml-mlw-eastus-{g}.eastus.notebooks.azure.net", "ipAddresses": ["10.1.0.6"]}},
                {{"fqdn": "*.{g}.inference.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.7"]}}]}}"#
        ),
    )
    .unwrap();
    let path = dir.path().join("amldns.toml");
    let config = "[[import]]\npath = \"*.json\"\n";
    let names = |c: &Config| {
        let t = crate::snapshot::table(c).unwrap();
        t.nodes().map(|n| n.name.to_string()).collect::<Vec<_>>()
    };
    let alone = names(&parse(&path, config).unwrap());
    assert_eq!(alone.len(), 4, "{alone:?}");
    // ...and, with `az ml workspace show` beside them, the workspace's whole set.
    std::fs::write(
        dir.path().join("ws.json"),
        format!(
            r#"{{"name": "mlw", "location": "eastus", "properties": {{"workspaceId": "{g}"}}}}"#
        ),
    )
    .unwrap();
    let c = parse(&path, config).unwrap();
    assert_eq!(c.workspaces.len(), 1);
    assert_eq!(
        c.workspaces[0].value.notebook_ip,
        "10.1.0.6".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        c.workspaces[0].value.inference_ip,
        "10.1.0.7".parse::<IpAddr>().unwrap()
    );
    let all = names(&c);
    for want in [
        format!("{g}.workspace.eastus.privatelink.api.azureml.ms"),
        format!("{g}.workspace.eastus.cert.privatelink.api.azureml.ms"),
        format!("ml-mlw-eastus-{g}.notebooks.azure.net"),
        format!("ml-mlw-eastus-{g}.eastus.privatelink.notebooks.azure.net"),
    ] {
        assert!(all.contains(&want), "{want} in {all:?}");
    }
    // Without its endpoint's names: a warning, not an error.
    std::fs::remove_file(dir.path().join("pe.json")).unwrap();
    let c = parse(&path, &format!("{config}{LOCAL}")).unwrap();
    assert!(c.workspaces.is_empty());
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.contains("no imported name gives its API address")),
        "{:?}",
        c.warnings
    );
}

/// `az ml compute show` of a compute instance, as azure-ai-ml prints it.
fn cli_compute(ws: &str, ci: &str) -> String {
    format!(
        r#"{{"name": "{ci}", "type": "computeinstance", "location": "eastus",
  "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/{ws}/computes/{ci}",
  "services": [
    {{"display_name": "Jupyter", "endpoint_uri": "https://{ci}.eastus.instances.azureml.ms/tree/"}},
    {{"display_name": "RStudio", "endpoint_uri": "https://{ci}-8787.eastus.instances.azureml.ms/"}},
    {{"display_name": "VS Code", "endpoint_uri": "vscode://ms-toolsai.vscode-ai-remote/open"}},
    {{"display_name": "Other", "endpoint_uri": "https://{ci}.eastus.azureml.net/jupyter"}}]}}"#
    )
}

/// An imported compute instance is served with the `[[workspace]]` its id
/// names: its names, and its applications' hosts under an instances zone,
/// at the workspace's API IP.
#[test]
fn an_imported_compute_instance_joins_its_workspace() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ci.json"),
        cli_compute("MLW-contoso-prod", "CI-Alice"),
    )
    .unwrap();
    let path = dir.path().join("amldns.toml");
    let c = parse(&path, &format!("{WS}[[import]]\npath = \"ci.json\"\n")).unwrap();
    assert_eq!(c.workspaces[0].value.instances, ["ci-alice"]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let t = crate::snapshot::table(&c).unwrap();
    let local: Vec<String> = t.nodes().map(|n| n.name.to_string()).collect();
    for name in [
        "ci-alice.eastus.instances.azureml.ms",
        "ci-alice-22.eastus.instances.ml.azure.ms",
        "ci-alice-8787.eastus.instances.azureml.ms",
    ] {
        assert!(local.iter().any(|n| n == name), "{name} in {local:?}");
    }
    let host = c
        .imports
        .iter()
        .find(|n| n.name == "ci-alice-8787.eastus.instances.azureml.ms")
        .unwrap();
    assert_eq!(host.addrs, ["10.1.0.5".parse::<IpAddr>().unwrap()]);
    assert!(
        !local
            .iter()
            .any(|n| n.contains("azureml.net") || n.contains("vscode")),
        "{local:?}"
    );
}

/// With the ARM shape of a compute, beside an imported workspace object and
/// its endpoint's names: the hosts answer that workspace's API IP.
#[test]
fn an_imported_compute_joins_an_imported_workspace() {
    let g = crate::fixtures::GUID;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pe.json"),
        format!(
            r#"{{"customDnsConfigs": [
                {{"fqdn": "{g}.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.7.0.5"]}},
                {{"fqdn": "ml-mlw-eastus-{g}.eastus.notebooks.azure.net", "ipAddresses": ["10.7.0.6"]}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ws.json"),
        format!(
            r#"{{"name": "mlw", "location": "eastus", "properties": {{"workspaceId": "{g}"}}}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ci.json"),
        r#"[{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw/computes/ci-bob",
            "name": "ci-bob", "type": "Microsoft.MachineLearningServices/workspaces/computes",
            "properties": {"computeType": "ComputeInstance", "properties": {"applications": [
              {"displayName": "RStudio", "endpointUri": "https://ci-bob-8787.eastus.instances.ml.azure.ms/"}]}}}]"#,
    )
    .unwrap();
    let path = dir.path().join("amldns.toml");
    let c = parse(&path, "[[import]]\npath = \"*.json\"\n").unwrap();
    assert_eq!(c.workspaces[0].value.instances, ["ci-bob"]);
    let host = c
        .imports
        .iter()
        .find(|n| n.name == "ci-bob-8787.eastus.instances.ml.azure.ms")
        .unwrap_or_else(|| panic!("{:?}", c.imports));
    assert_eq!(host.addrs, ["10.7.0.5".parse::<IpAddr>().unwrap()]);
}

/// A compute instance whose workspace the config does not serve: a warning
/// at its file naming the workspace, and none of its names.
#[test]
fn an_imported_compute_without_its_workspace_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ci.json");
    std::fs::write(&file, cli_compute("mlw-elsewhere", "ci-carol")).unwrap();
    let path = dir.path().join("amldns.toml");
    let c = parse(&path, &format!("{WS}[[import]]\npath = \"ci.json\"\n")).unwrap();
    let w: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| w.message.contains("ci-carol"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", c.warnings);
    assert_eq!(*w[0].at.file, *file);
    assert!(
        w[0].message
            .contains("its workspace mlw-elsewhere is neither a [[workspace]] nor"),
        "{}",
        w[0].message
    );
    assert!(c.workspaces[0].value.instances.is_empty());
    assert!(c.imports.iter().all(|n| !n.name.contains("ci-carol")));
}

/// Two workspaces' endpoints as Microsoft's custom-DNS doc lists them,
/// with the regional `*.eastus.inference.ml.azure.com` at each one's
/// inference IP, imported beside their workspace objects.
#[test]
fn an_imported_regional_wildcard_marks_the_inference_ip_and_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    for (name, g, net) in [
        ("mlw-a", crate::fixtures::GUID, "10.1.0"),
        ("mlw-b", "0d5c2f4e-1111-4222-8333-944444444444", "10.2.0"),
    ] {
        std::fs::write(
            dir.path().join(format!("pe-{name}.json")),
            format!(
                r#"{{"customDnsConfigs": [
                {{"fqdn": "{g}.workspace.eastus.api.azureml.ms", "ipAddresses": ["{net}.5"]}},
                {{"fqdn": "{g}.workspace.eastus.cert.api.azureml.ms", "ipAddresses": ["{net}.5"]}},
                {{"fqdn": "ml-{name}-eastus-{g}.eastus.notebooks.azure.net", "ipAddresses": ["{net}.6"]}},
                {{"fqdn": "*.eastus.inference.ml.azure.com", "ipAddresses": ["{net}.7"]}}]}}"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join(format!("ws-{name}.json")),
            format!(
                r#"{{"name": "{name}", "location": "eastus", "properties": {{"workspaceId": "{g}"}}}}"#
            ),
        )
        .unwrap();
    }
    let c = parse(
        &dir.path().join("amldns.toml"),
        "[[import]]\npath = \"*.json\"\n",
    )
    .unwrap();
    let inference: Vec<String> = (c.workspaces.iter())
        .map(|w| w.value.inference_ip.to_string())
        .collect();
    assert_eq!(inference, ["10.1.0.7", "10.2.0.7"]);
    let t = crate::snapshot::table(&c).unwrap();
    assert!(!t.contains("someone-elses-endpoint.eastus.inference.ml.azure.com"));
    assert!(t.contains(&format!(
        "{}.workspace.eastus.api.azureml.ms",
        crate::fixtures::GUID
    )));
}

#[test]
fn azure_section_defaults_and_overrides() {
    const SUB: &str = "0B1F6471-1BF0-4DDA-AEC3-111122223333";
    // [azure] alone gives something local (its discovery), so the file is
    // accepted without a workspace or record.
    let c = parse_str(&format!("[azure]\nsubscriptions = [\"{SUB}\"]\n")).unwrap();
    let a = c.azure.unwrap();
    assert_eq!(a.subscriptions, [SUB.to_ascii_lowercase()]);
    assert_eq!(a.auth, AzureAuth::ManagedIdentity);
    assert_eq!(a.inventory, AzureInventory::ResourceGraph);
    assert_eq!(a.arm_endpoint, "https://management.azure.com");
    assert_eq!(a.imds_endpoint, "http://169.254.169.254");
    assert_eq!(a.interval, Duration::from_secs(300));
    assert_eq!(a.state_file, None);
    assert_eq!(a.ca_file, None);

    let c = parse_str(&format!(
        "[azure]\nsubscriptions = [\"{SUB}\"]\nresource_groups = [\"RG-ML\"]\n\
         auth = \"workload-identity\"\ncloud = \"china\"\ninterval_s = 5\n\
         imds_endpoint = \"http://127.0.0.1:8080/\"\nstate_file = \"state/azure.json\"\n\
         ca_file = \"corp-proxy.pem\"\ninventory = \"arm\"\n"
    ))
    .unwrap();
    let a = c.azure.unwrap();
    assert_eq!(a.inventory, AzureInventory::Arm);
    assert_eq!(a.resource_groups, ["rg-ml"]);
    assert_eq!(a.auth, AzureAuth::WorkloadIdentity);
    assert_eq!(a.arm_endpoint, "https://management.chinacloudapi.cn");
    assert_eq!(a.imds_endpoint, "http://127.0.0.1:8080");
    assert_eq!(a.interval, Duration::from_secs(5));
    assert_eq!(a.state_file, Some(PathBuf::from("state/azure.json")));
    assert_eq!(a.ca_file, Some(PathBuf::from("corp-proxy.pem")));
}

#[test]
fn azure_reads_management_groups_instead_of_or_besides_subscriptions() {
    const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
    let c = parse_str(
        "[azure]\nmanagement_groups = [\"mg-landing-zones\", \
         \"/providers/Microsoft.Management/managementGroups/Corp(EU)\"]\n",
    )
    .unwrap();
    let a = c.azure.unwrap();
    assert!(a.subscriptions.is_empty());
    assert_eq!(a.management_groups, ["mg-landing-zones", "Corp(EU)"]);
    let c = parse_str(&format!(
        "[azure]\nsubscriptions = [\"{SUB}\"]\nmanagement_groups = [\"mg-corp\"]\n"
    ))
    .unwrap();
    let a = c.azure.unwrap();
    assert_eq!(a.subscriptions, [SUB]);
    assert_eq!(a.management_groups, ["mg-corp"]);
}

#[test]
fn azure_section_errors_are_located() {
    const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
    fails_at(
        "[azure]\nsubscriptions = []\n",
        2,
        17,
        "neither subscriptions nor management_groups lists anything",
    );
    fails_at(
        "[azure]\nmanagement_groups = []\n",
        2,
        21,
        "neither subscriptions nor management_groups lists anything",
    );
    fails_at(
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[azure]\ninterval_s = 5\n",
        3,
        1,
        "neither subscriptions nor management_groups lists anything",
    );
    fails_at(
        "[azure]\nmanagement_groups = [\"mg-corp\"]\ninventory = \"arm\"\n",
        2,
        21,
        "management_groups needs inventory = \"resource-graph\": ARM lists workspaces one \
         subscription at a time",
    );
    fails_at(
        "[azure]\nmanagement_groups = [\"Landing Zones\"]\n",
        2,
        22,
        "\"Landing Zones\" is not a management group id",
    );
    fails_at(
        "[azure]\nsubscriptions = [\"prod\"]\n",
        2,
        18,
        "not a subscription id",
    );
    let head = format!("[azure]\nsubscriptions = [\"{SUB}\"]\n");
    fails_at(
        &format!("{head}interval_s = 0\n"),
        3,
        14,
        "interval_s 0 is out of range",
    );
    fails_at(
        &format!("{head}arm_endpoint = \"management.azure.com\"\n"),
        3,
        16,
        "not an http(s) URL",
    );
    fails_at(
        &format!("{head}auth = \"managed-identiy\"\n"),
        3,
        8,
        "did you mean `managed-identity`?",
    );
    fails_at(
        &format!("{head}intervall_s = 5\n"),
        3,
        1,
        "did you mean `interval_s`?",
    );
    fails_at(
        &format!("{head}tenant_id = \"contoso\"\n"),
        3,
        13,
        "\"contoso\" is not a tenant",
    );
    fails_at(
        &format!("{head}virtual_networks = [\"vnet-hub\"]\n"),
        3,
        21,
        "not a VNet's resource id",
    );
    let vnet = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/VNet-Hub/"
    );
    let c = parse_str(&format!("{head}virtual_networks = [\"{vnet}\"]\n")).unwrap();
    assert_eq!(
        c.azure.unwrap().virtual_networks,
        [vnet.trim_end_matches('/').to_ascii_lowercase()]
    );
}

#[test]
fn an_optional_import_may_be_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amldns.toml");
    let text = "[[import]]\npath = \"shared/discovery.json\"\n";
    assert!(parse(&path, text).is_err());
    // Not written yet: no error, and it counts as something to answer.
    let c = parse(&path, &format!("{text}optional = true\n")).unwrap();
    assert!(c.discoveries.is_empty());
    std::fs::create_dir_all(dir.path().join("shared")).unwrap();
    let file = dir.path().join("shared/discovery.json");
    std::fs::write(&file, r#"{"amldns_discovery": 1, "workspaces": []}"#).unwrap();
    assert_eq!(parse(&path, text).unwrap().discoveries.len(), 1);
    // A version this amldns does not know is an error, not an empty discovery.
    std::fs::write(&file, r#"{"amldns_discovery": 2, "workspaces": []}"#).unwrap();
    let e = parse(&path, text).unwrap_err().to_string();
    assert!(e.contains("not an amldns discovery file"), "{e}");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.contains("matches no file yet")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn defaults() {
    let c = parse_str(LOCAL).unwrap();
    assert_eq!(c.server.listen, vec!["0.0.0.0:53".parse().unwrap()]);
    assert!(
        c.server
            .allow
            .iter()
            .any(|n| n.contains(&"10.1.2.3".parse::<IpAddr>().unwrap()))
    );
    assert!(
        !c.server
            .allow
            .iter()
            .any(|n| n.contains(&"8.8.8.8".parse::<IpAddr>().unwrap()))
    );
    assert_eq!(
        c.upstream.servers,
        vec!["168.63.129.16:53".parse().unwrap()]
    );
    assert_eq!(c.upstream.timeout, Duration::from_millis(2000));
    assert_eq!(c.upstream.cache_entries, 10_000);
    assert_eq!(c.upstream.cache_bytes, 64 << 20);
    assert_eq!(c.zone.ttl, 60);
    assert_eq!(c.zone.answer, AnswerMode::A);
    assert!(c.metrics.is_none());
    assert!(c.warnings.is_empty());
}

#[test]
fn full_example() {
    let c = parse_str(
        r#"
[server]
listen = ["127.0.0.1:5353", "[::1]:5353"]
allow = ["10.0.0.0/8", "127.0.0.1"]
[metrics]
listen = "127.0.0.1:9153"
[upstream]
servers = ["127.0.0.1:5301", "127.0.0.2"]
timeout_ms = 500
cache_entries = 5
[zone]
ttl = 30
answer = "cname"
[[workspace]]
name = "MLW-Contoso_prod"
id = "FB7E20A0-8891-458B-B969-55DDB3382F51"
region = "EastUS"
cloud = "usgov"
ip = "10.1.0.5"
notebook_ip = "10.1.0.6"
inference_ip = "10.1.0.7"
instances = ["ci-alice"]
instances_wildcard = true
online_endpoints = ["fraud-score"]
inference_wildcard = true
projects = [ { name = "proj-a", id = "0d5c2f4e-1111-2222-3333-444455556666" } ]
[[record]]
name = "StContoso.blob.core.windows.net."
a = ["10.1.0.9"]
ttl = 10
[[record]]
name = "alias.corp.example"
cname = "stcontoso.blob.core.windows.net"
"#,
    )
    .unwrap();
    assert_eq!(c.server.listen.len(), 2);
    assert_eq!(c.upstream.servers[1], "127.0.0.2:53".parse().unwrap());
    assert_eq!(c.metrics.unwrap().listen, "127.0.0.1:9153".parse().unwrap());
    assert_eq!(c.zone.answer, AnswerMode::Cname);
    let w = &c.workspaces[0].value;
    assert_eq!(w.id, crate::fixtures::GUID);
    assert_eq!(w.region, "eastus");
    assert_eq!(w.cloud, Cloud::UsGov);
    assert_eq!(w.projects.len(), 1);
    assert_eq!(c.workspaces[0].at.line, 16);
    assert_eq!(c.records[0].value.name, "stcontoso.blob.core.windows.net");
    assert_eq!(c.records[0].value.ttl, Some(10));
    assert_eq!(
        c.records[1].value.answer,
        RecordAnswer::Cname("stcontoso.blob.core.windows.net".into())
    );
}

/// `cache_bytes = 0` turns the cache off, as `cache_entries = 0` does.
#[test]
fn cache_bytes_zero_is_no_cache() {
    let c = parse_str(&format!("{LOCAL}\n[upstream]\ncache_bytes = 0\n")).unwrap();
    assert_eq!(c.upstream.cache_bytes, 0);
}

#[test]
fn every_validation_error_is_located() {
    let cases: Vec<(String, usize, usize, &str)> = vec![
        // TOML syntax
        ("[server\nlisten = []".into(), 1, 8, "expected"),
        // A key of more dotted parts than TOML reads, which it gives no
        // place for: the header's own.
        (
            format!(
                "{}[workspace.{}]\nx = 1\n",
                "#\n".repeat(29),
                ["d"; 100].join(".")
            ),
            30,
            2,
            "recursion limit: a key of 101 dotted parts",
        ),
        (
            format!("[log]\nqueries.{} = 1\n", ["d"; 90].join(" . ")),
            2,
            1,
            "recursion limit",
        ),
        // unknown keys, at every level
        (
            "[server]\nlisten = []\nbogus = 1".into(),
            3,
            1,
            "unknown key `bogus`: expected one of `listen`",
        ),
        (
            "[zone]\nttl = 5\nanswr = \"a\"".into(),
            3,
            1,
            "unknown key `answr`: did you mean `answer`?",
        ),
        (
            format!("{WS}colour = \"blue\""),
            7,
            1,
            "unknown key `colour`",
        ),
        (
            "[frobnicate]\nx = 1".into(),
            1,
            2,
            "unknown key `frobnicate`",
        ),
        // bad IPs and CIDRs and addresses
        (
            WS.replace("\"10.1.0.5\"", "\"10.1.0.x\""),
            6,
            6,
            "not an IP address",
        ),
        (
            format!("{WS}notebook_ip = \"10.1.0\""),
            7,
            15,
            "not an IP address",
        ),
        (
            format!("{WS}inference_ip = \"::g\""),
            7,
            16,
            "not an IP address",
        ),
        (
            "[server]\nallow = [\"10.0.0.0/33\"]".into(),
            2,
            10,
            "not a network",
        ),
        (
            "[server]\nlisten = [\"127.0.0.1\"]".into(),
            2,
            11,
            "address:port",
        ),
        (
            "[upstream]\nservers = [\"dns.example\"]".into(),
            2,
            12,
            "not a resolver address",
        ),
        ("[upstream]\nservers = []".into(), 2, 11, "servers is empty"),
        ("[server]\nlisten = []".into(), 2, 10, "listen is empty"),
        (
            "[upstream]\ntimeout_ms = 5000".into(),
            2,
            14,
            "SERVFAIL once 2500 ms",
        ),
        ("[upstream]\ntimeout_ms = 0".into(), 2, 14, "out of range"),
        (
            "[upstream]\ncache_bytes = 4096".into(),
            2,
            15,
            "cache_bytes 4096 is out of range: expected 0 (no cache) or 65536..=1073741824",
        ),
        (
            "[upstream]\ncache_bytes = 2147483648".into(),
            2,
            15,
            "out of range",
        ),
        (
            "[metrics]\nlisten = \"localhost\"".into(),
            2,
            10,
            "address:port",
        ),
        ("[zone]\nttl = 0".into(), 2, 7, "out of range"),
        (
            "[zone]\nanswer = \"aaaa\"".into(),
            2,
            10,
            "unknown value `aaaa`: expected one of `a`, `cname`",
        ),
        // GUID, region, cloud, names
        (
            WS.replace("55ddb3382f51", "55ddb3382f5"),
            4,
            6,
            "not a UUID",
        ),
        (
            WS.replace("\"eastus\"", "\"east us\""),
            5,
            10,
            "not a DNS label",
        ),
        (
            format!("{WS}cloud = \"mars\""),
            7,
            9,
            "unknown value `mars`",
        ),
        (
            WS.replace("mlw-contoso-prod", "mlw contoso"),
            3,
            8,
            "not valid",
        ),
        (
            format!("{WS}instances = [\"ci_alice\"]"),
            7,
            14,
            "not a DNS label",
        ),
        (
            format!("{WS}instances = [\"{}\"]", "c".repeat(61)),
            7,
            14,
            "too long",
        ),
        (
            format!("{WS}online_endpoints = [\"-ep\"]"),
            7,
            21,
            "not a DNS label",
        ),
        (
            format!("{WS}notebook_fqdn = \"ml-x.blob.core.windows.net\""),
            7,
            17,
            "is not the notebooks name of fb7e20a0-8891-458b-b969-55ddb3382f51",
        ),
        (
            format!("{WS}projects = [{{ name = \"p\", id = \"nope\" }}]"),
            7,
            32,
            "not a UUID",
        ),
        // duplicate workspaces
        (
            format!("{WS}{WS}"),
            10,
            6,
            "already listed at test.toml:4:6",
        ),
        // records
        (
            "[[record]]\nname = \"a..b\"\na = [\"10.0.0.1\"]".into(),
            2,
            8,
            "empty label",
        ),
        (
            "[[record]]\nname = \"a.b\"\na = [\"::1\"]".into(),
            3,
            6,
            "not an IPv4",
        ),
        (
            "[[record]]\nname = \"a.b\"\naaaa = [\"10.0.0.1\"]".into(),
            3,
            9,
            "not an IPv6",
        ),
        ("[[record]]\nname = \"a.b\"".into(), 2, 8, "needs"),
        (
            "[[record]]\nname = \"a.b\"\na = [\"10.0.0.1\"]\ncname = \"c.d\"".into(),
            4,
            9,
            "not both",
        ),
        (
            "[[record]]\nname = \"x.*.b\"\na = [\"10.0.0.1\"]".into(),
            2,
            8,
            "'*' only",
        ),
        (
            "[[record]]\nname = \"single\"\na = [\"10.0.0.1\"]".into(),
            2,
            8,
            "two labels",
        ),
        // imports
        (
            "[[import]]\npath = \"does-not-exist.json\"".into(),
            2,
            8,
            "does-not-exist.json",
        ),
    ];
    for (text, line, col, needle) in cases {
        fails_at(&text, line, col, needle);
    }
}

#[test]
fn notebook_fqdn_forms_that_fit() {
    for fqdn in [
        "ml-contoso_r-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51.eastus.notebooks.azure.net",
        "ML-contoso-eastus-FB7E20A0-8891-458B-B969-55DDB3382F51.notebooks.azure.net.",
        "ml-x-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51.eastus.privatelink.notebooks.azure.net",
    ] {
        let c = parse_str(&format!("{WS}notebook_fqdn = \"{fqdn}\"")).unwrap();
        assert!(c.workspaces[0].value.notebook_fqdn.is_some(), "{fqdn}");
    }
}

/// A hub's project may give Azure's notebooks FQDN of its own, checked as a
/// workspace's is against the project's id; it replaces the derived label.
#[test]
fn a_projects_notebook_fqdn() {
    let p = "0d5c2f4e-1111-2222-3333-444455556666";
    let fqdn = format!("ml-proj_a-eastus-{p}.eastus.notebooks.azure.net");
    let c = parse_str(&format!(
        "{WS}[[workspace.projects]]\nname = \"proj-a\"\nid = \"{p}\"\nnotebook_fqdn = \"{fqdn}\"\n"
    ))
    .unwrap();
    let project = &c.workspaces[0].value.projects[0];
    assert_eq!(project.notebook_fqdn.as_deref(), Some(fqdn.as_str()));
    let names = crate::names::derive(&c.workspaces[0].value, AnswerMode::A);
    assert!(names.iter().any(|d| d.name == fqdn), "{names:#?}");
    assert!(!names.iter().any(|d| d.name.starts_with("ml-proj-a-")));
    // The hub's notebooks name is not the project's.
    let hub = format!(
        "ml-x-eastus-{}.eastus.notebooks.azure.net",
        crate::fixtures::GUID
    );
    fails_at(
        &format!(
            "{WS}[[workspace.projects]]\nname = \"proj-a\"\nid = \"{p}\"\nnotebook_fqdn = \"{hub}\"\n"
        ),
        10,
        17,
        &format!("is not the notebooks name of {p}"),
    );
}

#[test]
fn import_warnings_cover_both_cases() {
    let at = |line| Location {
        file: Path::new("pe.json").into(),
        line,
        col: 1,
    };
    let g = crate::fixtures::GUID;
    let imp = |name: String, line| ImportedName {
        name,
        addrs: vec!["10.1.0.5".parse().unwrap()],
        at: at(line),
    };
    let c = parse_str(WS).unwrap();
    // Only the API name: both the notebooks and the cert.api name are missing.
    let w = import_warnings(
        &[imp(format!("{g}.workspace.eastus.api.azureml.ms"), 2)],
        &c.workspaces,
    );
    let msgs: Vec<&str> = w.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(w.len(), 2, "{msgs:?}");
    assert!(msgs[0].ends_with("have no notebooks name"), "{msgs:?}");
    assert!(msgs[1].ends_with("have no cert.api name"), "{msgs:?}");
    assert_eq!(w[0].at, at(2));
    // All three, the notebooks one as derived: no warning.
    let all = [
        imp(format!("{g}.workspace.eastus.api.azureml.ms"), 2),
        imp(format!("{g}.workspace.eastus.cert.api.azureml.ms"), 3),
        imp(
            format!("ml-mlw-contoso-prod-eastus-{g}.eastus.notebooks.azure.net"),
            4,
        ),
    ];
    assert!(import_warnings(&all, &c.workspaces).is_empty());
    // A notebooks name that differs from the derived one.
    let mut differs = all.clone();
    differs[2] = imp(
        format!("ml-mlw-contoso-pro-eastus-{g}.eastus.notebooks.azure.net"),
        4,
    );
    let w = import_warnings(&differs, &c.workspaces);
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("differs from the one derived"));
    assert_eq!(w[0].at, at(4));
}

#[test]
fn identity_is_one_printable_txt_string() {
    let c = parse_str(&format!("[server]\nidentity = \"dns-vm-1\"\n{LOCAL}")).unwrap();
    assert_eq!(c.server.identity, "dns-vm-1");
    // The default is the host's name, never empty.
    assert!(!parse_str(LOCAL).unwrap().server.identity.is_empty());
    let long = "x".repeat(256);
    for bad in ["", "tab\there", "é", long.as_str()] {
        fails_at(
            &format!("[server]\nidentity = {bad:?}\n{LOCAL}"),
            2,
            12,
            "identity must be 1 to 255 printable ASCII",
        );
    }
}

/// Threads default to the cores this process may use; 0 or a
/// thousands-of-cores typo is an error where it was written.
#[test]
fn threads_default_to_the_cores_and_are_bounded() {
    let c = parse_str(&format!("[server]\nthreads = 3\n{LOCAL}")).unwrap();
    assert_eq!(c.server.threads, 3);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(parse_str(LOCAL).unwrap().server.threads, cores);
    for bad in ["0", "1025"] {
        fails_at(
            &format!("[server]\nthreads = {bad}\n{LOCAL}"),
            2,
            11,
            &format!("threads {bad} is out of range: expected 1..=1024"),
        );
    }
}

#[test]
fn empty_allow_is_a_warning() {
    let c = parse_str(&format!("[server]\nallow = []{LOCAL}")).unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0]
            .message
            .contains("every client will be REFUSED")
    );
}

#[test]
fn open_allow_is_a_warning() {
    let c = parse_str(&format!("[server]\nallow = [\"0.0.0.0/0\"]{LOCAL}")).unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert_eq!((c.warnings[0].at.line, c.warnings[0].at.col), (2, 10));
    assert!(c.warnings[0].message.contains("open resolver"));
}

#[test]
fn a_config_that_gives_nothing_local_is_refused() {
    let nothing = "the config gives nothing to answer locally";
    // An empty file, a truncated one, one with only settings.
    for text in [
        "",
        "\n\n",
        "# amldns\n",
        "[server]\nlisten = [\"127.0.0.1:5353\"]\n[upstream]\nservers = [\"127.0.0.1:5300\"]\n",
    ] {
        fails_at(text, 1, 1, nothing);
    }
    fails_at(
        "",
        1,
        1,
        "no [[workspace]], [[record]] or [[import]] match; a truncated or emptied file would \
         empty the table",
    );
    // Imports that give no name are blamed at the first import's path.
    fails_at(
        "[[import]]\npath = \"pe/*.json\"\n",
        2,
        8,
        "nothing to answer locally: no [[workspace]], [[record]] or [[import]] match; the \
         [[import]]s match no file that lists a name",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pe.json"), r#"{"customDnsConfigs": []}"#).unwrap();
    let path = dir.path().join("amldns.toml");
    match parse(&path, "[[import]]\npath = \"pe.json\"\n") {
        Err(ConfigError::Invalid { at, message }) => {
            assert_eq!((at.line, at.col), (2, 8));
            assert_eq!(*at.file, *path);
            assert!(message.contains(nothing), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // One source of any kind is enough.
    for text in [WS, LOCAL] {
        parse_str(text).unwrap();
    }
    std::fs::write(
        dir.path().join("pe.json"),
        r#"[{"fqdn": "st.privatelink.blob.core.windows.net", "ipAddresses": ["10.1.0.9"]}]"#,
    )
    .unwrap();
    parse(&path, "[[import]]\npath = \"pe.json\"\n").unwrap();
}

#[test]
fn public_names_cannot_be_captured() {
    let record = |name: &str| format!("[[record]]\nname = \"{name}\"\na = [\"10.1.0.9\"]\n");
    let cases = [
        (
            "eastus.api.azureml.ms",
            "names at that level of api.azureml.ms are shared",
        ),
        ("*.api.azureml.ms", "it is the public zone api.azureml.ms"),
        (
            "ML.Azure.com.",
            "it is the public zone inference.ml.azure.com, or above it",
        ),
        (
            "*.tundra.eastus.api.azureml.ms",
            "shared by every workspace of a region",
        ),
        (
            "*.eastus.notebooks.azure.net",
            "names at that level of notebooks.azure.net",
        ),
    ];
    for (name, why) in cases {
        // The reason follows the rule at once: the message stands alone.
        fails_at(
            &record(name),
            2,
            8,
            "would capture names that must keep resolving publicly: ",
        );
        fails_at(&record(name), 2, 8, why);
    }
    // What a user may ask for: exact names and the opt-in regional wildcards.
    for name in [
        "*.eastus.instances.azureml.ms",
        "*.eastus.inference.ml.azure.com",
        "fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms",
    ] {
        parse_str(&record(name)).unwrap();
    }
    // An imported wildcard too; Azure's exact names are taken as given.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amldns.toml");
    let import = format!("[[import]]\npath = \"pe.json\"\n{LOCAL}");
    std::fs::write(
        dir.path().join("pe.json"),
        "[{\"fqdn\": \"st.privatelink.blob.core.windows.net\", \"ipAddresses\": [\"10.1.0.9\"]},\n\
         {\"fqdn\": \"*.api.azureml.ms\", \"ipAddresses\": [\"10.1.0.9\"]}]",
    )
    .unwrap();
    match parse(&path, &import) {
        Err(ConfigError::Invalid { at, message }) => {
            assert_eq!(
                (&*at.file, at.line, at.col),
                (&*dir.path().join("pe.json"), 2, 10)
            );
            assert!(
                message.starts_with("imported wildcard *.api.azureml.ms would capture"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(
        dir.path().join("pe.json"),
        r#"[{"fqdn": "*.eastus.inference.ml.azure.com", "ipAddresses": ["10.1.0.7"]}]"#,
    )
    .unwrap();
    parse(&path, &import).unwrap();
}

#[test]
fn an_upstream_cannot_be_amldns_itself() {
    let cases = [
        // The default listen address, 0.0.0.0:53, takes loopback.
        ("", "\"127.0.0.1\"", Some("it listens on 0.0.0.0:53")),
        ("", "\"127.0.0.53:53\"", Some("it listens on 0.0.0.0:53")),
        ("", "\"0.0.0.0\"", Some("it listens on 0.0.0.0:53")),
        ("", "\"127.0.0.1:5353\"", None),
        ("", "\"10.0.0.4\"", None),
        ("\"[::]:53\"", "\"[::1]:53\"", Some("it listens on [::]:53")),
        ("\"[::]:53\"", "\"[::]:53\"", Some("it listens on [::]:53")),
        // IPv6 sockets are IPv6-only: `::` does not take IPv4 loopback.
        ("\"[::]:53\"", "\"127.0.0.1\"", None),
        ("\"0.0.0.0:53\"", "\"[::1]:53\"", None),
        ("\"[::1]:53\"", "\"[::ffff:127.0.0.1]:53\"", None),
        (
            "\"127.0.0.1:53\"",
            "\"[::ffff:127.0.0.1]:53\"",
            Some("it listens on 127.0.0.1:53"),
        ),
        (
            "\"127.0.0.1:5353\"",
            "\"127.0.0.1:5353\"",
            Some("it listens on 127.0.0.1:5353"),
        ),
        ("\"127.0.0.1:5353\"", "\"127.0.0.2:5353\"", None),
        (
            "\"10.0.0.4:53\"",
            "\"10.0.0.4\"",
            Some("it listens on 10.0.0.4:53"),
        ),
        ("\"10.0.0.4:53\"", "\"127.0.0.1\"", None),
        // Port 0 is "any free port": never the upstream's.
        ("\"127.0.0.1:0\"", "\"127.0.0.1:5300\"", None),
    ];
    for (listen, upstream, want) in cases {
        let server = if listen.is_empty() {
            String::new()
        } else {
            format!("[server]\nlisten = [{listen}]\n")
        };
        let text = format!("[upstream]\nservers = [\"10.0.0.9\", {upstream}]\n{server}{LOCAL}");
        match want {
            Some(own) => {
                fails_at(&text, 2, 24, "is amldns itself");
                fails_at(&text, 2, 24, own);
            }
            None => {
                parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

#[test]
fn mistakes_that_are_warnings() {
    let ws = |extra: &str| format!("{WS}{extra}\n");
    let record = |values: &str| format!("[[record]]\nname = \"a.corp.example\"\n{values}\n");
    let not_private = "is not private (RFC 1918, 100.64.0.0/10 or fc00::/7)";
    // (config, its warnings: line, column, words of the message)
    type Expected<'a> = Vec<(usize, usize, &'a str)>;
    let cases: Vec<(String, Expected<'_>)> = vec![
        // Quiet: private addresses, names Azure takes, known regions.
        (ws(""), vec![]),
        (WS.replace("mlw-contoso-prod", "mlw_contoso_prod"), vec![]),
        (
            ws("notebook_ip = \"100.64.1.6\"\ninference_ip = \"fd00::7\""),
            vec![],
        ),
        (record("a = [\"192.168.1.1\", \"172.31.0.1\"]"), vec![]),
        (
            WS.replace("eastus", "chinanorth3") + "cloud = \"china\"\n",
            vec![],
        ),
        // Answer addresses that are not private, each once.
        (
            WS.replace("10.1.0.5", "20.1.0.5"),
            vec![(6, 6, "answer address 20.1.0.5 is not private")],
        ),
        (
            ws("notebook_ip = \"100.128.0.1\""),
            vec![(7, 15, "answer address 100.128.0.1 ")],
        ),
        (
            record("a = [\"127.0.0.1\", \"127.0.0.1\"]\naaaa = [\"2001:db8::1\"]"),
            vec![(3, 6, "127.0.0.1 "), (4, 9, "2001:db8::1 ")],
        ),
        (record("a = [\"8.8.8.8\"]"), vec![(3, 6, not_private)]),
        // Workspace and project names Azure would not take.
        (
            WS.replace("mlw-contoso-prod", "ab"),
            vec![(
                3,
                8,
                "workspace name \"ab\" has 2 characters; Azure accepts 3 to 33",
            )],
        ),
        (
            WS.replace("mlw-contoso-prod", &"m".repeat(56)),
            vec![(
                3,
                8,
                "has 56 characters; Azure accepts 3 to 33: Azure would not accept it",
            )],
        ),
        (
            WS.replace("mlw-contoso-prod", "_mlw"),
            vec![(3, 8, "starts with neither a letter nor a digit")],
        ),
        (
            ws("projects = [{ name = \"p\", id = \"0d5c2f4e-1111-2222-3333-444455556666\" }]"),
            vec![(7, 22, "project name \"p\" has 1 characters")],
        ),
        // Regions of no cloud, or of another one.
        (
            WS.replace("\"eastus\"", "\"eastuss\""),
            vec![(
                5,
                10,
                "region \"eastuss\" is not an Azure region of the public cloud: did you mean \"eastus\"?",
            )],
        ),
        (
            ws("cloud = \"china\""),
            vec![(
                5,
                10,
                "region \"eastus\" is not an Azure region of the china cloud: it is a region of the public cloud: set cloud = \"public\"",
            )],
        ),
        // Said once, where first met, however many workspaces repeat it.
        (
            WS.replace("\"eastus\"", "\"eastuss\"")
                + &WS
                    .replace("\"eastus\"", "\"eastuss\"")
                    .replace("fb7e20a0", "0d5c2f4e"),
            vec![(5, 10, "region \"eastuss\"")],
        ),
        (
            WS.replace("\"eastus\"", "\"marsnorth\""),
            vec![(
                5,
                10,
                "check the spelling; if Azure has opened it since, ignore this",
            )],
        ),
    ];
    for (text, want) in cases {
        let got = warnings(&text);
        assert_eq!(got.len(), want.len(), "{got:?} in:\n{text}");
        for ((line, col, message), (wl, wc, needle)) in got.iter().zip(&want) {
            assert_eq!((*line, *col), (*wl, *wc), "{message} in:\n{text}");
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }
}

#[test]
fn shape_mistakes_say_what_to_write() {
    fails_at(
        &format!("[server]\nlisten = \"0.0.0.0:53\"{LOCAL}"),
        2,
        10,
        "write listen = [\"0.0.0.0:53\"] (a list)",
    );
    fails_at(
        &format!("[metrics]\nlisten = [\"127.0.0.1:9153\"]{LOCAL}"),
        2,
        10,
        "listen takes one value, not a list",
    );
    fails_at(
        &format!("{WS}notebok_ip = \"10.1.0.6\""),
        7,
        1,
        "unknown key `notebok_ip`: did you mean `notebook_ip`?",
    );
    fails_at(
        &format!("[workspace]\nname = \"mlw\"{LOCAL}"),
        1,
        1,
        "[workspace] is a list of tables: write [[workspace]], once for each",
    );
    fails_at(
        &format!("{WS}cloud = \"pubilc\""),
        7,
        9,
        "unknown value `pubilc`: did you mean `public`?",
    );
}

/// An endpoint's names are served only inside the private-link catalogue:
/// anything else it lists is said once, with where, and left out.
#[test]
fn an_imported_name_outside_the_catalogue_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pe.json"),
        r#"{"customDnsConfigs": [
            {"fqdn": "st.privatelink.blob.core.windows.net", "ipAddresses": ["10.1.0.9"]},
            {"fqdn": "git.corp.example", "ipAddresses": ["10.1.0.10"]}]}"#,
    )
    .unwrap();
    let c = parse(
        &dir.path().join("amldns.toml"),
        "[[import]]\npath = \"pe.json\"\n",
    )
    .unwrap();
    let t = crate::snapshot::table(&c).unwrap();
    let names: Vec<&str> = t.nodes().map(|n| n.name).collect();
    assert_eq!(names, ["st.privatelink.blob.core.windows.net"]);
    let w: Vec<_> = (c.warnings.iter())
        .filter(|w| w.message.contains("git.corp.example"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", c.warnings);
    assert!(w[0].message.contains("private-link catalogue"), "{w:?}");
    assert_eq!(w[0].at.line, 3, "{w:?}");
}
