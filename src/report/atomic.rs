//! Writing output files so that a reader never sees a half-written one: a temporary file in
//! the same directory (so the rename cannot cross file systems), then a rename over the target.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::error::ReportError;

/// Write via temp file in the same dir + rename; on error nothing is left and the old file is
/// untouched.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io = |action, source| ReportError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    // Dropping the NamedTempFile on any error path deletes it.
    let temp = tempfile::Builder::new()
        .prefix(".compose-shard-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io("create a temporary file beside", e))?;
    let mut writer = BufWriter::new(temp);
    write(&mut writer)?;
    writer.flush().map_err(|e| io("write", e))?;
    let temp = writer
        .into_inner()
        .map_err(|e| io("write", e.into_error()))?;
    temp.as_file().sync_all().map_err(|e| io("flush", e))?;
    temp.persist(path).map_err(|e| io("replace", e.error))?;
    Ok(())
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
}
