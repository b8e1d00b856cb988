//! The test container's plugin and results folders as folders of this machine, bind-mounted
//! into it, where the engine shares this machine's files (a local `dockerd`): the plugin,
//! the gate, the lists of tests, the collection and the stack dumps are then written and read
//! here, not copied through the engine's archive API, which mounts a created container's file
//! system for every copy and serves copies one after another with the other containers'
//! starts. Everything else is the same; an engine that does not share this machine's files
//! (remote, rootless, Docker Desktop's VM) gets the copies as before, as does
//! `COMPOSE_SHARD_HOST_FOLDERS=0`.

use std::path::PathBuf;

use super::protocol::{PLUGIN_DIR, RESULTS_DIR};

/// A group's two folders on this machine, removed when dropped, unless made to be kept
/// (`--keep`: the kept container mounts them, so it must still start).
pub struct PluginFolders {
    _root: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl PluginFolders {
    /// Make the folders for `label` (the group's project name) under the temporary folder,
    /// open to the container's user whoever it is. `None` when they cannot be made: the
    /// group then copies through the engine.
    pub fn make(label: &str, keep: bool) -> Option<Self> {
        let root = tempfile::Builder::new()
            .prefix(&format!("compose-shard-{label}-"))
            .tempdir()
            .ok()?;
        let path = root.path().to_path_buf();
        for sub in ["plugin", "results"] {
            let dir = path.join(sub);
            std::fs::create_dir(&dir).ok()?;
            open_to_everyone(&dir).ok()?;
        }
        let root = if keep {
            let _ = root.keep();
            None
        } else {
            Some(root)
        };
        Some(PluginFolders { _root: root, path })
    }

    /// (container folder, folder here) for the container's mounts.
    pub fn mounts(&self) -> Vec<(String, PathBuf)> {
        vec![
            (PLUGIN_DIR.to_string(), self.path.join("plugin")),
            (RESULTS_DIR.to_string(), self.path.join("results")),
        ]
    }

    /// Where they are.
    #[cfg(test)]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// The folders `--keep` kept for run `run_id` (what `clean` removes with the run's
/// resources): named after the group's project, `<project>-<run id>-g<k>`.
pub fn kept_folders(run_id: &str) -> Vec<PathBuf> {
    kept_folders_in(&std::env::temp_dir(), run_id)
}

fn kept_folders_in(dir: &std::path::Path, run_id: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mark = format!("-{run_id}-g");
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("compose-shard-") && name.contains(&mark)
        })
        .map(|e| e.path())
        .filter(|p| p.join("plugin").is_dir())
        .collect();
    found.sort();
    found
}

#[cfg(unix)]
fn open_to_everyone(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
}

#[cfg(not(unix))]
fn open_to_everyone(_dir: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folders_are_open_to_any_user_and_removed_unless_kept() {
        use std::os::unix::fs::PermissionsExt;
        let folders = PluginFolders::make("proj-abc-g1", false).unwrap();
        let path = folders.path().to_path_buf();
        let mounts = folders.mounts();
        assert_eq!(mounts[0].0, PLUGIN_DIR);
        assert_eq!(mounts[1].0, RESULTS_DIR);
        for (_, here) in &mounts {
            let mode = std::fs::metadata(here).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o777, "{}", here.display());
        }
        drop(folders);
        assert!(!path.exists());
        let kept = PluginFolders::make("proj-abc-g2", true).unwrap();
        let path = kept.path().to_path_buf();
        drop(kept);
        assert!(path.join("plugin").is_dir());
        let parent = path.parent().unwrap();
        assert_eq!(kept_folders_in(parent, "abc"), vec![path.clone()]);
        assert_eq!(kept_folders_in(parent, "abd"), Vec::<PathBuf>::new());
        std::fs::remove_dir_all(path).unwrap();
    }
}
