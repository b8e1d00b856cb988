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

use std::collections::BTreeMap;

use crate::config::{resolve, CleanConfig};
use crate::engine::{
    engine_addresses, DockerEngine, EngineAddress, EngineEnv, EngineError, ManagedResource,
};
use crate::errors::{Error, ExitCode};
use crate::labels;
use crate::pyproject::Settings;
use crate::run::{find_leftovers, run_label, Backend};

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
    runtime.block_on(async {
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
            Some(e) => Err(e.into()),
            None => Ok(ExitCode::Success),
        }
    })
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
