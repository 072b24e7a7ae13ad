//! The `amldns` binary's commands, run as a user would.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{GUID, IO_TIMEOUT, output_within, wait_within};

fn amldns(args: &[&str]) -> Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_amldns"))
            .args(args)
            .env_remove("AMLDNS_CONFIG"),
    )
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
    assert!(
        out.contains(&format!(
            "workspace mlw-contoso-prod ({GUID}, public eastus): 14 names"
        )),
        "{out}"
    );
    assert!(out.contains(": OK, 32 local names"), "{out}");
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

/// An empty or truncated config gives nothing to answer and is an
/// error at 1:1, not "OK, 0 local names".
#[test]
fn check_refuses_a_config_with_nothing_local() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amldns.toml");
    for text in ["", "[upstream]\nservers = [\"127.0.0.1:5301\"]\n"] {
        std::fs::write(&path, text).unwrap();
        let o = amldns(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{text:?}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "{}:1:1: the config gives nothing to answer locally: no [[workspace]], \
                 [[record]] or [[import]] match; a truncated or emptied file would empty the table",
                path.display()
            )),
            "{err}"
        );
        assert!(!stdout(&o).contains("OK"), "{}", stdout(&o));
    }
}

/// `serve` refuses to start on a config that gives nothing to answer, before
/// it binds anything (the config listens and forwards on loopback only, should
/// it ever get that far).
#[test]
fn serve_refuses_a_config_with_nothing_local() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amldns.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:9\"]\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_amldns"))
        .args([
            "serve",
            "--watch",
            "off",
            "--config",
            path.to_str().unwrap(),
        ])
        .env_remove("AMLDNS_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("serve started with nothing to answer");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = wait_within(child);
    assert_eq!(status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:1:1: the config gives nothing to answer locally",
            path.display()
        )),
        "{err}"
    );
}

/// An operator's usual config mistakes from the command line: errors exit 1 with their
/// place and what to write; warnings are printed and the check passes.
#[test]
fn check_names_an_operators_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amldns.toml");
    let p = path.to_str().unwrap();
    let local = "[[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n";
    let errors = [
        (
            format!("[server]\nlisten = \"0.0.0.0:53\"\n{local}"),
            "2:10: listen is a list: write listen = [\"0.0.0.0:53\"] (a list)",
        ),
        (
            format!("{local}[[record]]\nname = \"*.api.azureml.ms\"\na = [\"10.1.0.9\"]\n"),
            "5:8: record *.api.azureml.ms would capture names that must keep resolving publicly",
        ),
        (
            format!("[upstream]\nservers = [\"127.0.0.1\"]\n{local}"),
            "2:12: upstream 127.0.0.1:53 is amldns itself (it listens on 0.0.0.0:53)",
        ),
        (
            format!(
                "[[workspace]]\nname = \"mlw\"\nid = \"{GUID}\"\nregion = \"eastus\"\nip = \"10.1.0.5\"\n\
                 notebok_ip = \"10.1.0.6\"\n"
            ),
            "6:1: unknown key `notebok_ip`: did you mean `notebook_ip`?",
        ),
    ];
    for (text, want) in errors {
        std::fs::write(&path, &text).unwrap();
        let o = amldns(&["check", "--config", p]);
        assert_eq!(o.status.code(), Some(1), "{text}");
        assert!(
            stderr(&o).contains(&format!("{p}:{want}")),
            "{}",
            stderr(&o)
        );
    }

    std::fs::write(
        &path,
        format!(
            "[upstream]\nservers = [\"127.0.0.1:5301\"]\n[[workspace]]\nname = \"{}\"\n\
             id = \"{GUID}\"\nregion = \"eastuss\"\nip = \"20.1.0.5\"\n",
            "m".repeat(56)
        ),
    )
    .unwrap();
    let o = amldns(&["check", "--config", p]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "4:8: warning: workspace name \"mmmm",
        "6:10: warning: region \"eastuss\" is not an Azure region of the public cloud: did you \
         mean \"eastus\"?",
        "7:6: warning: answer address 20.1.0.5 is not private",
    ] {
        assert!(out.contains(&format!("{p}:{want}")), "{want} in {out}");
    }
    assert!(out.contains(": OK, 8 local names"), "{out}");
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
    assert_eq!(names.len(), 32);
    let nb = format!("ml-mlw-contoso-prod-eastus-{GUID}");
    for want in [
        format!("{GUID}.workspace.eastus.api.azureml.ms"),
        format!("{GUID}.workspace.eastus.cert.api.azureml.ms"),
        format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
        format!("{GUID}.workspace.eastus.cert.privatelink.api.azureml.ms"),
        format!("{nb}.eastus.notebooks.azure.net"),
        format!("{nb}.notebooks.azure.net"),
        format!("{nb}.eastus.privatelink.notebooks.azure.net"),
        format!("{nb}.privatelink.notebooks.azure.net"),
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
        zone.contains(
            "\n; ==== zone privatelink.api.azureml.ms (privatelink.api.azureml.ms.zone)\n"
        ),
        "{zone}"
    );
    // The SOA amldns serves; no listen address but the default wildcard one,
    // so the NS is out of the zone.
    assert!(
        zone.contains("$ORIGIN privatelink.api.azureml.ms.\nprivatelink.api.azureml.ms. 60 IN SOA ns.privatelink.api.azureml.ms. hostmaster.privatelink.api.azureml.ms. 1 3600 300 2419200 60\n"),
        "{zone}"
    );
    assert!(
        zone.contains("privatelink.api.azureml.ms.\t60\tIN\tNS\tlocalhost.\n"),
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

    // The table: a header, then one row per name (NAME TYPE TTL ANSWER
    // SOURCE, the source being free text); comment lines aside.
    let table = stdout(&amldns(&["records", "--config", p]));
    let mut lines = table.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "TYPE", "TTL", "ANSWER", "SOURCE"],
        "{table}"
    );
    let rows: Vec<String> = lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 5, "a row without its source: {l:?}");
            format!("{} {} {} {}", f[0], f[1], f[2], f[3])
        })
        .collect();
    let api = format!("{GUID}.workspace.eastus");
    let nb = format!("ml-w-eastus-{GUID}");
    let mut want = vec![
        "*.eastus.instances.azureml.ms A 60 10.1.0.5".to_string(),
        "*.eastus.instances.ml.azure.ms A 60 10.1.0.5".into(),
        format!("{api}.api.azureml.ms CNAME 60 {api}.privatelink.api.azureml.ms."),
        format!("{api}.cert.api.azureml.ms CNAME 60 {api}.cert.privatelink.api.azureml.ms."),
        format!("{api}.cert.privatelink.api.azureml.ms A 60 10.1.0.5"),
        format!("{api}.privatelink.api.azureml.ms A 60 10.1.0.5"),
        format!(
            "{nb}.eastus.notebooks.azure.net CNAME 60 {nb}.eastus.privatelink.notebooks.azure.net."
        ),
        format!("{nb}.eastus.privatelink.notebooks.azure.net A 60 10.1.0.5"),
        format!("{nb}.notebooks.azure.net CNAME 60 {nb}.privatelink.notebooks.azure.net."),
        format!("{nb}.privatelink.notebooks.azure.net A 60 10.1.0.5"),
    ];
    want.sort();
    let mut got = rows.clone();
    got.sort();
    assert_eq!(got, want, "{table}");
}

#[test]
fn version_and_help() {
    let o = amldns(&["--version"]);
    assert!(o.status.success());
    // "amldns 0.1.0 (commit 1a2b3c4d5e6f, built 2026-11-29)"
    let v = stdout(&o);
    let rest = v
        .strip_prefix(&format!("amldns {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{v}"));
    let (commit, date) = rest.trim_end().split_once(", built ").unwrap();
    // build.rs stamps what `git rev-parse --short=12 HEAD` says in the
    // checkout, and "unknown" only where there is no git checkout (a source
    // package). CI builds from a git clone: there it must be the commit.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) => assert_eq!(commit, head, "{v}"),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI builds from a git checkout, but git rev-parse HEAD fails here ({v})")
        }
        None => assert_eq!(commit, "unknown", "{v}"),
    }
    assert!(
        commit == "unknown"
            || (commit.len() >= 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{v}"
    );
    let date = date.strip_suffix(')').unwrap();
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.starts_with("20"),
        "{v}"
    );
    // Serve-only flags are in `serve --help` and nowhere else.
    let serve = stdout(&amldns(&["serve", "--help"]));
    assert!(serve.contains("--log-format"), "{serve}");
    assert!(serve.contains("--watch"), "{serve}");
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["records", "--help"],
    ] {
        let help = stdout(&amldns(args));
        assert!(!help.contains("--log-format"), "{args:?}: {help}");
        assert!(!help.contains("--watch"), "{args:?}: {help}");
    }
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
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = [0u8; 64];
        let _ = tx.send(stdout.read_exact(&mut first).map(|()| first));
        // The pipe is closed here, long before the ~400 KB of output is written.
    });
    let read = rx.recv_timeout(IO_TIMEOUT);
    let out = wait_within(child);
    read.expect("the first 64 bytes in time").unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--format azcli` for the example: one zone per private-link zone (the key
/// vault's public name written into its own) and per other name
/// (docs/exports.md says 9), not one per name.
#[test]
fn azcli_zones_for_the_example() {
    let o = amldns(&["records", "--config", &example(), "--format", "azcli"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let want = out
        .split("\nWANT=\"\\\n")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let zones: std::collections::BTreeSet<&str> = want
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(zones.len(), 9, "{zones:?}");
    assert_eq!(
        zones
            .iter()
            .filter(|z| z.starts_with("privatelink."))
            .count(),
        4
    );
}

/// `--out-dir` writes zone files only: with another format it says so.
#[test]
fn out_dir_needs_the_zone_format() {
    let dir = tempfile::tempdir().unwrap();
    let o = amldns(&[
        "records",
        "--config",
        &example(),
        "--format",
        "hosts",
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--out-dir writes zone files: it needs --format zone"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `--out-dir DIR` creates DIR (and its parents) when it does not exist.
#[test]
fn out_dir_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("zones/new");
    let o = amldns(&[
        "records",
        "--config",
        &example(),
        "--format",
        "zone",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        written.contains(&"privatelink.api.azureml.ms.zone".to_string()),
        "{written:?}"
    );
    assert_eq!(stdout(&o).lines().count(), written.len(), "{}", stdout(&o));
}

/// `amldns zones` prints the catalogue, one cloud or all; `forwarders`
/// reads it, and says which names it found in none of its zones.
#[test]
fn zones_prints_the_catalogue_and_forwarders_reads_it() {
    let o = amldns(&["zones", "--cloud", "china"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert!(rows.iter().all(|r| r.starts_with("china ")), "{text}");
    for zone in ["api.ml.azure.cn", "privatelink.blob.core.chinacloudapi.cn"] {
        assert!(text.contains(&format!(" {zone} ")), "{zone}: {text}");
    }
    assert!(text.contains("https://learn.microsoft.com/"), "{text}");
    let all: serde_json::Value =
        serde_json::from_slice(&amldns(&["zones", "--format", "json"]).stdout).unwrap();
    let all = all.as_array().unwrap();
    for cloud in ["public", "china", "usgov"] {
        assert!(all.iter().any(|z| z["cloud"] == cloud), "{cloud}");
    }
    assert!(
        all.iter().any(|z| z["public"] == "services.ai.azure.com"
            && z["private"] == "privatelink.services.ai.azure.com"),
        "Foundry's zone"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    std::fs::write(
        &config,
        "[upstream]\nservers = [\"127.0.0.1:5300\"]\n\
         [[record]]\nname = \"kv.privatelink.vaultcore.azure.net\"\na = [\"10.1.0.11\"]\n\
         [[record]]\nname = \"git.corp.example\"\na = [\"10.1.0.12\"]\n",
    )
    .unwrap();
    let config = config.to_string_lossy();
    let o = amldns(&[
        "forwarders",
        "--format",
        "dnsmasq",
        "--to",
        "10.0.0.4",
        "--config",
        &config,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for zone in ["vault.azure.net", "vaultcore.azure.net", "git.corp.example"] {
        assert!(
            out.contains(&format!("server=/{zone}/10.0.0.4\n")),
            "{zone}: {out}"
        );
    }
    let err = stderr(&o);
    assert!(
        err.contains("warning: git.corp.example lies in no zone of the private-link catalogue"),
        "{err}"
    );
    assert!(!err.contains("vault"), "{err}");
}
