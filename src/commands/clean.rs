//! `compose-shard clean`: remove what earlier runs left behind, found by label, on every
//! configured engine (`--docker-host`, repeatable; else `docker-hosts` of pyproject.toml; else
//! the default engine).
//!
//! Without flags it removes only leftovers, i.e. resources whose creating process is gone, so
//! a run in progress on the same engine is never touched. `--run ID` removes one run's
//! resources, `--all` everything compose-shard ever labelled. `--dry-run` only lists.
//!
//! Every line says which engine it is about. An engine that cannot be reached or cleaned does
//! not stop the others: its error is reported and the command exits 3 after the rest is done.
//!
//! Snapshots of ready services (`run --snapshots`) live on this machine, under the cache
//! folder, not on an engine. `--dry-run` lists them (service, project, size, age, how long
//! initialising and restoring took, whether each is worth it) and says how to remove them;
//! `--snapshots` removes them too, whatever else is selected. They are handled after the
//! engines and even when an engine does not answer. One folder is removed at a time rather
//! than with `SnapshotStore::remove_all`, so that each line and each error names its folder,
//! one failure does not stop the rest, and a snapshot a live run is still writing
//! (`.<key>.<pid>.partial`) is left alone. Removing the others while a run is under way is
//! safe: a run reads a snapshot whole before it restores it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{resolve, CleanConfig};
use crate::durations_store::cache_root;
use crate::engine::{
    engine_addresses, DockerEngine, EngineAddress, EngineEnv, EngineError, ManagedResource,
};
use crate::errors::{render_chain, Error, ExitCode};
use crate::labels;
use crate::pyproject::Settings;
use crate::run::service_snapshot::{now_epoch, template_prefix, Listed, SnapshotStore};
use crate::run::{find_leftovers, process_alive, run_label, Backend};

/// Execute `compose-shard clean`.
pub fn execute(cfg: CleanConfig) -> Result<ExitCode, Error> {
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        action: "read",
        path: ".".into(),
        source,
    })?;
    let settings = if cfg.docker_hosts.is_empty() {
        Settings::load(&cwd).map_err(|e| Error::Usage(e.to_string()))?
    } else {
        Settings::default()
    };
    let hosts = resolve::docker_hosts(&cfg.docker_hosts, &settings);
    let addresses = engine_addresses(&hosts.named, hosts.origin, &EngineEnv::from_process())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        action: "start the async runtime for",
        path: "compose-shard clean".into(),
        source,
    })?;
    let engines = runtime.block_on(async {
        // Each failure is printed when the next one comes; the last is returned (and printed
        // by main), so every engine's error is shown once.
        let mut pending: Option<EngineError> = None;
        for address in &addresses {
            if let Err(e) = clean_engine(&cfg, address).await {
                if let Some(earlier) = pending.replace(e) {
                    eprintln!("error: {earlier}");
                }
            }
        }
        match pending {
            Some(e) => Err(Error::from(e)),
            None => Ok(ExitCode::Success),
        }
    });
    let snapshots = if cfg.dry_run || cfg.snapshots {
        clean_snapshots(&cfg, &|name| std::env::var(name).ok())
    } else {
        Ok(())
    };
    match (engines, snapshots) {
        (Err(engine), Err(snapshot)) => {
            eprintln!("error: {}", render_chain(&snapshot));
            Err(engine)
        }
        (Err(e), Ok(())) | (Ok(_), Err(e)) => Err(e),
        (Ok(code), Ok(())) => Ok(code),
    }
}

/// What `cfg` selects on one engine, by run id.
async fn select(
    cfg: &CleanConfig,
    engine: &DockerEngine,
) -> Result<BTreeMap<String, Vec<ManagedResource>>, EngineError> {
    if let Some(run) = &cfg.run_id {
        let found = engine.list_labelled(&run_label(run)).await?;
        return Ok(BTreeMap::from([(run.clone(), found)]));
    }
    if cfg.all {
        let mut by_run: BTreeMap<String, Vec<ManagedResource>> = BTreeMap::new();
        for res in engine
            .list_labelled(&format!("{}=true", labels::MANAGED))
            .await?
        {
            let run = res.run_id.clone().unwrap_or_else(|| "unknown".into());
            by_run.entry(run).or_default().push(res);
        }
        return Ok(by_run);
    }
    find_leftovers(engine, true).await
}

/// Clean one engine, printing what it finds and removes.
async fn clean_engine(cfg: &CleanConfig, address: &EngineAddress) -> Result<(), EngineError> {
    let engine = DockerEngine::connect_to(address).await?;
    if cfg.snapshots {
        clean_templates(cfg, &engine, address).await?;
    }
    let selected = select(cfg, &engine).await?;
    let total: usize = selected.values().map(Vec::len).sum();
    if total == 0 {
        println!("engine {address}: nothing to clean");
        return Ok(());
    }
    let verb = if cfg.dry_run {
        "would remove"
    } else {
        "removing"
    };
    for (run, resources) in &selected {
        for r in resources {
            println!("engine {address}: {verb} {} {} (run {run})", r.kind, r.name);
        }
        // The plugin folders `--keep` kept on this machine for the run's test containers.
        for folder in crate::run::kept_folders(run) {
            println!("{verb} folder {} (run {run})", folder.display());
            if !cfg.dry_run {
                if let Err(e) = std::fs::remove_dir_all(&folder) {
                    eprintln!("warning: could not remove {}: {e}", folder.display());
                }
            }
        }
    }
    if cfg.dry_run {
        return Ok(());
    }
    let mut first_error = None;
    for (run, resources) in &selected {
        if run == "unknown" {
            // Resources without a run label: remove them one by one.
            for r in resources {
                if let Err(e) = engine.remove(r).await {
                    first_error.get_or_insert(e);
                }
            }
        } else if let Err(e) = Backend::remove_labelled(&engine, &run_label(run)).await {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            println!("engine {address}: removed {total} resources");
            Ok(())
        }
    }
}

/// What `clean` does with one snapshot folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Listed and kept (`--dry-run` without `--snapshots`).
    Keep,
    /// Removed (with `--dry-run`: would be).
    Remove,
    /// Still being written by this live process: left alone.
    BeingWritten(u32),
}

impl Fate {
    fn of(listed: &Listed, remove: bool, alive: &dyn Fn(u32) -> bool) -> Fate {
        match partial_writer(&listed.dir) {
            Some(pid) if alive(pid) => Fate::BeingWritten(pid),
            _ if remove => Fate::Remove,
            _ => Fate::Keep,
        }
    }

    /// How a line about a snapshot with this fate begins.
    fn verb(self, dry_run: bool) -> String {
        match self {
            Fate::Keep => "keeping snapshot".into(),
            Fate::Remove if dry_run => "would remove snapshot".into(),
            Fate::Remove => "removing snapshot".into(),
            Fate::BeingWritten(pid) => format!("leaving snapshot being written by process {pid}"),
        }
    }
}

/// The template volumes (`dev.compose-shard.snapshot`) on an engine of the snapshots under
/// the cache folder, which restores layer over: removed with them (`--snapshots`).
async fn clean_templates(
    cfg: &CleanConfig,
    engine: &DockerEngine,
    address: &EngineAddress,
) -> Result<(), EngineError> {
    let env = |name: &str| std::env::var(name).ok();
    let Some(root) = cache_root(&env) else {
        return Ok(());
    };
    // A template belongs to one snapshot: its key and when it was taken.
    let prefixes: Vec<String> = SnapshotStore::under(&root)
        .list()
        .iter()
        .filter_map(|l| {
            let key = l.dir.file_name()?.to_str()?;
            let created = l.meta.as_ref()?.created;
            Some(format!("{}{created}-", template_prefix(key)))
        })
        .collect();
    let templates = engine.list_labelled(labels::SNAPSHOT).await?;
    let verb = if cfg.dry_run {
        "would remove"
    } else {
        "removing"
    };
    for template in templates
        .iter()
        .filter(|t| prefixes.iter().any(|p| t.name.starts_with(p)))
    {
        println!(
            "engine {address}: {verb} snapshot template {} {}",
            template.kind, template.name
        );
        if !cfg.dry_run {
            engine.remove(template).await?;
        }
    }
    Ok(())
}

/// List (`--dry-run`) and remove (`--snapshots`) the snapshots under the cache folder.
fn clean_snapshots(cfg: &CleanConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Error> {
    let Some(root) = cache_root(env) else {
        println!(
            "snapshots: none (no cache folder: COMPOSE_SHARD_CACHE_DIR is set empty, \
             or there is no home)"
        );
        return Ok(());
    };
    let store = SnapshotStore::under(&root);
    let listed = list_snapshots(&store)?;
    if listed.is_empty() {
        println!("snapshots: none under {}", store.root().display());
        return Ok(());
    }
    let now = now_epoch();
    let mut removed = Vec::new();
    // As with engines: each failure is printed when the next one comes, the last is returned.
    let mut pending: Option<Error> = None;
    for snapshot in &listed {
        let fate = Fate::of(snapshot, cfg.snapshots, &process_alive);
        println!("{}: {}", fate.verb(cfg.dry_run), describe(snapshot, now));
        if fate != Fate::Remove {
            continue;
        }
        let outcome = if cfg.dry_run {
            Ok(())
        } else {
            remove_snapshot(&snapshot.dir)
        };
        match outcome {
            Ok(()) => removed.push(snapshot),
            Err(e) => {
                if let Some(earlier) = pending.replace(e) {
                    eprintln!("error: {}", render_chain(&earlier));
                }
            }
        }
    }
    println!("{}", summary(&listed, &removed, cfg, store.root()));
    pending.map_or(Ok(()), Err)
}

/// The snapshot folders under `store`; none when the folder does not exist. `SnapshotStore::list`
/// reads an unreadable folder as empty, which would make `clean` say there is nothing to remove.
fn list_snapshots(store: &SnapshotStore) -> Result<Vec<Listed>, Error> {
    match std::fs::read_dir(store.root()) {
        Ok(_) => Ok(store.list()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Io {
            action: "list the snapshots in",
            path: store.root().to_path_buf(),
            source: with_hint(
                e,
                "check that it is a folder you may read (not one created with sudo or by \
                 another user), or set COMPOSE_SHARD_CACHE_DIR to another folder",
            ),
        }),
    }
}

fn remove_snapshot(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        // Removed meanwhile (by a run taking it again, or another `clean`): gone is gone.
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            action: "remove the snapshot",
            path: dir.to_path_buf(),
            source: with_hint(
                e,
                "check its owner and permissions, or remove the folder by hand",
            ),
        }),
        _ => Ok(()),
    }
}

/// `e` with what to do about it appended (the error types name the path and the action).
fn with_hint(e: std::io::Error, hint: &str) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{e}; {hint}"))
}

/// The process writing a snapshot folder named `.<key>.<pid>.partial` (how
/// `SnapshotStore::save` names its staging folder), if the folder is one.
fn partial_writer(dir: &Path) -> Option<u32> {
    let name = dir.file_name()?.to_str()?;
    let staged = name.strip_prefix('.')?.strip_suffix(".partial")?;
    staged.rsplit_once('.')?.1.parse().ok()
}

/// One snapshot, for a line of `clean`: which service of which project, its size and age, how
/// long initialising and restoring took, and whether it is worth keeping.
fn describe(listed: &Listed, now: u64) -> String {
    let size = megabytes(listed.bytes);
    let Some(meta) = &listed.meta else {
        let name = listed.dir.file_name().unwrap_or_default().to_string_lossy();
        return format!("{name}: {size}, no readable meta.json (unfinished or damaged)");
    };
    let restore = match meta.restore_seconds {
        Some(seconds) => format!("restoring {seconds:.1}s"),
        None => "not restored yet".into(),
    };
    let worth = match (&meta.reason, meta.worth) {
        (_, true) => "worth it".to_string(),
        (Some(reason), false) => format!("not worth it ({reason})"),
        (None, false) => "not worth it".into(),
    };
    format!(
        "{} of {} ({}): {size}, taken {} ago, initialising {:.1}s, {restore}, {worth}",
        meta.service,
        meta.project_dir.display(),
        meta.image,
        age(now.saturating_sub(meta.created)),
        meta.init_seconds,
    )
}

/// The closing line about snapshots: how many there are, how many `clean` removed (or would
/// remove) and their size, where they are, and how to remove the ones it keeps.
fn summary(listed: &[Listed], removed: &[&Listed], cfg: &CleanConfig, root: &Path) -> String {
    let place = root.display();
    let count = listed.len();
    if !cfg.snapshots {
        let total = megabytes(listed.iter().map(|l| l.bytes).sum());
        return format!(
            "snapshots: {count} under {place}, {total} in all; \
             `compose-shard clean --snapshots` removes them"
        );
    }
    let verb = if cfg.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let total = megabytes(removed.iter().map(|l| l.bytes).sum());
    format!(
        "snapshots: {verb} {} of {count} under {place}, {total}",
        removed.len()
    )
}

/// Bytes in megabytes (10^6, as Docker counts them), one decimal.
fn megabytes(bytes: u64) -> String {
    // Precision lost above 2^53 bytes is far below the one decimal shown.
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1e6;
    format!("{mb:.1} MB")
}

/// A duration in seconds the way a person says how old something is.
fn age(seconds: u64) -> String {
    match seconds {
        0..=59 => "under a minute".into(),
        60..=3_599 => format!("{} min", seconds / 60),
        3_600..=172_799 => format!("{} h", seconds / 3_600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::service_snapshot::{DataPath, Meta};

    fn meta(worth: bool) -> Meta {
        Meta {
            service: "db".into(),
            project_dir: "/work/shop".into(),
            image: "postgres:16".into(),
            engine: "E".into(),
            paths: vec![DataPath {
                target: "/var/lib/postgresql/data".into(),
                volume: Some("pgdata".into()),
            }],
            bytes: 41_200_000,
            created: 1_000,
            init_seconds: 8.34,
            capture_seconds: 2.0,
            restore_seconds: None,
            worth,
            reason: None,
        }
    }

    fn listed(name: &str, meta: Option<Meta>, bytes: u64) -> Listed {
        Listed {
            dir: Path::new("/cache/snapshots").join(name),
            meta,
            bytes,
        }
    }

    fn cfg(dry_run: bool, snapshots: bool) -> CleanConfig {
        CleanConfig {
            run_id: None,
            all: false,
            dry_run,
            snapshots,
            docker_hosts: vec![],
        }
    }

    #[test]
    fn a_snapshot_line_names_service_project_size_age_timings_and_worth() {
        let mut restored = meta(true);
        restored.restore_seconds = Some(1.25);
        assert_eq!(
            describe(
                &listed("k", Some(restored), 41_234_567),
                1_000 + 2 * 86_400 + 5
            ),
            "db of /work/shop (postgres:16): 41.2 MB, taken 2 days ago, initialising 8.3s, \
             restoring 1.2s, worth it"
        );
        let mut slow = meta(false);
        slow.reason = Some("ready in 0.4s, faster than a copy".into());
        assert_eq!(
            describe(&listed("k", Some(slow), 900_000), 1_030),
            "db of /work/shop (postgres:16): 0.9 MB, taken under a minute ago, initialising \
             8.3s, not restored yet, not worth it (ready in 0.4s, faster than a copy)"
        );
        assert_eq!(
            describe(&listed(".k.7.partial", None, 0), 0),
            ".k.7.partial: 0.0 MB, no readable meta.json (unfinished or damaged)"
        );
    }

    #[test]
    fn ages_read_like_a_person_says_them() {
        let cases = [
            (0, "under a minute"),
            (59, "under a minute"),
            (60, "1 min"),
            (3_599, "59 min"),
            (3_600, "1 h"),
            (47 * 3_600, "47 h"),
            (48 * 3_600, "2 days"),
        ];
        for (seconds, said) in cases {
            assert_eq!(age(seconds), said, "{seconds}");
        }
        assert_eq!(megabytes(0), "0.0 MB");
        assert_eq!(megabytes(2_550_001), "2.6 MB");
    }

    #[test]
    fn a_snapshot_a_live_run_is_still_writing_is_left_alone() {
        assert_eq!(
            partial_writer(Path::new("/s/.ab12.4242.partial")),
            Some(4242)
        );
        assert_eq!(partial_writer(Path::new("/s/ab12")), None);
        assert_eq!(partial_writer(Path::new("/s/.ab12.partial")), None);
        assert_eq!(partial_writer(Path::new("/s/ab12.4242.partial")), None);

        let alive = |pid| pid == 4242;
        let writing = listed(".ab12.4242.partial", None, 10);
        let abandoned = listed(".ab12.99.partial", None, 10);
        let whole = listed("ab12", Some(meta(true)), 10);
        assert_eq!(Fate::of(&writing, true, &alive), Fate::BeingWritten(4242));
        assert_eq!(Fate::of(&abandoned, true, &alive), Fate::Remove);
        assert_eq!(Fate::of(&whole, true, &alive), Fate::Remove);
        assert_eq!(Fate::of(&whole, false, &alive), Fate::Keep);
        assert_eq!(Fate::Remove.verb(true), "would remove snapshot");
        assert_eq!(Fate::Remove.verb(false), "removing snapshot");
    }

    #[test]
    fn the_summary_totals_sizes_and_says_how_to_remove_kept_snapshots() {
        let all = [
            listed("a", Some(meta(true)), 1_500_000),
            listed("b", None, 500_000),
        ];
        let root = Path::new("/cache/snapshots");
        assert_eq!(
            summary(&all, &[], &cfg(true, false), root),
            "snapshots: 2 under /cache/snapshots, 2.0 MB in all; \
             `compose-shard clean --snapshots` removes them"
        );
        assert_eq!(
            summary(&all, &[&all[0]], &cfg(true, true), root),
            "snapshots: would remove 1 of 2 under /cache/snapshots, 1.5 MB"
        );
        assert_eq!(
            summary(&all, &[&all[0], &all[1]], &cfg(false, true), root),
            "snapshots: removed 2 of 2 under /cache/snapshots, 2.0 MB"
        );
    }

    #[test]
    fn dry_run_keeps_snapshots_and_the_flag_removes_them() {
        let cache = tempfile::tempdir().unwrap();
        let store = SnapshotStore::under(cache.path());
        store.save("k", &meta(true), &[vec![0; 100]]).unwrap();
        let env = |name: &str| {
            (name == "COMPOSE_SHARD_CACHE_DIR").then(|| cache.path().display().to_string())
        };
        clean_snapshots(&cfg(true, false), &env).unwrap();
        clean_snapshots(&cfg(true, true), &env).unwrap();
        assert_eq!(store.list().len(), 1, "--dry-run removes nothing");
        clean_snapshots(&cfg(false, true), &env).unwrap();
        assert!(store.list().is_empty());
        // Nothing left, or no snapshots folder at all, is not an error.
        clean_snapshots(&cfg(false, true), &env).unwrap();
        std::fs::remove_dir(store.root()).unwrap();
        clean_snapshots(&cfg(true, false), &env).unwrap();
        // An empty COMPOSE_SHARD_CACHE_DIR turns the cache off: nothing to list.
        clean_snapshots(&cfg(true, true), &|_: &str| Some(String::new())).unwrap();
    }

    #[test]
    fn an_unreadable_snapshots_folder_is_an_error_naming_it_and_what_to_do() {
        let cache = tempfile::tempdir().unwrap();
        // A file where the folder should be cannot be listed, even by root.
        std::fs::write(cache.path().join("snapshots"), "").unwrap();
        let store = SnapshotStore::under(cache.path());
        let err = list_snapshots(&store).unwrap_err();
        let said = render_chain(&err);
        assert!(
            said.starts_with("failed to list the snapshots in "),
            "{said}"
        );
        assert!(said.contains(&store.root().display().to_string()), "{said}");
        assert!(said.contains("COMPOSE_SHARD_CACHE_DIR"), "{said}");
        assert_eq!(err.exit_code(), ExitCode::Usage);
    }
}
