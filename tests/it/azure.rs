//! Discovery from Azure against a stand-in for ARM,
//! IMDS and Entra ID on 127.0.0.1: nothing here reaches Azure.

use std::future::Future;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use amldns::metrics::{AZURE_LAST_SUCCESS, AZURE_SYNC_TOTAL, TABLE_GENERATION};
use amldns::reload::WatchMode;
use hickory_proto::rr::RecordType;

use crate::common::arm;
use crate::common::arm::{ArmStandIn, Endpoint, Mode, Ws};
use crate::common::*;

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
    // Its notebooks name as Azure reports it, not as amldns would cut it.
    project.notebook_label = Some(format!("ml-proj_a-westeurope-{PROJECT}"));
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
        // Compute instances' application hosts (RStudio), at the API IP.
        (
            "ci-alice-8787.eastus.instances.azureml.ms".into(),
            "10.1.0.5",
        ),
        (
            "ci-bob-8787.westeurope.instances.azureml.ms".into(),
            "10.2.0.5",
        ),
        // The project's notebooks name is the one its notebookInfo gives.
        (
            format!("ml-proj_a-westeurope-{PROJECT}.westeurope.notebooks.azure.net"),
            "10.2.0.6",
        ),
        (
            format!("ml-proj_a-westeurope-{PROJECT}.privatelink.notebooks.azure.net"),
            "10.2.0.6",
        ),
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
    // vault without an endpoint of its own, a project's derived notebooks
    // name where Azure gives another.
    for name in [
        "cpu-cluster.eastus.instances.azureml.ms".to_string(),
        format!("{PENDING_WS}.workspace.eastus.api.azureml.ms"),
        format!("{SILENT_WS}.workspace.eastus.api.azureml.ms"),
        "kvmlwcontoso.vault.azure.net".to_string(),
        format!("ml-proj-a-westeurope-{PROJECT}.westeurope.notebooks.azure.net"),
        // An application host under no instances zone.
        "ci-alice.eastus.azureml.net".to_string(),
    ] {
        let m = udp_query(*s, &name, RecordType::A).await;
        assert!(!m.metadata.authoritative, "{name} is not local");
    }
    // /status says what discovery serves.
    let (_, status) = http_request(srv.http(), "GET", "/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["azure"]["workspaces"], 5, "{status}");
    // An application host outside the instances zones is left out quietly:
    // it is not a name an endpoint lists.
    assert!(!status.to_string().contains(".azureml.net"), "{status}");
    assert_eq!(status["azure"]["subscriptions"], 1, "{status}");
    assert!(
        status["azure"]["last_success"].as_f64().unwrap() > 1.7e9,
        "{status}"
    );
    // /records names the Azure resource each name came from.
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
            .filter(|r| r.path.starts_with("/subscriptions") || r.path == arm::GRAPH_PATH)
            .all(|r| r.header("authorization") == Some(&format!("Bearer {}", arm::TOKEN)))
    );
    // Resource Graph (the default inventory) was read in pages.
    assert!(
        seen.iter()
            .filter(|r| r.body.contains("\"$skipToken\""))
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
        (Mode::Fail(401, vec![]), "denied", "tenant_id"),
        (Mode::Garbage, "malformed", "not JSON"),
        (Mode::Hang, "timeout", "no answer within 300 ms"),
    ] {
        let tokens_before = imds_requests(&arm);
        arm.set_mode(mode);
        // A request that does not answer is tried four times, with about
        // 0.8, 1.6 and 3.2 s between the tries.
        assert!(
            until(Duration::from_secs(40), || async {
                synced(&srv, result).await >= 1.0
            })
            .await,
            "{result} is counted"
        );
        if result == "denied" {
            // A token ARM does not take is not used again: the next round
            // asks IMDS anew.
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
    // 429: tried again after Retry-After within the round (three times),
    // then the next round waits for it, not interval_s.
    arm.set_mode(Mode::Fail(429, vec![("retry-after", "4".into())]));
    assert!(
        until(Duration::from_secs(60), || async {
            synced(&srv, "throttled").await >= 1.0
        })
        .await,
        "throttled is counted"
    );
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

/// A stand-in `az` in `dir/bin`, printing what `az account
/// get-access-token` does and writing its arguments to `dir/az.args`; the
/// PATH that finds it.
fn fake_az(dir: &std::path::Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let az = bin.join("az");
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\n\
             [ \"$1 $2\" = \"account get-access-token\" ] || exit 2\n\
             echo '{{\"accessToken\": \"{}\", \"expires_on\": 4102444800, \"tokenType\": \"Bearer\"}}'\n",
            dir.join("az.args").display(),
            arm::TOKEN
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:/usr/bin:/bin", bin.display())
}

/// With `tenant_id`, `az` is asked for a token in that tenant, not its
/// default one (whose token ARM would refuse for these subscriptions).
#[tokio::test]
async fn the_cli_credential_asks_for_the_configured_tenant() {
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nservers = [\"127.0.0.1:9\"]\n{}",
            arm.section("auth = \"cli\"\ntenant_id = \"contoso.onmicrosoft.com\"")
        ),
    )
    .unwrap();
    let path = [("PATH", fake_az(dir.path()))];
    let out = tokio::task::spawn_blocking(move || discover(&config, &path))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(dir.path().join("az.args")).unwrap();
    assert!(args.contains("--tenant contoso.onmicrosoft.com"), "{args}");
}

#[tokio::test]
async fn discover_prints_pasteable_toml_with_the_az_cli_token() {
    let arm = ArmStandIn::start().await;
    arm.with(|w| world().iter().for_each(|ws| w.put(ws)));
    let dir = tempfile::tempdir().unwrap();
    let config = discover_config(dir.path(), &arm, "cli");
    let path = [("PATH", fake_az(dir.path()))];
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
    let table = amldns::snapshot::table(&cfg).unwrap();
    assert!(table.contains(&contoso().api_name()));
    assert!(table.contains("ci-bob.westeurope.instances.azureml.ms"));
    assert!(table.contains("stmlwcontoso.blob.core.windows.net"));
    // An instance's application host, which no [[workspace]] field holds,
    // comes as a [[record]] at the API IP.
    assert!(
        stdout.contains(
            "[[record]]\nname = \"ci-alice-8787.eastus.instances.azureml.ms\"\na = [\"10.1.0.5\"]"
        ),
        "{stdout}"
    );
    // A project's own notebooks FQDN is kept.
    assert!(
        stdout.contains(&format!(
            "notebook_fqdn = \"ml-proj_a-westeurope-{PROJECT}.westeurope.notebooks.azure.net\""
        )),
        "{stdout}"
    );
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

/// The first line of `p`'s log that holds `needle`, waited for (30 s at
/// most) without blocking the stand-ins this test's runtime serves.
async fn logged(p: &Process, needle: &str) -> String {
    let find = || p.lines().into_iter().find(|l| l.contains(needle));
    assert!(
        until(Duration::from_secs(30), || async { find().is_some() }).await,
        "no line with {needle:?}: {:#?}",
        p.lines()
    );
    find().unwrap()
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
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    // Each failing round asks Resource Graph its first question four times
    // (three retries) before it fails: two more rounds after the first
    // failure is logged are eight more queries.
    let rounds = || arm.graph_queries();
    let first = until(Duration::from_secs(15), || async {
        read().contains("Azure discovery failed")
    })
    .await;
    let seen = rounds();
    let failed_rounds =
        first && until(Duration::from_secs(30), || async { rounds() >= seen + 8 }).await;
    arm.set_mode(Mode::Normal);
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

/// The benchmark of BENCHMARKS.md, "Azure discovery": a stand-in with `n`
/// workspaces over `subs` subscriptions, each with an approved endpoint,
/// two compute instances and a cluster, an online endpoint, and a storage
/// account behind its own endpoint; `amldns discover` runs one round with
/// `extra` in `[azure]` (the inventory), unpaced. Run each alone: the
/// peak RSS is the largest of this process's children so far.
async fn one_round_of(n: usize, subs: usize, extra: &str) -> ArmStandIn {
    let arm = ArmStandIn::start().await;
    arm.with(|w| {
        w.page_size = 100;
        w.graph_page_size = 1000;
        for i in 0..n {
            let id = format!("{i:08x}-0000-4000-8000-{i:012x}");
            let mut ws = Ws::new(&format!("mlw-{i:05}"), &id, "eastus");
            if i % subs > 0 {
                ws.sub = format!("{:08x}-0000-4000-8000-{:012x}", i % subs, i % subs);
            }
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
    let started = Instant::now();
    let (ok, stdout, why) = discover_for(&arm, extra, Duration::from_secs(1200)).await;
    let seconds = started.elapsed().as_secs_f64();
    assert!(ok, "{why}");
    assert_eq!(stdout.matches("[[workspace]]").count(), n);
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seen = arm.seen();
    let by = |p: &str| seen.iter().filter(|r| r.path.ends_with(p)).count();
    let requests = arm.arm_requests() + arm.graph_queries();
    eprintln!(
        "{n} workspaces in {subs} subscriptions, {extra:?}: {requests} requests ({} Resource \
         Graph pages, {} ARM: {} workspace list pages, {} computes, {} online endpoints; \
         {} token), {seconds:.2} s unpaced, {:.0} s at 20 reads/s, child peak RSS {} MiB, \
         {} bytes of TOML",
        arm.graph_queries(),
        arm.arm_requests(),
        by("/workspaces"),
        by("/computes"),
        by("/onlineEndpoints"),
        by("/token"),
        requests as f64 / 20.0,
        usage.ru_maxrss / 1024,
        stdout.len()
    );
    arm
}

#[tokio::test]
#[ignore = "a benchmark: run alone, it measures the child's peak memory"]
async fn one_round_of_1000_workspaces() {
    let arm = one_round_of(1000, 5, "").await;
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
    eprintln!(
        "serve: the first round applied {:.2} s after the start, {} names in the table",
        started.elapsed().as_secs_f64(),
        metric(&text, amldns::metrics::TABLE_NAMES, &[])
    );
    srv.stop().await;
}

#[tokio::test]
#[ignore = "a benchmark: run alone, it measures the child's peak memory"]
async fn one_round_of_1000_workspaces_by_arm() {
    one_round_of(1000, 5, "inventory = \"arm\"").await;
}

#[tokio::test]
#[ignore = "a benchmark: run alone, it measures the child's peak memory"]
async fn one_round_of_10000_workspaces() {
    one_round_of(10_000, 20, "").await;
}

#[tokio::test]
#[ignore = "a benchmark: run alone, it measures the child's peak memory"]
async fn one_round_of_10000_workspaces_by_arm() {
    one_round_of(10_000, 20, "inventory = \"arm\"").await;
}

/// A discovered name that the file answers otherwise is refused with the
/// round, like a conflicting import; the file's reloads go on working.
#[tokio::test]
async fn a_discovered_name_the_file_also_gives_is_served_from_the_file() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let rest = format!(
        "{}[[record]]\nname = \"stmlwcontoso.blob.core.windows.net\"\na = [\"10.9.9.1\"]\n",
        arm.section("interval_s = 60")
    );
    let srv = serving(&up, &rest, "success").await;
    assert_eq!(
        a(srv.addr, "stmlwcontoso.blob.core.windows.net").await,
        ["10.9.9.1"]
    );
    // The rest of the discovery is served.
    assert_eq!(a(srv.addr, &contoso().api_name()).await, ["10.1.0.5"]);
    let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
    assert!(!health.contains("do not fit the table"), "{health}");
    srv.stop().await;
}

/// `cargo test --test it -- --ignored --nocapture azure::a_run_to_read`: the
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
    eprintln!("---- config\n{text}");
    eprintln!("---- names served");
    for name in [
        contoso().api_name(),
        contoso().notebooks_name(),
        "ci-alice-22.eastus.instances.ml.azure.ms".into(),
        "fraud-score.eastus.inference.ml.azure.com".into(),
        "stmlwcontoso.blob.core.windows.net".into(),
        format!("{PROJECT}.workspace.westeurope.api.azureml.ms"),
        format!("{CHINA_WS}.workspace.chinaeast2.api.ml.azure.cn"),
    ] {
        eprintln!("{name} A {:?}", a(dns, &name).await);
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
    eprintln!("---- during the failure");
    eprintln!(
        "{} A {:?}",
        contoso().api_name(),
        a(dns, &contoso().api_name()).await
    );
    eprintln!(
        "/healthz {}",
        http_request(http, "GET", "/healthz").await.1.trim()
    );
    let metrics = http_request(http, "GET", "/metrics").await.1;
    for l in metrics
        .lines()
        .filter(|l| l.starts_with("amldns_azure") || l.starts_with("amldns_table"))
    {
        eprintln!("{l}");
    }
    arm.set_mode(Mode::Normal);
    assert!(
        until(Duration::from_secs(10), || async {
            read().contains("works again")
        })
        .await
    );
    eprintln!("---- after");
    eprintln!(
        "/healthz {}",
        http_request(http, "GET", "/healthz").await.1.trim()
    );
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("---- log\n{}", read());
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

// ---- rounds the test starts itself -----------------------------------------------

/// The sync counter's lines of the metrics page, for a failure message.
async fn sync_lines(srv: &Running) -> String {
    let text = scrape(srv).await;
    text.lines()
        .filter(|l| l.starts_with(AZURE_SYNC_TOTAL))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rounds ended so far, whatever their result.
/// Waits for `srv`'s first discovery round, which must have succeeded.
async fn first_round_succeeds(srv: &Running) {
    assert!(
        until(Duration::from_secs(30), || async {
            rounds_so_far(srv).await >= 1.0
        })
        .await
    );
    assert_eq!(
        synced(srv, "success").await,
        1.0,
        "{}",
        sync_lines(srv).await
    );
}

async fn rounds_so_far(srv: &Running) -> f64 {
    metric(&scrape(srv).await, AZURE_SYNC_TOTAL, &[])
}

/// amldns over the stand-in, its rounds started by the test alone: the
/// interval is an hour, and [`Driven::round`] changes `[azure]` by a reload,
/// which starts a round at once. What a round applied or held is then seen
/// before any other round can run, however slow the machine.
struct Driven {
    srv: Running,
    upstream: SocketAddr,
    section: String,
    turn: u32,
}

/// The config of round `turn`: each turn's `[azure]` differs (its
/// `timeout_ms`), so that its reload starts a round.
fn driven_text(upstream: SocketAddr, section: &str, turn: u32) -> String {
    TestConfig {
        upstreams: &[upstream],
        metrics: true,
        rest: &format!("{section}timeout_ms = {}\n", 10_000 + turn),
        ..TestConfig::default()
    }
    .text()
}

impl Driven {
    /// Started, once its first round has succeeded.
    async fn start(arm: &ArmStandIn, up: &StandIn) -> Self {
        let section = arm.section("interval_s = 3600");
        let text = driven_text(up.addr, &section, 0);
        let d = Driven {
            srv: start_with(&text, &[], WatchMode::Off).await,
            upstream: up.addr,
            section,
            turn: 0,
        };
        assert!(
            until(Duration::from_secs(30), || async {
                synced(&d.srv, "success").await >= 1.0
            })
            .await,
            "the first round succeeds"
        );
        d
    }

    /// Runs one more round now and waits for it to end.
    async fn round(&mut self) {
        let before = rounds_so_far(&self.srv).await;
        self.turn += 1;
        let text = driven_text(self.upstream, &self.section, self.turn);
        self.srv.write("amldns.toml", &text);
        let (status, body) = http_request(self.srv.http(), "POST", "/reload").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            until(Duration::from_secs(30), || async {
                rounds_so_far(&self.srv).await > before
            })
            .await,
            "a reload changing [azure] starts a round"
        );
    }

    async fn served(&self, ws: &Ws) -> bool {
        a(self.srv.addr, &ws.api_name()).await == [ws.ips[0]]
    }

    async fn not_local(&self, ws: &Ws) -> bool {
        !udp_query(self.srv.addr, &ws.api_name(), RecordType::A)
            .await
            .metadata
            .authoritative
    }
}

/// `n` workspaces of one shape (an approved endpoint listing the same
/// names), so that each gives as many names as the others.
fn fleet(n: usize) -> Vec<Ws> {
    (0..n)
        .map(|i| {
            Ws::new(
                &format!("mlw-fleet-{i}"),
                &format!("{i:08x}-0000-4000-8000-{i:012x}"),
                "eastus",
            )
        })
        .collect()
}

/// The brake on a round that removes much: amldns counts the discovered
/// names a round would remove, and holds those removals when they are more
/// than half of the names. Every workspace here gives as many names as the
/// next, so the cuts read in workspaces: 3 of 5 waits, 2 of 5 and 2 of 4
/// (exactly half) apply at once.
#[tokio::test]
async fn removing_half_applies_at_once_and_more_than_half_waits_for_the_next_round() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let ws = fleet(6);
    arm.with(|w| ws[..5].iter().for_each(|x| w.put(x)));
    let mut d = Driven::start(&arm, &up).await;
    for x in &ws[..5] {
        assert!(d.served(x).await, "{} served", x.name);
    }

    // 3 of 5: held, every name still served.
    arm.with(|w| ws[..3].iter().for_each(|x| w.remove(x)));
    d.round().await;
    assert_eq!(synced(&d.srv, "held").await, 1.0, "3 of 5 is held");
    for x in &ws[..5] {
        assert!(d.served(x).await, "{} still served", x.name);
    }
    let (_, health) = http_request(d.srv.http(), "GET", "/healthz").await;
    assert!(
        health.contains("\"degraded\"") && health.contains("next round agrees"),
        "{health}"
    );

    // One comes back: the round removes 2 of 5, applied at once.
    arm.with(|w| w.put(&ws[2]));
    d.round().await;
    assert_eq!(synced(&d.srv, "held").await, 1.0, "2 of 5 is not held");
    assert_eq!(synced(&d.srv, "success").await, 2.0);
    for x in &ws[..2] {
        assert!(d.not_local(x).await, "{} removed at once", x.name);
    }
    for x in &ws[2..5] {
        assert!(d.served(x).await, "{} kept", x.name);
    }

    // One added (4 served), then 2 of 4 removed: exactly half, at once.
    arm.with(|w| w.put(&ws[5]));
    d.round().await;
    assert!(d.served(&ws[5]).await, "an addition alone is applied");
    arm.with(|w| ws[2..4].iter().for_each(|x| w.remove(x)));
    d.round().await;
    assert_eq!(synced(&d.srv, "held").await, 1.0, "half is not held");
    for x in &ws[2..4] {
        assert!(d.not_local(x).await, "{} removed at once", x.name);
    }
    for x in &ws[4..6] {
        assert!(d.served(x).await, "{} kept", x.name);
    }

    // Both left removed (2 of 2): held; the next round removing the same
    // names applies it.
    arm.with(|w| w.clear_workspaces());
    d.round().await;
    assert_eq!(synced(&d.srv, "held").await, 2.0, "2 of 2 is held");
    for x in &ws[4..6] {
        assert!(d.served(x).await, "{} still served", x.name);
    }
    d.round().await;
    assert_eq!(synced(&d.srv, "held").await, 2.0, "the second round agrees");
    for x in &ws[4..6] {
        assert!(d.not_local(x).await, "{} removed once agreed", x.name);
    }
    d.srv.stop().await;
}

/// A round that removes more than half holds only its removals: what it
/// adds and changes is served at once.
#[tokio::test]
async fn a_round_removing_more_than_half_applies_its_additions_and_changes_at_once() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let ws = fleet(5);
    arm.with(|w| ws[..4].iter().for_each(|x| w.put(x)));
    let mut d = Driven::start(&arm, &up).await;
    let mut moved = ws[3].clone();
    moved.ips = ["10.1.3.5", "10.1.3.6", "10.1.3.7"];
    // 3 of 4 removed, one added, one changed.
    arm.with(|w| {
        ws[..3].iter().for_each(|x| w.remove(x));
        w.put(&ws[4]);
        w.put(&moved);
    });
    d.round().await;
    assert_eq!(synced(&d.srv, "held").await, 1.0, "the removals are held");
    for x in &ws[..3] {
        assert!(d.served(x).await, "{} still served", x.name);
    }
    assert!(d.served(&ws[4]).await, "the addition is served at once");
    assert!(d.served(&moved).await, "the change is served at once");
    // The next round removes the same names: now they go.
    d.round().await;
    for x in &ws[..3] {
        assert!(d.not_local(x).await, "{} removed once agreed", x.name);
    }
    assert!(d.served(&ws[4]).await && d.served(&moved).await);
    d.srv.stop().await;
}

/// "More than half" is of the discovered names: one workspace giving most
/// of them is most of the discovery, though it is one workspace of two.
#[tokio::test]
async fn the_half_is_counted_in_names() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let [mut big, small]: [Ws; 2] = fleet(2).try_into().unwrap();
    big.computes = (0..8)
        .map(|i| (format!("ci-{i}"), "ComputeInstance"))
        .collect();
    big.online_endpoints = (0..4).map(|i| format!("ep-{i}")).collect();
    arm.with(|w| {
        w.put(&big);
        w.put(&small);
    });
    let mut d = Driven::start(&arm, &up).await;
    let instance = "ci-7.eastus.instances.azureml.ms";
    assert_eq!(a(d.srv.addr, instance).await, ["10.1.0.5"]);
    arm.with(|w| w.remove(&big));
    d.round().await;
    assert_eq!(
        synced(&d.srv, "held").await,
        1.0,
        "most names removed: held"
    );
    assert_eq!(a(d.srv.addr, instance).await, ["10.1.0.5"], "still served");
    d.srv.stop().await;
}

// ---- what ARM will not show ------------------------------------------------------

const OTHER_WS: &str = "7ecd9fb0-8888-4999-8aaa-0bbbbbbbbbbb";

/// contoso, and a second workspace behind its own endpoint.
fn contoso_and_other() -> (Ws, Ws) {
    let mut other = Ws::new("mlw-other", OTHER_WS, "eastus");
    other.ips = ["10.6.0.5", "10.6.0.6", "10.6.0.7"];
    (contoso(), other)
}

/// Contoso, and a second workspace whose private endpoint ARM answers with
/// `status`; after the first round, which must count as a success, contoso
/// is served and the other workspace's name is not local, though its
/// endpoint was asked. What the test goes on with, and what keeps it alive.
async fn one_endpoint_refused(status: u16) -> (Running, Ws, ArmStandIn, StandIn) {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let (c, other) = contoso_and_other();
    arm.with(|w| {
        w.put(&c);
        w.put(&other);
        w.refuse(&other.endpoint_id(), status);
    });
    let srv = start_against(&arm, &up, "interval_s = 3600").await;
    first_round_succeeds(&srv).await;
    assert_eq!(a(srv.addr, &c.api_name()).await, ["10.1.0.5"]);
    let m = udp_query(srv.addr, &other.api_name(), RecordType::A).await;
    assert!(!m.metadata.authoritative, "its endpoint answered {status}");
    assert!(
        arm.seen()
            .iter()
            .any(|r| r.path.eq_ignore_ascii_case(&other.endpoint_id())),
        "its endpoint was asked"
    );
    (srv, other, arm, up)
}

/// A private endpoint the identity may not read (403: no role on it, as in
/// a managed network) is left out, and costs no new token: the token was
/// taken, only the role is missing. One token serves the whole round.
#[tokio::test]
async fn a_private_endpoint_the_identity_may_not_read_costs_no_new_token() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let (c, other) = contoso_and_other();
    arm.with(|w| {
        w.put(&c);
        w.put(&other);
        w.refuse(&other.endpoint_id(), 403);
    });
    let srv = start_against(&arm, &up, "interval_s = 1").await;
    assert!(
        until(Duration::from_secs(30), || async {
            rounds_so_far(&srv).await >= 3.0
        })
        .await,
        "{}",
        sync_lines(&srv).await
    );
    assert_eq!(
        synced(&srv, "denied").await,
        0.0,
        "the refusal fails no round"
    );
    assert_eq!(imds_requests(&arm), 1, "one token for every round");
    srv.stop().await;
}

/// A private endpoint deleted since its workspace was listed (404) is left
/// out; the rest of the round is applied and the round is a success.
#[tokio::test]
async fn a_private_endpoint_gone_is_left_out_and_the_rest_applied() {
    let (srv, _, _arm, _up) = one_endpoint_refused(404).await;
    srv.stop().await;
}

/// A private endpoint ARM refuses with 401 (one in another tenant) is left
/// out like one that is gone: the round is applied without it, counts as a
/// success, and `/status` lists the endpoint as skipped with the reason.
#[tokio::test]
async fn a_private_endpoint_arm_refuses_is_left_out_and_the_rest_applied() {
    let (srv, other, _arm, _up) = one_endpoint_refused(401).await;
    let (_, status) = http_request(srv.http(), "GET", "/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let azure = status["azure"].to_string();
    assert!(
        azure.contains(&other.endpoint_id()) && azure.contains("401"),
        "/status lists the skipped endpoint and why: {status}"
    );
    srv.stop().await;
}

// ---- dependencies and paging -----------------------------------------------------

/// The workspace's key vault and container registry, each behind an
/// approved private endpoint of its own: their FQDNs are served at the
/// addresses the endpoints list (the registry's data endpoint at its own).
#[tokio::test]
async fn a_key_vault_and_a_registry_behind_approved_endpoints_are_served() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let mut c = contoso();
    c.vault_ip = Some("10.1.0.21");
    c.registry_ips = Some(["10.1.0.22", "10.1.0.23"]);
    arm.with(|w| w.put(&c));
    let srv = start_against(&arm, &up, "interval_s = 3600").await;
    assert!(
        until(Duration::from_secs(30), || async {
            synced(&srv, "success").await >= 1.0
        })
        .await,
        "the first round succeeds"
    );
    let [login, data] = c.registry_names();
    assert_eq!(a(srv.addr, &c.vault_name()).await, ["10.1.0.21"]);
    assert_eq!(a(srv.addr, &login).await, ["10.1.0.22"]);
    assert_eq!(a(srv.addr, &data).await, ["10.1.0.23"]);
    assert_eq!(
        a(srv.addr, "stmlwcontoso.blob.core.windows.net").await,
        ["10.1.0.20"]
    );
    // Each from its own resource.
    for (name, id) in [(c.vault_name(), c.vault_id()), (login, c.registry_id())] {
        let (_, rows) = http_request(srv.http(), "GET", &format!("/records?name={name}")).await;
        assert!(rows.contains(&format!("\"at\": \"azure {id}\"")), "{rows}");
    }
    srv.stop().await;
}

/// Online endpoints listed over three pages (two a page, `nextLink` with
/// a `$skipToken`): every endpoint of every page is served.
#[tokio::test]
async fn online_endpoints_over_several_pages_are_all_served() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let mut c = contoso();
    c.online_endpoints = ["ep-a", "ep-b", "ep-c", "ep-d", "ep-e"]
        .map(String::from)
        .to_vec();
    arm.with(|w| {
        w.page_size = 2;
        w.put(&c);
    });
    // ARM's lists, page by page (Resource Graph gives them as rows).
    let srv = start_against(&arm, &up, "interval_s = 3600\ninventory = \"arm\"").await;
    assert!(
        until(Duration::from_secs(30), || async {
            synced(&srv, "success").await >= 1.0
        })
        .await,
        "the first round succeeds"
    );
    for ep in &c.online_endpoints {
        let name = format!("{ep}.eastus.inference.ml.azure.com");
        assert_eq!(a(srv.addr, &name).await, ["10.1.0.7"], "{name}");
    }
    let pages: Vec<String> = arm
        .seen()
        .into_iter()
        .filter(|r| r.path.ends_with("/onlineEndpoints"))
        .map(|r| r.query)
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages.iter().any(|q| q.contains("$skipToken=2"))
            && pages.iter().any(|q| q.contains("$skipToken=4")),
        "{pages:?}"
    );
    srv.stop().await;
}

// ---- the file's workspace and Azure's ---------------------------------------------

/// The file's `[[workspace]]` with a discovered workspace's id is served,
/// and the warning names both and says where they differ: here the API
/// address only.
#[tokio::test]
async fn where_the_files_workspace_and_azures_differ_is_logged() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let rest = format!(
        "{}[[workspace]]\nname = \"mlw-contoso\"\nid = \"{GUID}\"\nregion = \"eastus\"\n\
         ip = \"10.8.0.5\"\nnotebook_ip = \"10.1.0.6\"\ninference_ip = \"10.1.0.7\"\n\
         instances = [\"ci-alice\"]\nonline_endpoints = [\"fraud-score\"]\n",
        arm.section("interval_s = 3600")
    );
    let text = TestConfig {
        upstreams: &[up.addr],
        server: "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]",
        rest: &rest,
        ..TestConfig::default()
    }
    .text();
    let p = tokio::task::spawn_blocking(move || Process::start(&text, "text", None))
        .await
        .unwrap();
    let line = logged(&p, "is also discovered in Azure").await;
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains(&format!(
            "workspace mlw-contoso is also discovered in Azure (azure {}): the file's \
             [[workspace]] is served",
            contoso().resource_id()
        )),
        "{line}"
    );
    let (_, differ) = line
        .split_once(", though they differ in ")
        .unwrap_or_else(|| panic!("says where they differ: {line}"));
    assert_eq!(
        differ.trim_end(),
        "ip (10.8.0.5 in the file, 10.1.0.5 in Azure)",
        "{line}"
    );
    assert_eq!(a(p.addr, &contoso().api_name()).await, ["10.8.0.5"]);
}

// ---- the state file ----------------------------------------------------------------

/// The state file is written aside and renamed over the old one: a reader
/// sees the old file or the new, whole, never a part (a new inode each
/// save, nothing left beside it).
#[tokio::test]
async fn the_state_file_is_replaced_whole() {
    use std::os::unix::fs::MetadataExt;
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
    let whole = || {
        std::fs::read_to_string(&state)
            .ok()
            .filter(|t| serde_json::from_str::<serde_json::Value>(t).is_ok())
    };
    assert!(
        until(Duration::from_secs(30), || async { whole().is_some() }).await,
        "state saved"
    );
    let first = std::fs::metadata(&state).unwrap().ino();

    let mut c = contoso();
    c.computes.push(("ci-carol".into(), "ComputeInstance"));
    arm.with(|w| w.put(&c));
    // Every read while the next save comes finds a whole JSON document.
    assert!(
        until(Duration::from_secs(30), || async {
            let text = std::fs::read_to_string(&state).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("a partial state file: {e}: {text:?}"));
            text.contains("ci-carol")
        })
        .await,
        "the change saved"
    );
    assert_ne!(
        std::fs::metadata(&state).unwrap().ino(),
        first,
        "a new file renamed over the old, not the old rewritten"
    );
    let left: Vec<String> = std::fs::read_dir(state.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["azure.json"], "nothing left beside it");
    srv.stop().await;
}

/// A child process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A save into a folder amldns may not write leaves the last state file
/// whole and nothing beside it, makes `/healthz` degraded, and is tried
/// again at the next round, changed or not, until it succeeds. The folder
/// is read-only for amldns: its mode, and, when the test runs as root (whom
/// modes do not stop), amldns runs as nobody.
#[tokio::test]
async fn a_state_file_that_cannot_be_saved_degrades_health_and_is_saved_later() {
    use std::os::unix::fs::PermissionsExt;
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode(dir.path(), 0o755);
    let folder = dir.path().join("state");
    std::fs::create_dir(&folder).unwrap();
    // SAFETY: geteuid only reads the process's ids.
    let root = unsafe { libc::geteuid() } == 0;
    const NOBODY: u32 = 65534;
    if root {
        std::os::unix::fs::chown(&folder, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let state = folder.join("azure.json");
    let config = dir.path().join("amldns.toml");
    let rest = arm.section(&format!(
        "interval_s = 1\nstate_file = {:?}",
        state.display().to_string()
    ));
    let text = TestConfig {
        upstreams: &[up.addr],
        server: "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]",
        metrics: true,
        rest: &rest,
        ..TestConfig::default()
    }
    .text();
    std::fs::write(&config, text).unwrap();
    mode(&config, 0o644);
    let log = dir.path().join("stderr.log");
    let bin = env!("CARGO_BIN_EXE_amldns");
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &NOBODY.to_string(),
            "--regid",
            &NOBODY.to_string(),
            "--clear-groups",
            bin,
        ]);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(["serve", "--watch", "off", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _child = Killed(cmd.spawn().unwrap());
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        until(Duration::from_secs(30), || async {
            read().contains("amldns serving")
        })
        .await,
        "{}",
        read()
    );
    let field = |key: &str| -> SocketAddr {
        let t = read();
        let at = t.find(&format!("{key}=")).unwrap() + key.len() + 1;
        t[at..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let (dns, http) = (field("listen"), field("metrics"));
    let health = || async { http_request(http, "GET", "/healthz").await.1 };
    assert!(
        until(Duration::from_secs(30), || async { state.exists() }).await,
        "state saved: {}",
        read()
    );
    let before = std::fs::read_to_string(&state).unwrap();

    // Read-only, and a round that changes something must save.
    mode(&folder, 0o555);
    let mut c = contoso();
    c.computes.push(("ci-carol".into(), "ComputeInstance"));
    arm.with(|w| w.put(&c));
    let carol = "ci-carol.eastus.instances.azureml.ms";
    assert!(
        until(Duration::from_secs(30), || async {
            a(dns, carol).await == ["10.1.0.5"]
        })
        .await,
        "the change is served"
    );
    assert!(
        until(Duration::from_secs(30), || async {
            health().await.contains("\"degraded\"")
        })
        .await,
        "a failed save degrades /healthz: {}\n{}",
        health().await,
        read()
    );
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        before,
        "the last file stays whole"
    );
    let left: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["azure.json"], "nothing partial beside it");

    // Writable again: the next round saves, though it finds nothing new.
    mode(&folder, 0o755);
    assert!(
        until(Duration::from_secs(30), || async {
            std::fs::read_to_string(&state).is_ok_and(|t| t.contains("ci-carol"))
        })
        .await,
        "saved once it can be: {}",
        read()
    );
    assert!(
        until(Duration::from_secs(30), || async {
            health().await.contains("\"ok\"")
        })
        .await,
        "{}",
        health().await
    );
}

// ---- one resource behind endpoints in two VNets ------------------------------------

/// contoso (and its storage account) behind a second endpoint in a spoke
/// VNet, and another workspace behind one endpoint.
fn hub_and_spoke() -> (Ws, Ws) {
    let mut w = contoso();
    w.spoke = Some(arm::Spoke {
        vnet: "vnet-spoke",
        ips: ["10.2.0.5", "10.2.0.6", "10.2.0.7"],
        storage_ip: Some("10.2.0.20"),
    });
    let mut other = Ws::new("mlw-other", NIC_WS, "eastus2");
    other.ips = ["10.3.0.5", "10.3.0.6", "10.3.0.7"];
    (w, other)
}

#[tokio::test]
async fn names_behind_endpoints_in_two_vnets_are_left_out_and_the_rest_served() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let (w, other) = hub_and_spoke();
    arm.with(|world| {
        world.put(&w);
        world.put(&other);
    });
    let text = TestConfig {
        upstreams: &[up.addr],
        server: "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]",
        rest: &arm.section("interval_s = 3600"),
        ..TestConfig::default()
    }
    .text();
    let p = tokio::task::spawn_blocking(move || Process::start(&text, "text", None))
        .await
        .unwrap();
    let line = logged(&p, "given two different answers by Azure").await;
    for said in [
        "WARN",
        &w.endpoint_id(),
        &w.spoke_endpoint_id(),
        "virtual_networks",
    ] {
        assert!(line.contains(said), "{said}: {line}");
    }
    assert_eq!(a(p.addr, &other.api_name()).await, ["10.3.0.5"]);
    for name in [w.api_name(), w.storage_name()] {
        let r = udp_query(p.addr, &name, RecordType::A).await;
        assert!(!r.metadata.authoritative, "{name} is not served: {r:?}");
    }
}

#[tokio::test]
async fn virtual_networks_picks_the_endpoint_whose_answers_are_served() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let (w, other) = hub_and_spoke();
    arm.with(|world| {
        world.put(&w);
        world.put(&other);
    });
    for (vnet, api, storage) in [
        ("vnet-spoke", "10.2.0.5", "10.2.0.20"),
        (arm::VNET, "10.1.0.5", "10.1.0.20"),
    ] {
        let extra = format!(
            "interval_s = 3600\nvirtual_networks = [\"{}\"]",
            arm::vnet_id(vnet).to_ascii_uppercase()
        );
        let srv = serving(&up, &arm.section(&extra), "success").await;
        assert_eq!(a(srv.addr, &w.api_name()).await, [api], "{vnet}");
        assert_eq!(a(srv.addr, &w.storage_name()).await, [storage], "{vnet}");
        // The other workspace's endpoint is in the hub VNet.
        let served = udp_query(srv.addr, &other.api_name(), RecordType::A).await;
        assert_eq!(served.metadata.authoritative, vnet == arm::VNET, "{vnet}");
        srv.stop().await;
    }
}

// ---- the regional inference wildcard ------------------------------------------------

#[tokio::test]
async fn the_docs_regional_inference_wildcard_marks_the_inference_ip_only() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    // Endpoints listing `*.eastus.inference.ml.azure.com`, as Microsoft's
    // custom-DNS doc shows: one eastus workspace, then a second one.
    let mut w = contoso();
    w.regional_inference = true;
    let mut second = Ws::new("mlw-second", NIC_WS, "eastus");
    second.regional_inference = true;
    second.ips = ["10.3.0.5", "10.3.0.6", "10.3.0.7"];
    second.online_endpoints = vec!["churn".into()];
    arm.with(|world| world.put(&w));
    for world in [vec![], vec![second]] {
        arm.with(|a| world.iter().for_each(|ws| a.put(ws)));
        let srv = serving(&up, &arm.section("interval_s = 3600"), "success").await;
        assert_eq!(
            a(srv.addr, "fraud-score.eastus.inference.ml.azure.com").await,
            ["10.1.0.7"]
        );
        if !world.is_empty() {
            assert_eq!(
                a(srv.addr, "churn.eastus.inference.ml.azure.com").await,
                ["10.3.0.7"]
            );
        }
        let r = udp_query(
            srv.addr,
            "someone-elses-endpoint.eastus.inference.ml.azure.com",
            RecordType::A,
        )
        .await;
        assert!(!r.metadata.authoritative, "forwarded, not captured: {r:?}");
        srv.stop().await;
    }
}

// ---- several replicas: one publisher, a discovery file ---------------------------

#[tokio::test]
async fn a_discovery_file_written_by_discover_watch_feeds_another_server() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    // The replica starts before the publisher has written anything.
    let text = TestConfig {
        upstreams: &[up.addr],
        metrics: true,
        rest: "[[import]]\npath = \"shared/discovery.json\"\noptional = true\n",
        ..TestConfig::default()
    }
    .text();
    let srv = start_with(&text, &[("shared/README", "")], WatchMode::Poll).await;
    let api = contoso().api_name();
    let before = udp_query(srv.addr, &api, RecordType::A).await;
    assert!(!before.metadata.authoritative, "nothing yet: {before:?}");

    let dir = tempfile::tempdir().unwrap();
    let config = discover_config(dir.path(), &arm, "managed-identity");
    let out = srv.dir.join("shared/discovery.json");
    let mut publisher = Command::new(env!("CARGO_BIN_EXE_amldns"))
        .args(["discover", "--watch", "--out"])
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .env_clear()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let served = until(Duration::from_secs(30), || async {
        a(srv.addr, &api).await == ["10.1.0.5"]
    })
    .await;
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert!(served, "the replica serves the discovery file's names");
    assert_eq!(
        a(srv.addr, "stmlwcontoso.blob.core.windows.net").await,
        ["10.1.0.20"]
    );
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(file["amldns_discovery"], 1, "{file}");
    srv.stop().await;
}

/// `discover --watch` brakes as a server does, since replicas serve its
/// file: a round that would remove more than half of the names written
/// leaves them in the file, and the next round that removes the same names
/// removes them.
#[tokio::test]
async fn discover_watch_holds_a_round_that_would_remove_most_names() {
    let arm = ArmStandIn::start().await;
    arm.with(|w| world().iter().for_each(|ws| w.put(ws)));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    let text = format!(
        "[upstream]\nservers = [\"127.0.0.1:9\"]\n{}",
        arm.section("auth = \"managed-identity\"\ninterval_s = 1")
    );
    std::fs::write(&config, text).unwrap();
    let out = dir.path().join("discovery.json");
    let log = dir.path().join("stderr");
    let mut publisher = Command::new(env!("CARGO_BIN_EXE_amldns"))
        .args(["discover", "--watch", "--out"])
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .env_clear()
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The file holds each workspace by its id.
    let hub = HUB;
    let written = || std::fs::read_to_string(&out).unwrap_or_default();
    let first = until(Duration::from_secs(30), || async {
        written().contains(hub)
    })
    .await;
    // Every workspace gone at once, as when the identity loses its role.
    arm.with(|w| w.clear_workspaces());
    let held = until(Duration::from_secs(30), || async {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("the removals wait until the next round agrees")
    })
    .await;
    let kept_while_held = written().contains(hub);
    let removed = until(Duration::from_secs(30), || async {
        !written().contains(hub)
    })
    .await;
    let _ = publisher.kill();
    let _ = publisher.wait();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(first, "the first round is written: {stderr}");
    assert!(held, "the round removing every name is held: {stderr}");
    assert!(
        kept_while_held,
        "the held round leaves the names in the file"
    );
    assert!(removed, "the next round agreeing removes them: {stderr}");
}

// ---- the network: a corporate CA, a proxy, failures that pass, hostile links --

/// `amldns discover` (managed identity) with `[azure]` pointing ARM at
/// `arm_url` and IMDS at `imds_url`, plus `extra`, and only `env`.
async fn discover_at(
    arm_url: &str,
    imds_url: &str,
    extra: &str,
    env: &[(&str, String)],
) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nservers = [\"127.0.0.1:9\"]\n[azure]\nsubscriptions = [\"{}\"]\n\
             arm_endpoint = \"{arm_url}\"\nimds_endpoint = \"{imds_url}\"\n\
             max_reads_per_second = 10000\n{extra}\n",
            arm::SUB
        ),
    )
    .unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        discover(&config, &env)
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ca_file() -> String {
    format!("ca_file = \"{}\"", arm::test_ca().display())
}

/// ARM behind a TLS-inspecting proxy presents a certificate from the
/// proxy's CA: trusted once `ca_file` or the system store has that CA,
/// refused (unknown issuer) with the built-in roots alone.
#[tokio::test]
async fn a_corporate_ca_is_trusted_from_ca_file_or_the_system_store() {
    let arm = ArmStandIn::start_tls().await;
    arm.with(|w| w.put(&contoso()));
    let url = arm.url();
    let (ok, _, stderr) = discover_at(&url, &url, "", &[]).await;
    assert!(!ok && stderr.contains("UnknownIssuer"), "{stderr}");
    // A certificate not trusted stays so: asked once, not four times.
    assert_eq!(arm.with(|w| w.connections), 1);
    let (ok, stdout, stderr) = discover_at(&url, &url, &ca_file(), &[]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("name = \"mlw-contoso\""), "{stdout}");
    let env = [("SSL_CERT_FILE", arm::test_ca().display().to_string())];
    let (ok, stdout, stderr) = discover_at(&url, &url, "", &env).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("name = \"mlw-contoso\""), "{stdout}");
    // A ca_file that holds no certificate is said, not ignored.
    let (ok, _, stderr) = discover_at(&url, &url, "ca_file = \"/dev/null\"", &[]).await;
    assert!(!ok && stderr.contains("no PEM certificate"), "{stderr}");
}

/// With `HTTPS_PROXY`, ARM is reached through a CONNECT tunnel (TLS
/// inside it, checked end to end); IMDS never is, even over https;
/// `NO_PROXY` sends ARM direct.
#[tokio::test]
async fn arm_goes_through_the_proxy_imds_never_and_no_proxy_bypasses_it() {
    let mut arm = ArmStandIn::start_tls().await;
    arm.with(|w| w.put(&contoso()));
    let imds = arm.also_tls().await;
    let proxy = arm::ConnectProxy::start(Vec::new()).await;
    let env = [("HTTPS_PROXY", proxy.url())];
    let (ok, stdout, stderr) = discover_at(&arm.url(), &imds, &ca_file(), &env).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("name = \"mlw-contoso\""), "{stdout}");
    let tunnels = proxy.tunnels();
    let arm_at = arm.addr.to_string();
    assert!(!tunnels.is_empty(), "ARM went direct");
    assert!(
        tunnels.iter().all(|t| *t == arm_at),
        "{tunnels:?} (IMDS at {imds})"
    );
    assert!(imds_requests(&arm) >= 1, "IMDS was asked, directly");

    let before = tunnels.len();
    let env = [
        ("https_proxy", proxy.url()),
        ("no_proxy", "localhost,127.0.0.0/8".to_string()),
    ];
    let (ok, _, stderr) = discover_at(&arm.url(), &imds, &ca_file(), &env).await;
    assert!(ok, "{stderr}");
    assert_eq!(proxy.tunnels().len(), before, "NO_PROXY is honoured");
}

/// Some providers write `nextLink` with the scheme's port spelled out
/// (`https://management.azure.com:443/…`): the same host as the endpoint
/// without it. ARM here sits at https's default port behind the proxy.
#[tokio::test]
async fn a_next_link_with_the_default_port_spelled_out_is_followed() {
    let arm = ArmStandIn::start_tls().await;
    let mut ws = contoso();
    ws.computes = (0..5)
        .map(|i| (format!("ci-{i}"), "ComputeInstance"))
        .collect();
    arm.with(|w| {
        w.put(&ws);
        w.link_base = Some("https://127.0.0.1:443".into());
    });
    let proxy = arm::ConnectProxy::start(vec![("127.0.0.1:443".into(), arm.addr)]).await;
    let env = [("HTTPS_PROXY", proxy.url())];
    let imds = ArmStandIn::start().await;
    let (ok, stdout, stderr) =
        discover_at("https://127.0.0.1", &imds.url(), &ca_file(), &env).await;
    assert!(ok, "{stderr}");
    for i in 0..5 {
        assert!(stdout.contains(&format!("\"ci-{i}\"")), "{stdout}");
    }
    let pages = arm
        .seen()
        .iter()
        .filter(|r| r.path.ends_with("/computes"))
        .count();
    assert_eq!(pages, 3, "five instances, two a page");
}

/// 429 with Retry-After, then 503 twice (one without Retry-After: the
/// backoff): each request is tried again and the round works; the retries
/// are counted.
#[tokio::test]
async fn throttling_and_outages_that_pass_are_retried_within_the_round() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| {
        w.put(&contoso());
        w.script.extend([
            (429, vec![("retry-after", "1".into())]),
            (503, vec![]),
            (503, vec![("retry-after", "0".into())]),
        ]);
    });
    let srv = start_against(&arm, &up, "").await;
    rounds_ended(&srv, "success", 1.0).await;
    let text = scrape(&srv).await;
    assert_eq!(
        metric(&text, amldns::metrics::AZURE_RETRIES_TOTAL, &[]),
        3.0
    );
    for failed in ["throttled", "unavailable"] {
        assert_eq!(synced(&srv, failed).await, 0.0, "{failed}");
    }
    assert_eq!(a(srv.addr, &contoso().api_name()).await, ["10.1.0.5"]);
    // The 429 was waited for: the try after it came a second later.
    let seen = arm.seen();
    let arm_times: Vec<_> = seen
        .iter()
        .filter(|r| r.path.starts_with("/subscriptions") || r.path == arm::GRAPH_PATH)
        .map(|r| r.at)
        .collect();
    assert!(arm_times[1] - arm_times[0] >= Duration::from_millis(950));
    srv.stop().await;
}

/// A request that fails every time is sent four times, not more, and
/// then fails the round.
#[tokio::test]
async fn a_request_failing_every_time_is_tried_four_times() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| {
        w.put(&contoso());
        w.script
            .extend((0..10).map(|_| (500, vec![("retry-after", "0".into())])));
    });
    let srv = start_against(&arm, &up, "").await;
    rounds_ended(&srv, "unavailable", 1.0).await;
    // The round's first request, Resource Graph's query for the workspaces.
    assert_eq!(arm.graph_queries(), 4);
    assert_eq!(arm.arm_requests(), 0);
    let text = scrape(&srv).await;
    assert_eq!(
        metric(&text, amldns::metrics::AZURE_RETRIES_TOTAL, &[]),
        3.0
    );
    srv.stop().await;
}

/// ARM saying few reads are left slows the reads below
/// `max_reads_per_second` (40 left: 10 a second).
#[tokio::test]
async fn reads_slow_down_when_arm_says_few_are_left() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| {
        w.put(&contoso());
        w.reads_remaining = Some(40);
    });
    // ARM's own reads, which carry that header.
    let srv = start_against(&arm, &up, "inventory = \"arm\"").await;
    rounds_ended(&srv, "success", 1.0).await;
    let text = scrape(&srv).await;
    let slowed = metric(&text, amldns::metrics::AZURE_READS_SLOWED_TOTAL, &[]);
    let times: Vec<_> = arm
        .seen()
        .iter()
        .filter(|r| r.path.starts_with("/subscriptions"))
        .map(|r| r.at)
        .collect();
    assert!(
        slowed >= (times.len() - 1) as f64,
        "{slowed} of {}",
        times.len()
    );
    // At most 10 a second once the first answer has said so: never
    // faster (a slow machine only spaces them more).
    let span = *times.last().unwrap() - times[1];
    assert!(
        span >= Duration::from_millis(90) * (times.len() as u32 - 2),
        "{} reads in {span:?}",
        times.len()
    );
    srv.stop().await;
}

/// A list whose `nextLink` names the page just read ends as a failure at
/// once: no loop, no memory growing.
#[tokio::test]
async fn a_next_link_back_to_itself_ends_the_list() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let ws = contoso();
    let computes = format!("{}/computes", ws.resource_id());
    arm.with(|w| {
        w.put(&ws);
        let key = computes.to_ascii_lowercase();
        w.lists.remove(&key);
        let me = format!("{}{computes}?api-version={}", arm.url(), arm::ML_API);
        w.docs
            .insert(key, serde_json::json!({"value": [], "nextLink": me}));
    });
    let srv = start_against(&arm, &up, "").await;
    rounds_ended(&srv, "malformed", 1.0).await;
    let asked = arm
        .seen()
        .iter()
        .filter(|r| r.path.eq_ignore_ascii_case(&computes))
        .count();
    assert_eq!(asked, 1, "the page is read once");
    let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
    assert!(health.contains("already read"), "{health}");
    srv.stop().await;
}

/// A private endpoint id that would move the request elsewhere
/// (`@host:port/…` after the endpoint's authority) is not asked: the token
/// never reaches that host.
#[tokio::test]
async fn an_id_that_would_leave_arm_is_never_asked() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let elsewhere = ArmStandIn::start_at("127.0.0.2:0", false).await;
    let ws = contoso();
    let hostile = format!(
        "@{}/subscriptions/{}/resourceGroups/rg-ml/providers/Microsoft.Network/privateEndpoints/x",
        elsewhere.addr,
        arm::SUB
    );
    arm.with(|w| {
        w.put(&ws);
        w.add_connection(&ws, &hostile);
    });
    let srv = start_against(&arm, &up, "").await;
    rounds_ended(&srv, "malformed", 1.0).await;
    assert_eq!(elsewhere.seen().len(), 0, "nothing went to 127.0.0.2");
    assert!(arm.seen().iter().all(|r| !r.path.contains('@')));
    let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
    assert!(health.contains("not an ARM resource path"), "{health}");
    srv.stop().await;
}

/// IMDS answering 410 (updating itself) and 5xx is asked again; the round
/// works once it answers.
#[tokio::test]
async fn imds_is_asked_again_on_410_and_5xx() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| {
        w.put(&contoso());
        w.imds_script.extend([
            (410, vec![("retry-after", "0".into())]),
            (410, vec![("retry-after", "0".into())]),
            (503, vec![("retry-after", "0".into())]),
        ]);
    });
    let srv = start_against(&arm, &up, "").await;
    rounds_ended(&srv, "success", 1.0).await;
    assert_eq!(synced(&srv, "token").await, 0.0);
    assert_eq!(imds_requests(&arm), 4);
    srv.stop().await;
}

/// The metrics address of a `serve` child, from its "amldns serving" line.
fn metrics_of(p: &Process) -> SocketAddr {
    let line = p.wait_for_line("amldns serving");
    let at = line.find("metrics=").expect("a metrics field") + "metrics=".len();
    line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// contoso in the first subscription, another workspace in the second.
fn two_subscriptions() -> (Ws, Ws) {
    let (c, mut other) = contoso_and_other();
    other.sub = arm::SUB2.into();
    (c, other)
}

/// A subscription ARM no longer knows (404 `SubscriptionNotFound`) keeps
/// its last good names while the other subscription's changes are served;
/// the round counts as failed, `/healthz` names the subscription, and the
/// log carries ARM's error code and correlation id.
#[tokio::test]
async fn a_subscription_arm_cannot_find_keeps_its_names_while_another_updates() {
    lost_subscription_keeps_its_names(
        "inventory = \"arm\"",
        &["SubscriptionNotFound", "correlation_id=c0"],
    )
    .await;
}

/// The same with Resource Graph, which answers for the subscriptions it
/// can read and leaves the others out without an error: one it does not
/// show is not taken for one without workspaces.
#[tokio::test]
async fn a_subscription_resource_graph_does_not_show_keeps_its_names() {
    lost_subscription_keeps_its_names("", &["Resource Graph does not show subscription"]).await;
}

/// Two subscriptions' workspaces (the second's is `other`, `prepare`d
/// further), served by a process whose `[azure]` is `section`, at a round a
/// second; once `other` is served, `fail` makes what covers it unreadable
/// while the first subscription's workspace gains a compute instance,
/// `ci-carol`, and that change is awaited. The process, its metrics
/// listener, `other`, and the stand-ins, which must outlive it.
async fn one_scope_fails(
    prepare: impl FnOnce(&mut arm::World),
    section: impl FnOnce(&ArmStandIn) -> String,
    fail: impl FnOnce(&mut arm::World),
) -> (Process, SocketAddr, Ws, ArmStandIn, StandIn) {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let (c, other) = two_subscriptions();
    arm.with(|w| {
        w.put(&c);
        w.put(&other);
        prepare(w);
    });
    let text = TestConfig {
        upstreams: &[up.addr],
        server: "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]",
        metrics: true,
        rest: &section(&arm),
        ..TestConfig::default()
    }
    .text();
    let p = tokio::task::spawn_blocking(move || Process::start(&text, "text", None))
        .await
        .unwrap();
    let http = metrics_of(&p);
    assert!(
        until(Duration::from_secs(30), || async {
            a(p.addr, &other.api_name()).await == ["10.6.0.5"]
        })
        .await,
        "{:#?}",
        p.lines()
    );
    let mut changed = contoso();
    changed
        .computes
        .push(("ci-carol".into(), "ComputeInstance"));
    arm.with(|w| {
        fail(w);
        w.put(&changed);
    });
    assert!(
        until(Duration::from_secs(30), || async {
            a(p.addr, "ci-carol.eastus.instances.azureml.ms").await == ["10.1.0.5"]
        })
        .await,
        "what is still readable is updated: {:#?}",
        p.lines()
    );
    (p, http, other, arm, up)
}

async fn lost_subscription_keeps_its_names(inventory: &str, said: &[&str]) {
    let (p, http, other, _arm, _up) = one_scope_fails(
        |_| {},
        |arm| {
            arm.section_for(
                &[arm::SUB, arm::SUB2],
                &format!("interval_s = 1\n{inventory}"),
            )
        },
        |w| w.lose_subscription(arm::SUB2),
    )
    .await;
    assert_eq!(
        a(p.addr, &other.api_name()).await,
        ["10.6.0.5"],
        "the lost subscription keeps its last good names"
    );
    let (_, health) = http_request(http, "GET", "/healthz").await;
    assert!(
        health.contains("\"degraded\"") && health.contains(arm::SUB2),
        "{health}"
    );
    let metrics = http_request(http, "GET", "/metrics").await.1;
    assert!(
        metric(&metrics, AZURE_SYNC_TOTAL, &[("result", "not_found")]) >= 1.0,
        "{metrics}"
    );
    let line = p
        .lines()
        .into_iter()
        .find(|l| l.contains("Azure discovery failed for subscription"))
        .unwrap_or_else(|| panic!("{:#?}", p.lines()));
    assert!(
        line.contains(arm::SUB2) && said.iter().all(|s| line.contains(s)),
        "{line}"
    );
}

/// `amldns discover` with a subscription ARM cannot find says so and
/// exits 1, rather than printing the others' workspaces as all there is.
#[tokio::test]
async fn discover_names_a_subscription_it_cannot_read() {
    let arm = ArmStandIn::start().await;
    let (c, other) = two_subscriptions();
    arm.with(|w| {
        w.put(&c);
        w.put(&other);
        w.lose_subscription(arm::SUB2);
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nservers = [\"127.0.0.1:9\"]\n{}",
            arm.section_for(&[arm::SUB, arm::SUB2], "inventory = \"arm\"")
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || discover(&config, &[]))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("subscription {}", arm::SUB2))
            && stderr.contains("SubscriptionNotFound"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A workspace ARM lists without `properties.workspaceId` is left out and
/// listed in `/status` with the reason; the others are served and the
/// round is a success.
#[tokio::test]
async fn a_workspace_without_its_id_is_skipped_and_listed() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let (c, mut other) = contoso_and_other();
    other.workspace_id_listed = false;
    arm.with(|w| {
        w.put(&c);
        w.put(&other);
    });
    let srv = start_against(&arm, &up, "interval_s = 3600").await;
    first_round_succeeds(&srv).await;
    assert_eq!(a(srv.addr, &c.api_name()).await, ["10.1.0.5"]);
    let (_, status) = http_request(srv.http(), "GET", "/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let skipped = status["azure"]["skipped"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        skipped
            .iter()
            .any(|s| s["resource"] == other.resource_id().as_str()
                && s["reason"].as_str().unwrap_or("").contains("workspaceId")),
        "{status}"
    );
    srv.stop().await;
}

/// A state file holding a name the config's own `[[record]]` gives does
/// not keep `serve` from starting (`check` accepts that config): the
/// record is served.
#[tokio::test]
async fn a_state_file_colliding_with_the_config_does_not_stop_the_start() {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    arm.with(|w| w.put(&contoso()));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("azure.json");
    let extra = format!(
        "interval_s = 3600\nstate_file = {:?}",
        state.display().to_string()
    );
    let srv = start_against(&arm, &up, &extra).await;
    assert!(
        until(Duration::from_secs(30), || async { state.exists() }).await,
        "state saved"
    );
    srv.stop().await;

    // ARM down, and the file now answers the storage account otherwise.
    arm.set_mode(Mode::Fail(503, vec![]));
    let rest = format!(
        "{}[[record]]\nname = \"stmlwcontoso.blob.core.windows.net\"\na = [\"10.9.9.1\"]\n",
        arm.section(&extra)
    );
    let text = TestConfig {
        upstreams: &[up.addr],
        metrics: true,
        rest: &rest,
        ..TestConfig::default()
    }
    .text();
    let srv = start_with(&text, &[], WatchMode::Off).await;
    assert_eq!(
        a(srv.addr, "stmlwcontoso.blob.core.windows.net").await,
        ["10.9.9.1"]
    );
    rounds_ended(&srv, "unavailable", 1.0).await;
    srv.stop().await;
}

// ---- Resource Graph as the inventory ---------------------------------------------

/// `amldns discover` against `arm` with `extra` in `[azure]`, for at most
/// [`RUN_TIMEOUT`]: whether it succeeded, its TOML and its standard error.
async fn discover_with(arm: &ArmStandIn, extra: &str) -> (bool, String, String) {
    discover_for(arm, extra, RUN_TIMEOUT).await
}

/// [`discover_with`] for at most `limit`.
async fn discover_for(arm: &ArmStandIn, extra: &str, limit: Duration) -> (bool, String, String) {
    discover_over(&arm.section(extra), limit).await
}

/// `amldns discover` with `section` as its `[azure]`, for at most `limit`.
async fn discover_over(section: &str, limit: Duration) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    let text = format!("[upstream]\nservers = [\"127.0.0.1:9\"]\n{section}");
    std::fs::write(&config, text).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_amldns"));
        cmd.args(["discover", "--config"]).arg(&config).env_clear();
        output_for(&mut cmd, limit)
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The same world read both ways gives the same table: every shape (a hub
/// and its project, names on a NIC, other clouds, a key vault and a
/// registry behind endpoints, a second subscription); Resource Graph with
/// a few queries and one computes read per served workspace, ARM with
/// several reads per workspace.
#[tokio::test]
async fn resource_graph_and_arm_give_the_same_table_in_far_fewer_requests() {
    let arm = ArmStandIn::start().await;
    let mut other = Ws::new(
        "mlw-other-sub",
        "7ecd9fba-8888-4999-8aaa-0bbbbbbbbbbb",
        "eastus",
    );
    other.sub = "1c2d3e4f-0000-4000-8000-000000000002".into();
    other.ips = ["10.6.0.5", "10.6.0.6", "10.6.0.7"];
    other.vault_ip = Some("10.6.0.21");
    other.registry_ips = Some(["10.6.0.22", "10.6.0.23"]);
    other.online_endpoints = vec!["ep-other".into()];
    arm.with(|w| {
        world().iter().for_each(|ws| w.put(ws));
        w.put(&other);
        // Resource Graph's pages hold up to 1,000 rows.
        w.graph_page_size = 1000;
    });
    let (ok, by_arm, why) = discover_with(&arm, "inventory = \"arm\"").await;
    assert!(ok, "{why}");
    let arm_reads = arm.arm_requests();
    assert_eq!(arm.graph_queries(), 0);
    let (ok, by_graph, why) = discover_with(&arm, "").await;
    assert!(ok, "{why}");
    assert_eq!(by_graph, by_arm);
    assert_eq!(by_graph.matches("[[workspace]]").count(), 6, "{by_graph}");
    for name in [
        other.vault_name(),
        other.registry_names()[1].clone(),
        "ep-other".into(),
    ] {
        assert!(by_graph.contains(&name), "{name}: {by_graph}");
    }
    // One query for the subscriptions it can read and one per type (7),
    // and ARM only for computes: one list per served workspace and project (7).
    let queries = arm.graph_queries();
    assert_eq!(queries, 8);
    let reads: Vec<String> = arm
        .seen()
        .into_iter()
        .filter(|r| r.path.starts_with("/subscriptions"))
        .skip(arm_reads)
        .map(|r| r.path)
        .collect();
    assert_eq!(reads.len(), 7, "{reads:?}");
    assert!(reads.iter().all(|p| p.ends_with("/computes")), "{reads:?}");
    assert!(
        (queries + reads.len()) * 2 < arm_reads,
        "{queries} + 7 vs {arm_reads}"
    );
}

/// Resource Graph's pages are followed by `$skipToken` to the last: five
/// workspaces at two rows a page are three pages, each query with the
/// subscriptions, `$top` and `objectArray` rows.
#[tokio::test]
async fn resource_graph_pages_follow_the_skip_token() {
    let arm = ArmStandIn::start().await;
    arm.with(|w| fleet(5).iter().for_each(|ws| w.put(ws)));
    let (ok, toml, why) = discover_with(&arm, "").await;
    assert!(ok, "{why}");
    assert_eq!(toml.matches("[[workspace]]").count(), 5, "{toml}");
    let bodies: Vec<serde_json::Value> = graph_bodies(&arm)
        .into_iter()
        .filter(|b| {
            b["query"] == "resources | where type =~ 'microsoft.machinelearningservices/workspaces'"
        })
        .collect();
    let tokens: Vec<_> = bodies
        .iter()
        .map(|b| b["options"]["$skipToken"].clone())
        .collect();
    assert_eq!(tokens, [serde_json::Value::Null, "2".into(), "4".into()]);
    for b in &bodies {
        assert_eq!(b["subscriptions"], serde_json::json!([arm::SUB]));
        assert_eq!(b["options"]["$top"], 1000);
        assert_eq!(b["options"]["resultFormat"], "objectArray");
    }
}

/// A `$skipToken` that comes back ends the query as a failure on the
/// second page: no loop, nothing half-read served.
#[tokio::test]
async fn a_repeated_skip_token_fails_the_list() {
    let arm = ArmStandIn::start().await;
    arm.with(|w| {
        fleet(5).iter().for_each(|ws| w.put(ws));
        w.graph_stuck_token = Some("again".into());
    });
    let (ok, toml, why) = discover_with(&arm, "").await;
    assert!(!ok, "{toml}");
    assert!(why.contains("$skipToken"), "{why}");
    // The subscriptions, then the workspaces' two pages.
    assert_eq!(arm.graph_queries(), 3, "{why}");
}

/// The bodies of the Resource Graph queries `arm` has seen.
fn graph_bodies(arm: &ArmStandIn) -> Vec<serde_json::Value> {
    arm.seen()
        .iter()
        .filter(|r| r.path == arm::GRAPH_PATH && r.method == "POST")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

// ---- management groups -----------------------------------------------------------

const GROUP: &str = "mg-landing-zones";

/// With only `management_groups`, every query names the group and no
/// subscription, and the workspaces of both subscriptions under it are
/// found.
#[tokio::test]
async fn a_management_group_alone_finds_its_subscriptions_workspaces() {
    let arm = ArmStandIn::start().await;
    let (c, other) = two_subscriptions();
    arm.with(|w| {
        w.put(&c);
        w.put(&other);
        w.place(GROUP, &[arm::SUB, arm::SUB2]);
    });
    let (ok, toml, why) = discover_over(&arm.section_over(&[], &[GROUP], ""), RUN_TIMEOUT).await;
    assert!(ok, "{why}");
    for ws in [&c, &other] {
        assert!(toml.contains(&format!("name = \"{}\"", ws.name)), "{toml}");
    }
    let bodies = graph_bodies(&arm);
    assert!(bodies.len() >= 8, "{bodies:?}");
    for b in &bodies {
        assert_eq!(b["managementGroups"], serde_json::json!([GROUP]), "{b}");
        assert!(b.get("subscriptions").is_none(), "{b}");
    }
}

/// A management group and a subscription outside it: both are read, each
/// in queries of its own (Resource Graph takes one or the other).
#[tokio::test]
async fn a_management_group_and_a_subscription_outside_it_are_both_read() {
    let arm = ArmStandIn::start().await;
    let (c, other) = two_subscriptions();
    arm.with(|w| {
        w.put(&c);
        w.put(&other);
        w.place(GROUP, &[arm::SUB2]);
    });
    let (ok, toml, why) =
        discover_over(&arm.section_over(&[arm::SUB], &[GROUP], ""), RUN_TIMEOUT).await;
    assert!(ok, "{why}");
    for ws in [&c, &other] {
        assert!(toml.contains(&format!("name = \"{}\"", ws.name)), "{toml}");
    }
    let bodies = graph_bodies(&arm);
    let over_group = (bodies.iter())
        .filter(|b| {
            b["managementGroups"] == serde_json::json!([GROUP]) && b["subscriptions"].is_null()
        })
        .count();
    let over_sub = (bodies.iter())
        .filter(|b| {
            b["subscriptions"] == serde_json::json!([arm::SUB]) && b["managementGroups"].is_null()
        })
        .count();
    // A query per type and one for the subscriptions, each way.
    assert!(over_group >= 8 && over_sub >= 8, "{bodies:?}");
    assert_eq!(over_group + over_sub, bodies.len(), "{bodies:?}");
}

/// A management group Resource Graph refuses (403) keeps the last good
/// names of the subscriptions under it while the subscription outside it
/// updates; the round counts as denied, `/healthz` names the group, and
/// the log carries ARM's error code and correlation id.
#[tokio::test]
async fn a_refused_management_group_keeps_its_subscriptions_names() {
    let (p, http, other, _arm, _up) = one_scope_fails(
        |w| w.place(GROUP, &[arm::SUB2]),
        |arm| arm.section_over(&[arm::SUB], &[GROUP], "interval_s = 1"),
        |w| w.refuse(&arm::group_id(GROUP), 403),
    )
    .await;
    // Rounds after the first refused one: a removal held once would be
    // applied by the second.
    let denied = || async {
        let metrics = http_request(http, "GET", "/metrics").await.1;
        metric(&metrics, AZURE_SYNC_TOTAL, &[("result", "denied")])
    };
    assert!(
        until(Duration::from_secs(30), || async { denied().await >= 3.0 }).await,
        "{:#?}",
        p.lines()
    );
    assert_eq!(
        a(p.addr, &other.api_name()).await,
        ["10.6.0.5"],
        "the group's subscription keeps its last good names"
    );
    let (_, health) = http_request(http, "GET", "/healthz").await;
    assert!(
        health.contains("\"degraded\"") && health.contains(&format!("management group {GROUP}")),
        "{health}"
    );
    let (_, status) = http_request(http, "GET", "/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["azure"]["management_groups"], 1, "{status}");
    assert_eq!(status["azure"]["subscriptions"], 1, "{status}");
    let line = p
        .lines()
        .into_iter()
        .find(|l| l.contains("Azure discovery failed for management group"))
        .unwrap_or_else(|| panic!("{:#?}", p.lines()));
    assert!(
        line.contains(GROUP)
            && line.contains("AuthorizationFailed")
            && line.contains("correlation_id=c0"),
        "{line}"
    );
}

// ---- Every approved private endpoint in scope ------------------------------------

/// With `private_endpoints = "all"`, every other approved private endpoint
/// in scope gives the names it lists under a zone of the private-link
/// catalogue: a Foundry account's three, a search service's, an ML
/// registry's. A name outside the catalogue is said and not served; a
/// pending endpoint gives nothing; one outside `resource_groups` neither.
/// The default gives none of them. The same through both inventories.
#[tokio::test]
async fn private_endpoints_all_serves_every_approved_endpoint_in_scope() {
    let arm = ArmStandIn::start().await;
    let rg = format!("/subscriptions/{}/resourceGroups/rg-ai/providers", arm::SUB);
    let foundry = format!("{rg}/Microsoft.CognitiveServices/accounts/contoso-ai");
    let search = format!("{rg}/Microsoft.Search/searchServices/contoso-srch");
    let registry = format!("{rg}/Microsoft.MachineLearningServices/registries/contoso-reg");
    let odd = format!("{rg}/Microsoft.ContainerService/managedClusters/contoso-aks");
    let pending = format!("{rg}/Microsoft.Search/searchServices/waiting-srch");
    let elsewhere = format!(
        "/subscriptions/{}/resourceGroups/rg-other/providers/Microsoft.Search/searchServices/far",
        arm::SUB
    );
    arm.with(|w| {
        world().iter().for_each(|ws| w.put(ws));
        w.put_other_endpoint(
            &foundry,
            "account",
            "Approved",
            &[
                ("contoso-ai.cognitiveservices.azure.com", "10.1.0.40"),
                ("contoso-ai.openai.azure.com", "10.1.0.40"),
                ("contoso-ai.services.ai.azure.com", "10.1.0.40"),
            ],
        );
        w.put_other_endpoint(
            &search,
            "searchService",
            "Approved",
            &[("contoso-srch.search.windows.net", "10.1.0.41")],
        );
        w.put_other_endpoint(
            &registry,
            "amlregistry",
            "Approved",
            &[("contoso-reg.privatelink.api.azureml.ms", "10.1.0.42")],
        );
        w.put_other_endpoint(
            &odd,
            "management",
            "Approved",
            &[
                ("contoso-aks.privatelink.eastus.azmk8s.io", "10.1.0.43"),
                ("contoso-aks.search.windows.net", "10.1.0.44"),
            ],
        );
        w.put_other_endpoint(
            &pending,
            "searchService",
            "Pending",
            &[("waiting-srch.search.windows.net", "10.1.0.45")],
        );
        w.put_other_endpoint(
            &elsewhere,
            "searchService",
            "Approved",
            &[("far.search.windows.net", "10.1.0.46")],
        );
        w.graph_page_size = 1000;
    });
    let record = |name: &str, ip: &str| format!("[[record]]\nname = \"{name}\"\na = [\"{ip}\"]\n");
    let served = [
        ("contoso-ai.cognitiveservices.azure.com", "10.1.0.40"),
        ("contoso-ai.openai.azure.com", "10.1.0.40"),
        ("contoso-ai.services.ai.azure.com", "10.1.0.40"),
        ("contoso-srch.search.windows.net", "10.1.0.41"),
        ("contoso-reg.privatelink.api.azureml.ms", "10.1.0.42"),
        ("contoso-aks.search.windows.net", "10.1.0.44"),
    ];
    let (ok, default, why) = discover_with(&arm, "").await;
    assert!(ok, "{why}");
    for (name, _) in served {
        assert!(!default.contains(name), "{name} without \"all\": {default}");
    }
    let scope = "private_endpoints = \"all\"\nresource_groups = [\"rg-ai\", \"rg-ml\", \"rg-net\"]";
    let mut tables = Vec::new();
    for inventory in ["resource-graph", "arm"] {
        let extra = format!("{scope}\ninventory = \"{inventory}\"");
        let (ok, toml, why) = discover_with(&arm, &extra).await;
        assert!(ok, "{inventory}: {why}");
        for (name, ip) in served {
            assert!(
                toml.contains(&record(name, ip)),
                "{inventory}: {name} in {toml}"
            );
        }
        for name in [
            "waiting-srch",
            "far.search",
            "contoso-aks.privatelink.eastus.azmk8s.io",
        ] {
            assert!(!toml.contains(name), "{inventory}: {name} in {toml}");
        }
        assert!(
            why.contains("contoso-aks.privatelink.eastus.azmk8s.io")
                && why.contains("private-link catalogue"),
            "{inventory}: {why}"
        );
        // The workspaces' own endpoints are not read twice: their names
        // are derived, and listed once.
        assert_eq!(
            toml.matches("[[workspace]]").count(),
            default.matches("[[workspace]]").count()
        );
        tables.push(toml);
    }
    assert_eq!(tables[0], tables[1], "both inventories give the same table");
}
