//! Folders of this machine bind-mounted into a container (the test container's plugin and
//! results folders, when the engine shares this machine's files): files written into them
//! or read from them go through this machine's file system instead of the engine's archive
//! API, where every copy into a container that has not started mounts its file system, and
//! every copy waits its turn behind the other containers' starts.
//!
//! Writes keep the order the archive gave them: a list is complete before its `.ready` file
//! exists, as when both came in one archive.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::error::EngineError;

/// (container folder, the folder of this machine mounted there).
type Mounted = Vec<(String, PathBuf)>;

/// Container -> its folders of this machine.
#[derive(Clone, Default, Debug)]
pub(crate) struct HostFolders(Arc<Mutex<HashMap<String, Mounted>>>);

impl HostFolders {
    /// `container` mounts these folders of this machine.
    pub(crate) fn register(&self, container: &str, folders: &[(String, PathBuf)]) {
        if folders.is_empty() {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(container.to_string(), folders.to_vec());
    }

    /// Where `path` of `container` is on this machine, when a registered folder holds it.
    pub(crate) fn local(&self, container: &str, path: &str) -> Option<PathBuf> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let path = path.trim_end_matches('/');
        map.get(container)?.iter().find_map(|(inside, here)| {
            let inside = inside.trim_end_matches('/');
            let rest = path.strip_prefix(inside)?;
            if rest.is_empty() {
                Some(here.clone())
            } else {
                let rest = rest.strip_prefix('/')?;
                (!rest.split('/').any(|part| part == ".." || part.is_empty()))
                    .then(|| here.join(rest))
            }
        })
    }

    /// Write `files` (name, content) into `dir` of `container` when `dir` is a registered
    /// folder: `None` when it is not (the caller copies through the engine).
    pub(crate) fn write(
        &self,
        container: &str,
        dir: &str,
        files: &[(&str, &[u8])],
    ) -> Option<Result<(), EngineError>> {
        let here = self.local(container, dir)?;
        Some(write_all(&here, files))
    }
}

/// Copy the folder `here` (a registered folder, or one inside it) into `target`, as copying
/// it out of the container would: its files and folders, paths relative to it. Links and
/// other special files are left out (a test could link to any file of this machine).
pub(crate) fn copy_folder(here: &Path, target: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let mut copied = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let (from, to) = (here.join(&rel), target.join(&rel));
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| EngineError::Io {
                action: format!("{action} the test container's results at"),
                path,
                source,
            }
        };
        std::fs::create_dir_all(&to).map_err(io("make a folder for", &to))?;
        for entry in std::fs::read_dir(&from).map_err(io("read", &from))? {
            let entry = entry.map_err(io("read", &from))?;
            let kind = entry.file_type().map_err(io("read", &entry.path()))?;
            let name = rel.join(entry.file_name());
            if kind.is_dir() {
                stack.push(name);
            } else if kind.is_file() {
                // Read and written, not `fs::copy`: the copy gets this process's mode, so
                // a copy through the engine after a failure here can still replace it.
                let dest = target.join(&name);
                let mut file = std::fs::File::open(entry.path()).map_err(io("read", &from))?;
                let mut out = std::fs::File::create(&dest).map_err(io("copy", &dest))?;
                std::io::copy(&mut file, &mut out).map_err(io("copy", &dest))?;
                copied.push(name);
            }
        }
    }
    copied.sort();
    Ok(copied)
}

fn write_all(here: &Path, files: &[(&str, &[u8])]) -> Result<(), EngineError> {
    for (name, content) in files {
        let path = here.join(name);
        // Written beside and renamed: the container never reads half a file.
        let partial = here.join(format!(".{name}.partial"));
        let io = |source| EngineError::Io {
            action: "write a file for the test container at".into(),
            path: path.clone(),
            source,
        };
        std::fs::write(&partial, content).map_err(io)?;
        std::fs::rename(&partial, &path).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_a_registered_folder_are_found_here_and_nothing_else() {
        let folders = HostFolders::default();
        let here = PathBuf::from("/host/g1/plugin");
        folders.register("c1", &[("/tmp/compose-shard-plugin".into(), here.clone())]);
        assert_eq!(
            folders.local("c1", "/tmp/compose-shard-plugin/collected.txt"),
            Some(here.join("collected.txt"))
        );
        assert_eq!(
            folders.local("c1", "/tmp/compose-shard-plugin/"),
            Some(here)
        );
        // A sibling whose name starts the same, a climb out, another container: not ours.
        assert_eq!(folders.local("c1", "/tmp/compose-shard-plugin2/x"), None);
        assert_eq!(
            folders.local("c1", "/tmp/compose-shard-plugin/../etc"),
            None
        );
        assert_eq!(folders.local("c2", "/tmp/compose-shard-plugin/x"), None);
    }

    #[test]
    fn a_folder_is_copied_with_its_files_and_folders_but_no_links() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(from.path().join("junit.xml"), "<testsuites/>").unwrap();
        std::fs::create_dir(from.path().join("cov")).unwrap();
        std::fs::write(from.path().join("cov/coverage.xml"), "<coverage/>").unwrap();
        let secret = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(secret.path(), from.path().join("link.xml")).unwrap();
        let target = to.path().join("g1");
        let copied = copy_folder(from.path(), &target).unwrap();
        assert_eq!(
            copied,
            [
                PathBuf::from("cov/coverage.xml"),
                PathBuf::from("junit.xml")
            ]
        );
        assert_eq!(
            std::fs::read_to_string(target.join("cov/coverage.xml")).unwrap(),
            "<coverage/>"
        );
        assert!(!target.join("link.xml").exists());
        let missing = copy_folder(&from.path().join("nope"), &target).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }

    #[test]
    fn files_are_written_in_order_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let folders = HostFolders::default();
        folders.register("c", &[("/p".into(), dir.path().to_path_buf())]);
        let files: [(&str, &[u8]); 2] = [("unit-1.txt", b"a\nb\n"), ("unit-1.ready", b"")];
        folders.write("c", "/p", &files).unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("unit-1.txt")).unwrap(),
            "a\nb\n"
        );
        assert!(dir.path().join("unit-1.ready").exists());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".partial"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(folders.write("c", "/elsewhere", &files).is_none());
    }
}
