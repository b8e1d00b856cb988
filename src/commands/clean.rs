//! `compose-shard clean`: remove what earlier runs left behind, found by label.
//!
//! Without flags it removes only leftovers, i.e. resources whose creating process is gone, so
//! a run in progress on the same engine is never touched. `--run ID` removes one run's
//! resources, `--all` everything compose-shard ever labelled. `--dry-run` only lists.

use std::collections::BTreeMap;

use crate::config::CleanConfig;
use crate::engine::{DockerEngine, ManagedResource};
use crate::errors::{Error, ExitCode};
use crate::labels;
use crate::run::{find_leftovers, run_label, Backend};

/// Execute `compose-shard clean`.
pub fn execute(cfg: CleanConfig) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        action: "start the async runtime for",
        path: "compose-shard clean".into(),
        source,
    })?;
    runtime.block_on(clean(cfg))
}

async fn clean(cfg: CleanConfig) -> Result<ExitCode, Error> {
    let engine = DockerEngine::connect().await?;
    let selected: BTreeMap<String, Vec<ManagedResource>> = if let Some(run) = &cfg.run_id {
        let found = engine.list_labelled(&run_label(run)).await?;
        BTreeMap::from([(run.clone(), found)])
    } else if cfg.all {
        let mut by_run: BTreeMap<String, Vec<ManagedResource>> = BTreeMap::new();
        for res in engine
            .list_labelled(&format!("{}=true", labels::MANAGED))
            .await?
        {
            let run = res.run_id.clone().unwrap_or_else(|| "unknown".into());
            by_run.entry(run).or_default().push(res);
        }
        by_run
    } else {
        find_leftovers(&engine, true).await?
    };
    let total: usize = selected.values().map(Vec::len).sum();
    if total == 0 {
        println!("nothing to clean");
        return Ok(ExitCode::Success);
    }
    for (run, resources) in &selected {
        for r in resources {
            let verb = if cfg.dry_run {
                "would remove"
            } else {
                "removing"
            };
            println!("{verb} {} {} (run {run})", r.kind, r.name);
        }
    }
    if cfg.dry_run {
        return Ok(ExitCode::Success);
    }
    let mut first_error = None;
    for run in selected.keys() {
        let label = if run == "unknown" {
            format!("{}=true", labels::MANAGED)
        } else {
            run_label(run)
        };
        if run == "unknown" {
            // Resources without a run label: remove them one by one.
            for r in &selected[run] {
                if let Err(e) = engine.remove(r).await {
                    first_error.get_or_insert(e);
                }
            }
            continue;
        }
        if let Err(e) = Backend::remove_labelled(&engine, &label).await {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => {
            println!("removed {total} resources");
            Ok(ExitCode::Success)
        }
    }
}
