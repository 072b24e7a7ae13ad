//! What amldns writes for other DNS servers, loaded into those servers: the
//! `records` formats and the `deploy/onprem/` forwarder files. BIND, Unbound
//! and dnsmasq are started on loopback with an upstream stand-in on 127.0.0.1 and
//! asked real questions. A test whose program is not installed says so and
//! passes (`scripts/install-peers.sh` installs them), or fails under `CI=true`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::common;
use crate::common::{
    GUID, StandIn, addrs, answer_lines, output_within, query_msg, skip_or_fail, udp_raw,
};

fn amldns(args: &[&str]) -> Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_amldns"))
            .args(args)
            .env_remove("AMLDNS_CONFIG"),
    )
}

/// `program`'s path, or `None` after saying why the test is skipped (see
/// [`skip_or_fail`]).
fn installed(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip_or_fail(&format!(
            "{program} is not installed (scripts/install-peers.sh installs it)"
        ));
    }
    found
}

fn run(program: &Path, args: &[&str]) -> Output {
    output_within(Command::new(program).args(args))
}

fn ok(o: &Output) -> bool {
    o.status.success()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const ONPREM: [(&str, &str); 4] = [
    ("named.conf.amldns", "bind"),
    ("unbound-amldns.conf", "unbound"),
    ("dnsmasq-amldns.conf", "dnsmasq"),
    ("windows-dns-amldns.ps1", "powershell"),
];

const EXAMPLE_TO: &str = "10.1.0.4,10.1.0.5";

fn onprem(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/onprem")
        .join(file)
}

/// The checked-in files are exactly what the code generates, so they list
/// the zones `names::forwarder_zones` lists, today and after any change.
#[test]
fn onprem_files_are_what_amldns_forwarders_prints() {
    for (file, format) in ONPREM {
        let o = amldns(&["forwarders", "--format", format, "--to", EXAMPLE_TO]);
        assert!(ok(&o), "{}", text(&o));
        let want = String::from_utf8(o.stdout).unwrap();
        let have = std::fs::read_to_string(onprem(file)).unwrap_or_default();
        assert!(
            have == want,
            "deploy/onprem/{file} is out of date; run: \
             cargo run --locked -- forwarders --format {format} --to {EXAMPLE_TO} > deploy/onprem/{file}"
        );
    }
}

#[test]
fn onprem_files_load_in_their_servers() {
    if let Some(p) = installed("unbound-checkconf") {
        let o = run(&p, &[onprem("unbound-amldns.conf").to_str().unwrap()]);
        assert!(ok(&o), "{}", text(&o));
    }
    if let Some(p) = installed("dnsmasq") {
        let conf = format!("--conf-file={}", onprem("dnsmasq-amldns.conf").display());
        let o = run(&p, &["--test", &conf]);
        assert!(ok(&o), "{}", text(&o));
    }
    if let Some(p) = installed("named-checkconf") {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("named.conf");
        std::fs::write(
            &conf,
            format!(
                "options {{ directory \"{}\"; }};\ninclude \"{}\";\n",
                dir.path().display(),
                onprem("named.conf.amldns").display()
            ),
        )
        .unwrap();
        let o = run(&p, &[conf.to_str().unwrap()]);
        assert!(ok(&o), "{}", text(&o));
    }
}

// ---- records, loaded into the servers ------------------------------------

/// A workspace with instances and their wildcard, an AAAA record, a CNAME into
/// the table and one out of it (to a name the stand-in knows).
fn records_config(dir: &Path) -> String {
    let path = dir.join("amldns.toml");
    std::fs::write(
        &path,
        format!(
            "[[workspace]]\nname = \"mlw\"\nid = \"{GUID}\"\nregion = \"eastus\"\nip = \"10.1.0.5\"\n\
             notebook_ip = \"10.1.0.6\"\ninference_ip = \"10.1.0.7\"\n\
             instances = [\"ci-1\"]\ninstances_wildcard = true\nonline_endpoints = [\"ep\"]\n\
             [[record]]\nname = \"ci-2.eastus.instances.azureml.ms\"\na = [\"10.1.0.8\"]\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n\
             aaaa = [\"fd00::9\"]\n\
             [[record]]\nname = \"alias.corp.example\"\ncname = \"st.privatelink.blob.core.windows.net\"\n\
             [[record]]\nname = \"out.corp.example\"\ncname = \"www.example.com\"\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

fn records(config: &str, format: &str) -> String {
    records_with(config, &["--format", format])
}

/// `amldns records --config config args…`'s output.
fn records_with(config: &str, args: &[&str]) -> String {
    let o = amldns(&[&["records", "--config", config], args].concat());
    assert!(ok(&o), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The named.conf lines the header of `--format bind` gives (the comment
/// lines after "named.conf:" up to "Why"), with the policy zone at `db` and
/// `options` added to the options block.
fn rpz_named_conf(rpz: &str, db: &Path, options: &str) -> String {
    let snippet: String = rpz
        .lines()
        .skip_while(|l| *l != "; named.conf:")
        .skip(1)
        .take_while(|l| !l.starts_with("; Why"))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    assert!(snippet.contains("response-policy"), "{rpz}");
    snippet
        .replace("/etc/bind/db.amldns.rpz", db.to_str().unwrap())
        .replacen("options {", &format!("options {{\n{options}"), 1)
}

/// `--format bind` and the RPZ of `--format bind`: setup for named.
fn bind_setup(dir: &Path) -> (String, PathBuf) {
    let rpz = records(&records_config(dir), "bind");
    let db = dir.join("db.amldns.rpz");
    std::fs::write(&db, &rpz).unwrap();
    (rpz, db)
}

/// The RPZ of `--format bind` loads in named-checkzone, and the named.conf
/// lines its header gives load with it in named-checkconf.
#[test]
fn bind_policy_zone_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (rpz, db) = bind_setup(dir.path());
    if let Some(p) = installed("named-checkzone") {
        let o = run(&p, &["amldns.rpz", db.to_str().unwrap()]);
        assert!(ok(&o), "{}\n{rpz}", text(&o));
    }
    if let Some(p) = installed("named-checkconf") {
        let conf = dir.path().join("named.conf");
        let text_conf = rpz_named_conf(
            &rpz,
            &db,
            &format!("directory \"{}\";", dir.path().display()),
        );
        std::fs::write(&conf, &text_conf).unwrap();
        let o = run(&p, &["-z", conf.to_str().unwrap()]);
        assert!(ok(&o), "{}\n{text_conf}", text(&o));
    }
}

/// `--format zone --out-dir`: one `<zone>.zone` per zone, each loading in
/// named-checkzone, whether `ns.<apex>` has the listen addresses (in-zone NS)
/// or amldns listens on wildcard addresses only (NS out of the zone); and the
/// stream is the same files, each after its start line.
#[test]
fn zone_files_load_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let wildcard = records_config(dir.path());
    let listening = dir.path().join("listening.toml");
    std::fs::write(
        &listening,
        std::fs::read_to_string(&wildcard).unwrap()
            + "[server]\nlisten = [\"127.0.0.1:5399\", \"[::1]:5399\"]\n",
    )
    .unwrap();
    for (config, ns) in [
        (wildcard.as_str(), "localhost."),
        (
            listening.to_str().unwrap(),
            "ns.privatelink.blob.core.windows.net.",
        ),
    ] {
        let out = tempfile::tempdir().unwrap();
        let o = amldns(&[
            "records",
            "--config",
            config,
            "--format",
            "zone",
            "--out-dir",
            out.path().to_str().unwrap(),
        ]);
        assert!(ok(&o), "{}", text(&o));
        let mut files: Vec<PathBuf> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let listed: Vec<PathBuf> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(PathBuf::from)
            .collect();
        assert_eq!(files, listed);
        // api, privatelink.api, notebooks, privatelink.notebooks, instances
        // (2), inference, privatelink.blob; the two aliases are their own
        // apex, which a zone file cannot hold, and are noted instead.
        assert_eq!(files.len(), 8, "{files:?}");
        assert!(
            text(&o).contains("note: out.corp.example: CNAME www.example.com at its own zone apex"),
            "{}",
            text(&o)
        );
        let blob =
            std::fs::read_to_string(out.path().join("privatelink.blob.core.windows.net.zone"))
                .unwrap();
        assert!(
            blob.contains(&format!(
                "privatelink.blob.core.windows.net.\t60\tIN\tNS\t{ns}\n"
            )),
            "{blob}"
        );
        let stream = records(config, "zone");
        for file in &files {
            let body = std::fs::read_to_string(file).unwrap();
            let zone = file
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .strip_suffix(".zone")
                .unwrap();
            assert!(
                stream.contains(&format!("; ==== zone {zone} ({zone}.zone)\n{body}")),
                "{zone}:\n{stream}"
            );
            if let Some(p) = installed("named-checkzone") {
                let o = run(&p, &[zone, file.to_str().unwrap()]);
                assert!(ok(&o), "{zone}: {}\n{body}", text(&o));
                eprintln!(
                    "named-checkzone {zone} {}: {}",
                    file.display(),
                    text(&o).trim()
                );
            }
        }
    }
}

/// A loopback port nobody holds right now (UDP and TCP), for a peer to
/// bind. A port the kernel gave for port 0 and let go could be given again
/// to any socket bound to port 0 meanwhile (a stand-in, an upstream
/// question of another test); so it is picked below the kernel's ephemeral
/// range, where port 0 never lands, and never handed out twice by this
/// process.
fn free_port() -> u16 {
    use std::sync::Mutex;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let ephemeral_from: u16 = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (20_000u16.min(ephemeral_from / 2), ephemeral_from);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // Start at a spot of this process's own, so that test binaries running
    // side by side do not walk the same ports in step.
    let span = u32::from(high - low);
    let start = (std::process::id().wrapping_mul(7919) + given.len() as u32 * 131) % span;
    for i in 0..span {
        let port = low + ((start + i) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        let free = std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            given.push(port);
            return port;
        }
    }
    panic!("no free loopback port in {low}..{high}");
}

/// A peer server process, killed when the test ends however it ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` and waits (at most 10 s) until it answers on `addr`.
async fn start_peer(program: &Path, args: &[String], addr: SocketAddr) -> Peer {
    let mut peer = Peer(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let probe = query_msg("ready.invalid", RecordType::A, None)
        .to_vec()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if udp_raw(addr, &probe, Duration::from_millis(200))
            .await
            .is_some()
        {
            return peer;
        }
        if let Ok(Some(status)) = peer.0.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = peer.0.stderr.take().unwrap().read_to_string(&mut err);
            panic!("{} exited ({status}): {err}", program.display());
        }
    }
    panic!("{} does not answer on {addr} after 10 s", program.display());
}

async fn ask(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let q = query_msg(name, qtype, Some(1232));
    let bytes = udp_raw(server, &q.to_vec().unwrap(), common::IO_TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("{server} does not answer {name} {qtype}"));
    Message::from_vec(&bytes).unwrap()
}

/// NOERROR with no answer (past a CNAME chain): NODATA.
fn nodata(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NoError
        && m.answers
            .iter()
            .all(|r| r.record_type() == RecordType::CNAME)
}

/// What both peers must do with the records, and what the stand-in upstream
/// must never be asked (a local name is never forwarded).
async fn check_common(server: SocketAddr, upstream: &StandIn) {
    let api = format!("{GUID}.workspace.eastus.api.azureml.ms");
    let nb = format!("ml-mlw-eastus-{GUID}.eastus.notebooks.azure.net");
    let local = [
        (api.as_str(), "10.1.0.5"),
        (nb.as_str(), "10.1.0.6"),
        ("ep.eastus.inference.ml.azure.com", "10.1.0.7"),
        ("ci-1.eastus.instances.azureml.ms", "10.1.0.5"),
        ("ci-2.eastus.instances.azureml.ms", "10.1.0.8"),
        ("anything.eastus.instances.azureml.ms", "10.1.0.5"),
        ("st.privatelink.blob.core.windows.net", "10.1.0.9"),
        ("alias.corp.example", "10.1.0.9"),
    ];
    for (name, ip) in local {
        let a = ask(server, name, RecordType::A).await;
        assert_eq!(addrs(&a), [ip], "{name}: {a:?}");
        let aaaa = ask(server, name, RecordType::AAAA).await;
        if name.ends_with("corp.example") || name.starts_with("st.") {
            assert_eq!(addrs(&aaaa), ["fd00::9"], "{name}: {aaaa:?}");
        } else {
            assert!(nodata(&aaaa), "{name} AAAA must be NODATA: {aaaa:?}");
        }
        let txt = ask(server, name, RecordType::TXT).await;
        assert!(nodata(&txt), "{name} TXT must be NODATA: {txt:?}");
    }
    // Neighbours in the same zones still resolve upstream.
    let discovery = ask(server, "eastus.api.azureml.ms", RecordType::A).await;
    assert_eq!(addrs(&discovery), ["192.0.2.20"], "{discovery:?}");
    let www = ask(server, "www.example.com", RecordType::A).await;
    assert_eq!(addrs(&www), ["192.0.2.10"]);
    for (name, _) in local {
        assert!(
            !upstream.seen_names().iter().any(|s| s == name),
            "{name} was forwarded: {:?}",
            upstream.seen()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unbound_answers_the_records() {
    let Some(unbound) = installed("unbound") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("amldns-records.conf");
    std::fs::write(&data, records(&records_config(dir.path()), "unbound")).unwrap();
    let upstream = StandIn::zone().await;
    let port = free_port();
    let conf = dir.path().join("unbound.conf");
    // Everything not local goes to the stand-in; no root hints, no DNSSEC
    // trust anchor, so nothing is ever sent past loopback.
    std::fs::write(
        &conf,
        format!(
            "server:\n    interface: 127.0.0.1\n    port: {port}\n    do-daemonize: no\n\
             \x20   username: \"\"\n    chroot: \"\"\n    pidfile: \"\"\n    use-syslog: no\n\
             \x20   directory: \"{dir}\"\n    module-config: \"iterator\"\n\
             \x20   do-not-query-localhost: no\n    do-ip6: no\n\
             \x20   include: \"{data}\"\nremote-control:\n    control-enable: no\n\
             forward-zone:\n    name: \".\"\n    forward-addr: {up_ip}@{up_port}\n",
            dir = dir.path().display(),
            data = data.display(),
            up_ip = upstream.addr.ip(),
            up_port = upstream.addr.port(),
        ),
    )
    .unwrap();
    if let Some(check) = installed("unbound-checkconf") {
        let o = run(&check, &[conf.to_str().unwrap()]);
        assert!(ok(&o), "{}", text(&o));
    }
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let _peer = start_peer(
        &unbound,
        &["-d".into(), "-c".into(), conf.display().to_string()],
        addr,
    )
    .await;
    check_common(addr, &upstream).await;
    // NODATA carries an SOA (RFC 2308 §3): the private-link zone's own, as
    // amldns gives it, or that of the public zone's name itself (a name
    // its wildcard answers: the wildcard's parent's).
    let private = "st.privatelink.blob.core.windows.net";
    let api = format!("{GUID}.workspace.eastus.api.azureml.ms");
    for (name, soa_owner) in [
        (private, "privatelink.blob.core.windows.net."),
        (api.as_str(), &*format!("{api}.")),
        (
            "ci-2.eastus.instances.azureml.ms",
            "ci-2.eastus.instances.azureml.ms.",
        ),
        (
            "any.eastus.instances.azureml.ms",
            "eastus.instances.azureml.ms.",
        ),
    ] {
        let r = ask(addr, name, RecordType::TXT).await;
        assert!(nodata(&r), "{name}: {r:?}");
        let owners: Vec<String> = r
            .authorities
            .iter()
            .filter(|a| a.record_type() == RecordType::SOA)
            .map(|a| a.name.to_ascii())
            .collect();
        assert_eq!(owners, [soa_owner], "{name}: {r:?}");
    }
    // An alias out of the table: Unbound resolves the target upstream.
    let out = ask(addr, "out.corp.example", RecordType::A).await;
    assert_eq!(
        answer_lines(&out),
        [
            "out.corp.example CNAME www.example.com",
            "www.example.com A 192.0.2.10"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dnsmasq_answers_the_records() {
    let Some(dnsmasq) = installed("dnsmasq") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("amldns-records.conf");
    let text_out = records(&records_config(dir.path()), "dnsmasq");
    std::fs::write(&data, &text_out).unwrap();
    let upstream = StandIn::zone().await;
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let args: Vec<String> = vec![
        "--keep-in-foreground".into(),
        format!("--conf-file={}", data.display()),
        format!("--port={port}"),
        "--listen-address=127.0.0.1".into(),
        "--bind-interfaces".into(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        format!("--server={}#{}", upstream.addr.ip(), upstream.addr.port()),
        "--pid-file=".into(),
    ];
    let _peer = start_peer(&dnsmasq, &args, addr).await;
    check_common(addr, &upstream).await;
    // dnsmasq cannot hold an alias out of its own names: said in the output.
    assert!(
        text_out.contains("# out.corp.example: CNAME www.example.com, which is not local"),
        "{text_out}"
    );
}

/// A recursive BIND with the policy zone, as the header of `--format bind`
/// says to set it up.
#[tokio::test(flavor = "multi_thread")]
async fn bind_answers_the_records() {
    let Some(named) = installed("named") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (rpz, db) = bind_setup(dir.path());
    let upstream = StandIn::zone().await;
    let port = free_port();
    let d = dir.path().display();
    // Everything not local goes to the stand-in; no validation, no root
    // hints used (forward only), no control channel.
    let options = format!(
        "    directory \"{d}\";\n    listen-on port {port} {{ 127.0.0.1; }};\n\
         \x20   listen-on-v6 {{ none; }};\n    pid-file none;\n    session-keyfile \"{d}/session.key\";\n\
         \x20   recursion yes;\n    allow-query {{ 127.0.0.1; }};\n    dnssec-validation no;\n\
         \x20   forward only;\n    forwarders {{ {} port {}; }};",
        upstream.addr.ip(),
        upstream.addr.port()
    );
    let conf = dir.path().join("named.conf");
    std::fs::write(
        &conf,
        format!("{}controls {{ }};\n", rpz_named_conf(&rpz, &db, &options)),
    )
    .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let _peer = start_peer(
        &named,
        &[
            "-g".into(),
            "-4".into(),
            "-n".into(),
            "1".into(),
            "-c".into(),
            conf.display().to_string(),
        ],
        addr,
    )
    .await;
    check_common(addr, &upstream).await;
    // An alias out of the table: BIND resolves the target upstream.
    let out = ask(addr, "out.corp.example", RecordType::A).await;
    assert_eq!(
        answer_lines(&out),
        [
            "out.corp.example CNAME www.example.com",
            "www.example.com A 192.0.2.10"
        ]
    );
}

/// `--format azcli` run with bash against tests/support/az (the stand-in for
/// `az network private-dns`), from an empty resource group: it makes exactly
/// the record sets its `WANT` lists, every zone linked to the VNet. Some of
/// them written out from the config: the instances wildcard, an AAAA, an
/// alias given its target's addresses; and no zone for an alias out of the
/// table. (`azcli_script_converges` below runs it again and after changes.)
#[test]
fn azcli_script_makes_what_it_wants() {
    let Some(path) = python_tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = records(&records_config(dir.path()), "azcli");
    let file = dir.path().join("amldns-zones.sh");
    std::fs::write(&file, &script).unwrap();
    let state = dir.path().join("state.json");
    let o = output_within(
        Command::new("bash")
            .arg(&file)
            .env("PATH", &path)
            .env("RG", "rg-dns")
            .env("EXPECT_RG", "rg-dns")
            .env("VNET_ID", "/subscriptions/s/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet")
            .env("AZ_STATE", &state)
            .env("AZ_LOG", dir.path().join("az.log")),
    );
    assert!(ok(&o), "{}", text(&o));
    let s = az_state(&state);
    // As `wanted` lists them: "zone name TYPE ttl address".
    let mut made = BTreeSet::new();
    for zone in s["zones"].as_object().unwrap().keys() {
        for set in az_sets(&s, zone) {
            let (head, addrs) = set.rsplit_once(' ').unwrap();
            for a in addrs.split(',') {
                made.insert(format!("{zone} {head} {a}"));
            }
        }
        assert_eq!(
            s["zones"][zone]["links"]["amldns"]["virtualNetwork"]["id"]
                .as_str()
                .and_then(|id| id.rsplit('/').next()),
            Some("vnet"),
            "{zone}: {s}"
        );
    }
    assert_eq!(made, wanted(&script), "{s}");
    for w in [
        "eastus.instances.azureml.ms * A 60 10.1.0.5",
        "ci-2.eastus.instances.azureml.ms @ A 60 10.1.0.8",
        "privatelink.blob.core.windows.net st A 60 10.1.0.9",
        "privatelink.blob.core.windows.net st AAAA 60 fd00::9",
        "alias.corp.example @ A 60 10.1.0.9",
        "alias.corp.example @ AAAA 60 fd00::9",
        &format!("privatelink.api.azureml.ms {GUID}.workspace.eastus A 60 10.1.0.5"),
    ] {
        assert!(made.contains(w), "{w}: {made:#?}");
    }
    assert!(s["zones"].get("out.corp.example").is_none(), "{s}");
}

// ---- forwarders --config, loaded into the servers ------------------------

/// `forwarders --config` for a config with a public workspace and a blob
/// record, to amldns on loopback: only that config's zones, and Unbound
/// (which ignores loopback forwarders by default) sends them to amldns.
#[tokio::test(flavor = "multi_thread")]
async fn forwarders_for_a_config_reach_amldns_on_loopback() {
    let upstream = StandIn::zone().await;
    let rest = format!(
        "[[workspace]]\nname = \"mlw\"\nid = \"{GUID}\"\nregion = \"eastus\"\nip = \"10.1.0.5\"\n\
         [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n"
    );
    let srv = common::start(&common::config_with(upstream.addr, &rest)).await;
    let config = srv.config_path.to_str().unwrap().to_string();
    let to = srv.addr.to_string();
    let forwarders = |format: &str| {
        let o = amldns(&[
            "forwarders",
            "--config",
            &config,
            "--to",
            &to,
            "--format",
            format,
        ]);
        assert!(ok(&o), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();

    let unbound_text = forwarders("unbound");
    for zone in [
        "api.azureml.ms",
        "notebooks.azure.net",
        "blob.core.windows.net",
    ] {
        assert!(
            unbound_text.contains(&format!("forward-zone:\n    name: \"{zone}.\"\n")),
            "{zone}: {unbound_text}"
        );
    }
    // Public only: no other cloud's zones.
    assert!(!unbound_text.contains("azure.cn"), "{unbound_text}");
    assert!(!unbound_text.contains("azure.us"), "{unbound_text}");
    assert_eq!(
        unbound_text.matches("forward-zone:").count(),
        7,
        "{unbound_text}"
    );
    let data = dir.path().join("unbound-amldns.conf");
    std::fs::write(&data, &unbound_text).unwrap();
    if let Some(p) = installed("unbound-checkconf") {
        let o = run(&p, &[data.to_str().unwrap()]);
        assert!(ok(&o) && !text(&o).contains("warning"), "{}", text(&o));
        eprintln!("unbound-checkconf: {}", text(&o).trim());
    }
    if let Some(p) = installed("dnsmasq") {
        let file = dir.path().join("dnsmasq-amldns.conf");
        std::fs::write(&file, forwarders("dnsmasq")).unwrap();
        let o = run(&p, &["--test", &format!("--conf-file={}", file.display())]);
        assert!(ok(&o), "{}", text(&o));
    }
    if let Some(p) = installed("named-checkconf") {
        let file = dir.path().join("named.conf.amldns");
        std::fs::write(&file, forwarders("bind")).unwrap();
        let conf = dir.path().join("named.conf");
        std::fs::write(
            &conf,
            format!(
                "options {{ directory \"{}\"; }};\ninclude \"{}\";\n",
                dir.path().display(),
                file.display()
            ),
        )
        .unwrap();
        let o = run(&p, &[conf.to_str().unwrap()]);
        assert!(ok(&o), "{}", text(&o));
    }

    let Some(unbound) = installed("unbound") else {
        srv.stop().await;
        return;
    };
    let port = free_port();
    let conf = dir.path().join("unbound.conf");
    // No do-not-query-localhost here: the generated file must say it. The
    // rest goes to the stand-in, so nothing leaves loopback.
    std::fs::write(
        &conf,
        format!(
            "server:\n    interface: 127.0.0.1\n    port: {port}\n    do-daemonize: no\n\
             \x20   username: \"\"\n    chroot: \"\"\n    pidfile: \"\"\n    use-syslog: no\n\
             \x20   directory: \"{dir}\"\n    module-config: \"iterator\"\n    do-ip6: no\n\
             \x20   include: \"{data}\"\nremote-control:\n    control-enable: no\n\
             forward-zone:\n    name: \".\"\n    forward-addr: {up_ip}@{up_port}\n",
            dir = dir.path().display(),
            data = data.display(),
            up_ip = upstream.addr.ip(),
            up_port = upstream.addr.port(),
        ),
    )
    .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let peer = start_peer(
        &unbound,
        &["-d".into(), "-c".into(), conf.display().to_string()],
        addr,
    )
    .await;
    let api = format!("{GUID}.workspace.eastus.api.azureml.ms");
    for (name, ip) in [
        (api.as_str(), "10.1.0.5"),
        ("st.privatelink.blob.core.windows.net", "10.1.0.9"),
    ] {
        let a = ask(addr, name, RecordType::A).await;
        assert_eq!(addrs(&a), [ip], "{name}: {a:?}");
        assert!(
            !upstream.seen_names().iter().any(|s| s == name),
            "{name} went to the upstream, not to amldns"
        );
    }
    drop(peer);
    srv.stop().await;
}

// ---- the Azure CLI and PowerShell scripts -----------------------------------

/// A PATH with tests/support (the `az` stand-in) and a Python that has
/// tests/support/requirements.txt (target/peers-venv, from
/// scripts/install-peers.sh, else the system's) in front; `None` after
/// saying why the test is skipped.
fn python_tools() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = format!(
        "{}:{}:{}",
        root.join("tests/support").display(),
        root.join("target/peers-venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let has = Command::new("python3")
        .args(["-c", "import jmespath, tree_sitter_powershell"])
        .env("PATH", &path)
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        skip_or_fail(
            "no Python with tests/support/requirements.txt (scripts/install-peers.sh installs them)",
        );
    }
    has.then_some(path)
}

/// Each record of a `--format powershell` script's `$Want`, or of a
/// `--format azcli` script's `WANT`, as "zone name TYPE ttl address".
fn wanted(script: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(body) = script.split("\nWANT=\"\\\n").nth(1) {
        for line in body.split('"').next().unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            for a in f[4].split(',') {
                out.insert(format!(
                    "{} {} {} {} {a}",
                    f[0],
                    f[1],
                    f[2].to_uppercase(),
                    f[3]
                ));
            }
        }
        return out;
    }
    let body = script.split("$Want = [ordered]@{\n").nth(1).unwrap();
    let mut zone = "";
    for line in body.lines().take_while(|l| *l != "}") {
        let l = line.trim();
        if let Some(z) = l.strip_suffix("\" = @(") {
            zone = z.trim_start_matches('"');
        } else if l != ")" {
            out.insert(format!("{zone} {}", l.trim_matches('"')));
        }
    }
    out
}

/// tests/support/ps-parse.py run on `script` (written into `dir`), with
/// `flags` before the file.
fn ps_parse(path: &str, dir: &Path, script: &str, flags: &[&str]) -> Output {
    let file = dir.join("script.ps1");
    std::fs::write(&file, script).unwrap();
    Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ps-parse.py"))
        .args(flags)
        .arg(&file)
        .env("PATH", path)
        .output()
        .unwrap()
}

/// `--format powershell` parses as PowerShell (tree-sitter's grammar; no
/// PowerShell runs on this machine), and its `$Want` holds exactly the
/// records of `--format azcli`'s `WANT`, whose logic the test below runs.
#[test]
fn powershell_script_parses_and_wants_what_azcli_does() {
    let Some(path) = python_tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = records_config(dir.path());
    let ps = records(&config, "powershell");
    let parse = |text: &str| ps_parse(&path, dir.path(), text, &[]);
    let o = parse(&ps);
    assert!(ok(&o), "{}\n{ps}", text(&o));
    // The parser does catch a broken script.
    let broken = parse(&ps.replacen("foreach ($Zone in $Want.Keys) {", "foreach ($Zone in {", 1));
    assert!(!ok(&broken), "{}", text(&broken));
    let want = wanted(&ps);
    assert_eq!(want, wanted(&records(&config, "azcli")));
    for w in [
        "privatelink.blob.core.windows.net st AAAA 60 fd00::9",
        "eastus.instances.azureml.ms * A 60 10.1.0.5",
        "alias.corp.example @ A 60 10.1.0.9",
    ] {
        assert!(want.contains(w), "{w}: {want:?}");
    }
}

/// `--format powershell --existing-zones SUBSCRIPTION/RG`, the Az.PrivateDns
/// script for a landing zone's central zones. No PowerShell runs here, so
/// what it does is read from its parse tree: it parses; it calls the
/// cmdlets that read zones and write record sets, and none that creates,
/// links or deletes a zone; it selects the subscription given and works in
/// the resource group given; every record set it writes carries the
/// metadata managed-by=amldns, and it removes one only when that mark is on
/// it; and its `$Want` is what `--format azcli` wants.
#[test]
fn powershell_existing_zones_script_writes_only_marked_record_sets() {
    let Some(path) = python_tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = records_config(dir.path());
    let ps = records_with(
        &config,
        &[
            "--format",
            "powershell",
            "--existing-zones",
            "sub-platform/rg-central-dns",
        ],
    );
    let o = ps_parse(&path, dir.path(), &ps, &["--commands"]);
    assert!(ok(&o), "{}\n{ps}", text(&o));
    let calls: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let az: BTreeSet<&str> = calls
        .iter()
        .filter_map(|c| c["name"].as_str())
        .filter(|n| n.contains("-Az"))
        .collect();
    assert_eq!(
        az,
        BTreeSet::from([
            "Set-AzContext",
            "Get-AzPrivateDnsZone",
            "Get-AzPrivateDnsRecordSet",
            "New-AzPrivateDnsRecordConfig",
            "New-AzPrivateDnsRecordSet",
            "Remove-AzPrivateDnsRecordSet",
        ])
    );
    for never in [
        "New-AzPrivateDnsZone",
        "Remove-AzPrivateDnsZone",
        "New-AzPrivateDnsVirtualNetworkLink",
    ] {
        assert!(!az.contains(never), "{never}");
    }
    // Each call's arguments, followed by a space.
    let args = |name: &str| -> Vec<String> {
        let found: Vec<String> = calls
            .iter()
            .filter(|c| c["name"] == name)
            .map(|c| format!("{} ", c["args"].as_str().unwrap()))
            .collect();
        assert!(!found.is_empty(), "no {name}");
        found
    };
    for line in [
        "$Subscription = 'sub-platform'",
        "$ResourceGroup = 'rg-central-dns'",
        "$Mark = @{ \"managed-by\" = \"amldns\" }",
        "        $Marked = $Set.Metadata -and $Set.Metadata[\"managed-by\"] -eq \"amldns\"",
    ] {
        assert!(ps.lines().any(|l| l == line), "{line}:\n{ps}");
    }
    assert!(args("Set-AzContext")[0].starts_with("-Subscription $Subscription "));
    for name in [
        "Get-AzPrivateDnsZone",
        "Get-AzPrivateDnsRecordSet",
        "New-AzPrivateDnsRecordSet",
    ] {
        for a in args(name) {
            assert!(
                a.starts_with("-ResourceGroupName $ResourceGroup "),
                "{name} {a}"
            );
        }
    }
    for a in args("New-AzPrivateDnsRecordSet") {
        assert!(a.contains(" -Metadata $Mark "), "{a}");
    }
    for c in calls
        .iter()
        .filter(|c| c["name"] == "Remove-AzPrivateDnsRecordSet")
    {
        assert!(
            c["args"].as_str().unwrap().starts_with("-RecordSet $Set "),
            "{c}"
        );
        assert_eq!(
            c["when"].as_array().unwrap().last(),
            Some(&"$Marked".into()),
            "{c}"
        );
    }
    assert_eq!(wanted(&ps), wanted(&records(&config, "azcli")));
}

/// A resource group kept by tests/support/az in a folder of its own, the
/// environment (`RG`, `VNET_ID`, `ZONES`…) its commands and the `--format
/// azcli` script run with (none other of those), and the `records`
/// arguments that print the script; each run logs its changes to a file.
struct AzGroup {
    dir: tempfile::TempDir,
    path: String,
    env: Vec<(&'static str, &'static str)>,
    args: Vec<&'static str>,
}

impl AzGroup {
    fn new(path: String, env: &[(&'static str, &'static str)]) -> Self {
        AzGroup {
            dir: tempfile::tempdir().unwrap(),
            path,
            env: env.to_vec(),
            args: vec!["--format", "azcli"],
        }
    }

    /// The script printed by `records` with `args` besides `--format azcli`.
    fn with_args(mut self, args: &[&'static str]) -> Self {
        self.args.extend(args);
        self
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// Runs `args` (an `az` command, or bash and a script), logging the
    /// changes it makes to `log`.
    fn run(&self, args: &[&str], log: &str) -> Output {
        Command::new(args[0])
            .args(&args[1..])
            .env("PATH", &self.path)
            .env_remove("VNET_ID")
            .env_remove("ZONES")
            .env_remove("RG")
            .env_remove("SUBSCRIPTION")
            .envs(self.env.iter().copied())
            .env("AZ_STATE", self.state())
            .env("AZ_LOG", self.dir.path().join(log))
            .output()
            .unwrap()
    }

    /// `amldns records --format azcli` of the config `records`, run: how it
    /// ended, and the changes it made.
    fn script(&self, records: &str, log: &str) -> (Output, Vec<String>) {
        let config = self.dir.path().join("amldns.toml");
        std::fs::write(&config, records).unwrap();
        let script = self.dir.path().join("zones.sh");
        std::fs::write(&script, records_with(config.to_str().unwrap(), &self.args)).unwrap();
        let o = self.run(&["bash", script.to_str().unwrap()], log);
        let changes = std::fs::read_to_string(self.dir.path().join(log))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        (o, changes)
    }
}

/// A resource group as tests/support/az keeps it: zone → its JSON.
fn az_state(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The record sets of `zone` as "name type ttl addresses" lines, sorted.
fn az_sets(state: &serde_json::Value, zone: &str) -> Vec<String> {
    let mut sets: Vec<String> = state["zones"][zone]["sets"]
        .as_array()
        .unwrap_or_else(|| panic!("no zone {zone}: {state}"))
        .iter()
        .filter(|s| !s["type"].as_str().unwrap().ends_with("/SOA"))
        .map(|s| {
            let kind = s["type"].as_str().unwrap().rsplit('/').next().unwrap();
            let addrs: Vec<&str> = s["aRecords"]
                .as_array()
                .or(s["aaaaRecords"].as_array())
                .unwrap()
                .iter()
                .flat_map(|r| r.as_object().unwrap().values())
                .map(|v| v.as_str().unwrap())
                .collect();
            format!(
                "{} {kind} {} {}",
                s["name"].as_str().unwrap(),
                s["ttl"],
                addrs.join(",")
            )
        })
        .collect();
    sets.sort();
    sets
}

/// `--format azcli` run with bash against tests/support/az (a stand-in for
/// `az network private-dns` that keeps a resource group in a file and logs
/// each change): the first run makes one zone per private-link zone and per
/// other name, a second changes nothing, and after the table changes a run
/// removes what it made that is gone, corrects what differs, and leaves what
/// others made (a private endpoint's record set) alone.
#[test]
fn azcli_script_converges() {
    let Some(path) = python_tools() else {
        return;
    };
    let group = AzGroup::new(
        path,
        &[
            ("RG", "rg-dns"),
            ("EXPECT_RG", "rg-dns"),
            (
                "VNET_ID",
                "/subscriptions/s/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet",
            ),
        ],
    );
    let state = group.state();
    let blob = "privatelink.blob.core.windows.net";
    // A private endpoint's DNS zone group made the zone and a record first.
    for args in [
        vec![
            "az",
            "network",
            "private-dns",
            "zone",
            "create",
            "--resource-group",
            "rg-dns",
            "--name",
            blob,
        ],
        vec![
            "az",
            "network",
            "private-dns",
            "record-set",
            "a",
            "add-record",
            "--resource-group",
            "rg-dns",
            "--zone-name",
            blob,
            "--record-set-name",
            "pe-made",
            "--ipv4-address",
            "10.1.0.50",
        ],
    ] {
        let o = group.run(&args, "setup.log");
        assert!(ok(&o), "{}", text(&o));
    }
    let run = |records: &str, log: &str| {
        let (o, changes) = group.script(records, log);
        assert!(ok(&o), "{}", text(&o));
        changes
    };
    let record = |name: &str, a: &str| format!("[[record]]\nname = \"{name}\"\na = [\"{a}\"]\n");
    let first = [
        record("st.privatelink.blob.core.windows.net", "10.1.0.9") + "aaaa = [\"fd00::9\"]\n",
        record("st2.privatelink.blob.core.windows.net", "10.1.0.10"),
        record("ci-1.eastus.instances.azureml.ms", "10.1.0.5"),
        record(&format!("{GUID}.workspace.eastus.api.azureml.ms"), "10.1.0.6"),
        record(&format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"), "10.1.0.6"),
        "[[record]]\nname = \"alias.corp.example\"\ncname = \"st2.privatelink.blob.core.windows.net\"\n".into(),
    ]
    .concat();
    let made = run(&first, "run1.log");
    assert!(!made.is_empty());
    let s = az_state(&state);
    let zones: Vec<&String> = s["zones"].as_object().unwrap().keys().collect();
    // One zone per private-link zone and per other name; the api name is
    // left to its privatelink twin.
    assert_eq!(
        zones,
        [
            "alias.corp.example",
            "ci-1.eastus.instances.azureml.ms",
            "privatelink.api.azureml.ms",
            blob
        ],
        "{s}"
    );
    assert_eq!(
        az_sets(&s, blob),
        [
            "pe-made A 3600 10.1.0.50",
            "st A 60 10.1.0.9",
            "st AAAA 60 fd00::9",
            "st2 A 60 10.1.0.10"
        ]
    );
    assert_eq!(
        az_sets(&s, "privatelink.api.azureml.ms"),
        [format!("{GUID}.workspace.eastus A 60 10.1.0.6")]
    );
    assert_eq!(az_sets(&s, "alias.corp.example"), ["@ A 60 10.1.0.10"]);
    for z in &zones {
        assert_eq!(
            s["zones"][z.as_str()]["links"]["amldns"]["virtualNetwork"]["id"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next(),
            Some("vnet"),
            "{z}"
        );
    }
    eprintln!("first run: {} changes, {} zones", made.len(), zones.len());

    let again = run(&first, "run2.log");
    assert_eq!(again, Vec::<String>::new(), "a second run changes nothing");

    // st2 and ci-1 gone, st moved, the alias now to st.
    let second = [
        record("st.privatelink.blob.core.windows.net", "10.1.0.19") + "aaaa = [\"fd00::9\"]\n",
        record(&format!("{GUID}.workspace.eastus.api.azureml.ms"), "10.1.0.6"),
        record(&format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"), "10.1.0.6"),
        "[[record]]\nname = \"alias.corp.example\"\ncname = \"st.privatelink.blob.core.windows.net\"\n".into(),
    ]
    .concat();
    let changed = run(&second, "run3.log");
    eprintln!("after the table changed: {changed:#?}");
    let s = az_state(&state);
    let zones: Vec<&String> = s["zones"].as_object().unwrap().keys().collect();
    assert_eq!(
        zones,
        ["alias.corp.example", "privatelink.api.azureml.ms", blob],
        "{s}"
    );
    assert_eq!(
        az_sets(&s, blob),
        [
            "pe-made A 3600 10.1.0.50",
            "st A 60 10.1.0.19",
            "st AAAA 60 fd00::9"
        ]
    );
    assert_eq!(
        az_sets(&s, "alias.corp.example"),
        ["@ A 60 10.1.0.19", "@ AAAA 60 fd00::9"]
    );
    assert!(
        changed
            .iter()
            .any(|c| c.contains("zone delete") && c.contains("ci-1.eastus.instances.azureml.ms")),
        "{changed:?}"
    );
    assert_eq!(run(&second, "run4.log"), Vec::<String>::new());
}

/// `--format azcli` with `ZONES=existing`, as in a landing zone whose
/// policy forbids `privatelink.*` zones outside the platform's central
/// resource group: see [`writes_into_existing_zones_and_creates_none`].
#[test]
fn azcli_script_writes_into_existing_zones_and_creates_none() {
    let Some(path) = python_tools() else {
        return;
    };
    writes_into_existing_zones_and_creates_none(&AzGroup::new(
        path,
        &[
            ("RG", "rg-central-dns"),
            ("EXPECT_RG", "rg-central-dns"),
            ("SUBSCRIPTION", "sub-platform"),
            ("EXPECT_SUBSCRIPTION", "sub-platform"),
            ("ZONES", "existing"),
        ],
    ));
}

/// `--format azcli --existing-zones SUBSCRIPTION/RG`, run with none of
/// `ZONES`, `RG` and `SUBSCRIPTION` set, does what `ZONES=existing` does
/// with them; and the values it was printed with win over the environment's.
#[test]
fn azcli_existing_zones_flag_presets_the_mode() {
    let Some(path) = python_tools() else {
        return;
    };
    let group = AzGroup::new(
        path,
        &[
            ("EXPECT_RG", "rg-central-dns"),
            ("EXPECT_SUBSCRIPTION", "sub-platform"),
        ],
    )
    .with_args(&["--existing-zones", "sub-platform/rg-central-dns"]);
    let kept = writes_into_existing_zones_and_creates_none(&group);
    let elsewhere = AzGroup {
        env: [
            group.env.as_slice(),
            &[
                ("RG", "rg-elsewhere"),
                ("SUBSCRIPTION", "sub-elsewhere"),
                ("ZONES", "create"),
                ("VNET_ID", "/subscriptions/s/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet"),
            ],
        ]
        .concat(),
        ..group
    };
    let (o, changes) = elsewhere.script(&kept, "env.log");
    assert!(ok(&o), "{}", text(&o));
    assert_eq!(changes, Vec::<String>::new());
}

/// `records --existing-zones` with a format that has no such mode, or a
/// value that is not SUBSCRIPTION/RESOURCE_GROUP, is a usage error that
/// says so.
#[test]
fn existing_zones_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = records_config(dir.path());
    for (args, says) in [
        (
            ["--format", "bind", "--existing-zones", "sub/rg"],
            "it needs --format azcli or powershell",
        ),
        (
            ["--format", "azcli", "--existing-zones", "rg-dns"],
            "give SUBSCRIPTION/RESOURCE_GROUP",
        ),
        (
            ["--format", "powershell", "--existing-zones", "sub/"],
            "the resource group is empty",
        ),
        (
            ["--format", "azcli", "--existing-zones", "sub/rg'x"],
            "cannot be in a subscription or resource group",
        ),
    ] {
        let o = amldns(&[&["records", "--config", &config], &args[..]].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

/// What the existing-zones mode does, however it was asked for (`group`'s
/// script), in a resource group where the platform made two central zones
/// and a private endpoint's DNS zone group wrote two record sets: it writes
/// record sets into those zones (in the subscription given), never creates,
/// links or deletes a zone, leaves the record sets it did not write alone
/// (naming the one that differs from the table), lists the zones it lacks
/// and exits 1 having written the rest; a second run changes nothing, and
/// after the table changes it removes only the record sets it wrote. The
/// second table, which it ends with.
fn writes_into_existing_zones_and_creates_none(group: &AzGroup) -> String {
    let state = group.state();
    let blob = "privatelink.blob.core.windows.net";
    let dns = |words: &[&str]| {
        let mut args = vec!["az", "network", "private-dns"];
        args.extend(words);
        args.extend(["--resource-group", "rg-central-dns"]);
        args.extend(["--subscription", "sub-platform"]);
        let o = group.run(&args, "setup.log");
        assert!(ok(&o), "{}", text(&o));
    };
    dns(&["zone", "create", "--name", blob]);
    dns(&["zone", "create", "--name", "privatelink.api.azureml.ms"]);
    for (set, ip) in [("pe-made", "10.1.0.50"), ("st3", "10.1.0.51")] {
        dns(&[
            "record-set",
            "a",
            "add-record",
            "--zone-name",
            blob,
            "--record-set-name",
            set,
            "--ipv4-address",
            ip,
        ]);
    }
    let run = |records: &str, log: &str| group.script(records, log);
    let record = |name: &str, a: &str| format!("[[record]]\nname = \"{name}\"\na = [\"{a}\"]\n");
    let first = [
        record("st.privatelink.blob.core.windows.net", "10.1.0.9"),
        record("st2.privatelink.blob.core.windows.net", "10.1.0.10"),
        // The private endpoint's record set says otherwise.
        record("st3.privatelink.blob.core.windows.net", "10.1.0.11"),
        record(
            &format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
            "10.1.0.6",
        ),
        // Its own zone in the default mode, which nobody made here.
        record("ci-1.eastus.instances.azureml.ms", "10.1.0.5"),
    ]
    .concat();
    let (o, made) = run(&first, "run1.log");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("ci-1.eastus.instances.azureml.ms"),
        "the missing zone is named: {}",
        text(&o)
    );
    assert!(
        text(&o).contains(&format!(
            "{blob}: st3 A 3600 10.1.0.51 (the table: 60 10.1.0.11)"
        )),
        "the record set left alone is named: {}",
        text(&o)
    );
    for c in &made {
        assert!(c.contains(" record-set "), "only record sets change: {c}");
    }
    let s = az_state(&state);
    let zones: Vec<&String> = s["zones"].as_object().unwrap().keys().collect();
    assert_eq!(zones, ["privatelink.api.azureml.ms", blob], "{s}");
    let platform = ["pe-made A 3600 10.1.0.50", "st3 A 3600 10.1.0.51"];
    assert_eq!(
        az_sets(&s, blob),
        [
            platform[0],
            "st A 60 10.1.0.9",
            "st2 A 60 10.1.0.10",
            platform[1]
        ]
    );
    assert_eq!(
        az_sets(&s, "privatelink.api.azureml.ms"),
        [format!("{GUID}.workspace.eastus A 60 10.1.0.6")]
    );
    assert!(s["zones"][blob]["links"].as_object().unwrap().is_empty());

    let (_, again) = run(&first, "run2.log");
    assert_eq!(again, Vec::<String>::new(), "a second run changes nothing");

    // st2, st3 and the instance gone: st2's record set removed, the
    // platform's and the zones kept.
    let second = [
        record("st.privatelink.blob.core.windows.net", "10.1.0.9"),
        record(
            &format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
            "10.1.0.6",
        ),
    ]
    .concat();
    let (o, changed) = run(&second, "run3.log");
    assert!(ok(&o), "{}", text(&o));
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].contains("record-set a delete") && changed[0].contains("st2"));
    let s = az_state(&state);
    assert_eq!(
        az_sets(&s, blob),
        [platform[0], "st A 60 10.1.0.9", platform[1]]
    );
    assert_eq!(s["zones"].as_object().unwrap().len(), 2);
    second
}
