//! Hot reload: the only writer of the snapshot the handler reads.
//!
//! A reload reads and compiles the whole configuration off the serving path
//! (a blocking task), then swaps the new snapshot in with one atomic store:
//! a query in flight keeps the snapshot it started with, the next one sees
//! the new one, and none waits. A config that fails to load leaves the old
//! snapshot serving, is logged with its location, counted, and shown by
//! `/healthz` (through [`Health`]) until a later load succeeds.
//!
//! Triggers: file changes (watched with `notify`, or by polling), SIGHUP,
//! and `POST /reload`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::allocator;
use crate::azure::{self, Discovered};
use crate::config::{self, AzureConfig, Config, ConfigError};
use crate::forward::Service;
use crate::health::{self, Health};
use crate::metrics::{self, Metrics, ReloadResult};
use crate::snapshot::{self, Built, RestartOnly, Snapshot};
use crate::zone::ZoneTable;

/// Editors and `kubectl` write in bursts: wait for this much quiet, then
/// compile once.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// A folder written more often than [`DEBOUNCE`] (a log, a sync job) is
/// never quiet: past this since the first change, reload anyway.
pub const DEBOUNCE_MAX: Duration = Duration::from_secs(2);

/// How often the polling watcher looks, when inotify is not an option
/// (some network and overlay file systems).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What started a reload; logged with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    File,
    Signal,
    Http,
    /// An Azure discovery round found something new.
    Azure,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::File => "file change",
            Trigger::Signal => "SIGHUP",
            Trigger::Http => "POST /reload",
            Trigger::Azure => "Azure discovery",
        })
    }
}

/// How to notice file changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WatchMode {
    /// inotify through the `notify` crate.
    #[default]
    Notify,
    /// Look every second (for file systems without inotify).
    Poll,
    /// Only SIGHUP and POST /reload.
    Off,
}

/// As written on the command line (`--watch notify`).
impl fmt::Display for WatchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WatchMode::Notify => "notify",
            WatchMode::Poll => "poll",
            WatchMode::Off => "off",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the reload task stopped: {0}")]
    Task(String),
    /// The result of a reload that ran while this one waited.
    #[error("{0}")]
    Again(String),
}

/// The table being served, for `/healthz` and the startup line.
#[derive(Debug, Clone)]
pub struct Status {
    pub generation: u64,
    pub names: usize,
    /// Unix time of the last successful load.
    pub loaded_at: f64,
    /// Of the config file that load read ([`Config::sha256`]).
    pub sha256: String,
}

/// How many names of each kind a reload's log line and `/status` show.
pub const CHANGES_SHOWN: usize = 5;

/// Some names of one kind of change, and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Changed {
    pub count: usize,
    /// The first [`CHANGES_SHOWN`], in table order.
    pub first: Vec<String>,
}

impl Changed {
    fn push(&mut self, name: &str) {
        self.count += 1;
        if self.first.len() < CHANGES_SHOWN {
            self.first.push(name.to_string());
        }
    }
}

impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.count)?;
        if !self.first.is_empty() {
            let more = if self.count > self.first.len() {
                ", …"
            } else {
                ""
            };
            write!(f, " ({}{more})", self.first.join(", "))?;
        }
        Ok(())
    }
}

/// What a reload changed in the table, as its log line and `/status` say
/// it: names added, names
/// removed, and names answered differently (answer or TTL).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    pub added: Changed,
    pub removed: Changed,
    pub changed: Changed,
}

/// As the reload log line says it: `added 2 (a, b), removed 0, changed 0`.
impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "added {}, removed {}, changed {}",
            self.added, self.removed, self.changed
        )
    }
}

/// Compares two tables name by name; both list their nodes sorted.
pub fn changes(old: &ZoneTable, new: &ZoneTable) -> Changes {
    let mut c = Changes::default();
    let (mut old, mut new) = (old.nodes().peekable(), new.nodes().peekable());
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => return c,
            (Some(o), None) => {
                c.removed.push(o.name);
                old.next();
            }
            (None, Some(n)) => {
                c.added.push(n.name);
                new.next();
            }
            (Some(o), Some(n)) => match o.name.cmp(n.name) {
                std::cmp::Ordering::Less => {
                    c.removed.push(o.name);
                    old.next();
                }
                std::cmp::Ordering::Greater => {
                    c.added.push(n.name);
                    new.next();
                }
                std::cmp::Ordering::Equal => {
                    if (o.data, o.ttl) != (n.data, n.ttl) {
                        c.changed.push(n.name);
                    }
                    old.next();
                    new.next();
                }
            },
        }
    }
}

/// The last reload asked for (by a file change, SIGHUP or `POST /reload`),
/// for `/status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LastReload {
    /// Unix time it ended.
    pub at: f64,
    pub trigger: String,
    /// The generation served afterwards.
    pub generation: u64,
    /// `None` when it succeeded; else why the old table keeps serving.
    pub error: Option<String>,
    /// What it changed, when it swapped a new table in.
    pub changes: Option<Changes>,
}

/// Reload bookkeeping, behind the lock that makes reloads run one at a time.
struct Reloads {
    /// The fingerprint of the files and the digest of the Azure discovery
    /// the served table was built from.
    applied: (u64, u64),
    /// What the last reload gave: the generation served, or its error.
    last: Result<u64, String>,
}

/// Owns the snapshot's write side, and reconfigures the forwarder.
pub struct Reloader {
    path: PathBuf,
    snapshot: Arc<ArcSwap<Snapshot>>,
    forwarder: Arc<Service>,
    /// What Azure discovery found, merged into every table, and
    /// `[azure]` as last loaded, for the rounds.
    azure: azure::State,
    metrics: Arc<Metrics>,
    /// A failed reload sets its problem here, a successful one clears it.
    health: Arc<Health>,
    /// What the sockets and threads were made from.
    restart: RestartOnly,
    /// Reloads begun so far; a request that finds a reload begun after it
    /// was made takes that one's result instead of compiling again.
    begun: AtomicU64,
    reloads: tokio::sync::Mutex<Reloads>,
    status: Mutex<Status>,
    /// `None` until the first reload after the start.
    last_reload: Mutex<Option<LastReload>>,
}

impl Reloader {
    /// Builds `config` into the first snapshot (generation 1), and the
    /// forwarder that serves for the server's life.
    pub fn new(
        config: Config,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<Self, ReloadError> {
        let loading = allocator::loading();
        let azure = azure::State::new(config.azure.clone());
        let mut discovered = azure.discovered();
        // The state file never keeps the server from starting: a discovery
        // that does not fit the files waits for the first round instead.
        let built = match snapshot::build(&config, &discovered, 1) {
            Err(e) if !discovered.is_empty() => {
                warn!(
                    "the last Azure discovery (state_file) is not served until a round succeeds: {e}"
                );
                discovered = Arc::new(Discovered::default());
                azure.replace(discovered.clone());
                snapshot::build(&config, &discovered, 1)?
            }
            built => built?,
        };
        let Built {
            snapshot,
            upstream,
            restart,
            azure: _,
            warnings,
            fingerprint,
            sha256,
        } = built;
        for w in &warnings {
            warn!("{w}");
        }
        let status = Status {
            generation: 1,
            names: snapshot.table.len(),
            loaded_at: metrics::unix_now(),
            sha256,
        };
        record_success(&metrics, &status);
        let reloads = Reloads {
            applied: (fingerprint, discovered.digest()),
            last: Ok(1),
        };
        let reloader = Reloader {
            path: config.path.clone(),
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            forwarder: Arc::new(Service::new(&upstream, metrics.clone())),
            azure,
            metrics,
            health,
            restart,
            begun: AtomicU64::new(0),
            reloads: tokio::sync::Mutex::new(reloads),
            status: Mutex::new(status),
            last_reload: Mutex::new(None),
        };
        drop(config);
        drop(loading);
        Ok(reloader)
    }

    /// The forwarder, reconfigured by each reload.
    pub fn forwarder(&self) -> &Arc<Service> {
        &self.forwarder
    }

    /// The snapshot the handler reads.
    pub fn snapshot(&self) -> &Arc<ArcSwap<Snapshot>> {
        &self.snapshot
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last reload since the start, if any.
    pub fn last_reload(&self) -> Option<LastReload> {
        self.last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_last_reload(
        &self,
        trigger: Trigger,
        generation: u64,
        error: Option<String>,
        changes: Option<Changes>,
    ) {
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(LastReload {
            at: metrics::unix_now(),
            trigger: trigger.to_string(),
            generation,
            error,
            changes,
        });
    }

    /// The config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the configuration again and swaps it in; on failure the old one
    /// keeps serving. Returns the generation being served afterwards.
    ///
    /// Reloads run one at a time. A request that waited while another
    /// reload ran, one begun after the request was made, takes that
    /// reload's result: it read the files as they were after the request.
    pub async fn reload(&self, trigger: Trigger) -> Result<u64, ReloadError> {
        let asked_after = self.begun.load(Ordering::SeqCst);
        let mut reloads = self.reloads.lock().await;
        if self.begun.load(Ordering::SeqCst) > asked_after {
            debug!(%trigger, "served by a reload that began after it was asked for");
            return reloads.last.clone().map_err(ReloadError::Again);
        }
        self.begun.fetch_add(1, Ordering::SeqCst);
        let loading = allocator::loading();
        let result = self.reload_locked(trigger, &mut reloads).await;
        // The parse and the replaced table are freed by now, unless a query
        // still holds the old snapshot: what is still held goes back.
        let _ = tokio::task::spawn_blocking(move || drop(loading)).await;
        reloads.last = match &result {
            Ok(g) => Ok(*g),
            Err(e) => Err(e.to_string()),
        };
        result
    }

    async fn reload_locked(
        &self,
        trigger: Trigger,
        reloads: &mut Reloads,
    ) -> Result<u64, ReloadError> {
        let started = Instant::now();
        let current = self.snapshot.load_full();
        let serving = current.table.generation();
        let discovered = self.azure.discovered();
        let digest = discovered.digest();
        let built = match self.build(discovered, serving + 1).await {
            Ok(built) => built,
            Err(e) => {
                // A file event in the folder (an editor's swap file, say)
                // with the same broken config: already reported.
                let repeated =
                    trigger == Trigger::File && reloads.last.as_ref().err() == Some(&e.to_string());
                return Err(self.failed(trigger, serving, e, repeated));
            }
        };
        let failing = self.last_reload().is_some_and(|r| r.error.is_some());
        if (built.fingerprint, digest) == reloads.applied {
            return Ok(self.unchanged(trigger, serving, failing));
        }
        reloads.applied = (built.fingerprint, digest);
        let (generation, changes) = self.swap_in(built, &current.table, trigger, started);
        if failing {
            info!(%trigger, generation, "reload failure ended");
        }
        self.set_last_reload(trigger, generation, None, Some(changes));
        Ok(generation)
    }

    /// Reads the files and builds them with `discovered`, off the serving
    /// path.
    async fn build(
        &self,
        discovered: Arc<Discovered>,
        generation: u64,
    ) -> Result<Built, ReloadError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let config = config::load(&path)?;
            snapshot::build(&config, &discovered, generation)
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))?
        .map_err(ReloadError::from)
    }

    /// The files are what is served (a change undone, or nothing changed):
    /// nothing to swap. The generation is the SOA serial, so it stays, and
    /// secondaries see no change that is not one.
    fn unchanged(&self, trigger: Trigger, serving: u64, failing: bool) -> u64 {
        self.metrics.reload.last_successful.set(1);
        self.health.clear(health::Source::Reload);
        if failing {
            info!(%trigger, generation = serving,
                "reload failure ended: the files are back to what is served (unchanged)");
        } else if trigger == Trigger::File {
            // A file event that changed nothing (a log written beside the
            // config, say) is no reload to report.
            debug!(%trigger, "configuration unchanged");
            return serving;
        } else {
            info!(%trigger, generation = serving, "reload: unchanged");
        }
        self.metrics.reload.count(ReloadResult::Success);
        self.set_last_reload(trigger, serving, None, None);
        serving
    }

    /// Serves `built` from now on: the snapshot swapped in, the forwarder
    /// reconfigured, the discovery rounds told of `[azure]`; the generation
    /// and what changed since `old`.
    fn swap_in(
        &self,
        built: Built,
        old: &ZoneTable,
        trigger: Trigger,
        started: Instant,
    ) -> (u64, Changes) {
        let Built {
            snapshot,
            upstream,
            restart,
            azure,
            warnings,
            fingerprint: _,
            sha256,
        } = built;
        for w in &warnings {
            warn!("{w}");
        }
        let needs_restart = self.restart.changed_in(&restart);
        if !needs_restart.is_empty() {
            warn!(
                "{} changed in the config: the change will take effect at the next restart",
                needs_restart.join(", ")
            );
        }
        self.forwarder.reconfigure(&upstream);
        let generation = snapshot.table.generation();
        let status = Status {
            generation,
            names: snapshot.table.len(),
            loaded_at: metrics::unix_now(),
            sha256,
        };
        let changes = changes(old, &snapshot.table);
        self.snapshot.store(Arc::new(snapshot));
        self.azure.loaded(azure);
        record_success(&self.metrics, &status);
        self.health.clear(health::Source::Reload);
        info!(
            generation,
            names = status.names,
            added = changes.added.count,
            removed = changes.removed.count,
            changed = changes.changed.count,
            sha256 = %status.sha256,
            millis = started.elapsed().as_millis() as u64,
            %trigger,
            %changes,
            "reloaded"
        );
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
        (generation, changes)
    }

    /// Records a failed reload; the old snapshot keeps serving. A failure
    /// repeated by an unrelated file event is neither logged nor counted again.
    fn failed(
        &self,
        trigger: Trigger,
        serving: u64,
        e: ReloadError,
        repeated: bool,
    ) -> ReloadError {
        self.metrics.reload.last_successful.set(0);
        self.health.set(health::Source::Reload, e.to_string());
        self.set_last_reload(trigger, serving, Some(e.to_string()), None);
        if repeated {
            debug!(%trigger, "reload still failing: {e}");
        } else {
            self.metrics.reload.count(ReloadResult::Failure);
            error!(%trigger, serving_generation = serving, "reload failed, the old table keeps serving: {e}");
        }
        e
    }
}

impl azure::Served for Reloader {
    fn discovered(&self) -> Arc<Discovered> {
        self.azure.discovered()
    }

    fn azure(&self) -> Option<AzureConfig> {
        self.azure.config()
    }

    async fn azure_changed(&self) {
        self.azure.changed().await;
    }

    /// When the reload fails, the discovery served before stays, so that
    /// names that do not fit cannot block the file's own reloads.
    async fn apply_discovery(&self, found: Arc<Discovered>) -> Result<u64, String> {
        let before = self.azure.replace(found);
        let result = self.reload(Trigger::Azure).await;
        if result.is_err() {
            self.azure.replace(before);
        }
        result.map_err(|e| e.to_string())
    }

    fn skipped(&self) -> Arc<Vec<azure::Skipped>> {
        self.azure.skipped()
    }

    fn set_skipped(&self, skipped: Vec<azure::Skipped>) {
        self.azure.set_skipped(skipped);
    }
}

fn record_success(metrics: &Metrics, status: &Status) {
    let reload = &metrics.reload;
    reload.count(ReloadResult::Success);
    reload.table_generation.set(status.generation as i64);
    reload.table_names.set(status.names as i64);
    reload.last_success.set(status.loaded_at);
    reload.last_successful.set(1);
    reload.set_config(&status.sha256);
}

/// Watches the config's folders for changes. Folders, not files, are
/// watched: editors replace a file by renaming another over it, and
/// Kubernetes swaps a ConfigMap by renaming its `..data` symlink, both of
/// which a watch on the old file would miss.
pub struct FileWatch {
    reloader: Arc<Reloader>,
    watcher: Box<dyn Watcher + Send>,
    watched: Vec<PathBuf>,
    events: mpsc::Receiver<()>,
}

impl FileWatch {
    /// Starts watching now, so that a change made once this returns is seen;
    /// `None` when `mode` is off or watching is impossible (logged).
    pub async fn start(reloader: Arc<Reloader>, mode: WatchMode) -> Option<Self> {
        // One pending signal is enough: the reload reads everything anyway.
        let (tx, events) = mpsc::channel::<()>(1);
        let on_event = move |event: notify::Result<notify::Event>| {
            // Reading the files ourselves shows up as access events: not a change.
            if event.is_ok_and(|e| !matches!(e.kind, EventKind::Access(_))) {
                let _ = tx.try_send(());
            }
        };
        let watcher: notify::Result<Box<dyn Watcher + Send>> = match mode {
            WatchMode::Off => return None,
            WatchMode::Notify => notify::recommended_watcher(on_event).map(|w| Box::new(w) as _),
            WatchMode::Poll => notify::PollWatcher::new(
                on_event,
                notify::Config::default()
                    .with_poll_interval(POLL_INTERVAL)
                    .with_compare_contents(true),
            )
            .map(|w| Box::new(w) as _),
        };
        let watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                error!("cannot watch the config files ({e}): reload with SIGHUP or POST /reload");
                return None;
            }
        };
        let mut watch = FileWatch {
            reloader,
            watcher,
            watched: Vec::new(),
            events,
        };
        watch.rewatch().await;
        Some(watch)
    }

    /// Reloads after each burst of changes until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            tokio::select! {
                got = self.events.recv() => if got.is_none() { return },
                () = stop.cancelled() => return,
            }
            // Wait for a quiet spell; each new event restarts the wait, up
            // to DEBOUNCE_MAX after the first. (Past that, an event already
            // queued is taken and the next wait ends at once.)
            let latest = tokio::time::Instant::now() + DEBOUNCE_MAX;
            loop {
                let until = latest.min(tokio::time::Instant::now() + DEBOUNCE);
                match tokio::time::timeout_at(until, self.events.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
            // Watch first, then read: re-adding a folder takes a new
            // baseline of it (a polling watcher compares against that), so
            // a change made before is read by this reload, and one made
            // after is seen by the watcher.
            self.rewatch().await;
            // Failures are logged and counted inside.
            let _ = self.reloader.reload(Trigger::File).await;
        }
    }

    /// Watches exactly the folders the config now depends on (read anew, so
    /// that a config that failed to load still has its imports watched).
    /// Every folder is added again each time: one deleted and recreated has
    /// lost its inotify watch. A folder that does not exist yet is skipped;
    /// its parent, the config's folder, sees it appear.
    async fn rewatch(&mut self) {
        let path = self.reloader.path().to_path_buf();
        let want = tokio::task::spawn_blocking(move || config::watch_dirs(&path))
            .await
            .unwrap_or_default();
        let watcher = &mut self.watcher;
        for gone in self.watched.iter().filter(|d| !want.contains(d)) {
            let _ = watcher.unwatch(gone);
        }
        self.watched.clear();
        for dir in want {
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => self.watched.push(dir),
                Err(e) => debug!(dir = %dir.display(), "not watched yet: {e}"),
            }
        }
    }
}

/// Reloads on each SIGHUP of `hup` until `stop`. The caller registers the
/// signal as early as it can: until then SIGHUP would end the process.
#[cfg(unix)]
pub async fn on_sighup(
    reloader: Arc<Reloader>,
    mut hup: tokio::signal::unix::Signal,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            got = hup.recv() => if got.is_none() { return },
            () = stop.cancelled() => return,
        }
        let _ = reloader.reload(Trigger::Signal).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(records: &[(&str, &str)]) -> ZoneTable {
        let text: String = records
            .iter()
            .map(|(n, a)| format!("[[record]]\nname = \"{n}\"\na = [\"{a}\"]\n"))
            .collect();
        let c = config::parse(Path::new("t.toml"), &text).unwrap();
        snapshot::table(&c).unwrap()
    }

    #[test]
    fn changes_count_and_name_the_first_few() {
        let old = table(&[("a.x.example", "10.0.0.1"), ("b.x.example", "10.0.0.2")]);
        let mut added: Vec<(String, &str)> = (0..7)
            .map(|i| (format!("n{i}.x.example"), "10.0.0.9"))
            .collect();
        added.push(("b.x.example".into(), "10.0.0.3"));
        let new = table(
            &added
                .iter()
                .map(|(n, a)| (n.as_str(), *a))
                .collect::<Vec<_>>(),
        );
        let c = changes(&old, &new);
        assert_eq!(c.added.count, 7);
        assert_eq!(c.added.first.len(), CHANGES_SHOWN);
        assert_eq!(c.removed.first, ["a.x.example"]);
        assert_eq!(c.changed.first, ["b.x.example"]);
        assert_eq!(
            c.to_string(),
            "added 7 (n0.x.example, n1.x.example, n2.x.example, n3.x.example, \
             n4.x.example, …), removed 1 (a.x.example), changed 1 (b.x.example)"
        );
        assert_eq!(
            changes(&new, &new).to_string(),
            "added 0, removed 0, changed 0"
        );
    }

    #[test]
    fn watch_modes_read_as_the_command_line_spells_them() {
        use clap::ValueEnum;
        for m in WatchMode::value_variants() {
            assert_eq!(m.to_string(), m.to_possible_value().unwrap().get_name());
        }
    }
}
