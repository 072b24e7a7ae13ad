//! Hot reload by every trigger (file watch by inotify and by polling,
//! `POST /reload`, symlink swaps), broken files that keep the old table
//! serving, and reloads under load.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use amldns::metrics::*;
use amldns::reload::{DEBOUNCE, DEBOUNCE_MAX, POLL_INTERVAL, WatchMode};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::common::*;
use crate::setup::*;

/// The ceiling of a wait for a change inotify reports to be served. It is
/// served once the files have been quiet for DEBOUNCE (each change here is
/// one burst of writes) and the table is compiled, well under a second; a
/// watcher that misses the change never serves it, so a ceiling far above
/// that time still catches it, on however busy a machine.
const NOTIFIED: Duration = DEBOUNCE.saturating_mul(40);

/// Polls until `name` answers `ip`, for at most `within`.
async fn wait_for_answer(srv: &Running, name: &str, ip: &str, within: Duration) {
    let t = Instant::now();
    loop {
        if answer(srv, name).await == vec![ip.to_string()] {
            return;
        }
        assert!(
            t.elapsed() < within,
            "{name} still does not answer {ip} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A broken config keeps the old table; the failure is counted, located and
/// shown by /healthz; fixing it recovers.
#[tokio::test]
async fn broken_reload_keeps_serving_and_fixing_recovers() {
    let up = StandIn::zone().await;
    let srv = start(&one_name(up.addr, "10.9.0.1")).await;
    let good = std::fs::read_to_string(&srv.config_path).unwrap();
    let first_success = metric(&scrape(&srv).await, LAST_RELOAD_SUCCESS, &[]);
    let broken_ip = good.replace("10.9.0.1", "10.9.0.300");
    let cases = [
        (broken_ip.as_str(), "is not an IPv4 address"),
        ("[server\n", "expected"),
        // Truncated (`: > amldns.toml`): the table must not empty.
        ("", ":1:1: the config gives nothing to answer locally"),
        (
            &*format!("{good}[[import]]\npath = \"missing.json\"\n"),
            "missing.json does not exist",
        ),
        (
            &*format!("{good}[[record]]\nname = \"ws.corp.example\"\na = [\"10.9.9.9\"]\n"),
            "two different answers",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        std::fs::write(&srv.config_path, text).unwrap();
        let (status, body) = http_request(srv.http(), "POST", "/reload").await;
        assert_eq!(status, 422, "{body}");
        assert!(body.contains(needle), "{body}");
        assert_eq!(
            answer(&srv, "ws.corp.example").await,
            vec!["10.9.0.1"],
            "old table serves"
        );
        // Degraded, not down: 200, so that a liveness probe does not
        // restart a server that serves its last good table.
        let (status, health) = http_request(srv.http(), "GET", "/healthz").await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&health).unwrap();
        assert_eq!(v["status"], "degraded", "{health}");
        let err = v["problems"]["reload"].as_str().unwrap();
        assert!(
            err.starts_with(&srv.config_path.display().to_string()),
            "located: {err}"
        );
        assert!(err.contains(needle), "{err}");
        let reason = v["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("the last reload failed: ") && reason.ends_with(err),
            "{reason}"
        );
        assert_eq!(v["generation"], 1);
        let m = scrape(&srv).await;
        assert_eq!(
            metric(&m, RELOADS_TOTAL, &[("result", "failure")]),
            (i + 1) as f64
        );
        assert_eq!(
            metric(&m, TABLE_GENERATION, &[]),
            1.0,
            "generation unchanged"
        );
        assert_eq!(metric(&m, LAST_RELOAD_SUCCESSFUL, &[]), 0.0);
        assert_eq!(metric(&m, LAST_RELOAD_SUCCESS, &[]), first_success);
    }
    std::fs::write(&srv.config_path, good.replace("10.9.0.1", "10.9.0.2")).unwrap();
    let fixed_at = unix_now();
    let (status, body) = http_request(srv.http(), "POST", "/reload").await;
    assert_eq!((status, body.trim()), (200, "{\"generation\":2}"));
    assert_eq!(answer(&srv, "ws.corp.example").await, vec!["10.9.0.2"]);
    let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
    let v: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(v["status"], "ok", "{health}");
    assert!(v["reason"].is_null() && v["problems"].is_null(), "{health}");
    let m = scrape(&srv).await;
    assert_eq!(metric(&m, TABLE_GENERATION, &[]), 2.0);
    assert_eq!(metric(&m, RELOADS_TOTAL, &[("result", "success")]), 2.0);
    assert_eq!(metric(&m, LAST_RELOAD_SUCCESSFUL, &[]), 1.0);
    let stamped = metric(&m, LAST_RELOAD_SUCCESS, &[]);
    assert!(
        (fixed_at.floor()..=unix_now()).contains(&stamped),
        "the fix stamped {stamped}, made at {fixed_at}"
    );
    srv.stop().await;
}

/// Upstreams and `allow` reload too, and the cache survives a reload.
#[tokio::test]
async fn upstreams_and_allow_reload() {
    let first = StandIn::zone().await;
    let second = StandIn::zone().await;
    let srv = start(&one_name(first.addr, "10.9.0.1")).await;
    answer(&srv, "www.example.com").await;
    let text = std::fs::read_to_string(&srv.config_path).unwrap();
    std::fs::write(
        &srv.config_path,
        text.replace(&first.addr.to_string(), &second.addr.to_string())
            .replace("127.0.0.1/32", "127.0.0.0/8"),
    )
    .unwrap();
    assert_eq!(http_request(srv.http(), "POST", "/reload").await.0, 200);
    answer(&srv, "nope.example.com").await;
    assert_eq!(second.seen_names(), vec!["nope.example.com"]);
    assert_eq!(first.seen_names(), vec!["www.example.com"]);
    // Still cached from before the reload: no upstream asked.
    answer(&srv, "www.example.com").await;
    assert_eq!(second.seen_names(), vec!["nope.example.com"]);
    // The old upstream's series are gone, the new one's are there.
    let m = scrape(&srv).await;
    assert!(!m.contains(&first.addr.to_string()), "{m}");
    assert_eq!(
        metric(
            &m,
            UPSTREAM_REQUESTS_TOTAL,
            &[("upstream", &second.addr.to_string())]
        ),
        1.0
    );
    // 127.0.0.2 is allowed now.
    let q = query_msg("ws.corp.example", RecordType::A, None)
        .to_vec()
        .unwrap();
    let bytes = udp_raw_from(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        srv.addr,
        &q,
        IO_TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(addrs(&Message::from_vec(&bytes).unwrap()), vec!["10.9.0.1"]);
    srv.stop().await;
}

/// The file watcher, for each way files really change.
async fn watched(mode: WatchMode) {
    let up = StandIn::zone().await;
    // Seen at once with inotify, within a POLL_INTERVAL by polling.
    let within = match mode {
        WatchMode::Poll => POLL_INTERVAL + NOTIFIED,
        _ => NOTIFIED,
    };
    let cfg = format!(
        "{}[[import]]\npath = \"pe/*.json\"\n",
        one_name(up.addr, "10.9.0.1")
    );
    let srv = start_with(&cfg, &[], mode).await;
    let good = std::fs::read_to_string(&srv.config_path).unwrap();
    let dir = srv.dir.clone();
    // Answering means running, and watching (it starts first).
    assert_eq!(answer(&srv, "ws.corp.example").await, vec!["10.9.0.1"]);

    // `cp` over the file: truncated and rewritten in place.
    std::fs::write(&srv.config_path, good.replace("10.9.0.1", "10.9.0.2")).unwrap();
    wait_for_answer(&srv, "ws.corp.example", "10.9.0.2", within).await;

    // An editor: write a temp file, rename it over the config.
    let tmp = dir.join(".amldns.toml.swp");
    std::fs::write(&tmp, good.replace("10.9.0.1", "10.9.0.3")).unwrap();
    std::fs::rename(&tmp, &srv.config_path).unwrap();
    wait_for_answer(&srv, "ws.corp.example", "10.9.0.3", within).await;

    // A new file matching the import glob, in a folder that did not exist.
    srv.write(
        "pe/new.json",
        r#"[{"fqdn": "new.privatelink.blob.core.windows.net", "ipAddresses": ["10.9.1.1"]}]"#,
    );
    wait_for_answer(
        &srv,
        "new.privatelink.blob.core.windows.net",
        "10.9.1.1",
        within,
    )
    .await;
    // ... and a second one in that folder, now watched.
    srv.write(
        "pe/second.json",
        r#"[{"fqdn": "second.privatelink.blob.core.windows.net", "ipAddresses": ["10.9.1.2"]}]"#,
    );
    wait_for_answer(
        &srv,
        "second.privatelink.blob.core.windows.net",
        "10.9.1.2",
        within,
    )
    .await;

    // The import folder deleted and made again: still watched.
    std::fs::remove_dir_all(dir.join("pe")).unwrap();
    wait_for_absent(&srv, "new.privatelink.blob.core.windows.net", within).await;
    srv.write(
        "pe/new.json",
        r#"[{"fqdn": "new.privatelink.blob.core.windows.net", "ipAddresses": ["10.9.1.3"]}]"#,
    );
    wait_for_answer(
        &srv,
        "new.privatelink.blob.core.windows.net",
        "10.9.1.3",
        within,
    )
    .await;
    srv.write(
        "pe/new.json",
        r#"[{"fqdn": "new.privatelink.blob.core.windows.net", "ipAddresses": ["10.9.1.4"]}]"#,
    );
    wait_for_answer(
        &srv,
        "new.privatelink.blob.core.windows.net",
        "10.9.1.4",
        within,
    )
    .await;

    // Broken, then fixed: the old table serves in between.
    let failures =
        || async { metric(&scrape(&srv).await, RELOADS_TOTAL, &[("result", "failure")]) };
    let failed_before = failures().await;
    std::fs::write(&srv.config_path, "[server\n").unwrap();
    let t = Instant::now();
    loop {
        let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
        if health.contains("expected") {
            break;
        }
        assert!(t.elapsed() < within, "broken config not noticed: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer(&srv, "ws.corp.example").await, vec!["10.9.0.3"]);
    // An editor's swap file beside the broken config: no second report.
    std::fs::write(dir.join(".amldns.toml.swp"), "x").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        failures().await - failed_before,
        1.0,
        "one failure, counted once"
    );
    std::fs::write(&srv.config_path, good.replace("10.9.0.1", "10.9.0.4")).unwrap();
    wait_for_answer(&srv, "ws.corp.example", "10.9.0.4", within).await;
    let (_, health) = http_request(srv.http(), "GET", "/healthz").await;
    assert!(health.contains("\"status\":\"ok\""), "{health}");

    // A burst of writes compiles once (debounced), well under one per write.
    let m = scrape(&srv).await;
    let before = metric(&m, RELOADS_TOTAL, &[]);
    for i in 0..20 {
        std::fs::write(
            &srv.config_path,
            good.replace("10.9.0.1", &format!("10.9.2.{i}")),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_for_answer(&srv, "ws.corp.example", "10.9.2.19", within).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reloads = metric(&scrape(&srv).await, RELOADS_TOTAL, &[]) - before;
    assert!(
        (1.0..=4.0).contains(&reloads),
        "{reloads} reloads for a burst of 20 writes"
    );
    srv.stop().await;
}

#[tokio::test]
async fn file_changes_reload_with_inotify() {
    watched(WatchMode::Notify).await;
}

#[tokio::test]
async fn file_changes_reload_by_polling() {
    watched(WatchMode::Poll).await;
}

/// Polls until `name` is no longer local (forwarded: NXDOMAIN from the stand-in).
async fn wait_for_absent(srv: &Running, name: &str, within: Duration) {
    let t = Instant::now();
    loop {
        let r = udp_query(srv.addr, name, RecordType::A).await;
        if r.metadata.response_code == ResponseCode::NXDomain {
            return;
        }
        assert!(t.elapsed() < within, "{name} still local after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A broken import that is then fixed recovers by itself, even when the fix
/// is in a folder that only the broken config names.
#[tokio::test]
async fn fixing_a_missing_import_recovers_by_itself() {
    let up = StandIn::zone().await;
    let srv = start_with(
        &one_name(up.addr, "10.9.0.1"),
        &[("other/readme.txt", "")],
        WatchMode::Notify,
    )
    .await;
    assert_eq!(answer(&srv, "ws.corp.example").await, vec!["10.9.0.1"]);
    let good = std::fs::read_to_string(&srv.config_path).unwrap();
    std::fs::write(
        &srv.config_path,
        format!("{good}[[import]]\npath = \"other/ws.json\"\n"),
    )
    .unwrap();
    let t = Instant::now();
    while !http_request(srv.http(), "GET", "/healthz")
        .await
        .1
        .contains("does not exist")
    {
        assert!(t.elapsed() < NOTIFIED, "the missing import is reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.write(
        "other/ws.json",
        r#"[{"fqdn": "x.privatelink.blob.core.windows.net", "ipAddresses": ["10.9.3.1"]}]"#,
    );
    wait_for_answer(
        &srv,
        "x.privatelink.blob.core.windows.net",
        "10.9.3.1",
        NOTIFIED,
    )
    .await;
    srv.stop().await;
}

/// A glob with a wildcard folder (`*/pe.json`): edits in the matched folders are seen.
#[tokio::test]
async fn wildcard_folders_in_globs_are_watched() {
    let up = StandIn::zone().await;
    let pe = |ip: &str| {
        format!(r#"[{{"fqdn": "y.privatelink.blob.core.windows.net", "ipAddresses": ["{ip}"]}}]"#)
    };
    let cfg = format!(
        "{}[[import]]\npath = \"*/pe.json\"\n",
        one_name(up.addr, "10.9.0.1")
    );
    let srv = start_with(&cfg, &[("sub/pe.json", &pe("10.9.4.1"))], WatchMode::Notify).await;
    assert_eq!(
        answer(&srv, "y.privatelink.blob.core.windows.net").await,
        vec!["10.9.4.1"]
    );
    srv.write("sub/pe.json", &pe("10.9.4.2"));
    wait_for_answer(
        &srv,
        "y.privatelink.blob.core.windows.net",
        "10.9.4.2",
        NOTIFIED,
    )
    .await;
    srv.stop().await;
}

/// A Kubernetes ConfigMap volume: files are symlinks through `..data`, and an
/// update renames a new `..data` symlink over the old one.
#[tokio::test]
async fn configmap_symlink_swap_reloads() {
    let up = StandIn::zone().await;
    let root = tempfile::tempdir().unwrap();
    let vol = root.path();
    let v1 = vol.join("..2026_11_22_17_00_00.1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("amldns.toml"), one_name(up.addr, "10.9.0.1")).unwrap();
    std::os::unix::fs::symlink("..2026_11_22_17_00_00.1", vol.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/amldns.toml", vol.join("amldns.toml")).unwrap();

    let config = amldns::config::load(&vol.join("amldns.toml")).unwrap();
    let srv = start_loaded(config, WatchMode::Notify).await;
    assert_eq!(answer(&srv, "ws.corp.example").await, vec!["10.9.0.1"]);

    // What the kubelet does: a new timestamped folder, a `..data_tmp`
    // symlink to it, renamed over `..data`, the old folder removed.
    let v2 = vol.join("..2026_11_22_17_05_00.2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(v2.join("amldns.toml"), one_name(up.addr, "10.9.0.2")).unwrap();
    std::os::unix::fs::symlink("..2026_11_22_17_05_00.2", vol.join("..data_tmp")).unwrap();
    std::fs::rename(vol.join("..data_tmp"), vol.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    wait_for_answer(&srv, "ws.corp.example", "10.9.0.2", NOTIFIED).await;
    srv.stop().await;
    drop(root);
}

/// 200 reloads while a client keeps querying: every query answered, each
/// answer wholly from the old table or wholly from the new one. The two
/// tables chain `a` through different names, so an answer that mixed them
/// would show.
#[tokio::test]
async fn reloads_under_load_lose_nothing() {
    let up = StandIn::zone().await;
    let table = |via: &str, ip: &str| {
        with_metrics(
            up.addr,
            &format!(
                "[[record]]\nname = \"a.corp.example\"\ncname = \"{via}.corp.example\"\n\
                 [[record]]\nname = \"{via}.corp.example\"\na = [\"{ip}\"]\n"
            ),
        )
    };
    let texts = [table("b", "10.9.0.1"), table("c", "10.9.0.2")];
    let srv = start(&texts[0]).await;
    let addr = srv.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut answered, mut old, mut new) = (0u32, 0u32, 0u32);
            // Bounded: at most 100,000 queries, or until the reloads end.
            for _ in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = udp_query(addr, "a.corp.example", RecordType::A).await;
                assert_eq!(r.metadata.response_code, ResponseCode::NoError);
                match answer_lines(&r).join(", ").as_str() {
                    "a.corp.example CNAME b.corp.example, b.corp.example A 10.9.0.1" => old += 1,
                    "a.corp.example CNAME c.corp.example, c.corp.example A 10.9.0.2" => new += 1,
                    other => panic!("an answer from neither table: {other}"),
                }
                answered += 1;
            }
            (answered, old, new)
        })
    };
    for i in 0..200 {
        std::fs::write(&srv.config_path, &texts[(i + 1) % 2]).unwrap();
        let (status, body) = http_request(srv.http(), "POST", "/reload").await;
        assert_eq!(
            (status, body.trim()),
            (200, format!("{{\"generation\":{}}}", i + 2).as_str())
        );
    }
    stop.store(true, Ordering::Relaxed);
    let (answered, old, new) = client.await.unwrap();
    assert!(
        answered >= 100,
        "only {answered} queries ran during the reloads"
    );
    assert!(old > 0 && new > 0, "both tables served: {old} and {new}");
    let m = scrape(&srv).await;
    assert_eq!(metric(&m, TABLE_GENERATION, &[]), 201.0);
    assert_eq!(metric(&m, RELOADS_TOTAL, &[("result", "success")]), 201.0);
    assert_eq!(metric(&m, RESPONSES_TOTAL, &[]), answered as f64);
    assert!(up.seen().is_empty(), "nothing fell through to the upstream");
    srv.stop().await;
}

/// Reload requests that arrive while one runs share the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reload_requests_coalesce() {
    let up = StandIn::zone().await;
    let srv = start(&one_name(up.addr, "10.9.0.1")).await;
    let http = srv.http();
    let calls: Vec<_> = (0..10)
        .map(|_| tokio::spawn(async move { http_request(http, "POST", "/reload").await }))
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().0, 200);
    }
    let m = scrape(&srv).await;
    let reloads = metric(&m, RELOADS_TOTAL, &[("result", "success")]) - 1.0;
    assert!(
        (1.0..=4.0).contains(&reloads),
        "{reloads} reloads for 10 requests"
    );
    srv.stop().await;
}

/// A folder written more often than the debounce (every
/// 20 ms, against 250) is never quiet, and still reloads once DEBOUNCE_MAX
/// has passed since the first write (waited for with a ceiling of five
/// times that), not before unless the writer fell quiet for a debounce.
#[tokio::test]
async fn a_folder_never_quiet_still_reloads() {
    let every = Duration::from_millis(20);
    assert!(every < DEBOUNCE);
    let up = StandIn::zone().await;
    let srv = start_with(&one_name(up.addr, "10.9.0.1"), &[], WatchMode::Notify).await;
    assert_eq!(answer(&srv, "ws.corp.example").await, vec!["10.9.0.1"]);
    let next = std::fs::read_to_string(&srv.config_path)
        .unwrap()
        .replace("10.9.0.1", "10.9.0.2");
    let stop = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    // A thread of its own, so that the writes keep their pace whatever this
    // test's runtime is doing; it notes when each write was done.
    let writer = std::thread::spawn({
        let (path, stop) = (srv.config_path.clone(), stop.clone());
        move || {
            let tmp = path.with_extension("tmp");
            let mut done = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // Renamed over the config, so that every read sees a whole file.
                std::fs::write(&tmp, format!("{next}# write {}\n", done.len())).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
                done.push(Instant::now());
                std::thread::sleep(every);
            }
            done
        }
    });
    wait_for_answer(&srv, "ws.corp.example", "10.9.0.2", 5 * DEBOUNCE_MAX).await;
    let took = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let done = writer.join().unwrap();
    eprintln!("reloaded {took:?} after the first of {} writes", done.len());
    // Never quiet: not reloaded before DEBOUNCE_MAX either, unless this
    // machine held the writer back for a whole debounce before the reload.
    let reloaded = t + took;
    let quiet = std::iter::once(t)
        .chain(done.iter().copied().take_while(|&w| w < reloaded))
        .chain(std::iter::once(reloaded))
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[1] - w[0] >= DEBOUNCE);
    assert!(
        took >= DEBOUNCE_MAX || quiet,
        "reloaded after {took:?}, while written every {every:?}"
    );
    srv.stop().await;
}
