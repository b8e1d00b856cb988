//! Writing output files so that a reader never sees a half-written one.
//!
//! A regular file (or a path that does not exist yet) is replaced atomically: a temporary file
//! in the same directory (so the rename cannot cross file systems), then a rename over the
//! target, keeping the replaced file's mode. Anything else the user points an output at (a
//! device such as `/dev/stdout` or `/dev/null`, a FIFO, a symlink to a file elsewhere) is
//! *written through*, as every Unix tool does: renaming over it would replace the device, pipe
//! or link with a regular file. The content is then spooled to an anonymous temporary file and
//! copied into the target only at [`StagedFile::commit`], so a failed command writes nothing
//! there either.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::error::ReportError;

/// Write via temp file in the same dir + rename (or through, for a non-regular target); on
/// error nothing is written and the old file is untouched.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let mut staged = StagedFile::create(path)?;
    write(staged.writer())?;
    staged.commit()
}

/// An output file being written beside its target, which [`StagedFile::commit`] renames over
/// it (or copies into it, for a target that is not a regular file). Dropped without a commit,
/// it deletes itself. Lets a command prepare several outputs and replace them only once all of
/// them succeeded.
pub struct StagedFile {
    path: PathBuf,
    staging: Staging,
}

/// Where the content waits until the commit.
enum Staging {
    /// A named temporary file beside a regular (or new) target, renamed over it.
    Replace(BufWriter<NamedTempFile>),
    /// An anonymous temporary file, copied into a device, FIFO or symlink target.
    WriteThrough(BufWriter<File>),
}

/// Write a whole text file with [`write_atomically`]: a reader never sees half of it.
pub fn write_text(path: &Path, text: &str) -> Result<(), ReportError> {
    write_atomically(path, |w| {
        w.write_all(text.as_bytes())
            .map_err(|source| ReportError::Io {
                action: "write",
                path: path.to_path_buf(),
                source,
            })
    })
}

/// Whether `path` must be written through rather than replaced: it exists and is a symlink
/// (even a dangling one) or anything but a regular file.
pub fn is_write_through(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type().is_symlink() || !meta.is_file(),
        Err(_) => false,
    }
}

impl StagedFile {
    /// Create the temporary file: in `path`'s directory for a regular (or new) target, in the
    /// system's temporary directory for a target that is written through.
    pub fn create(path: &Path) -> Result<StagedFile, ReportError> {
        if is_write_through(path) {
            let spool = tempfile::tempfile()
                .map_err(|e| io_error(path, "create a temporary file to stage", e))?;
            return Ok(StagedFile {
                path: path.to_path_buf(),
                staging: Staging::WriteThrough(BufWriter::with_capacity(1 << 16, spool)),
            });
        }
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
            staging: Staging::Replace(BufWriter::with_capacity(1 << 16, temp)),
        })
    }

    /// Where to write the content.
    pub fn writer(&mut self) -> &mut dyn Write {
        match &mut self.staging {
            Staging::Replace(w) => w,
            Staging::WriteThrough(w) => w,
        }
    }

    /// Flush and rename over the target, or copy into it. No fsync: the rename already
    /// guarantees readers see the old file or the whole new one if the process dies; surviving
    /// a power cut would cost a disk flush per report, which CI machines that are thrown away
    /// do not need.
    pub fn commit(self) -> Result<(), ReportError> {
        let path = self.path;
        match self.staging {
            Staging::Replace(writer) => {
                let temp = writer
                    .into_inner()
                    .map_err(|e| io_error(&path, "write", e.into_error()))?;
                temp.persist(&path)
                    .map_err(|e| io_error(&path, "replace", e.error))?;
            }
            Staging::WriteThrough(writer) => {
                let mut spool = writer
                    .into_inner()
                    .map_err(|e| io_error(&path, "write", e.into_error()))?;
                spool
                    .rewind()
                    .map_err(|e| io_error(&path, "read back the staged output for", e))?;
                let mut target = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(|e| io_error(&path, "open", e))?;
                std::io::copy(&mut spool, &mut target).map_err(|e| io_error(&path, "write", e))?;
                target.flush().map_err(|e| io_error(&path, "write", e))?;
            }
        }
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

    #[test]
    fn symlink_output_is_written_through_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("elsewhere.xml");
        std::fs::write(&real, "old content that is longer").unwrap();
        let link = dir.path().join("link.xml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomically(&link, |w| {
            w.write_all(b"new").unwrap();
            Ok(())
        })
        .unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn failed_write_through_leaves_the_link_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("elsewhere.xml");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.xml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomically(&link, |w| {
            w.write_all(b"partial").unwrap();
            Err(ReportError::Incompatible("boom".into()))
        })
        .unwrap_err();
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "old");
    }

    #[test]
    fn dev_null_output_stays_a_device() {
        use std::os::unix::fs::FileTypeExt;
        write_atomically(Path::new("/dev/null"), |w| {
            w.write_all(b"x").unwrap();
            Ok(())
        })
        .unwrap();
        let meta = std::fs::symlink_metadata("/dev/null").unwrap();
        assert!(meta.file_type().is_char_device());
    }
}
