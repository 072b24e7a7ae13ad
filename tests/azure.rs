//! Discovery from Azure (SPEC §8, issue 13) against a stand-in for ARM,
//! IMDS and Entra ID on 127.0.0.1: nothing here reaches Azure.

#[path = "common/arm.rs"]
mod arm;
mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use amldns::metrics::{AZURE_LAST_SUCCESS, AZURE_SYNC_TOTAL, TABLE_GENERATION};
use amldns::reload::WatchMode;
use arm::{ArmStandIn, Endpoint, Mode, Ws};
use common::*;
use hickory_proto::rr::RecordType;

const HUB: &str = "0d5c2f4e-1111-4222-8333-944444444444";
const PROJECT: &str = "1e6d3f5a-2222-4333-9444-a55555555555";
const NIC_WS: &str = "2f7e4a6b-3333-4444-a555-b66666666666";
const PENDING_WS: &str = "3a8f5b7c-4444-4555-b666-c77777777777";
const CHINA_WS: &str = "4b9a6c8d-5555-4666-8777-d88888888888";
const GOV_WS: &str = "5cab7d9e-6666-4777-9888-e99999999999";
const SILENT_WS: &str = "6dbc8eaf-7777-4888-a999-faaaaaaaaaaa";

/// Polls `check` every 100 ms until it holds, for at most `limit`.
async fn until<F: Future<Output = bool>>(limit: Duration, mut check: impl FnMut() -> F) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn a(server: SocketAddr, name: &str) -> Vec<String> {
    addrs(&udp_query(server, name, RecordType::A).await)
}

async fn synced(srv: &Running, result: &str) -> f64 {
    metric(&scrape(srv).await, AZURE_SYNC_TOTAL, &[("result", result)])
}

/// amldns over `rest` (the stand-in's `[azure]` section in it), once a
/// round has ended in `result`.
async fn serving(up: &StandIn, rest: &str, result: &str) -> Running {
    let text = TestConfig {
        upstreams: &[up.addr],
        metrics: true,
        rest,
        ..TestConfig::default()
    }
    .text();
    let srv = start_with(&text, &[], WatchMode::Off).await;
    rounds_ended(&srv, result, 1.0).await;
    srv
}

/// Waits (10 s at most) until `at_least` rounds have ended in `result`.
async fn rounds_ended(srv: &Running, result: &str, at_least: f64) {
    assert!(
        until(Duration::from_secs(10), || async {
            synced(srv, result).await >= at_least
        })
        .await,
        "fewer than {at_least} rounds ended in {result}"
    );
}

fn imds_requests(arm: &ArmStandIn) -> usize {
    arm.seen()
        .iter()
        .filter(|r| r.path == "/metadata/identity/oauth2/token")
        .count()
}

/// The workspace every test starts from: approved endpoint with
/// `customDnsConfigs`, a compute instance next to a cluster, an online
/// endpoint, and a storage account behind its own endpoint.
fn contoso() -> Ws {
    let mut w = Ws::new("mlw-contoso", GUID, "eastus");
    w.computes = vec![
        ("ci-alice".into(), "ComputeInstance"),
        ("cpu-cluster".into(), "AmlCompute"),
    ];
    w.online_endpoints = vec!["fraud-score".into()];
    w.storage_ip = Some("10.1.0.20");
    w
}

/// Every shape the round reads.
fn world() -> Vec<Ws> {
    let mut hub = Ws::new("hub-research", HUB, "westeurope");
    hub.kind = "Hub";
    hub.ips = ["10.2.0.5", "10.2.0.6", "10.2.0.7"];
    let mut project = Ws::new("proj-a", PROJECT, "westeurope");
    project.kind = "Project";
    project.hub = Some(hub.resource_id());
    project.endpoint = Endpoint::None;
    project.computes = vec![("ci-bob".into(), "ComputeInstance")];
    let mut nic = Ws::new("mlw-zonegroup", NIC_WS, "eastus2");
    nic.endpoint = Endpoint::Nic;
    nic.ips = ["10.3.0.5", "10.3.0.6", "10.3.0.7"];
    nic.notebook_fqdn_in_workspace = false;
    let mut pending = Ws::new("mlw-pending", PENDING_WS, "eastus");
    pending.endpoint = Endpoint::Pending;
    let mut china = Ws::new("mlw-cn", CHINA_WS, "chinaeast2");
    china.cloud = "china";
    china.ips = ["10.4.0.5", "10.4.0.6", "10.4.0.7"];
    let mut gov = Ws::new("mlw-gov", GOV_WS, "usgovvirginia");
    gov.cloud = "usgov";
    gov.ips = ["10.5.0.5", "10.5.0.6", "10.5.0.7"];
    let mut public = Ws::new("mlw-public", SILENT_WS, "eastus");
    public.endpoint = Endpoint::None;
    vec![contoso(), hub, project, nic, pending, china, gov, public]
}

async fn start_against(arm: &ArmStandIn, up: &StandIn, extra: &str) -> Running {
    let text = TestConfig {
        upstreams: &[up.addr],
        metrics: true,
        rest: &arm.section(extra),
        ..TestConfig::default()
    }
    .text();
    start_with(&text, &[], WatchMode::Off).await
}

#[tokio::test]
async fn a_round_serves_every_shape_azure_gives() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| world().iter().for_each(|ws| w.put(ws)));
    let srv = start_against(&arm, &up, "interval_s = 60").await;
    assert!(
        until(Duration::from_secs(10), || async {
            synced(&srv, "success").await >= 1.0
        })
        .await,
        "the first round succeeds"
    );
    let s = &srv.addr;
    let c = contoso();
    let cases: Vec<(String, &str)> = vec![
        (c.api_name(), "10.1.0.5"),
        (
            format!("{GUID}.workspace.eastus.cert.api.azureml.ms"),
            "10.1.0.5",
        ),
        (
            format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
            "10.1.0.5",
        ),
        (c.notebooks_name(), "10.1.0.6"),
        // The older notebooks form, without the region label.
        (
            c.notebooks_name()
                .replace(".eastus.notebooks", ".notebooks"),
            "10.1.0.6",
        ),
        ("ci-alice.eastus.instances.azureml.ms".into(), "10.1.0.5"),
        (
            "ci-alice-22.eastus.instances.ml.azure.ms".into(),
            "10.1.0.5",
        ),
        (
            "fraud-score.eastus.inference.ml.azure.com".into(),
            "10.1.0.7",
        ),
        // The inference wildcard the endpoint lists, as listed.
        (
            format!("x.{GUID}.inference.eastus.api.azureml.ms"),
            "10.1.0.7",
        ),
        // The storage account behind its own private endpoint.
        ("stmlwcontoso.blob.core.windows.net".into(), "10.1.0.20"),
        // Hub and its project, with the project's compute instance.
        (
            format!("{HUB}.workspace.westeurope.api.azureml.ms"),
            "10.2.0.5",
        ),
        (
            format!("{PROJECT}.workspace.westeurope.api.azureml.ms"),
            "10.2.0.5",
        ),
        ("ci-bob.westeurope.instances.azureml.ms".into(), "10.2.0.5"),
        // Names on the NIC, the zone group having emptied customDnsConfigs.
        (
            format!("{NIC_WS}.workspace.eastus2.api.azureml.ms"),
            "10.3.0.5",
        ),
        (
            format!("{NIC_WS}.workspace.eastus2.cert.api.azureml.ms"),
            "10.3.0.5",
        ),
        // China and US Gov.
        (
            format!("{CHINA_WS}.workspace.chinaeast2.api.ml.azure.cn"),
            "10.4.0.5",
        ),
        (
            format!("{GOV_WS}.workspace.usgovvirginia.api.ml.azure.us"),
            "10.5.0.5",
        ),
    ];
    for (name, want) in &cases {
        assert_eq!(a(*s, name).await, [*want], "{name}");
    }
    // Not local: a cluster, a pending endpoint, a public workspace, a key
    // vault without an endpoint of its own.
    for name in [
        "cpu-cluster.eastus.instances.azureml.ms".to_string(),
        format!("{PENDING_WS}.workspace.eastus.api.azureml.ms"),
        format!("{SILENT_WS}.workspace.eastus.api.azureml.ms"),
        "kvmlwcontoso.vault.azure.net".to_string(),
    ] {
        let m = udp_query(*s, &name, RecordType::A).await;
        assert!(!m.metadata.authoritative, "{name} is not local");
    }
    // /status says what discovery serves (SPEC §9).
    let (_, status) = http_request(srv.http(), "GET", "/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["azure"]["workspaces"], 5, "{status}");
    assert_eq!(status["azure"]["subscriptions"], 1, "{status}");
    assert!(
        status["azure"]["last_success"].as_f64().unwrap() > 1.7e9,
        "{status}"
    );
    // /records names the Azure resource each name came from (SPEC §9).
    let (_, rows) = http_request(
        srv.http(),
        "GET",
        "/records?name=stmlwcontoso.blob.core.windows.net",
    )
    .await;
    assert!(
        rows.contains("\"source\": \"azure\"")
            && rows.contains("\"at\": \"azure /subscriptions/")
            && rows.contains("/providers/Microsoft.Storage/storageAccounts/stmlwcontoso\""),
        "{rows}"
    );
    let (_, rows) = http_request(
        srv.http(),
        "GET",
        &format!("/records?name={}", c.api_name()),
    )
    .await;
    assert!(
        rows.contains("workspace mlw-contoso (api)") && rows.contains("workspaces/mlw-contoso"),
        "{rows}"
    );
    // Every ARM request carried the token and an api-version; IMDS was
    // asked with Metadata: true; the workspace list was paged.
    let seen = arm.seen();
    let imds: Vec<_> = seen
        .iter()
        .filter(|r| r.path == "/metadata/identity/oauth2/token")
        .collect();
    assert_eq!(imds.len(), 1, "one token for the round");
    assert_eq!(imds[0].header("metadata"), Some("true"));
    assert!(
        imds[0]
            .query
            .contains("resource=https%3A%2F%2Fmanagement.azure.com%2F")
    );
    assert!(
        seen.iter()
            .filter(|r| r.path.starts_with("/subscriptions"))
            .all(|r| r.header("authorization") == Some(&format!("Bearer {}", arm::TOKEN)))
    );
    assert!(
        seen.iter()
            .filter(|r| r.query.contains("$skipToken="))
            .count()
            >= 3
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_new_compute_instance_appears_without_a_restart() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    // A user-assigned identity: IMDS is asked for it by client_id.
    let srv = start_against(
        &arm,
        &up,
        "interval_s = 1\nclient_id = \"c0ffee00-0000-4000-8000-000000000002\"",
    )
    .await;
    rounds_ended(&srv, "success", 1.0).await;
    let gen_before = metric(&scrape(&srv).await, TABLE_GENERATION, &[]);
    // Rounds that find the same swap nothing.
    rounds_ended(&srv, "unchanged", 2.0).await;
    assert_eq!(
        metric(&scrape(&srv).await, TABLE_GENERATION, &[]),
        gen_before
    );

    let mut c = contoso();
    c.computes.push(("ci-carol".into(), "ComputeInstance"));
    arm.with(|w| w.put(&c));
    let name = "ci-carol.eastus.instances.azureml.ms";
    assert!(
        until(Duration::from_secs(10), || async {
            a(srv.addr, name).await == ["10.1.0.5"]
        })
        .await,
        "the new instance is served"
    );
    assert_eq!(
        metric(&scrape(&srv).await, TABLE_GENERATION, &[]),
        gen_before + 1.0,
        "one reload for the change"
    );
    // One token for all those rounds (it lasts an hour), asked as that identity.
    let tokens: Vec<_> = arm
        .seen()
        .into_iter()
        .filter(|r| r.path == "/metadata/identity/oauth2/token")
        .collect();
    assert_eq!(tokens.len(), 1);
    assert!(
        tokens[0]
            .query
            .contains("client_id=c0ffee00-0000-4000-8000-000000000002")
    );
    srv.stop().await;
}

#[tokio::test]
async fn arm_failing_keeps_the_table_and_shows_why() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let srv = start_against(&arm, &up, "interval_s = 1\ntimeout_ms = 300").await;
    let api = contoso().api_name();
    rounds_ended(&srv, "success", 1.0).await;
    let http = srv.http();
    for (mode, result, says) in [
        (Mode::Fail(503, vec![]), "unavailable", "HTTP 503"),
        (Mode::Fail(403, vec![]), "denied", "Reader"),
        (Mode::Garbage, "malformed", "not JSON"),
        (Mode::Hang, "timeout", "no answer within 300 ms"),
    ] {
        let tokens_before = imds_requests(&arm);
        arm.set_mode(mode);
        assert!(
            until(Duration::from_secs(10), || async {
                synced(&srv, result).await >= 1.0
            })
            .await,
            "{result} is counted"
        );
        if result == "denied" {
            // A refused token is not used again: the next round asks IMDS anew.
            assert!(
                until(Duration::from_secs(10), || async {
                    imds_requests(&arm) > tokens_before
                })
                .await
            );
        }
        assert_eq!(
            a(srv.addr, &api).await,
            ["10.1.0.5"],
            "still served after {result}"
        );
        let (_, health) = http_request(http, "GET", "/healthz").await;
        assert!(
            health.contains("\"degraded\"") && health.contains(says),
            "{result}: {health}"
        );
    }
    // 429: the next round waits for Retry-After, not interval_s.
    arm.set_mode(Mode::Fail(429, vec![("retry-after", "5".into())]));
    rounds_ended(&srv, "throttled", 1.0).await;
    let after_429 = arm.arm_requests();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        arm.arm_requests(),
        after_429,
        "no request before Retry-After"
    );

    arm.set_mode(Mode::Normal);
    assert!(
        until(Duration::from_secs(10), || async {
            http_request(http, "GET", "/healthz")
                .await
                .1
                .contains("\"ok\"")
        })
        .await,
        "healthy again"
    );
    let text = scrape(&srv).await;
    assert!(metric(&text, AZURE_LAST_SUCCESS, &[]) > 1.7e9);
    srv.stop().await;
}

/// No token (IMDS failing): nothing is asked of ARM, the state file's
/// discovery serves, and /healthz says why.
#[tokio::test]
async fn no_token_is_a_failed_round_not_an_empty_table() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| {
        w.put(&contoso());
        w.imds_down = true;
    });
    let srv = start_against(&arm, &up, "interval_s = 1").await;
    rounds_ended(&srv, "token", 1.0).await;
    assert_eq!(arm.arm_requests(), 0, "no ARM request without a token");
    let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
    assert!(
        health.contains("no token: IMDS answered HTTP 500"),
        "{health}"
    );
    arm.with(|w| w.imds_down = false);
    assert!(
        until(Duration::from_secs(10), || async {
            a(srv.addr, &contoso().api_name()).await == ["10.1.0.5"]
        })
        .await,
        "served once a token comes"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_round_that_drops_most_workspaces_waits_for_the_next_to_agree() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let srv = start_against(&arm, &up, "interval_s = 3").await;
    let api = contoso().api_name();
    rounds_ended(&srv, "success", 1.0).await;
    arm.with(|w| w.clear_workspaces());
    rounds_ended(&srv, "held", 1.0).await;
    assert_eq!(a(srv.addr, &api).await, ["10.1.0.5"], "held: still served");
    let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
    assert!(health.contains("next round agrees"), "{health}");
    // The next empty round agrees: now it is applied.
    assert!(
        until(Duration::from_secs(10), || async {
            !udp_query(srv.addr, &api, RecordType::A)
                .await
                .metadata
                .authoritative
        })
        .await,
        "applied once a second round agrees"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_restart_with_arm_down_serves_the_state_file() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state/azure.json");
    let extra = format!(
        "interval_s = 1\nstate_file = {:?}",
        state.display().to_string()
    );
    let srv = start_against(&arm, &up, &extra).await;
    assert!(
        until(Duration::from_secs(10), || async { state.exists() }).await,
        "state saved"
    );
    // Deleted, it is written again by the next round, though nothing changed.
    std::fs::remove_file(&state).unwrap();
    assert!(
        until(Duration::from_secs(10), || async { state.exists() }).await,
        "state saved again"
    );
    srv.stop().await;

    arm.set_mode(Mode::Fail(503, vec![]));
    let srv = start_against(&arm, &up, &extra).await;
    // Served at once, before any round could succeed.
    assert_eq!(a(srv.addr, &contoso().api_name()).await, ["10.1.0.5"]);
    assert_eq!(
        a(srv.addr, "ci-alice.eastus.instances.azureml.ms").await,
        ["10.1.0.5"]
    );
    rounds_ended(&srv, "unavailable", 1.0).await;
    assert_eq!(a(srv.addr, &contoso().api_name()).await, ["10.1.0.5"]);
    srv.stop().await;
}

#[tokio::test]
async fn the_files_workspace_wins_over_the_discovered_one() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    // The file gives the same workspace id with another API address.
    let rest = format!(
        "{}[[workspace]]\nname = \"mlw-contoso\"\nid = \"{GUID}\"\nregion = \"eastus\"\nip = \"10.8.0.5\"\n",
        arm.section("interval_s = 60")
    );
    let srv = serving(&up, &rest, "success").await;
    assert_eq!(a(srv.addr, &contoso().api_name()).await, ["10.8.0.5"]);
    // Azure's other names (its storage) still come along.
    assert_eq!(
        a(srv.addr, "stmlwcontoso.blob.core.windows.net").await,
        ["10.1.0.20"]
    );
    srv.stop().await;
}

// ---- amldns discover, with the CLI and workload identity credentials ------------

fn discover_config(dir: &std::path::Path, arm: &ArmStandIn, auth: &str) -> std::path::PathBuf {
    let path = dir.join("amldns.toml");
    let text = format!(
        "[upstream]\nservers = [\"127.0.0.1:9\"]\n{}",
        arm.section(&format!("auth = \"{auth}\""))
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `amldns discover` with only the environment given here.
fn discover(config: &std::path::Path, env: &[(&str, String)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_amldns"));
    cmd.args(["discover", "--config"]).arg(config).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    output_within(&mut cmd)
}

#[tokio::test]
async fn discover_prints_pasteable_toml_with_the_az_cli_token() {
    let arm = ArmStandIn::start().await;
    arm.with(|w| world().iter().for_each(|ws| w.put(ws)));
    let dir = tempfile::tempdir().unwrap();
    // A stand-in `az` on PATH, printing what `az account get-access-token` does.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let az = bin.join("az");
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"account get-access-token\" ] || exit 2\n\
             echo '{{\"accessToken\": \"{}\", \"expires_on\": 4102444800, \"tokenType\": \"Bearer\"}}'\n",
            arm::TOKEN
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = discover_config(dir.path(), &arm, "cli");
    let path = [("PATH", format!("{}:/usr/bin:/bin", bin.display()))];
    let out = tokio::task::spawn_blocking({
        let (config, path) = (config.clone(), path.clone());
        move || discover(&config, &path)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("[[workspace]]\nname = \"mlw-contoso\""),
        "{stdout}"
    );
    assert!(stdout.contains("instances = [\"ci-alice\"]"), "{stdout}");
    assert!(!stdout.contains("mlw-pending"), "{stdout}");
    // What it prints is a config amldns takes as is.
    let pasted = format!("[upstream]\nservers = [\"127.0.0.1:9\"]\n{stdout}");
    let cfg = amldns::config::parse(&dir.path().join("pasted.toml"), &pasted)
        .unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    let table = cfg.table(1).unwrap();
    assert!(table.contains(&contoso().api_name()));
    assert!(table.contains("ci-bob.westeurope.instances.azureml.ms"));
    assert!(table.contains("stmlwcontoso.blob.core.windows.net"));
    // contoso, the hub (its project inside), the zone group's, China, US Gov.
    assert_eq!(cfg.workspaces.len(), 5, "{stdout}");

    // It cannot: exit 1 and the reason.
    arm.set_mode(Mode::Fail(403, vec![]));
    let out = tokio::task::spawn_blocking(move || discover(&config, &path))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 403"), "{stderr}");
}

#[tokio::test]
async fn workload_identity_exchanges_the_federated_token() {
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, arm::ASSERTION).unwrap();
    let config = discover_config(dir.path(), &arm, "workload-identity");
    let env = vec![
        (
            "AZURE_CLIENT_ID",
            "c0ffee00-0000-4000-8000-000000000001".to_string(),
        ),
        ("AZURE_TENANT_ID", "t".to_string()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
        ("AZURE_AUTHORITY_HOST", arm.url()),
    ];
    let out = tokio::task::spawn_blocking(move || discover(&config, &env))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(GUID));
    let token = arm
        .seen()
        .into_iter()
        .find(|r| r.path == "/t/oauth2/v2.0/token")
        .expect("the token endpoint was asked");
    assert!(
        token
            .body
            .contains("client_id=c0ffee00-0000-4000-8000-000000000001")
    );
    assert!(
        token
            .body
            .contains("scope=https%3A%2F%2Fmanagement.azure.com%2F.default")
    );
}

// ---- the log, as an operator reads it ---------------------------------------------

/// A failure repeated every round is logged once; working again once.
#[tokio::test]
async fn a_failure_is_logged_once_per_change_of_state() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    arm.set_mode(Mode::Fail(503, vec![]));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    let text = TestConfig {
        upstreams: &[up.addr],
        server: "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]",
        rest: &arm.section("interval_s = 1"),
        ..TestConfig::default()
    }
    .text();
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_amldns"))
        .args(["serve", "--watch", "off", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let list = format!(
        "/subscriptions/{}/providers/Microsoft.MachineLearningServices/workspaces",
        arm::SUB
    );
    let rounds = || arm.seen().iter().filter(|r| r.path == list).count();
    let failed_rounds = until(Duration::from_secs(15), || async { rounds() >= 3 }).await;
    arm.set_mode(Mode::Normal);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let recovered = until(Duration::from_secs(10), || async {
        read().contains("works again")
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let text = read();
    assert!(failed_rounds && recovered, "{text}");
    let count = |s: &str| text.lines().filter(|l| l.contains(s)).count();
    assert_eq!(count("Azure discovery failed"), 1, "{text}");
    assert_eq!(count("HTTP 503"), 1, "{text}");
    assert_eq!(count("Azure discovery works again"), 1, "{text}");
    assert_eq!(
        count("Azure discovery changed: added 1 (mlw-contoso)"),
        1,
        "{text}"
    );
}

// ---- one round at 1,000 workspaces (BENCHMARKS.md, "Azure discovery") ------------

/// `cargo test --test azure -- --ignored --nocapture one_round_of_1000`: a
/// stand-in with 1,000 workspaces, each with an approved endpoint, two
/// compute instances and a cluster, an online endpoint, and a storage
/// account behind its own endpoint; `amldns discover` runs one round.
#[tokio::test]
#[ignore = "a benchmark: run alone, it measures the child's peak memory"]
async fn one_round_of_1000_workspaces() {
    const N: usize = 1000;
    let arm = ArmStandIn::start().await;
    arm.with(|w| {
        w.page_size = 100;
        for i in 0..N {
            let id = format!("{i:08x}-0000-4000-8000-{i:012x}");
            let mut ws = Ws::new(&format!("mlw-{i:04}"), &id, "eastus");
            ws.computes = vec![
                (format!("ci-{i}-a"), "ComputeInstance"),
                (format!("ci-{i}-b"), "ComputeInstance"),
                ("cluster".into(), "AmlCompute"),
            ];
            ws.online_endpoints = vec![format!("ep-{i}")];
            ws.storage_ip = Some("10.1.0.20");
            w.put(&ws);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nservers = [\"127.0.0.1:9\"]\n{}",
            arm.section("")
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || discover(&config, &[]))
        .await
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("[[workspace]]").count(), N);
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seen = arm.seen();
    let by = |p: &str| seen.iter().filter(|r| r.path.ends_with(p)).count();
    println!(
        "1,000 workspaces: {} requests ({} ARM: {} list pages, {} computes, {} online \
         endpoints, rest private endpoints and storage/key vault; {} token), {seconds:.2} s, \
         child peak RSS {} MiB, {} bytes of TOML",
        seen.len(),
        arm.arm_requests(),
        by("/workspaces"),
        by("/computes"),
        by("/onlineEndpoints"),
        by("/token"),
        usage.ru_maxrss / 1024,
        stdout.len()
    );

    // The server: from the start to the discovered table being served.
    let up = StandIn::zone().await;
    let started = Instant::now();
    let srv = start_against(&arm, &up, "interval_s = 3600").await;
    assert!(
        until(Duration::from_secs(120), || async {
            synced(&srv, "success").await >= 1.0
        })
        .await
    );
    let text = scrape(&srv).await;
    println!(
        "serve: the first round applied {:.2} s after the start, {} names in the table",
        started.elapsed().as_secs_f64(),
        metric(&text, amldns::metrics::TABLE_NAMES, &[])
    );
    srv.stop().await;
}

/// A discovered name that the file answers otherwise is refused with the
/// round, like a conflicting import; the file's reloads go on working.
#[tokio::test]
async fn a_discovery_that_does_not_fit_the_file_is_rejected_not_served() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let rest = format!(
        "{}[[record]]\nname = \"stmlwcontoso.blob.core.windows.net\"\na = [\"10.9.9.1\"]\n",
        arm.section("interval_s = 60")
    );
    let srv = serving(&up, &rest, "rejected").await;
    assert_eq!(
        a(srv.addr, "stmlwcontoso.blob.core.windows.net").await,
        ["10.9.9.1"]
    );
    let api = udp_query(srv.addr, &contoso().api_name(), RecordType::A).await;
    assert!(!api.metadata.authoritative, "nothing of it is served");
    let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
    assert!(
        health.contains("do not fit the table") && health.contains("10.9.9.1"),
        "{health}"
    );
    let (status, body) = http_request(srv.http(), "POST", "/reload").await;
    assert_eq!(status, 200, "the file still reloads: {body}");
    srv.stop().await;
}

/// `cargo test --test azure -- --ignored --nocapture a_run_to_read`: the
/// `amldns serve` process against the stand-in, printed for a person: names
/// served, rounds, a failure in the log, `/healthz` and the metrics.
#[tokio::test]
#[ignore = "prints a run for a person to read"]
async fn a_run_to_read() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| world().iter().for_each(|ws| w.put(ws)));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    let text = TestConfig {
        upstreams: &[up.addr],
        server: "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]",
        metrics: true,
        rest: &arm.section("interval_s = 1\nstate_file = \"azure.json\""),
        ..TestConfig::default()
    }
    .text();
    std::fs::write(&config, &text).unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_amldns"))
        .args(["serve", "--watch", "off", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        until(Duration::from_secs(10), || async {
            read().contains("Azure discovery changed")
        })
        .await
    );
    let field = |key: &str| -> SocketAddr {
        let t = read();
        let at = t.find(&format!("{key}=")).unwrap() + key.len() + 1;
        t[at..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let (dns, http) = (field("listen"), field("metrics"));
    println!("---- config\n{text}");
    println!("---- names served");
    for name in [
        contoso().api_name(),
        contoso().notebooks_name(),
        "ci-alice-22.eastus.instances.ml.azure.ms".into(),
        "fraud-score.eastus.inference.ml.azure.com".into(),
        "stmlwcontoso.blob.core.windows.net".into(),
        format!("{PROJECT}.workspace.westeurope.api.azureml.ms"),
        format!("{CHINA_WS}.workspace.chinaeast2.api.ml.azure.cn"),
    ] {
        println!("{name} A {:?}", a(dns, &name).await);
    }
    arm.set_mode(Mode::Fail(503, vec![]));
    let failed = || async {
        http_request(http, "GET", "/healthz")
            .await
            .1
            .contains("degraded")
    };
    assert!(until(Duration::from_secs(10), failed).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("---- during the failure");
    println!(
        "{} A {:?}",
        contoso().api_name(),
        a(dns, &contoso().api_name()).await
    );
    println!(
        "/healthz {}",
        http_request(http, "GET", "/healthz").await.1.trim()
    );
    let metrics = http_request(http, "GET", "/metrics").await.1;
    for l in metrics
        .lines()
        .filter(|l| l.starts_with("amldns_azure") || l.starts_with("amldns_table"))
    {
        println!("{l}");
    }
    arm.set_mode(Mode::Normal);
    assert!(
        until(Duration::from_secs(10), || async {
            read().contains("works again")
        })
        .await
    );
    println!("---- after");
    println!(
        "/healthz {}",
        http_request(http, "GET", "/healthz").await.1.trim()
    );
    let _ = child.kill();
    let _ = child.wait();
    println!("---- log\n{}", read());
}

/// `[azure]` added by a reload starts discovery at once, without a restart.
#[tokio::test]
async fn azure_added_by_a_reload_starts_at_once() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let config = |rest: &str| {
        TestConfig {
            upstreams: &[up.addr],
            metrics: true,
            rest,
            ..TestConfig::default()
        }
        .text()
    };
    let srv = start_with(&config(""), &[], WatchMode::Off).await;
    srv.write("amldns.toml", &config(&arm.section("interval_s = 3600")));
    let (status, body) = http_request(srv.http(), "POST", "/reload").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        until(Duration::from_secs(10), || async {
            a(srv.addr, &contoso().api_name()).await == ["10.1.0.5"]
        })
        .await,
        "discovered without a restart"
    );
    srv.stop().await;
}
