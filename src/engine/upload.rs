//! Copying a folder of this machine into a created container (`--copy-source`): the files a
//! bind mount of the project tree would have shown, for engines that cannot see this machine's
//! files.
//!
//! What is sent is what `docker build` would have in its context under that folder: the
//! project's `.dockerignore` (at the project root, matched against project-relative paths, by
//! the same walk and rules as the build context, `build_context.rs` and `dockerignore.rs`)
//! decides. Unlike a build, `.dockerignore` and the Dockerfile are not sent when they are
//! excluded: the docker CLI sends them only so the engine can read them, and the engine leaves
//! them out of the image again. A single file bound by name is always sent: naming it is
//! asking for it (`./.env:/app/.env` with `.env` in `.dockerignore` is common).
//!
//! Entries keep their mode, numeric owner and modification time, as a bind mount shows them;
//! symbolic links stay links (with their target as written, even when it points outside the
//! tree, as a bind mount would show it). Sockets and other special files are skipped.
//!
//! The archive is streamed: a blocking thread walks the tree and writes the tar into a
//! bounded channel of 64 KiB chunks that is the request body, so at most a few chunks are in
//! memory whatever the tree's size.

use std::io::Write;
use std::path::{Path, PathBuf};

use bollard::query_parameters::UploadToContainerOptionsBuilder;

use super::build_context::{excluded_inside, read_ignore_rules, walk};
use super::client::DockerEngine;
use super::error::EngineError;

/// Size of one chunk of the streamed archive.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the walking thread and the request.
const CHUNKS_IN_FLIGHT: usize = 8;

/// What one upload sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadSummary {
    /// Regular files.
    pub files: usize,
    /// Folders (the target folder included).
    pub dirs: usize,
    /// Symbolic links.
    pub symlinks: usize,
    /// Bytes of file content.
    pub bytes: u64,
}

/// One folder or file to copy into a container.
#[derive(Debug, Clone, Copy)]
pub struct SourceUpload<'a> {
    /// The project directory: its `.dockerignore` applies, to paths relative to it.
    pub project_dir: &'a Path,
    /// What to copy: the project directory, a folder or a file inside it.
    pub source: &'a Path,
    /// Absolute path in the container (`/code`).
    pub target: &'a str,
    /// Folders never sent (the run's own results folder).
    pub excluded: &'a [PathBuf],
    /// When `source` does not exist, create an empty folder at `target` (owned like the
    /// project directory) instead of failing: what Compose's bind of a missing host path
    /// gives the container.
    pub create_missing: bool,
}

/// The error the chunk writer gives when the request stopped reading: the request's own
/// error says why.
const STREAM_CLOSED: &str = "the upload request stopped reading the archive";

/// An `io::Write` that hands the archive to the request body in chunks.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, STREAM_CLOSED))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// `source` relative to `project_dir` (`/`-separated, "" for the project directory itself).
/// Lexically first (compose resolves bind sources lexically), else through symbolic links.
fn relative_source(project_dir: &Path, source: &Path) -> Option<String> {
    let rel = match source.strip_prefix(project_dir) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => {
            let canonical = |p: &Path| std::fs::canonicalize(p).ok();
            canonical(source)?
                .strip_prefix(canonical(project_dir)?)
                .ok()?
                .to_path_buf()
        }
    };
    Some(rel.to_string_lossy().replace('\\', "/"))
}

/// The archive path of `rel` (project-relative, under `source_rel`) at `target`.
fn archive_path(target: &str, source_rel: &str, rel: &str) -> String {
    let below = if source_rel.is_empty() {
        rel
    } else {
        rel.strip_prefix(source_rel)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(rel)
    };
    let target = target.trim_matches('/');
    match (target.is_empty(), below.is_empty()) {
        (true, _) => below.to_string(),
        (false, true) => target.to_string(),
        (false, false) => format!("{target}/{below}"),
    }
}

/// Write one filesystem entry into the archive; what it was, for the summary.
fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    full: &Path,
    name: &str,
    summary: &mut UploadSummary,
) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(full)?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    let kind = meta.file_type();
    if kind.is_dir() {
        header.set_size(0);
        builder.append_data(&mut header, format!("{name}/"), std::io::empty())?;
        summary.dirs += 1;
    } else if kind.is_symlink() {
        let to = std::fs::read_link(full)?;
        builder.append_link(&mut header, name, &to)?;
        summary.symlinks += 1;
    } else if kind.is_file() {
        let file = std::fs::File::open(full)?;
        // The size of the open file, so a file that changed since the walk is sent whole.
        let len = file.metadata()?.len();
        header.set_size(len);
        builder.append_data(&mut header, name, std::io::Read::take(file, len))?;
        summary.files += 1;
        summary.bytes += len;
    }
    Ok(())
}

/// Walk `upload.source` and write the archive into `out`. Runs on a blocking thread.
fn write_archive<W: Write>(
    upload: &SourceUpload<'_>,
    out: W,
) -> Result<(UploadSummary, W), EngineError> {
    let io = super::error::io_error;
    let source_rel =
        relative_source(upload.project_dir, upload.source).ok_or_else(|| EngineError::Io {
            action: format!(
                "upload (it is not inside the project directory {})",
                upload.project_dir.display()
            ),
            path: upload.source.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "outside the project"),
        })?;
    let meta = match std::fs::metadata(upload.source) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && upload.create_missing => {
            return empty_folder_archive(upload, out);
        }
        other => other.map_err(io("read", upload.source))?,
    };
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut summary = UploadSummary::default();
    let target = upload.target;
    if !meta.is_dir() {
        append_entry(
            &mut builder,
            upload.source,
            target.trim_start_matches('/'),
            &mut summary,
        )
        .map_err(io("pack", upload.source))?;
    } else {
        let rules = read_ignore_rules(upload.project_dir)?;
        let skip = excluded_inside(upload.project_dir, upload.excluded);
        let mut paths = Vec::new();
        walk(
            upload.project_dir,
            &source_rel,
            None,
            &rules,
            &skip,
            &mut paths,
        )
        .map_err(io("read", upload.source))?;
        let top = archive_path(target, &source_rel, &source_rel);
        if !top.is_empty() {
            append_entry(&mut builder, upload.source, &top, &mut summary)
                .map_err(io("pack", upload.source))?;
        }
        for rel in paths {
            let full = upload.project_dir.join(&rel);
            let name = archive_path(target, &source_rel, &rel);
            append_entry(&mut builder, &full, &name, &mut summary).map_err(io("pack", &full))?;
        }
    }
    let out = builder.into_inner().map_err(io("pack", upload.source))?;
    Ok((summary, out))
}

/// The archive of an empty folder at `upload.target`, owned like the project directory.
fn empty_folder_archive<W: Write>(
    upload: &SourceUpload<'_>,
    out: W,
) -> Result<(UploadSummary, W), EngineError> {
    use std::os::unix::fs::MetadataExt;
    let io = super::error::io_error;
    let owner = std::fs::metadata(upload.project_dir).map_err(io("read", upload.project_dir))?;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_uid(u64::from(owner.uid()));
    header.set_gid(u64::from(owner.gid()));
    header.set_size(0);
    let mut builder = tar::Builder::new(out);
    let name = format!("{}/", upload.target.trim_matches('/'));
    builder
        .append_data(&mut header, name, std::io::empty())
        .map_err(io("pack", upload.source))?;
    let out = builder.into_inner().map_err(io("pack", upload.source))?;
    let summary = UploadSummary {
        dirs: 1,
        ..UploadSummary::default()
    };
    Ok((summary, out))
}

impl DockerEngine {
    /// Copy a folder (or file) of this machine into a created or running container at
    /// `upload.target`, honouring the project's `.dockerignore` (see the module docs).
    pub async fn upload_tree(
        &self,
        container: &str,
        upload: &SourceUpload<'_>,
    ) -> Result<UploadSummary, EngineError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let owned = (
            upload.project_dir.to_path_buf(),
            upload.source.to_path_buf(),
            upload.target.to_string(),
            upload.excluded.to_vec(),
            upload.create_missing,
        );
        let producer = tokio::task::spawn_blocking(move || {
            let (project_dir, source, target, excluded, create_missing) = owned;
            let upload = SourceUpload {
                project_dir: &project_dir,
                source: &source,
                target: &target,
                excluded: &excluded,
                create_missing,
            };
            let writer = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let result = write_archive(&upload, writer).and_then(|(summary, mut writer)| {
                writer.flush().map_err(|source| EngineError::Io {
                    action: "send the archive of".into(),
                    path: upload.source.to_path_buf(),
                    source,
                })?;
                Ok(summary)
            });
            if let Err(e) = &result {
                // End the body with an error so the engine does not take a cut archive as
                // complete.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
            result
        });
        let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
            .map(|item: Result<Vec<u8>, std::io::Error>| item.map(Into::into));
        let what = format!(
            "copy {} into {} of container {container}",
            upload.source.display(),
            upload.target
        );
        let sent = self
            .docker
            .upload_to_container(
                container,
                Some(UploadToContainerOptionsBuilder::new().path("/").build()),
                bollard::body_try_stream(body),
            )
            .await;
        let produced = producer.await.map_err(|e| EngineError::Io {
            action: "pack (the packing thread failed)".into(),
            path: upload.source.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        match (produced, sent) {
            // A packing error names the file; the request then failed only because of it.
            (Err(e), _) if !is_stream_closed(&e) => Err(e),
            (_, Err(e)) => Err(self.api_error(what)(e)),
            (Err(e), Ok(())) => Err(e),
            (Ok(summary), Ok(())) => Ok(summary),
        }
    }
}

fn is_stream_closed(err: &EngineError) -> bool {
    matches!(err, EngineError::Io { source, .. } if source.to_string() == STREAM_CLOSED)
}

use futures::StreamExt as _;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn archive_paths_put_the_source_at_the_target() {
        assert_eq!(archive_path("/code", "", "app/x.py"), "code/app/x.py");
        assert_eq!(archive_path("/code", "", ""), "code");
        assert_eq!(archive_path("/app/src", "src", "src"), "app/src");
        assert_eq!(
            archive_path("/app/src", "src", "src/m/x.py"),
            "app/src/m/x.py"
        );
        assert_eq!(archive_path("/", "", "x.py"), "x.py");
    }

    /// The entries of an archive: (path, kind, mode, link target).
    fn entries(archive: &[u8]) -> Vec<(String, char, u32, String)> {
        tar::Archive::new(archive)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let kind = match e.header().entry_type() {
                    tar::EntryType::Directory => 'd',
                    tar::EntryType::Symlink => 'l',
                    _ => 'f',
                };
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default();
                (
                    e.path().unwrap().display().to_string(),
                    kind,
                    e.header().mode().unwrap() & 0o7777,
                    link,
                )
            })
            .collect()
    }

    // Over 80 lines: one fixture tree is packed as the project, a sub-folder, a single file
    // and an outside path; the cases share it rather than building it four times.
    #[test]
    fn archive_honours_dockerignore_keeps_modes_and_links_and_skips_results() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join(".dockerignore"),
            "*.log\n.dockerignore\nsrc/cache\n!src/cache/keep.txt\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("src/cache")).unwrap();
        std::fs::create_dir_all(root.join("results")).unwrap();
        std::fs::write(root.join("results/junit.xml"), "x").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        std::fs::write(root.join("debug.log"), "noise").unwrap();
        std::fs::write(root.join("src/app.py"), "print(1)\n").unwrap();
        std::fs::write(root.join("src/cache/big.bin"), "zz").unwrap();
        std::fs::write(root.join("src/cache/keep.txt"), "k").unwrap();
        std::os::unix::fs::symlink("app.py", root.join("src/link.py")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("abs-link")).unwrap();

        let upload = SourceUpload {
            project_dir: root,
            source: root,
            target: "/code",
            excluded: &[root.join("results")],
            create_missing: false,
        };
        let (summary, archive) = write_archive(&upload, Vec::new()).unwrap();
        let got = entries(&archive);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "code/",
                "code/abs-link",
                "code/run.sh",
                "code/src/",
                "code/src/app.py",
                "code/src/cache/keep.txt",
                "code/src/link.py"
            ]
        );
        let find = |n: &str| got.iter().find(|e| e.0 == n).unwrap().clone();
        assert_eq!(find("code/run.sh").2, 0o750);
        assert_eq!(find("code/src/link.py").1, 'l');
        assert_eq!(find("code/src/link.py").3, "app.py");
        assert_eq!(find("code/abs-link").3, "/etc/hostname");
        assert_eq!(summary.files, 3);
        assert_eq!(summary.symlinks, 2);
        assert_eq!(summary.dirs, 2);
        assert_eq!(
            summary.bytes,
            ("#!/bin/sh\n".len() + "print(1)\n".len() + 1) as u64
        );

        // A bound sub-folder: the root's rules, matched against project-relative paths.
        let sub = SourceUpload {
            source: &root.join("src"),
            target: "/app/src",
            ..upload
        };
        let (_, archive) = write_archive(&sub, Vec::new()).unwrap();
        let names: Vec<String> = entries(&archive).into_iter().map(|e| e.0).collect();
        assert_eq!(
            names,
            [
                "app/src/",
                "app/src/app.py",
                "app/src/cache/keep.txt",
                "app/src/link.py"
            ]
        );

        // A file bound by name is sent even when .dockerignore excludes it.
        let file = SourceUpload {
            source: &root.join("debug.log"),
            target: "/var/log/debug.log",
            ..upload
        };
        let (summary, archive) = write_archive(&file, Vec::new()).unwrap();
        assert_eq!(entries(&archive)[0].0, "var/log/debug.log");
        assert_eq!(summary.files, 1);

        // Outside the project: refused, naming the path.
        let outside = SourceUpload {
            source: Path::new("/etc"),
            ..upload
        };
        let err = write_archive(&outside, Vec::new()).unwrap_err().to_string();
        assert!(
            err.contains("/etc") && err.contains("not inside the project"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_source_is_an_empty_folder_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("backend/htmlcov");
        let upload = SourceUpload {
            project_dir: dir.path(),
            source: &missing,
            target: "/app/backend/htmlcov",
            excluded: &[],
            create_missing: true,
        };
        let (summary, archive) = write_archive(&upload, Vec::new()).unwrap();
        assert_eq!(
            entries(&archive),
            [(
                "app/backend/htmlcov/".to_string(),
                'd',
                0o755,
                String::new()
            )]
        );
        assert_eq!(summary.dirs, 1);
        let refused = SourceUpload {
            create_missing: false,
            ..upload
        };
        let err = write_archive(&refused, Vec::new()).unwrap_err().to_string();
        assert!(err.contains("htmlcov"), "{err}");
    }

    #[test]
    fn chunk_writer_reports_a_closed_stream() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let mut w = ChunkWriter {
            tx,
            buf: Vec::new(),
        };
        w.write_all(&[0u8; CHUNK]).unwrap_err();
    }
}
