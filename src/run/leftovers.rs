//! Leftovers: resources labelled by compose-shard whose creating process is gone (a run that
//! was killed with SIGKILL, or a crashed machine). `run` warns about them; `clean` removes them.

use std::collections::BTreeMap;

use super::backend::Backend;
use crate::engine::{EngineError, ManagedResource};
use crate::labels;

/// Whether a process id is alive on this machine. Reads `/proc`, so on systems without it
/// every creator counts as alive and nothing is ever called a leftover by mistake.
pub fn process_alive(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Managed resources whose creator is not running any more, grouped by run id. Resources
/// without a pid label count as leftovers only if `include_unknown`.
pub async fn find_leftovers<B: Backend>(
    backend: &B,
    include_unknown: bool,
) -> Result<BTreeMap<String, Vec<ManagedResource>>, EngineError> {
    let all = backend
        .list_labelled(&format!("{}=true", labels::MANAGED))
        .await?;
    let mut by_run: BTreeMap<String, Vec<ManagedResource>> = BTreeMap::new();
    for res in all {
        let dead = match res.pid {
            Some(pid) => pid != std::process::id() && !process_alive(pid),
            None => include_unknown,
        };
        if dead {
            let run = res.run_id.clone().unwrap_or_else(|| "unknown".into());
            by_run.entry(run).or_default().push(res);
        }
    }
    Ok(by_run)
}
