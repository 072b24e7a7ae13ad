//! Hot reload (SPEC §4): the only writer of the snapshot the handler reads.
//!
//! A reload reads and compiles the whole configuration off the serving path
//! (a blocking task), then swaps the new snapshot in with one atomic store:
//! a query in flight keeps the snapshot it started with, the next one sees
//! the new one, and none waits. A config that fails to load leaves the old
//! snapshot serving, is logged with its location, counted, and shown by
//! `/healthz` until a later load succeeds.
//!
//! Triggers: file changes (watched with `notify`, or by polling), SIGHUP,
//! and `POST /reload`.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::cache::Cache;
use crate::config::{self, Config, ConfigError};
use crate::forward::Forwarder;
use crate::handler::Snapshot;
use crate::metrics::Metrics;
use crate::zone::ZoneTable;

/// Editors and `kubectl` write in bursts: wait for this much quiet, then
/// compile once.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// How often the polling watcher looks, when inotify is not an option
/// (some network and overlay file systems).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What started a reload; logged with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    File,
    Signal,
    Http,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::File => "file change",
            Trigger::Signal => "SIGHUP",
            Trigger::Http => "POST /reload",
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

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up forwarding: {0}")]
    Upstream(String),
    #[error("the reload task stopped: {0}")]
    Task(String),
}

/// What `/healthz` reports.
#[derive(Debug, Clone)]
pub struct Status {
    pub generation: u64,
    pub names: usize,
    /// Unix time of the last successful load.
    pub loaded_at: f64,
    /// The last failed reload's error, until a reload succeeds.
    pub last_error: Option<String>,
}

/// What the snapshot being served was built from.
struct Applied {
    /// Of the contents of every file read, to skip reloads that change nothing.
    fingerprint: u64,
    watch_dirs: Vec<PathBuf>,
}

/// Owns the snapshot's write side.
pub struct Reloader {
    path: PathBuf,
    snapshot: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
    /// Shared by every forwarder, so a reload keeps the cache warm.
    cache: Arc<Cache>,
    /// The sockets were bound from these; changing them needs a restart.
    listen: Vec<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    /// Held through a reload, so reloads run one at a time.
    applied: tokio::sync::Mutex<Applied>,
    status: Mutex<Status>,
}

impl Reloader {
    /// Compiles `config` into the first snapshot (generation 1). Must run
    /// inside a tokio runtime (the forwarder's pools need one).
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Result<Self, ReloadError> {
        let table = ZoneTable::compile(&config, 1)?;
        let cache = Arc::new(Cache::new(config.upstream.cache_entries));
        let forwarder = Arc::new(
            Forwarder::new(&config.upstream, cache.clone(), metrics.clone())
                .map_err(ReloadError::Upstream)?,
        );
        let status = Status {
            generation: 1,
            names: table.len(),
            loaded_at: unix_now(),
            last_error: None,
        };
        record_success(&metrics, &status);
        let applied = Applied {
            fingerprint: fingerprint(&config.sources),
            watch_dirs: config.watch_dirs.clone(),
        };
        let snapshot = Snapshot {
            table,
            allow: config.server.allow.clone(),
            forwarder,
            log_queries: config.log.queries,
        };
        Ok(Reloader {
            path: config.path.clone(),
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            metrics,
            cache,
            listen: config.server.listen.clone(),
            metrics_listen: config.metrics.as_ref().map(|m| m.listen),
            applied: tokio::sync::Mutex::new(applied),
            status: Mutex::new(status),
        })
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

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Loads the configuration again and swaps it in; on failure the old one
    /// keeps serving. Returns the generation being served afterwards.
    pub async fn reload(&self, trigger: Trigger) -> Result<u64, ReloadError> {
        let mut applied = self.applied.lock().await;
        let started = Instant::now();
        let current = self.snapshot.load_full();
        let generation = current.table.generation() + 1;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let config = config::load(&path)?;
            let table = ZoneTable::compile(&config, generation)?;
            let fingerprint = fingerprint(&config.sources);
            Ok::<_, ConfigError>((config, table, fingerprint))
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))
        .and_then(|r| r.map_err(ReloadError::from));
        let (config, table, fingerprint) = match loaded {
            Ok(v) => v,
            Err(e) => return Err(self.failed(trigger, current.table.generation(), e)),
        };

        if trigger == Trigger::File && fingerprint == applied.fingerprint {
            // An editor's temp file, or a change undone: nothing to swap.
            debug!(%trigger, "configuration unchanged");
            self.status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last_error = None;
            return Ok(current.table.generation());
        }
        for w in &config.warnings {
            warn!("{w}");
        }
        if config.server.listen != self.listen
            || config.metrics.as_ref().map(|m| m.listen) != self.metrics_listen
        {
            warn!("listen addresses changed in the config: they take effect at the next restart");
        }
        let forwarder = if *current.forwarder.config() == config.upstream {
            current.forwarder.clone()
        } else {
            match Forwarder::new(&config.upstream, self.cache.clone(), self.metrics.clone()) {
                Ok(f) => Arc::new(f),
                Err(e) => {
                    let e = ReloadError::Upstream(e);
                    return Err(self.failed(trigger, current.table.generation(), e));
                }
            }
        };
        let status = Status {
            generation,
            names: table.len(),
            loaded_at: unix_now(),
            last_error: None,
        };
        self.snapshot.store(Arc::new(Snapshot {
            table,
            allow: config.server.allow,
            forwarder,
            log_queries: config.log.queries,
        }));
        *applied = Applied {
            fingerprint,
            watch_dirs: config.watch_dirs,
        };
        record_success(&self.metrics, &status);
        info!(
            generation,
            names = status.names,
            millis = started.elapsed().as_millis() as u64,
            %trigger,
            "reloaded"
        );
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
        Ok(generation)
    }

    /// Records a failed reload; the old snapshot keeps serving.
    fn failed(&self, trigger: Trigger, serving: u64, e: ReloadError) -> ReloadError {
        self.metrics.reloads.with_label_values(&["failure"]).inc();
        error!(%trigger, serving_generation = serving, "reload failed, the old table keeps serving: {e}");
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_error = Some(e.to_string());
        e
    }

    async fn watch_dirs(&self) -> Vec<PathBuf> {
        self.applied.lock().await.watch_dirs.clone()
    }
}

fn record_success(metrics: &Metrics, status: &Status) {
    metrics.reloads.with_label_values(&["success"]).inc();
    metrics.table_generation.set(status.generation as i64);
    metrics.table_names.set(status.names as i64);
    metrics.last_reload_success.set(status.loaded_at);
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A hash of every file's contents (or of why it could not be read).
fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        match std::fs::read(f) {
            Ok(bytes) => bytes.hash(&mut h),
            Err(e) => e.kind().hash(&mut h),
        }
    }
    h.finish()
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
            // Wait for a quiet spell; each new event restarts the wait.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, self.events.recv()).await {}
            // Failures are logged and counted inside.
            let _ = self.reloader.reload(Trigger::File).await;
            self.rewatch().await;
        }
    }

    /// Watches exactly the folders the config now depends on. A folder that
    /// does not exist yet is skipped; its parent, the config's folder, sees
    /// it appear and the next reload adds it.
    async fn rewatch(&mut self) {
        let want = self.reloader.watch_dirs().await;
        let watcher = &mut self.watcher;
        self.watched.retain(|d| {
            let keep = want.contains(d);
            if !keep {
                let _ = watcher.unwatch(d);
            }
            keep
        });
        for dir in want {
            if self.watched.contains(&dir) {
                continue;
            }
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => self.watched.push(dir),
                Err(e) => debug!(dir = %dir.display(), "not watched yet: {e}"),
            }
        }
    }
}

/// Reloads on SIGHUP until `stop`.
#[cfg(unix)]
pub async fn on_sighup(reloader: Arc<Reloader>, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot listen for SIGHUP: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            got = hup.recv() => if got.is_none() { return },
            () = stop.cancelled() => return,
        }
        let _ = reloader.reload(Trigger::Signal).await;
    }
}
