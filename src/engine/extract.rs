//! Safe extraction of tar streams that come from containers.
//!
//! A container's filesystem is untrusted: an archive may hold absolute paths, `..`
//! components, links pointing outside the target, or a symlink followed by a file "inside" it.
//! Every entry is checked lexically, and no write ever goes through a link, so nothing can
//! land outside the target folder. Unsafe entries fail the whole extraction rather than being
//! skipped silently: a result folder with holes would be misleading.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::error::EngineError;

/// Why extraction failed.
#[derive(Debug)]
pub enum ExtractError {
    /// An entry would escape the target or is of a refused kind.
    Unsafe {
        /// The entry's path in the archive.
        entry: String,
        /// Why.
        reason: String,
    },
    /// Reading the archive or writing a file failed.
    Io {
        /// What was being done.
        action: String,
        /// Where.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl ExtractError {
    pub(crate) fn into_engine_error(self, container: &str) -> EngineError {
        match self {
            ExtractError::Unsafe { entry, reason } => EngineError::UnsafeArchive {
                container: container.to_string(),
                entry,
                reason,
            },
            ExtractError::Io {
                action,
                path,
                source,
            } => EngineError::Io {
                action,
                path,
                source,
            },
        }
    }
}

/// Normalise an archive path into a relative path without `.`/`..`, after dropping the first
/// `strip` components. `None` means "nothing left" (the stripped top folder itself).
fn safe_relative(raw: &Path, strip: usize) -> Result<Option<PathBuf>, String> {
    let mut parts = Vec::new();
    for component in raw.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err("the path contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("the path is absolute".into()),
        }
    }
    if parts.len() <= strip {
        return Ok(None);
    }
    Ok(Some(parts[strip..].iter().collect()))
}

/// Whether a symlink at `link` (relative to the target) pointing to `dest` stays inside.
fn link_stays_inside(link: &Path, dest: &Path) -> bool {
    if dest.is_absolute() {
        return false;
    }
    let mut depth: Vec<_> = link
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for component in dest.components() {
        match component {
            Component::Normal(_) => depth.push(component),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Fail if any existing ancestor of `rel` under `target` is a symlink: writing through it
/// could land anywhere.
fn check_no_link_on_the_way(target: &Path, rel: &Path, entry: &str) -> Result<(), ExtractError> {
    let mut path = target.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for component in &parents[..parents.len().saturating_sub(1)] {
        path.push(component);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.file_type().is_symlink() {
                return Err(ExtractError::Unsafe {
                    entry: entry.to_string(),
                    reason: format!("it would be written through the link {}", path.display()),
                });
            }
        }
    }
    Ok(())
}

/// Whether a folder's archive (as the engine's archive API returns it: the folder's own
/// entry first) holds anything inside the folder. An unreadable archive counts as content:
/// a caller that would hide that content must not guess that there is none.
pub fn archive_has_content(archive: impl Read) -> bool {
    let mut tar = tar::Archive::new(archive);
    let Ok(entries) = tar.entries() else {
        return true;
    };
    for entry in entries {
        let Ok(entry) = entry else { return true };
        let Ok(path) = entry.path() else { return true };
        let depth = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        if depth > 1 {
            return true;
        }
    }
    false
}

/// Extract `archive` into `target` (created if missing), dropping the first `strip` path
/// components of every entry. Returns the files written, relative to `target`.
pub fn extract_tar(
    archive: impl Read,
    target: &Path,
    strip: usize,
) -> Result<Vec<PathBuf>, ExtractError> {
    let io = |action: &str, path: &Path| {
        let action = action.to_string();
        let path = path.to_path_buf();
        move |source| ExtractError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(target).map_err(io("create directory", target))?;
    let mut archive = tar::Archive::new(archive);
    let mut written = Vec::new();
    for entry in archive
        .entries()
        .map_err(io("read the archive for", target))?
    {
        let mut entry = entry.map_err(io("read the archive for", target))?;
        let raw = entry
            .path()
            .map_err(io("read an entry name for", target))?
            .into_owned();
        let name = raw.display().to_string();
        let unsafe_entry = |reason: String| ExtractError::Unsafe {
            entry: name.clone(),
            reason,
        };
        let Some(rel) = safe_relative(&raw, strip).map_err(unsafe_entry)? else {
            continue;
        };
        check_no_link_on_the_way(target, &rel, &name)?;
        let dest = target.join(&rel);
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&dest).map_err(io("create directory", &dest))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io("create directory", parent))?;
                }
                if std::fs::symlink_metadata(&dest).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(unsafe_entry("it would overwrite a link".into()));
                }
                let mut file = std::fs::File::create(&dest).map_err(io("create", &dest))?;
                std::io::copy(&mut entry, &mut file).map_err(io("write", &dest))?;
                written.push(rel);
            }
            tar::EntryType::Symlink => {
                let link_to = entry
                    .link_name()
                    .map_err(io("read a link target in", target))?
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                if !link_stays_inside(&rel, &link_to) {
                    return Err(unsafe_entry(format!(
                        "it is a link to {} outside the target folder",
                        link_to.display()
                    )));
                }
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io("create directory", parent))?;
                }
                #[cfg(unix)]
                std::os::unix::fs::symlink(&link_to, &dest).map_err(io("create link", &dest))?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => {
                return Err(unsafe_entry(format!(
                    "entries of type {other:?} (hard links, devices, fifos) are not extracted"
                )))
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h
    }

    /// Write a raw name into a header, bypassing the tar crate's own path sanitising, exactly
    /// as a hostile archive would.
    fn raw_file(builder: &mut tar::Builder<Vec<u8>>, name: &str, content: &[u8]) {
        let mut h = header(tar::EntryType::Regular, content.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        builder.append(&h, content).unwrap();
    }

    fn raw_symlink(builder: &mut tar::Builder<Vec<u8>>, name: &str, to: &str) {
        let mut h = header(tar::EntryType::Symlink, 0);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..to.len()].copy_from_slice(to.as_bytes());
        h.set_cksum();
        builder.append(&h, std::io::empty()).unwrap();
    }

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn nothing_outside(root: &Path) {
        let outside: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "target")
            .collect();
        assert!(outside.is_empty(), "files escaped: {outside:?}");
    }

    #[test]
    fn extracts_files_and_strips_the_top_folder() {
        let tar = archive(|b| {
            raw_file(b, "compose-shard/junit.xml", b"<testsuites/>");
            raw_file(b, "compose-shard/sub/coverage.xml", b"<coverage/>");
        });
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("target");
        let files = extract_tar(&tar[..], &target, 1).unwrap();
        assert_eq!(
            files,
            vec![
                PathBuf::from("junit.xml"),
                PathBuf::from("sub/coverage.xml")
            ]
        );
        assert_eq!(
            std::fs::read_to_string(target.join("junit.xml")).unwrap(),
            "<testsuites/>"
        );
    }

    #[test]
    fn rejects_parent_components() {
        let tar = archive(|b| raw_file(b, "top/../../evil", b"x"));
        let root = tempfile::tempdir().unwrap();
        let err = extract_tar(&tar[..], &root.path().join("target"), 1).unwrap_err();
        assert!(matches!(err, ExtractError::Unsafe { ref reason, .. } if reason.contains("..")));
        nothing_outside(root.path());
    }

    #[test]
    fn rejects_absolute_paths() {
        let root = tempfile::tempdir().unwrap();
        let evil = root.path().join("evil");
        let tar = archive(|b| raw_file(b, evil.to_str().unwrap(), b"x"));
        let err = extract_tar(&tar[..], &root.path().join("target"), 0).unwrap_err();
        assert!(
            matches!(err, ExtractError::Unsafe { ref reason, .. } if reason.contains("absolute"))
        );
        nothing_outside(root.path());
    }

    #[test]
    fn rejects_links_that_escape() {
        let root = tempfile::tempdir().unwrap();
        for to in ["../../etc", "/etc/passwd", "a/../../.."] {
            let tar = archive(|b| raw_symlink(b, "top/link", to));
            let err = extract_tar(&tar[..], &root.path().join("target"), 1).unwrap_err();
            assert!(
                matches!(err, ExtractError::Unsafe { ref reason, .. } if reason.contains("outside")),
                "{to}: {err:?}"
            );
        }
        nothing_outside(root.path());
    }

    #[test]
    fn refuses_to_write_through_a_link_even_an_inside_one() {
        // An inside link to a folder, then a file under that link name: the write would follow
        // the link, so it is refused regardless of where the link points.
        let tar = archive(|b| {
            raw_symlink(b, "top/dir", ".");
            raw_file(b, "top/dir/file", b"x");
        });
        let root = tempfile::tempdir().unwrap();
        let err = extract_tar(&tar[..], &root.path().join("target"), 1).unwrap_err();
        assert!(
            matches!(err, ExtractError::Unsafe { ref reason, .. } if reason.contains("through the link"))
        );
    }

    #[test]
    fn refuses_to_overwrite_a_link() {
        let tar = archive(|b| {
            raw_symlink(b, "top/f", "g");
            raw_file(b, "top/f", b"x");
        });
        let root = tempfile::tempdir().unwrap();
        let err = extract_tar(&tar[..], &root.path().join("target"), 1).unwrap_err();
        assert!(
            matches!(err, ExtractError::Unsafe { ref reason, .. } if reason.contains("overwrite"))
        );
    }

    #[test]
    fn rejects_hard_links_and_devices() {
        let tar = archive(|b| {
            let mut h = header(tar::EntryType::Link, 0);
            h.set_path("top/hard").unwrap();
            h.set_link_name("/etc/shadow").unwrap();
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
        });
        let root = tempfile::tempdir().unwrap();
        let err = extract_tar(&tar[..], &root.path().join("target"), 1).unwrap_err();
        assert!(
            matches!(err, ExtractError::Unsafe { ref reason, .. } if reason.contains("hard links"))
        );
        nothing_outside(root.path());
    }

    #[test]
    fn a_folder_archive_has_content_only_past_its_own_entry() {
        let folder = |files: &[&str]| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o700);
            h.set_size(0);
            b.append_data(&mut h, "data/", std::io::empty()).unwrap();
            for f in files {
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o600);
                h.set_size(1);
                b.append_data(&mut h, format!("data/{f}"), &b"x"[..])
                    .unwrap();
            }
            b.into_inner().unwrap()
        };
        assert!(!super::archive_has_content(&folder(&[])[..]));
        assert!(super::archive_has_content(&folder(&["PG_VERSION"])[..]));
    }
}
