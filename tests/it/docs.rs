//! The documentation holds: its links stay in the repository, the commands
//! README shows run, the reference config names every key and loads, and
//! README's commands table and the man page name every command and option
//! `--help` gives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use amldns::config;
use amldns::reload::WatchMode;

use crate::common::{output_within, start_loaded};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every Markdown page a reader of the repository is sent to: those at the
/// root and under docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = Vec::new();
    for dir in [root().to_path_buf(), root().join("docs")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// The anchors a Markdown page's headings get, as GitHub makes them.
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !fenced) else {
            continue;
        };
        let heading = heading.trim_start_matches('#').trim();
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        found.push(slug);
    }
    found
}

/// The pages stand on their own in a clone: every relative link names a
/// file or folder inside the repository, and a link to a heading of a page
/// names one that exists.
#[test]
fn links_stay_in_the_repository() {
    let root_real = root().canonicalize().unwrap();
    let mut checked = 0;
    let pages = pages();
    assert!(pages.len() >= 10, "{pages:?}");
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap();
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let real = path
                .canonicalize()
                .unwrap_or_else(|e| panic!("{}: {target}: {e}", page.display()));
            assert!(
                real.starts_with(&root_real),
                "{}: {target} is outside the repository",
                page.display()
            );
            if !anchor.is_empty() {
                let there = std::fs::read_to_string(&real).unwrap();
                assert!(
                    anchors(&there).iter().any(|a| a == anchor),
                    "{}: {target}: no such heading",
                    page.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} links");
}

/// Every text file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The pages, the code, its tests and the scripts cite the project's own
/// documents, RFCs and Microsoft's pages: nothing a reader of the
/// repository cannot open (no specification section, no issue number).
#[test]
fn nothing_cites_what_is_outside_the_repository() {
    // Spelt in two parts, so that this file does not cite it either.
    let spec = concat!("SPEC", " §");
    let mut files = pages();
    for dir in ["src", "tests", "benches", "scripts", "deploy", "config"] {
        files_under(&root().join(dir), &mut files);
    }
    let mut read = 0;
    for file in files {
        // Binary fixtures (certificates' DER, say) are not text.
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        read += 1;
        for (n, line) in text.lines().enumerate() {
            let issue = line.match_indices("issue ").any(|(i, m)| {
                line[i + m.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            });
            assert!(
                !line.contains(spec) && !issue,
                "{}:{}: {line}",
                file.display(),
                n + 1
            );
        }
    }
    assert!(read > 100, "{read} files read");
}

/// Splits a shell command line into words: plain words and quoted ones,
/// which is all README's commands use.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, ' ') => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// The lines of README's shell and console blocks, prompts and comments
/// taken off.
fn readme_command_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let mut block = None;
    for line in read("README.md").lines() {
        if let Some(info) = line.strip_prefix("```") {
            block = match block {
                None => Some(info.to_string()),
                Some(_) => None,
            };
            continue;
        }
        if !matches!(block.as_deref(), Some("sh" | "console")) {
            continue;
        }
        let line = line.strip_prefix("$ ").unwrap_or(line);
        let line = line.split(" # ").next().unwrap().trim();
        if !line.is_empty() && !line.starts_with('#') {
            lines.push(line.to_string());
        }
    }
    lines
}

/// Every `amldns` command README shows runs and succeeds, against the
/// shipped example: the file ones on `config/amldns.toml`, the ones that
/// ask a server against that example served on loopback (at the ports the
/// test gets, named where README names the example's). `serve` is `check`ed
/// with the same arguments, and the test command is the one CI runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_commands_run() {
    let example = root().join("config/amldns.toml");
    let srv = start_loaded(config::load(&example).unwrap(), WatchMode::Off).await;
    let url = format!("http://{}", srv.http());
    let lines = readme_command_lines();

    // The Quick start's two set-up commands; CI runs the second one.
    assert!(
        lines
            .iter()
            .any(|l| l == "cargo run --release --locked -- serve --config config/amldns.toml"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "cargo test --locked"),
        "{lines:#?}"
    );
    assert!(
        read(".ci/run").contains("ip link set lo up && cargo test --locked'"),
        ".ci/run runs README's test command"
    );

    let mut ran = Vec::new();
    for line in &lines {
        let words = words(line);
        let args: Vec<String> = match words.first().map(String::as_str) {
            Some("amldns" | "target/release/amldns") => words[1..].to_vec(),
            Some("cargo") if words.get(1).is_some_and(|w| w == "run") => {
                let at = words.iter().position(|w| w == "--").unwrap();
                words[at + 1..].to_vec()
            }
            _ => continue,
        };
        let args: Vec<String> = args
            .into_iter()
            // A package's config is the example once it names workspaces.
            .map(|a| match a.as_str() {
                "/etc/amldns/amldns.toml" => example.to_string_lossy().into_owned(),
                "http://127.0.0.1:9153" => url.clone(),
                "127.0.0.1:5353" => srv.addr.to_string(),
                "serve" => "check".to_string(),
                _ => a,
            })
            .collect();
        let args = args.clone();
        let url = url.clone();
        let o: Output = tokio::task::spawn_blocking(move || {
            output_within(
                Command::new(env!("CARGO_BIN_EXE_amldns"))
                    .args(&args)
                    .current_dir(root())
                    .env_remove("AMLDNS_CONFIG")
                    .env("AMLDNS_SERVER", url),
            )
        })
        .await
        .unwrap();
        assert!(
            o.status.success() && !o.stdout.is_empty(),
            "README: {line}: {:?}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        ran.push(line.clone());
    }
    srv.stop().await;
    assert!(ran.len() >= 6, "{ran:#?}");
}

/// The names of a struct's fields in `src/config/spec.rs`: the keys of the
/// section it reads.
fn spec_keys(spec: &str, name: &str) -> Vec<String> {
    let start = spec
        .find(&format!("struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name}"));
    let body = &spec[start..];
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, _)| k.to_string())
        .collect()
}

/// The text under each `[name]` or `[[name]]` header of a TOML file or
/// under each "## `[name]`" heading of a page, by name.
fn sections(text: &str, header: impl Fn(&str) -> Option<&str>) -> BTreeMap<String, &str> {
    let mut found = BTreeMap::new();
    let mut current: Option<(String, usize)> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some(name) = header(line.trim_end()) {
            if let Some((n, s)) = current.take() {
                found.insert(n, &text[s..at]);
            }
            current = Some((name.to_string(), at));
        }
        at += line.len();
    }
    if let Some((n, s)) = current {
        found.insert(n, &text[s..]);
    }
    found
}

/// `config/amldns.reference.toml` names every key of every section, and
/// docs/configuration.md documents each; the reference loads as it is.
#[test]
fn the_reference_config_names_every_key_and_loads() {
    let spec = read("src/config/spec.rs");
    let reference = read("config/amldns.reference.toml");
    let page = read("docs/configuration.md");
    let toml = sections(&reference, |l| {
        l.trim_start_matches(['[', ' '])
            .strip_suffix(']')
            .map(|n| n.trim_end_matches(']'))
            .filter(|_| l.starts_with('['))
    });
    let doc = sections(&page, |l| {
        l.strip_prefix("## `[")?
            .trim_start_matches('[')
            .split(']')
            .next()
    });
    let section_of = [
        ("ServerSpec", "server"),
        ("MetricsSpec", "metrics"),
        ("UpstreamSpec", "upstream"),
        ("ZoneSpec", "zone"),
        ("LogSpec", "log"),
        ("WorkspaceSpec", "workspace"),
        ("ProjectSpec", "workspace"),
        ("RecordSpec", "record"),
        ("ImportSpec", "import"),
        ("AzureSpec", "azure"),
    ];
    let tables = spec_keys(&spec, "Spec");
    assert_eq!(tables.len(), 9, "{tables:?}");
    let mut keys = 0;
    for table in &tables {
        let structs: Vec<&str> = (section_of.iter())
            .filter(|(_, s)| s == table)
            .map(|(name, _)| *name)
            .collect();
        assert!(!structs.is_empty(), "[{table}]: which struct reads it?");
        for key in structs.iter().flat_map(|name| spec_keys(&spec, name)) {
            let in_toml = toml.get(table).is_some_and(|t| {
                t.lines().any(|l| {
                    let l = l.trim_start_matches(['#', ' ']);
                    l.starts_with(&format!("{key} =")) || l.contains(&format!("{{ {key} ="))
                })
            });
            assert!(in_toml, "config/amldns.reference.toml: [{table}] {key}");
            // A row of the section's table: the key in its first cell.
            let in_doc = doc.get(table).is_some_and(|t| {
                t.lines()
                    .filter_map(|l| l.strip_prefix("| ")?.split('|').next())
                    .any(|cell| cell.contains(&format!("`{key}`")))
            });
            assert!(in_doc, "docs/configuration.md: [{table}] {key}");
            keys += 1;
        }
    }
    assert!(keys > 50, "{keys} keys");

    let o = output_within(
        Command::new(env!("CARGO_BIN_EXE_amldns"))
            .args(["check", "--config", "config/amldns.reference.toml"])
            .current_dir(root()),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains(": OK, "), "{out}");
    // Its upstream is on loopback: trying it sends nothing off the machine.
    let loaded = config::load(&root().join("config/amldns.reference.toml")).unwrap();
    assert!(loaded.upstream.servers.iter().all(|s| s.ip().is_loopback()));
}

/// Each command `amldns --help` lists has a row in README's commands table
/// and a synopsis in the man page, and both name every option its own
/// `--help` gives.
#[test]
fn readme_and_man_page_agree_with_help() {
    let help = |args: &[&str]| {
        let o = output_within(Command::new(env!("CARGO_BIN_EXE_amldns")).args(args));
        assert!(o.status.success(), "{args:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let top = help(&["--help"]);
    let commands: Vec<&str> = top
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        // A long description wraps onto lines indented further.
        .filter(|l| !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().unwrap())
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(commands.len(), 10, "{commands:?}");
    let readme = read("README.md");
    let man = read("deploy/debian/amldns.1").replace("\\-", "-");
    for command in commands {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `amldns {command}")))
            .unwrap_or_else(|| panic!("README's commands table has no row for {command}"));
        let synopsis = man
            .split(&format!(".B amldns {command}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("the man page has no synopsis for {command}"));
        let synopsis = synopsis.split(".br").next().unwrap();
        let options = help(&[command, "--help"]);
        for option in options
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
            .map(|w| w.trim_end_matches(','))
            .filter(|w| *w != "--help")
        {
            assert!(row.contains(option), "README: {command} {option}");
            assert!(synopsis.contains(option), "amldns.1: {command} {option}");
        }
    }
}
