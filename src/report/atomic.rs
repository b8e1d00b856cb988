//! Writing output files so that a reader never sees a half-written one: a temporary file in
//! the same directory (so the rename cannot cross file systems), then a rename over the target.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::error::ReportError;

/// Write via temp file in the same dir + rename; on error nothing is left and the old file is
/// untouched.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let mut staged = StagedFile::create(path)?;
    write(staged.writer())?;
    staged.commit()
}

/// An output file being written beside its target, which [`StagedFile::commit`] renames over
/// it. Dropped without a commit, it deletes itself. Lets a command prepare several outputs
/// and replace them only once all of them succeeded.
pub struct StagedFile {
    path: PathBuf,
    writer: BufWriter<NamedTempFile>,
}

impl StagedFile {
    /// Create the temporary file in `path`'s directory.
    pub fn create(path: &Path) -> Result<StagedFile, ReportError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".compose-shard-")
            .suffix(".tmp")
            .permissions(output_permissions(path))
            .tempfile_in(dir)
            .map_err(|e| io_error(path, "create a temporary file beside", e))?;
        Ok(StagedFile {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 16, temp),
        })
    }

    /// Where to write the content.
    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.writer
    }

    /// Flush and rename over the target. No fsync: the rename already guarantees readers see
    /// the old file or the whole new one if the process dies; surviving a power cut would
    /// cost a disk flush per report, which CI machines that are thrown away do not need.
    pub fn commit(self) -> Result<(), ReportError> {
        let path = self.path;
        let temp = self
            .writer
            .into_inner()
            .map_err(|e| io_error(&path, "write", e.into_error()))?;
        temp.persist(&path)
            .map_err(|e| io_error(&path, "replace", e.error))?;
        Ok(())
    }
}

/// The mode a new output gets: the replaced file's, else what any new file gets (0644 under
/// the usual umask). Temporary files default to 0600, which would make merged reports
/// unreadable to a CI step running as another user.
fn output_permissions(path: &Path) -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) => meta.permissions(),
        Err(_) => std::fs::Permissions::from_mode(0o644),
    }
}

fn io_error(path: &Path, action: &'static str, source: std::io::Error) -> ReportError {
    ReportError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.xml");
        std::fs::write(&target, "old").unwrap();
        let err = write_atomically(&target, |w| {
            w.write_all(b"partial").unwrap();
            Err(ReportError::Incompatible("boom".into()))
        })
        .unwrap_err();
        assert!(err.to_string().contains("boom"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn successful_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.xml");
        std::fs::write(&target, "old").unwrap();
        write_atomically(&target, |w| {
            w.write_all(b"new").map_err(|source| ReportError::Output {
                what: "test",
                source,
            })
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn new_outputs_are_readable_by_others_and_replaced_ones_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.xml");
        write_atomically(&fresh, |_| Ok(())).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o044,
            0o044,
            "new output mode {mode:o} is not world-readable"
        );

        let kept = dir.path().join("kept.xml");
        std::fs::write(&kept, "old").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&kept, |_| Ok(())).unwrap();
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}
