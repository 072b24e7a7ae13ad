//! What a large config costs the server in memory: about what `amldns
//! check` needs to read and compile it, at the start and through a reload,
//! and nothing beside the table kept afterwards (a parse of the whole file
//! to find what to watch once held three times `check`'s peak).
//!
//! Peaks are compared between two processes, each run alone, as a ratio with
//! room to spare: not against a figure of this machine.

use std::time::Duration;

use crate::common::{Process, RUN_TIMEOUT, TestConfig};

/// Enough records that the table and its parse outweigh the runtime's own
/// few megabytes, few enough for a debug build on a busy box.
const RECORDS: usize = 50_000;

/// Room for loading a debug build's table on a loaded box.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

fn records() -> String {
    (0..RECORDS)
        .map(|i| {
            format!(
                "[[record]]\nname = \"st{i:07}.privatelink.blob.core.windows.net\"\n\
                 a = [\"10.{}.{}.{}\"]\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect()
}

/// `VmHWM` of a running process, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

/// The peak resident size of `amldns check` on `config`, in KiB, from the
/// kernel's account of that child alone (`wait4`).
#[expect(
    clippy::zombie_processes,
    reason = "reaped by wait4, whose rusage std's wait does not give"
)]
fn check_peak_kib(config: &std::path::Path) -> u64 {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_amldns"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let started = std::time::Instant::now();
    loop {
        // SAFETY: asks after our own child, writing only into the two locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break;
        }
        assert_eq!(reaped, 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > RUN_TIMEOUT {
            // Not reaped yet: still our child.
            // SAFETY: `kill` only sends a signal.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("amldns check still running after {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "amldns check failed (status {status:#x})"
    );
    // ru_maxrss is in KiB on Linux.
    usage.ru_maxrss as u64
}

#[test]
fn a_large_config_is_served_and_reloaded_in_about_what_check_needs() {
    let text = TestConfig {
        upstreams: &["127.0.0.1:9".parse().unwrap()],
        rest: &records(),
        ..TestConfig::default()
    }
    .text();
    // Watching the files, as a server does by default.
    let p = Process::start_watching(&text, "json", None, "notify", LOAD_TIMEOUT);
    let serving = peak_kib(p.child.id());
    let check = check_peak_kib(&p.config);
    let bound = |check: u64| 2 * check + 16 * 1024;
    assert!(
        serving <= bound(check),
        "serving {RECORDS} records peaked at {serving} KiB, check at {check} KiB"
    );

    // A file change: the watcher looks at the file again, and the reload
    // holds the table serving beside the new one.
    std::fs::write(&p.config, format!("{text}# changed\n")).unwrap();
    p.wait_for_line_within("\"reloaded\"", LOAD_TIMEOUT);
    let reloaded = peak_kib(p.child.id());
    assert!(
        reloaded <= bound(check),
        "a reload of {RECORDS} records peaked at {reloaded} KiB, check at {check} KiB"
    );
}
