//! The `amldns` binary's commands, run as a user would.

use std::path::Path;
use std::process::{Command, Output};

const GUID: &str = "fb7e20a0-8891-458b-b969-55ddb3382f51";

fn amldns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amldns"))
        .args(args)
        .env_remove("AMLDNS_CONFIG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/amldns.toml")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn check_passes_on_the_shipped_example() {
    let o = amldns(&["check", "--config", &example()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("workspace mlw-contoso-prod (fb7e20a0-8891-458b-b969-55ddb3382f51, public eastus): 13 names"), "{out}");
    assert!(out.contains(": OK, 29 local names"), "{out}");
}

#[test]
fn check_fails_with_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        format!("[[workspace]]\nname = \"w\"\nid = \"{GUID}\"\nregion = \"eastus\"\nip = \"10.1.0.300\"\n"),
    )
    .unwrap();
    let o = amldns(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}:5:6: \"10.1.0.300\" is not an IP address",
            path.display()
        )),
        "{err}"
    );

    // A missing file says so, with its path.
    let o = amldns(&["check", "--config", "/nonexistent/amldns.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/amldns.toml: cannot read"),
        "{}",
        stderr(&o)
    );

    // Conflicts found while compiling the table are located too.
    std::fs::write(
        &path,
        "[[record]]\nname = \"a.corp.example\"\na = [\"10.0.0.1\"]\n\
         [[record]]\nname = \"A.corp.example.\"\na = [\"10.0.0.2\"]\n",
    )
    .unwrap();
    let o = amldns(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("broken.toml:5:8: a.corp.example is given two different answers"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_prints_warnings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pe.json"),
        format!(
            r#"{{"customDnsConfigs": [
  {{"fqdn": "{GUID}.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}},
  {{"fqdn": "ml-mlw-eastus-{GUID}.eastus.notebooks.azure.net", "ipAddresses": ["10.1.0.6"]}}]}}"#
        ),
    )
    .unwrap();
    let path = dir.path().join("amldns.toml");
    std::fs::write(
        &path,
        format!(
            "[[workspace]]\nname = \"mlw-long-name\"\nid = \"{GUID}\"\nregion = \"eastus\"\nip = \"10.1.0.5\"\n\
             notebook_ip = \"10.1.0.6\"\n[[import]]\npath = \"pe.json\"\n"
        ),
    )
    .unwrap();
    let o = amldns(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("pe.json:3:12: warning: imported notebooks name"),
        "{out}"
    );
    assert!(out.contains("differs from the one derived"), "{out}");
    assert!(
        out.contains("the imported names have no cert.api name"),
        "{out}"
    );
}

#[test]
fn records_json_lists_every_derived_name() {
    let o = amldns(&["records", "--config", &example(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 29);
    let nb = format!("ml-mlw-contoso-prod-eastus-{GUID}");
    for want in [
        format!("{GUID}.workspace.eastus.api.azureml.ms"),
        format!("{GUID}.workspace.eastus.cert.api.azureml.ms"),
        format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
        format!("{GUID}.workspace.eastus.cert.privatelink.api.azureml.ms"),
        format!("{nb}.eastus.notebooks.azure.net"),
        format!("{nb}.notebooks.azure.net"),
        format!("{nb}.eastus.privatelink.notebooks.azure.net"),
        "ci-alice.eastus.instances.azureml.ms".into(),
        "ci-alice-22.eastus.instances.azureml.ms".into(),
        "ci-alice.eastus.instances.ml.azure.ms".into(),
        "ci-alice-22.eastus.instances.ml.azure.ms".into(),
        "fraud-score.eastus.inference.ml.azure.com".into(),
        format!("fraud-score.{GUID}.inference.eastus.privatelink.api.azureml.ms"),
        "stcontoso.privatelink.blob.core.windows.net".into(),
        "kv-contoso.vault.azure.net".into(),
    ] {
        assert!(names.contains(&want.as_str()), "missing {want}");
    }
    let api = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == format!("{GUID}.workspace.eastus.api.azureml.ms"))
        .unwrap();
    assert_eq!(api["a"], serde_json::json!(["10.1.0.5"]));
    assert_eq!(api["zone"], "api.azureml.ms");
    assert_eq!(api["ttl"], 60);
}

#[test]
fn records_in_zone_hosts_and_table_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amldns.toml");
    std::fs::write(
        &path,
        format!(
            "[zone]\nanswer = \"cname\"\n[[workspace]]\nname = \"w\"\nid = \"{GUID}\"\nregion = \"eastus\"\n\
             ip = \"10.1.0.5\"\ninstances_wildcard = true\n"
        ),
    )
    .unwrap();
    let p = path.to_str().unwrap();

    let zone = stdout(&amldns(&["records", "--config", p, "--format", "zone"]));
    assert!(
        zone.contains("; zone privatelink.api.azureml.ms\n$ORIGIN privatelink.api.azureml.ms.\n"),
        "{zone}"
    );
    assert!(
        zone.contains("@\t60\tIN\tSOA\tprivatelink.api.azureml.ms. hostmaster.privatelink.api.azureml.ms. 1 3600 300 2419200 60\n@\t60\tIN\tNS\tlocalhost.\n"),
        "{zone}"
    );
    assert!(
        zone.contains(&format!(
            "{GUID}.workspace.eastus.api.azureml.ms.\t60\tIN\tCNAME\t{GUID}.workspace.eastus.privatelink.api.azureml.ms."
        )),
        "{zone}"
    );
    assert!(
        zone.contains("*.eastus.instances.azureml.ms.\t60\tIN\tA\t10.1.0.5"),
        "{zone}"
    );

    // Hosts files have no aliases or wildcards: chains are followed, wildcards noted.
    let hosts = stdout(&amldns(&["records", "--config", p, "--format", "hosts"]));
    assert!(
        hosts.contains(&format!(
            "10.1.0.5\t{GUID}.workspace.eastus.api.azureml.ms\n"
        )),
        "{hosts}"
    );
    assert!(
        hosts.contains("# *.eastus.instances.azureml.ms is a wildcard"),
        "{hosts}"
    );

    let table = stdout(&amldns(&["records", "--config", p]));
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("CNAME"), "{table}");
}

#[test]
fn version_and_help() {
    let o = amldns(&["--version"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("amldns "), "{}", stdout(&o));
    for cmd in ["serve", "check", "records"] {
        let o = amldns(&[cmd, "--help"]);
        assert!(o.status.success());
        assert!(stdout(&o).contains("--config"), "{cmd}: {}", stdout(&o));
    }
}

/// `amldns records | head` is not an error: no panic, exit 0.
#[test]
fn a_reader_that_stops_early_is_fine() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amldns.toml");
    let mut text = String::new();
    for i in 0..600u32 {
        text += &format!(
            "[[workspace]]\nname = \"w{i}\"\nid = \"{:08x}-0000-4000-8000-000000000000\"\nregion = \"eastus\"\nip = \"10.0.{}.{}\"\n",
            i,
            i / 250,
            i % 250
        );
    }
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_amldns"))
        .args(["records", "--config", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe is closed here, long before the ~400 KB of output is written.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
