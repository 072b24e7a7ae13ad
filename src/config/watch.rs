//! What to watch for a configuration to change: its folder, its imports'.

use std::path::{Path, PathBuf};

use crate::import;

/// Folders whose changes may change the configuration at `path`: the
/// config's folder (and its real one, through a symlink), each import's base
/// folder, and the folder of every file an import matches now. Read
/// leniently, so that a config that does not load still names its imports
/// and fixing them is noticed.
pub fn watch_dirs(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut add = |d: &Path| {
        if !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_path_buf());
        }
    };
    let folder_of = |f: &Path| f.parent().unwrap_or(Path::new(".")).to_path_buf();
    let real_folder_of = |f: &Path| std::fs::canonicalize(f).ok().map(|r| folder_of(&r));
    add(&folder_of(path));
    if let Some(d) = real_folder_of(path) {
        add(&d);
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for pattern in super::spec::import_patterns(&text) {
        add(&import::base_dir(path, &pattern));
        for f in import::files(path, &pattern, true).unwrap_or_default() {
            add(&folder_of(&f));
            if let Some(d) = real_folder_of(&f) {
                add(&d);
            }
        }
    }
    dirs
}
