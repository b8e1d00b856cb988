//! Warm snapshots of ready services (`--snapshots`): the data a service's volumes hold once
//! it is ready (a PostgreSQL data directory after `initdb` and the init scripts), kept so
//! that later environments start from a copy instead of initialising again.
//!
//! - **What is kept**: the volumes a service alone mounts (named volumes the project creates,
//!   anonymous ones, and the image's `VOLUME`s), never binds, tmpfs, external or shared
//!   volumes. A service whose readiness cannot be observed (no healthcheck and no TCP port)
//!   is left alone: nothing tells when its initialisation is over.
//! - **When**: the first environment that starts the service (in a run where no snapshot
//!   matches) waits until it is ready *and* its TCP ports accept connections (entrypoints
//!   initialise behind a socket-only server, so a healthcheck can pass mid-initialisation),
//!   stops it cleanly (its stop signal and grace period), copies the volumes out through the
//!   engine's archive API and starts it again, before anything that depends on it starts.
//! - **The key** ([`fingerprint`]) covers what could change the initialised state: the
//!   engine, the image id, the service's definition (command, entrypoint, environment, user,
//!   working dir, mounts) and the content of every file it bind-mounts.
//! - **Where**: `snapshots/<key>/` under the cache folder (`$COMPOSE_SHARD_CACHE_DIR`, else
//!   `$XDG_CACHE_HOME/compose-shard`, else `~/.cache/compose-shard`), a `meta.json` and one
//!   tar per volume, written to a temporary folder and renamed into place.
//! - **Judged**: a service that initialises in under a second, or whose copy takes longer to
//!   restore than initialising took, is marked not worth it and initialised as usual.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::compose::{MountKind, Project, Service};
use crate::config::Snapshots;
use crate::engine::{ArchiveFile, ImageConfig};

/// Bumped when what a snapshot holds or how it is keyed changes.
const FORMAT: &str = "compose-shard-snapshot-1";
/// A service that becomes ready faster than this is not worth a snapshot.
pub const WORTH_SECONDS: f64 = 1.0;
/// Bind-mounted content larger than this is not fingerprinted (the service is not
/// snapshotted): hashing it would cost more than initialising.
const MAX_BIND_BYTES: u64 = 64 << 20;
/// At most this many bind-mounted files are fingerprinted.
const MAX_BIND_FILES: usize = 20_000;

/// Why a service has no snapshot.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NoSnapshot {
    /// An `external` volume is the user's.
    #[error("volume {0} is external")]
    External(String),
    /// A volume with a driver or options of its own may not be a plain folder.
    #[error("volume {0} has a driver or driver options of its own")]
    OwnDriver(String),
    /// Another service writes to it too.
    #[error("volume {0} is shared with another service")]
    Shared(String),
    /// Snapshots are per engine.
    #[error("the engine did not say its id")]
    NoEngineId,
    /// The image's id is part of the key.
    #[error("its image's id is unknown")]
    NoImageId,
    /// Nothing to keep.
    #[error("it keeps no data in volumes")]
    NoData,
    /// A volume at `/` cannot be copied in above itself.
    #[error("a volume is mounted at /")]
    AtRoot,
    /// Nothing tells when its initialisation is over.
    #[error("nothing tells when it is ready (no healthcheck, no TCP port)")]
    NotObservable,
    /// Its bind-mounted content is too large to hash.
    #[error("its bind-mounted files are too many or too large to fingerprint (at {})", .0.display())]
    TooLarge(PathBuf),
    /// Its bind-mounted content cannot be read.
    #[error("cannot read its bind-mounted {}: {source}", path.display())]
    Unreadable {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::sync::Arc<std::io::Error>,
    },
}

/// A volume path of a service whose content a snapshot keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPath {
    /// The path in the container.
    pub target: String,
    /// The project's volume key, for a named volume; `None` for an anonymous one.
    pub volume: Option<String>,
}

/// The volume paths of `service` whose data a snapshot (or `--tmpfs-data`) may take over,
/// or why none may: a volume another service also mounts, an external one, or one with a
/// driver or driver options of its own, is the user's to share.
pub fn data_paths(
    project: &Project,
    service: &Service,
    image: Option<&ImageConfig>,
) -> Result<Vec<DataPath>, NoSnapshot> {
    let mut paths = Vec::new();
    for mount in &service.volumes {
        if mount.kind != MountKind::Volume {
            continue;
        }
        let Some(key) = &mount.source else {
            paths.push(DataPath {
                target: mount.target.clone(),
                volume: None,
            });
            continue;
        };
        let volume = project.volumes.get(key);
        if volume.is_some_and(|v| v.external) {
            return Err(NoSnapshot::External(key.clone()));
        }
        if volume.is_some_and(|v| v.driver.is_some() || !v.driver_opts.is_empty()) {
            return Err(NoSnapshot::OwnDriver(key.clone()));
        }
        let shared = project.services.values().any(|other| {
            other.name != service.name
                && other
                    .volumes
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source.as_ref() == Some(key))
        });
        if shared {
            return Err(NoSnapshot::Shared(key.clone()));
        }
        paths.push(DataPath {
            target: mount.target.clone(),
            volume: Some(key.clone()),
        });
    }
    for declared in image.map(|i| i.volumes.as_slice()).unwrap_or_default() {
        let target = declared.trim_end_matches('/');
        let covered = service
            .volumes
            .iter()
            .any(|m| m.target.trim_end_matches('/') == target)
            || service
                .tmpfs
                .iter()
                .any(|t| t.split(':').next() == Some(target));
        if !covered && !target.is_empty() {
            paths.push(DataPath {
                target: target.to_string(),
                volume: None,
            });
        }
    }
    Ok(paths)
}

/// What of a service goes into its snapshot's key besides the engine, the image and the
/// bind-mounted content.
#[derive(Serialize)]
struct Definition<'a> {
    command: &'a Option<Vec<String>>,
    entrypoint: &'a Option<Vec<String>>,
    environment: Vec<(&'a String, &'a Option<String>)>,
    user: &'a Option<String>,
    working_dir: &'a Option<String>,
    mounts: Vec<(MountKind, Option<&'a String>, &'a String, bool)>,
    tmpfs: &'a Vec<String>,
    shm_size: Option<u64>,
    paths: &'a [DataPath],
}

/// The key of a service's snapshot on one engine, or why the service cannot have one (its
/// bind-mounted content is too large to fingerprint, or unreadable).
pub fn fingerprint(
    project: &Project,
    service: &Service,
    image_id: &str,
    engine_id: &str,
    paths: &[DataPath],
) -> Result<String, NoSnapshot> {
    let mut environment: Vec<_> = service.environment.iter().collect();
    environment.sort();
    let definition = Definition {
        command: &service.command,
        entrypoint: &service.entrypoint,
        environment,
        user: &service.user,
        working_dir: &service.working_dir,
        mounts: service
            .volumes
            .iter()
            .map(|m| {
                let source = (m.kind != MountKind::Volume).then_some(m.source.as_ref());
                (m.kind, source.flatten(), &m.target, m.read_only)
            })
            .collect(),
        tmpfs: &service.tmpfs,
        shm_size: service.shm_size,
        paths,
    };
    let mut hash = sha2::Sha256::new();
    for part in [FORMAT, engine_id, image_id] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    // Plain data (strings, numbers, lists): serialising it cannot fail.
    let json = serde_json::to_vec(&definition).unwrap_or_default();
    hash.update(&json);
    let mut budget = (MAX_BIND_BYTES, MAX_BIND_FILES);
    for mount in service.volumes.iter().filter(|m| m.kind == MountKind::Bind) {
        if let Some(source) = &mount.source {
            hash.update(b"\0bind\0");
            hash.update(mount.target.as_bytes());
            digest_path(
                &mut hash,
                &project.project_dir,
                Path::new(source),
                &mut budget,
            )?;
        }
    }
    Ok(hex::encode(&hash.finalize()[..12]))
}

/// Hash a bind source's names, modes and content (a missing one hashes as missing).
fn digest_path(
    hash: &mut sha2::Sha256,
    project_dir: &Path,
    path: &Path,
    budget: &mut (u64, usize),
) -> Result<(), NoSnapshot> {
    let full = project_dir.join(path);
    let Ok(meta) = std::fs::metadata(&full) else {
        hash.update(b"\0missing");
        return Ok(());
    };
    let too_large = || NoSnapshot::TooLarge(full.clone());
    let unreadable = |e| NoSnapshot::Unreadable {
        path: full.clone(),
        source: std::sync::Arc::new(e),
    };
    budget.1 = budget.1.checked_sub(1).ok_or_else(too_large)?;
    if meta.is_dir() {
        hash.update(b"\0dir");
        let mut entries: Vec<_> = std::fs::read_dir(&full)
            .map_err(unreadable)?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for name in entries {
            hash.update(b"\0name\0");
            hash.update(name.to_string_lossy().as_bytes());
            digest_path(hash, project_dir, &full.join(&name), budget)?;
        }
        return Ok(());
    }
    budget.0 = budget.0.checked_sub(meta.len()).ok_or_else(too_large)?;
    let content = std::fs::read(&full).map_err(unreadable)?;
    hash.update(b"\0file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        hash.update(meta.permissions().mode().to_le_bytes());
    }
    hash.update((content.len() as u64).to_le_bytes());
    hash.update(&content);
    Ok(())
}

/// What a snapshot's `meta.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The service.
    pub service: String,
    /// The project's folder.
    pub project_dir: PathBuf,
    /// The image it was taken from (as the compose file names it).
    pub image: String,
    /// The engine's id.
    pub engine: String,
    /// The volume paths, in the order of the archives `0.tar`, `1.tar`...
    pub paths: Vec<DataPath>,
    /// Bytes of all archives.
    pub bytes: u64,
    /// When it was taken (seconds since the Unix epoch).
    pub created: u64,
    /// Seconds from the service's start to its readiness when it was initialised.
    pub init_seconds: f64,
    /// Seconds to stop it, copy its volumes and start it again.
    pub capture_seconds: f64,
    /// Seconds the last restore took to copy the data in.
    #[serde(default)]
    pub restore_seconds: Option<f64>,
    /// Whether restoring beats initialising; `false` keeps later runs from trying.
    pub worth: bool,
    /// Why not, when not.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A snapshot read back: its record and its archives.
#[derive(Debug)]
pub struct Stored {
    /// Its key.
    pub key: String,
    /// Its record.
    pub meta: Meta,
    /// One open tar file per path of `meta.paths` (read in pieces by every environment that
    /// restores it, never held in memory).
    pub archives: Vec<ArchiveFile>,
}

/// A snapshot being written, in its temporary folder.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Where the archive of the `i`th path goes.
    pub fn archive(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{i}.tar"))
    }

    /// Give up on it.
    pub fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Snapshots on disk, one folder per key.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    root: PathBuf,
}

/// A snapshot as `clean` lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its folder.
    pub dir: PathBuf,
    /// Its record, if readable.
    pub meta: Option<Meta>,
    /// Bytes on disk.
    pub bytes: u64,
}

impl SnapshotStore {
    /// The store under a cache folder (`<cache>/snapshots`).
    pub fn under(cache_root: &Path) -> SnapshotStore {
        SnapshotStore {
            root: cache_root.join("snapshots"),
        }
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.root.join(key).join("meta.json")
    }

    /// The record of `key`, if there is a readable one.
    pub fn meta(&self, key: &str) -> Option<Meta> {
        let text = std::fs::read(self.meta_path(key)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// A snapshot with its archives opened; `None` if absent or incomplete.
    pub fn load(&self, key: &str) -> Option<Stored> {
        let meta = self.meta(key)?;
        let archives = (0..meta.paths.len())
            .map(|i| ArchiveFile::open(&self.root.join(key).join(format!("{i}.tar"))).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Stored {
            key: key.to_string(),
            meta,
            archives,
        })
    }

    /// A fresh temporary folder for a snapshot of `key`: its archives are written there
    /// (`Staging::archive`), then [`SnapshotStore::commit`] puts it in place.
    pub fn staging(&self, key: &str) -> std::io::Result<Staging> {
        std::fs::create_dir_all(&self.root)?;
        let dir = self
            .root
            .join(format!(".{key}.{}.partial", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Staging { dir })
    }

    /// Write the record into a staged snapshot and rename it into place, so a reader never
    /// sees half of one (a run still restoring the one it replaces keeps its open files).
    pub fn commit(&self, key: &str, staging: Staging, meta: &Meta) -> std::io::Result<()> {
        let written = std::fs::write(
            staging.dir.join("meta.json"),
            serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?,
        );
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&staging.dir);
            return Err(e);
        }
        let target = self.root.join(key);
        let _ = std::fs::remove_dir_all(&target);
        match std::fs::rename(&staging.dir, &target) {
            Ok(()) => Ok(()),
            // Another run saved the same key meanwhile: the same content, so theirs will do.
            Err(_) if self.meta(key).is_some() => {
                let _ = std::fs::remove_dir_all(&staging.dir);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging.dir);
                Err(e)
            }
        }
    }

    /// Write a whole snapshot from archives in memory.
    pub fn save(
        &self,
        key: &str,
        meta: &Meta,
        archives: &[impl AsRef<[u8]>],
    ) -> std::io::Result<()> {
        let staging = self.staging(key)?;
        for (i, archive) in archives.iter().enumerate() {
            std::fs::write(staging.archive(i), archive.as_ref())?;
        }
        self.commit(key, staging, meta)
    }

    /// Replace the record of an existing snapshot.
    pub fn update_meta(&self, key: &str, meta: &Meta) -> std::io::Result<()> {
        let path = self.meta_path(key);
        let staging = path.with_extension(format!("json.{}.partial", std::process::id()));
        std::fs::write(
            &staging,
            serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&staging, &path)
    }

    /// Every snapshot (and leftover partial one), with its size.
    pub fn list(&self) -> Vec<Listed> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut listed: Vec<Listed> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| {
                let dir = e.path();
                let key = e.file_name().to_string_lossy().into_owned();
                Listed {
                    bytes: folder_bytes(&dir),
                    meta: self.meta(&key),
                    dir,
                }
            })
            .collect();
        listed.sort_by(|a, b| a.dir.cmp(&b.dir));
        listed
    }

    /// Remove every snapshot; what was removed.
    pub fn remove_all(&self) -> std::io::Result<Vec<Listed>> {
        let listed = self.list();
        for snapshot in &listed {
            std::fs::remove_dir_all(&snapshot.dir)?;
        }
        Ok(listed)
    }
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What one environment does about one service's snapshot.
#[derive(Debug, Clone)]
pub enum Action {
    /// Start it from this snapshot.
    Restore(Rc<Stored>),
    /// Initialise it, then take its snapshot (under this key, of these paths).
    Capture {
        /// The key.
        key: String,
        /// The paths.
        paths: Vec<DataPath>,
    },
    /// Initialise it as usual.
    Nothing,
}

#[derive(Debug)]
enum KeyState {
    Available(Rc<Stored>),
    Capturing,
    Skipped,
}

/// A service's snapshot key and paths on one engine, or why it has none.
type Keyed = Result<(String, Vec<DataPath>), NoSnapshot>;

/// A run's snapshots: which exist, which one environment is taking, which are not worth it.
/// Shared by every group of the run (they run as futures on one task).
#[derive(Debug)]
pub struct RunSnapshots {
    mode: Snapshots,
    worth: Duration,
    store: SnapshotStore,
    state: RefCell<HashMap<String, KeyState>>,
    /// Restores in progress (they share the engine's disk and CPUs), and how many began so
    /// far.
    restoring: std::cell::Cell<(usize, usize)>,
    keys: RefCell<HashMap<(String, String), Keyed>>,
    /// Per key: the template layers on the engine (their folders), made once per run.
    templates: RefCell<HashMap<String, Templates>>,
    /// Snapshots taken on this run whose templates nobody made yet: (engine id, key, image).
    untemplated: RefCell<Vec<(String, String, String)>>,
    /// Layering over templates is possible on this run's engines (until it fails once).
    layering: std::cell::Cell<bool>,
}

/// The folders (in the engine's filesystem) of a snapshot's template layers, one per path,
/// made once per run; `None` when they could not be made.
pub type Templates = Rc<tokio::sync::OnceCell<Option<Vec<String>>>>;

impl RunSnapshots {
    /// Snapshots for a run in `mode` (`None` when off).
    pub fn new(mode: Snapshots, store: SnapshotStore) -> Option<RunSnapshots> {
        (mode != Snapshots::Off).then(|| RunSnapshots {
            mode,
            worth: Duration::from_secs_f64(WORTH_SECONDS),
            store,
            state: RefCell::default(),
            restoring: std::cell::Cell::new((0, 0)),
            keys: RefCell::default(),
            templates: RefCell::default(),
            untemplated: RefCell::default(),
            layering: std::cell::Cell::new(true),
        })
    }

    /// Restore by copying every time instead of layering over templates.
    pub fn without_layers(self) -> RunSnapshots {
        self.layering.set(false);
        self
    }

    /// Whether restores layer over templates (until one fails).
    pub fn layering(&self) -> bool {
        self.layering.get()
    }

    /// Layering failed on this engine: the rest of the run copies.
    pub fn layering_failed(&self) {
        self.layering.set(false);
    }

    /// The once-per-run cell holding `key`'s template layers.
    pub fn templates(&self, key: &str) -> Templates {
        self.templates
            .borrow_mut()
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    /// Services ready faster than `worth` get no snapshot.
    pub fn worth_above(mut self, worth: Duration) -> RunSnapshots {
        self.worth = worth;
        self
    }

    /// How long a service must take to get ready for a snapshot to be worth it.
    pub fn worth(&self) -> Duration {
        self.worth
    }

    /// The store.
    pub fn store(&self) -> &SnapshotStore {
        &self.store
    }

    /// The key and paths of a service on an engine, computed once per run; `Err` says why it
    /// has no snapshot.
    pub fn key_of(
        &self,
        project: &Project,
        service: &Service,
        image: Option<&ImageConfig>,
        engine_id: &str,
    ) -> Keyed {
        let memo = (engine_id.to_string(), service.name.clone());
        if let Some(known) = self.keys.borrow().get(&memo) {
            return known.clone();
        }
        let computed = key_of(project, service, image, engine_id);
        self.keys.borrow_mut().insert(memo, computed.clone());
        computed
    }

    /// What an environment does about a service with this key: the first to ask for a key
    /// with no snapshot takes it; the others initialise as usual until it exists.
    pub fn action(&self, key: &str, paths: &[DataPath]) -> Action {
        let mut state = self.state.borrow_mut();
        match state.get(key) {
            Some(KeyState::Available(stored)) => return Action::Restore(stored.clone()),
            Some(_) => return Action::Nothing,
            None => {}
        }
        if self.mode != Snapshots::Refresh {
            if let Some(meta) = self.store.meta(key) {
                if !meta.worth {
                    state.insert(key.to_string(), KeyState::Skipped);
                    return Action::Nothing;
                }
                if let Some(stored) = self.store.load(key) {
                    let stored = Rc::new(stored);
                    state.insert(key.to_string(), KeyState::Available(stored.clone()));
                    return Action::Restore(stored);
                }
            }
        }
        state.insert(key.to_string(), KeyState::Capturing);
        Action::Capture {
            key: key.to_string(),
            paths: paths.to_vec(),
        }
    }

    /// A snapshot was taken (and saved): later environments of the run restore it.
    pub fn taken(&self, stored: Stored) {
        let key = stored.key.clone();
        let state = if stored.meta.worth {
            KeyState::Available(Rc::new(stored))
        } else {
            KeyState::Skipped
        };
        self.state.borrow_mut().insert(key, state);
    }

    /// The snapshot under `key` was just taken on engine `engine_id` from a container of
    /// `image`: its templates are wanted (see [`RunSnapshots::untemplated`]).
    pub fn wants_templates(&self, engine_id: &str, key: &str, image: String) {
        if self.layering() {
            let entry = (engine_id.to_string(), key.to_string(), image);
            self.untemplated.borrow_mut().push(entry);
        }
    }

    /// The snapshots taken on this run on engine `engine_id` whose templates nobody made yet,
    /// with the image to make them through, handed out once: made while the tests run, they
    /// spare the next environment to restore (this run's or the next run's) the copy.
    pub fn untemplated(&self, engine_id: &str) -> Vec<(Rc<Stored>, String)> {
        let mut wanted = self.untemplated.borrow_mut();
        let (mine, others) = wanted.drain(..).partition(|(e, ..)| e == engine_id);
        *wanted = others;
        let state = self.state.borrow();
        mine.into_iter()
            .filter_map(|(_, key, image)| match state.get(&key) {
                Some(KeyState::Available(stored)) => Some((stored.clone(), image)),
                _ => None,
            })
            .collect()
    }

    /// Taking a snapshot failed: the run goes on without it.
    pub fn failed(&self, key: &str) {
        self.state
            .borrow_mut()
            .insert(key.to_string(), KeyState::Skipped);
    }

    /// A restore begins; give what it returns to [`RunSnapshots::restore_ended`].
    pub fn restore_began(&self) -> Overlap {
        let (running, began) = self.restoring.get();
        self.restoring.set((running + 1, began + 1));
        Overlap {
            running: running + 1,
            began,
        }
    }

    /// A restore ended: how many restores shared the engine with it at some point (itself,
    /// those in progress when it began, and those that began meanwhile).
    pub fn restore_ended(&self, overlap: Overlap) -> usize {
        let (running, began) = self.restoring.get();
        self.restoring.set((running.saturating_sub(1), began));
        overlap.running + began.saturating_sub(overlap.began + 1)
    }

    /// A restore took `seconds` to copy the data in while `alongside` restores (itself
    /// included) shared the engine: if its own share of that time is longer than
    /// initialising took, the snapshot is marked not worth it for later runs. (Four groups
    /// restoring at once each take about four times as long as one alone; judging each by
    /// its wall time would condemn a snapshot that saves time.)
    pub fn restored(&self, stored: &Stored, seconds: f64, alongside: usize) -> Option<String> {
        let mut meta = stored.meta.clone();
        meta.restore_seconds = Some(seconds);
        let own = seconds / alongside.max(1) as f64;
        // A margin: one noisy restore must not condemn a snapshot that usually pays.
        let slower = own >= NOT_WORTH_RATIO * meta.init_seconds;
        if slower {
            meta.worth = false;
            meta.reason = Some(format!(
                "restoring took {own:.1}s, initialising {:.1}s",
                meta.init_seconds
            ));
        }
        let _ = self.store.update_meta(&stored.key, &meta);
        slower.then(|| {
            format!(
                "{}: restoring its snapshot took {own:.1}s, longer than initialising it ({:.1}s); later runs initialise it",
                meta.service, meta.init_seconds
            )
        })
    }
}

fn key_of(
    project: &Project,
    service: &Service,
    image: Option<&ImageConfig>,
    engine_id: &str,
) -> Keyed {
    if engine_id.is_empty() {
        return Err(NoSnapshot::NoEngineId);
    }
    let image = image
        .filter(|i| !i.id.is_empty())
        .ok_or(NoSnapshot::NoImageId)?;
    let paths = data_paths(project, service, Some(image))?;
    if paths.is_empty() {
        return Err(NoSnapshot::NoData);
    }
    if paths.iter().any(|p| p.target == "/") {
        return Err(NoSnapshot::AtRoot);
    }
    let observable = service
        .healthcheck
        .as_ref()
        .is_some_and(|h| h.test.first().is_some_and(|t| t != "NONE"))
        || image.healthcheck_test.is_some()
        || !super::startup::declared_tcp_ports(service).is_empty()
        || !image.exposed_tcp_ports.is_empty();
    if !observable {
        return Err(NoSnapshot::NotObservable);
    }
    let key = fingerprint(project, service, &image.id, engine_id, &paths)?;
    Ok((key, paths))
}

/// The folder a volume path's archive is extracted into (its parent), and its own name.
pub fn parent_of(target: &str) -> (&str, &str) {
    let trimmed = target.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", trimmed),
    }
}

/// How the names of a snapshot's template volumes on an engine begin (restores layer over
/// them; `clean --snapshots` removes them with the snapshot).
pub fn template_prefix(key: &str) -> String {
    format!("compose-shard-snapshot-{key}-")
}

/// A one-entry archive made of the first entry of a snapshot's archive (`head`: its first
/// bytes), its top folder, with any extended headers before it: extracted over a layered
/// volume's mount point, it gives the layer's top folder the owner, mode and times the
/// snapshot's had (an overlay's top folder otherwise has those of its empty upper folder).
/// `None` unless the first entry is a folder whose headers fit in `head`.
pub fn top_folder_entry(head: &[u8]) -> Option<Vec<u8>> {
    const BLOCK: usize = 512;
    let mut at = 0;
    loop {
        let header = head.get(at..at + BLOCK)?;
        let size = usize::try_from(octal(&header[124..136])?).ok()?;
        match header[156] {
            // PAX and GNU extended headers: their data follows, then the entry they describe.
            b'x' | b'g' | b'L' | b'K' => at += BLOCK + size.div_ceil(BLOCK) * BLOCK,
            b'5' => {
                let mut entry = head[..at + BLOCK].to_vec();
                entry.extend([0; 2 * BLOCK]);
                return Some(entry);
            }
            _ => return None,
        }
    }
}

/// A tar numeric field: octal digits, padded with spaces or NULs.
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

/// How long a service's container may take to stop cleanly (`stop_grace_period`, else
/// Docker's 10 s).
pub fn stop_grace(service: &Service) -> u32 {
    service
        .stop_grace_period
        .map(|s| s.ceil().clamp(0.0, f64::from(u32::MAX)) as u32)
        .unwrap_or(10)
}

/// A restore whose own share of the copying takes this many times the initialisation it
/// replaces marks its snapshot not worth it.
const NOT_WORTH_RATIO: f64 = 1.25;

/// Restores that were in progress when one began (itself included), and how many had
/// begun before it.
#[derive(Debug, Clone, Copy)]
pub struct Overlap {
    running: usize,
    began: usize,
}

/// Minimum pause between the two readiness observations a capture needs.
pub const SETTLE: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {

    fn archive_with_top(name: &str, kind: tar::EntryType, mode: u32, uid: u64) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_size(0);
        builder
            .append_data(&mut header, name, std::io::empty())
            .unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(3);
        file.set_mode(0o600);
        builder
            .append_data(&mut file, format!("{name}/PG_VERSION"), &b"15\n"[..])
            .unwrap();
        builder.into_inner().unwrap()
    }

    fn entries(archive: &[u8]) -> Vec<(String, u32, u64)> {
        let mut reader = tar::Archive::new(archive);
        reader
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path()
                        .unwrap()
                        .display()
                        .to_string()
                        .trim_end_matches('/')
                        .to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_top_folder_entry_keeps_the_folders_owner_and_mode_and_nothing_else() {
        let archive = archive_with_top("data/", tar::EntryType::Directory, 0o700, 999);
        let top = top_folder_entry(&archive).expect("a folder comes first");
        assert_eq!(entries(&top), [("data".to_string(), 0o700, 999)]);
        // A name longer than a header holds comes with a GNU long-name header before it.
        let long = format!("{}/", "d".repeat(150));
        let archive = archive_with_top(&long, tar::EntryType::Directory, 0o750, 70);
        let top = top_folder_entry(&archive).expect("a folder comes first");
        assert_eq!(entries(&top), [("d".repeat(150), 0o750, 70)]);
        // A file first, or a head too short to hold the header: no entry.
        let file_first = archive_with_top("data", tar::EntryType::Regular, 0o600, 0);
        assert_eq!(top_folder_entry(&file_first), None);
        assert_eq!(top_folder_entry(&archive[..100]), None);
    }
    use super::*;
    use crate::compose::{Mount, Volume};

    fn volume_mount(source: Option<&str>, target: &str) -> Mount {
        Mount {
            kind: MountKind::Volume,
            source: source.map(str::to_string),
            target: target.into(),
            read_only: false,
            options: vec![],
            create_host_path: false,
        }
    }

    fn project_with(db: Service, others: Vec<Service>) -> Project {
        let mut project = Project {
            name: "p".into(),
            project_dir: std::env::temp_dir(),
            files: vec![],
            services: Default::default(),
            networks: Default::default(),
            volumes: Default::default(),
            isolation: None,
        };
        project.volumes.insert("pgdata".into(), Volume::default());
        project.services.insert(db.name.clone(), db);
        for s in others {
            project.services.insert(s.name.clone(), s);
        }
        project
    }

    fn db() -> Service {
        Service {
            name: "db".into(),
            image: Some("postgres".into()),
            volumes: vec![volume_mount(Some("pgdata"), "/var/lib/postgresql/data")],
            environment: [("POSTGRES_DB".to_string(), Some("shop".to_string()))].into(),
            expose: vec!["5432".into()],
            ..Default::default()
        }
    }

    fn image() -> ImageConfig {
        ImageConfig {
            id: "sha256:abc".into(),
            volumes: vec!["/var/lib/postgresql/data".into(), "/logs".into()],
            ..Default::default()
        }
    }

    #[test]
    fn named_anonymous_and_image_volumes_are_data_binds_and_tmpfs_are_not() {
        let mut service = db();
        service.volumes.push(Mount {
            kind: MountKind::Bind,
            source: Some("/etc/init".into()),
            ..volume_mount(None, "/docker-entrypoint-initdb.d")
        });
        service.volumes.push(volume_mount(None, "/scratch"));
        let project = project_with(service.clone(), vec![]);
        let paths = data_paths(&project, &service, Some(&image())).unwrap();
        let targets: Vec<_> = paths.iter().map(|p| p.target.as_str()).collect();
        assert_eq!(targets, ["/var/lib/postgresql/data", "/scratch", "/logs"]);
        assert_eq!(paths[0].volume.as_deref(), Some("pgdata"));
        assert_eq!(paths[2].volume, None);
    }

    #[test]
    fn a_shared_external_or_driver_volume_is_the_users_to_keep() {
        let mut other = db();
        other.name = "backup".into();
        let project = project_with(db(), vec![other]);
        let err = data_paths(&project, &db(), None).unwrap_err().to_string();
        assert!(err.contains("shared with another service"), "{err}");

        let mut project = project_with(db(), vec![]);
        project.volumes["pgdata"].external = true;
        assert!(data_paths(&project, &db(), None)
            .unwrap_err()
            .to_string()
            .contains("external"));
        project.volumes["pgdata"].external = false;
        project.volumes["pgdata"]
            .driver_opts
            .insert("type".into(), "none".into());
        assert!(data_paths(&project, &db(), None)
            .unwrap_err()
            .to_string()
            .contains("driver"));
    }

    #[test]
    fn the_key_changes_with_the_image_the_engine_the_environment_and_bound_file_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("init")).unwrap();
        std::fs::write(dir.path().join("init/01.sql"), "create table a();").unwrap();
        let mut service = db();
        service.volumes.push(Mount {
            kind: MountKind::Bind,
            source: Some(dir.path().join("init").display().to_string()),
            ..volume_mount(None, "/docker-entrypoint-initdb.d")
        });
        let mut project = project_with(service.clone(), vec![]);
        project.project_dir = dir.path().to_path_buf();
        let paths = data_paths(&project, &service, None).unwrap();
        let key = |p: &Project, s: &Service, image: &str, engine: &str| {
            fingerprint(p, s, image, engine, &paths).unwrap()
        };
        let base = key(&project, &service, "sha256:a", "E1");
        assert_eq!(base, key(&project, &service, "sha256:a", "E1"), "stable");
        assert_ne!(base, key(&project, &service, "sha256:b", "E1"), "image");
        assert_ne!(base, key(&project, &service, "sha256:a", "E2"), "engine");
        let mut changed = service.clone();
        changed
            .environment
            .insert("POSTGRES_DB".into(), Some("other".into()));
        assert_ne!(
            base,
            key(&project, &changed, "sha256:a", "E1"),
            "environment"
        );
        std::fs::write(dir.path().join("init/01.sql"), "create table b();").unwrap();
        assert_ne!(
            base,
            key(&project, &service, "sha256:a", "E1"),
            "init script"
        );
        std::fs::write(dir.path().join("init/01.sql"), "create table a();").unwrap();
        assert_eq!(base, key(&project, &service, "sha256:a", "E1"), "restored");
        std::fs::write(dir.path().join("init/02.sql"), "").unwrap();
        assert_ne!(
            base,
            key(&project, &service, "sha256:a", "E1"),
            "new script"
        );
    }

    #[test]
    fn the_group_a_service_runs_in_does_not_change_its_key() {
        // Isolation renames the project and its resources, never what the service does.
        let project = project_with(db(), vec![]);
        let mut other_group = project.clone();
        other_group.name = "p-g2".into();
        let a = key_of(&project, &db(), Some(&image()), "E").unwrap();
        let b = key_of(&other_group, &db(), Some(&image()), "E").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_service_without_data_or_without_observable_readiness_has_no_key() {
        let mut plain = db();
        plain.volumes.clear();
        let project = project_with(plain.clone(), vec![]);
        let none = ImageConfig {
            id: "sha256:abc".into(),
            ..Default::default()
        };
        assert!(key_of(&project, &plain, Some(&none), "E")
            .unwrap_err()
            .to_string()
            .contains("no data"));
        let mut silent = db();
        silent.expose.clear();
        let project = project_with(silent.clone(), vec![]);
        assert!(key_of(&project, &silent, Some(&none), "E")
            .unwrap_err()
            .to_string()
            .contains("nothing tells when it is ready"));
        assert!(key_of(&project, &db(), Some(&none), "")
            .unwrap_err()
            .to_string()
            .contains("engine"));
    }

    fn meta(worth: bool) -> Meta {
        Meta {
            service: "db".into(),
            project_dir: "/p".into(),
            image: "postgres".into(),
            engine: "E".into(),
            paths: vec![DataPath {
                target: "/data".into(),
                volume: None,
            }],
            bytes: 3,
            created: 1,
            init_seconds: 4.0,
            capture_seconds: 1.0,
            restore_seconds: None,
            worth,
            reason: None,
        }
    }

    #[test]
    fn the_store_saves_whole_snapshots_lists_and_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::under(dir.path());
        assert!(store.load("k").is_none());
        store.save("k", &meta(true), &[b"tar".to_vec()]).unwrap();
        let loaded = store.load("k").unwrap();
        assert_eq!(loaded.archives.len(), 1);
        assert_eq!(loaded.archives[0].read_all().unwrap(), b"tar");
        assert_eq!(loaded.meta, meta(true));
        // An archive gone missing makes the snapshot absent, not half-restored.
        std::fs::remove_file(dir.path().join("snapshots/k/0.tar")).unwrap();
        assert!(store.load("k").is_none());
        store.save("k", &meta(true), &[b"tar".to_vec()]).unwrap();
        let listed = store.list();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].bytes > 3);
        assert_eq!(store.remove_all().unwrap().len(), 1);
        assert!(store.list().is_empty());
    }

    #[test]
    fn one_environment_takes_a_missing_snapshot_the_others_initialise_later_ones_restore() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::under(dir.path());
        let run = RunSnapshots::new(Snapshots::Auto, store.clone()).unwrap();
        let paths = meta(true).paths;
        assert!(matches!(run.action("k", &paths), Action::Capture { .. }));
        assert!(matches!(run.action("k", &paths), Action::Nothing));
        store.save("k", &meta(true), &[b"tar".to_vec()]).unwrap();
        run.taken(store.load("k").unwrap());
        assert!(matches!(run.action("k", &paths), Action::Restore(_)));

        // A later run restores what is on disk; `refresh` takes it again; `off` does nothing.
        let next = RunSnapshots::new(Snapshots::Auto, store.clone()).unwrap();
        assert!(matches!(next.action("k", &paths), Action::Restore(_)));
        let refresh = RunSnapshots::new(Snapshots::Refresh, store.clone()).unwrap();
        assert!(matches!(
            refresh.action("k", &paths),
            Action::Capture { .. }
        ));
        assert!(RunSnapshots::new(Snapshots::Off, store.clone()).is_none());

        // Not worth it: later runs initialise, and do not try to take it again.
        store.save("slow", &meta(false), &[] as &[Vec<u8>]).unwrap();
        let run = RunSnapshots::new(Snapshots::Auto, store).unwrap();
        assert!(matches!(run.action("slow", &paths), Action::Nothing));
    }

    #[test]
    fn a_restore_slower_than_initialising_marks_the_snapshot_not_worth_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::under(dir.path());
        store.save("k", &meta(true), &[b"tar".to_vec()]).unwrap();
        let run = RunSnapshots::new(Snapshots::Auto, store.clone()).unwrap();
        let stored = store.load("k").unwrap();
        assert_eq!(run.restored(&stored, 0.5, 1), None);
        assert_eq!(run.restored(&stored, 4.5, 1), None, "within the margin");
        assert!(store.meta("k").unwrap().worth);
        // Four restores at once, 9 s each: 2.25 s of copying each, less than 4 s of initdb.
        assert_eq!(run.restored(&stored, 9.0, 4), None);
        assert!(store.meta("k").unwrap().worth);
        let said = run.restored(&stored, 9.0, 1).unwrap();
        assert!(said.contains("longer than initialising"), "{said}");
        assert!(!store.meta("k").unwrap().worth);
    }

    #[test]
    fn an_archive_goes_into_the_folder_above_its_path() {
        assert_eq!(
            parent_of("/var/lib/postgresql/data"),
            ("/var/lib/postgresql", "data")
        );
        assert_eq!(parent_of("/data/"), ("/", "data"));
    }

    #[test]
    fn a_restore_counts_every_restore_that_shared_the_engine_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunSnapshots::new(Snapshots::Auto, SnapshotStore::under(dir.path())).unwrap();
        // Four groups: the first begins alone, the other three begin while it copies.
        let first = run.restore_began();
        let others: Vec<_> = (0..3).map(|_| run.restore_began()).collect();
        assert_eq!(run.restore_ended(first), 4);
        let counts: Vec<_> = others.into_iter().map(|o| run.restore_ended(o)).collect();
        assert_eq!(counts, [4, 4, 4], "all four shared the engine");
        // Later, one alone.
        let alone = run.restore_began();
        assert_eq!(run.restore_ended(alone), 1);
    }
}
