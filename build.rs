//! Stamps `amldns --version` with the commit and the build date (SPEC §9).
//!
//! Outside a git checkout (a source package, a crate tarball) the commit is
//! "unknown". The date honours SOURCE_DATE_EPOCH, so that a reproducible
//! build (https://reproducible-builds.org/specs/source-date-epoch/) gives the
//! same binary twice.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AMLDNS_COMMIT={commit}");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    println!("cargo:rustc-env=AMLDNS_BUILD_DATE={}", date(epoch));
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A new commit or checkout moves HEAD or the ref it points at
    // (--git-path: in a worktree, refs live in the main repository). Only
    // paths that exist are named: cargo takes a missing one for a change,
    // and would run this again, and build the crate again, every time. A
    // ref not written loose yet (packed, or a new branch) is watched through
    // its folder, where the next commit writes it.
    let head = git(&["symbolic-ref", "-q", "HEAD"]);
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]).filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(p) = head.and_then(|r| git(&["rev-parse", "--git-path", &r])) {
        let p = Path::new(&p);
        if let Some(watch) = Some(p)
            .filter(|p| p.exists())
            .or(p.parent().filter(|d| d.exists()))
        {
            println!("cargo:rerun-if-changed={}", watch.display());
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// `YYYY-MM-DD` (UTC) of a Unix time: the civil-from-days algorithm of
/// H. Hinnant (http://howardhinnant.github.io/date_algorithms.html), so that
/// the build needs no date crate.
fn date(epoch: i64) -> String {
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
