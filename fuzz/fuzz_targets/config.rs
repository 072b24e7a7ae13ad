//! Arbitrary UTF-8 text as the config file, through `config::parse` and, when
//! it is valid, `snapshot::table` (the builder that `check` and a reload use). The file
//! sits in a folder of its own that holds no import files, so every
//! `[[import]]` resolves to nothing: a missing file is an error, a glob
//! matches nothing. Imports that would look outside that folder (an absolute
//! path, a `..`) are skipped, so that no run reads the rest of the disk.
//!
//! Invariants, beyond "no panic": every error and warning is located in the
//! config file, at a line and column inside the text, and displays as
//! `file:line:col: message` with a message.

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use amldns::config::{self, ConfigError, Location};
use libfuzzer_sys::fuzz_target;

/// The config's path, in an empty folder made once per process.
fn config_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("amldns-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp folder");
        dir.join("amldns.toml")
    })
}

/// Whether an `[[import]] path` could name a file outside the config's folder.
fn escapes(pattern: &str) -> bool {
    Path::new(pattern)
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Whether any import path of the document escapes (read as TOML, as
/// `config::parse` reads it; a document that does not read imports nothing).
fn imports_escape(text: &str) -> bool {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return false;
    };
    let Some(imports) = doc.get("import").and_then(|v| v.as_array()) else {
        return false;
    };
    imports
        .iter()
        .filter_map(|i| i.get("path").and_then(|p| p.as_str()))
        .any(escapes)
}

fn check_location(at: &Location, path: &Path, text: &str, what: &dyn std::fmt::Display) {
    assert_eq!(*at.file, *path, "{what}: located in another file");
    let line = text
        .split('\n')
        .nth(at.line.wrapping_sub(1))
        .unwrap_or_else(|| panic!("{what}: line {} is past the text", at.line));
    assert!(
        at.col >= 1 && at.col <= line.chars().count() + 1,
        "{what}: column {} is off line {} ({} characters)",
        at.col,
        at.line,
        line.chars().count()
    );
}

fn check_error(e: &ConfigError, path: &Path, text: &str) {
    let ConfigError::Invalid { at, message } = e else {
        panic!("parse does not read the config itself: {e}");
    };
    check_location(at, path, text, e);
    assert!(!message.trim().is_empty(), "{e}: says nothing");
    let prefix = format!("{}:{}:{}: ", path.display(), at.line, at.col);
    assert!(e.to_string().starts_with(&prefix), "{e}: not {prefix}…");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if imports_escape(text) {
        return;
    }
    let path = config_path();
    match config::parse(path, text) {
        Err(e) => check_error(&e, path, text),
        Ok(config) => {
            for w in &config.warnings {
                check_location(&w.at, path, text, w);
            }
            if let Err(e) = amldns::snapshot::table(&config) {
                check_error(&e, path, text);
            }
        }
    }
});
