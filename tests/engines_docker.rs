//! Several engines, against real Docker: the engine at the default socket and a second,
//! independent dockerd on the same machine (`ci/second-engine start`, idempotent; `ci/test`
//! starts it before the tests and stops it at the end).
//!
//! - `info()` of both engines, and the second reached over TLS (docker's `DOCKER_TLS_VERIFY`
//!   conventions, and a Docker context), with wrong TLS set-ups refused naming the engine;
//! - a tree with a `.dockerignore` uploaded into a created container on each engine, read
//!   back from inside the started container (names, modes, links, content of a file bigger
//!   than many stream chunks);
//! - the visibility check: true for the checkout on both engines; false for paths the engine
//!   cannot see. Both engines run on this host, so every host path is visible to them; a path
//!   they cannot see is made with a private mount namespace: a thread of this test unshares
//!   its mount namespace and mounts a tmpfs, which exists only for that thread, as the
//!   checkout of a CI runner in a container exists only inside the runner. The check then
//!   runs from that thread, so our marker file is written where the engine cannot look.
//!   What this proves: the answer comes from what the engine actually mounts, not from the
//!   path; it does not exercise a remote host.
//! - `clean --docker-host A --docker-host B` removing labelled leftovers on both, and carrying
//!   on past an engine that does not answer.
//!
//! Like the other end-to-end tests they fail, never skip, when Docker or the images are
//! missing. They need root (the second engine; the mount namespace).

#[path = "e2e_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use compose_shard::engine::{
    DockerEngine, EngineAddress, EngineEnv, ExecRequest, SourceUpload, Transport,
};
use support::*;

const PYTHON_IMAGE: &str = "compose-shard-fixtures/python:3.11";
const FIRST: &str = "unix:///var/run/docker.sock";

/// The second engine: its socket, and its TLS endpoint with the client's certificates.
struct SecondEngine {
    socket: String,
    tls_host: String,
    cert_path: PathBuf,
}

/// The second engine, started once per test process (a no-op when already running).
fn second() -> &'static SecondEngine {
    static ENGINE: OnceLock<SecondEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        require_docker_and_images();
        let script = crate_root().join("ci/second-engine");
        let out = Command::new(&script).arg("start").output().unwrap();
        assert!(
            out.status.success(),
            "ci/second-engine start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = Command::new(&script).arg("env").output().unwrap();
        let text = String::from_utf8_lossy(&env.stdout).into_owned();
        let var = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("no {name} in `ci/second-engine env`: {text}"))
                .to_string()
        };
        SecondEngine {
            socket: var("DOCKER_HOST2"),
            tls_host: var("DOCKER_TLS_HOST2"),
            cert_path: PathBuf::from(var("DOCKER_CERT_PATH2")),
        }
    })
}

/// The second engine's socket URL.
fn second_engine() -> &'static str {
    &second().socket
}

fn address(url: &str) -> EngineAddress {
    EngineAddress::resolve(url, "test", &EngineEnv::from_process()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `docker -H url ARGS`, which must succeed; its stdout.
fn docker(url: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("-H")
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker -H {url} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A name no other test (or test process) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[test]
fn info_reports_cpus_and_memory_of_both_engines() {
    let second = second_engine();
    runtime().block_on(async {
        let mut seen = Vec::new();
        for url in [FIRST, second] {
            let engine = DockerEngine::connect_to(&address(url)).await.unwrap();
            let info = engine.info().await.unwrap();
            assert_eq!(info.address, url);
            assert!(info.cpus >= 1, "{info:?}");
            assert!(info.memory_bytes > 256 * 1024 * 1024, "{info:?}");
            assert!(!info.server_version.is_empty(), "{info:?}");
            seen.push((info.cpus, info.memory_bytes));
        }
        // The same machine: both engines see the same CPUs and memory.
        assert_eq!(seen[0], seen[1]);

        let missing = address("unix:///nonexistent/compose-shard-engine.sock");
        let err = DockerEngine::connect_to(&missing)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unix:///nonexistent/compose-shard-engine.sock"),
            "the error names the engine: {err}"
        );
    });
}

/// A folder with docker's client-side TLS file names, each a copy of `from/<source>`.
fn cert_dir(from: &Path, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        std::fs::copy(from.join(source), dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn tls_by_docker_tls_verify_and_by_context_reaches_the_engine_and_a_wrong_setup_names_it() {
    let engine = second();
    let certs = &engine.cert_path;
    let tls_env = |cert_path: &Path| EngineEnv {
        tls_verify: true,
        cert_path: cert_path.to_path_buf(),
        ..EngineEnv::from_process()
    };
    runtime().block_on(async {
        let address = EngineAddress::parse_url(&engine.tls_host, "DOCKER_HOST", &tls_env(certs))
            .unwrap();
        assert!(
            matches!(address.transport(), Transport::Tls { files, .. } if files.client.is_some())
        );
        let connected = DockerEngine::connect_to(&address).await.unwrap();
        assert!(connected.info().await.unwrap().cpus >= 1);

        // A Docker context holding the same files, found by its name.
        let config = tempfile::tempdir().unwrap();
        let name = "cs-test-tls";
        let hash = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(name.as_bytes()))
        };
        let meta = config.path().join("contexts/meta").join(&hash);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{}","SkipTLSVerify":false}}}}}}"#,
                engine.tls_host
            ),
        )
        .unwrap();
        let tls = config.path().join("contexts/tls").join(&hash).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::copy(certs.join(f), tls.join(f)).unwrap();
        }
        let by_context = EngineEnv {
            config_dir: config.path().to_path_buf(),
            ..EngineEnv::from_process()
        };
        let address = EngineAddress::resolve(name, "--docker-host", &by_context).unwrap();
        let connected = DockerEngine::connect_to(&address).await.unwrap();
        assert_eq!(connected.endpoint(), format!("{} (context {name})", engine.tls_host));
        assert!(connected.info().await.unwrap().memory_bytes > 0);

        // A CA that did not sign the engine's certificate: refused, naming the engine.
        let wrong_ca = cert_dir(
            certs,
            &[("ca.pem", "cert.pem"), ("cert.pem", "cert.pem"), ("key.pem", "key.pem")],
        );
        let address =
            EngineAddress::parse_url(&engine.tls_host, "x", &tls_env(wrong_ca.path())).unwrap();
        let err = DockerEngine::connect_to(&address).await.unwrap_err().to_string();
        assert!(err.contains(&engine.tls_host), "{err}");
        assert!(err.contains("TLS handshake failed"), "{err}");

        // No client certificate, which this engine requires: refused too.
        let no_client = cert_dir(certs, &[("ca.pem", "ca.pem")]);
        let address =
            EngineAddress::parse_url(&engine.tls_host, "x", &tls_env(no_client.path())).unwrap();
        let err = DockerEngine::connect_to(&address).await.unwrap_err().to_string();
        assert!(err.contains(&engine.tls_host), "{err}");

        // Plain HTTP to the TLS port does not pass for a Docker engine.
        let plain = EngineAddress::parse_url(&engine.tls_host, "x", &EngineEnv::default()).unwrap();
        let err = DockerEngine::connect_to(&plain).await.unwrap_err().to_string();
        assert!(err.contains(&engine.tls_host), "{err}");
        assert!(err.contains("speaks TLS; set DOCKER_TLS_VERIFY=1"), "{err}");
    });
}

/// A project tree with a `.dockerignore`, modes, links and a file of many stream chunks.
fn project_tree() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("cs-upload-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    std::fs::write(
        root.join(".dockerignore"),
        "**/__pycache__\n*.log\nnode_modules\nresults\n",
    )
    .unwrap();
    for d in ["app/__pycache__", "node_modules/x", "results", "bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("app/__init__.py"), "").unwrap();
    std::fs::write(root.join("app/models.py"), "X = 1\n").unwrap();
    std::fs::write(root.join("app/__pycache__/models.pyc"), "junk").unwrap();
    std::fs::write(root.join("node_modules/x/index.js"), "junk").unwrap();
    std::fs::write(root.join("results/junit.xml"), "junk").unwrap();
    std::fs::write(root.join("debug.log"), "junk").unwrap();
    std::fs::write(root.join("bin/run"), "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(root.join("bin/run"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::set_permissions(root.join("app"), std::fs::Permissions::from_mode(0o710)).unwrap();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("app/models.py", root.join("models-link.py")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("host-link")).unwrap();
    // 5 MiB + 7 bytes of varied content: many 64 KiB chunks, and not a multiple of anything.
    let big: Vec<u8> = (0..5 * 1024 * 1024 + 7u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("app/data.bin"), &big).unwrap();
    dir
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Run a command in a running container; its output.
async fn exec_output(engine: &DockerEngine, container: &str, cmd: &[&str]) -> String {
    let mut out = Vec::new();
    let outcome = engine
        .exec(
            container,
            &ExecRequest {
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            &mut |chunk: &[u8]| out.extend_from_slice(chunk),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.exit_code,
        Some(0),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8(out).unwrap()
}

// Over 80 lines: one container per engine is created, filled from two bound folders and read
// back; splitting it would start twice the containers for the same facts.
#[test]
fn an_uploaded_tree_honours_dockerignore_and_keeps_modes_and_links_on_both_engines() {
    let second = second_engine();
    let tree = project_tree();
    let root = tree.path();
    let big_sum = sha256_hex(&std::fs::read(root.join("app/data.bin")).unwrap());
    runtime().block_on(async {
        for url in [FIRST, second] {
            let engine = DockerEngine::connect_to(&address(url)).await.unwrap();
            let name = unique("cs-upload");
            docker(
                url,
                &[
                    "create",
                    "--name",
                    &name,
                    "--label",
                    "dev.compose-shard.managed=true",
                    PYTHON_IMAGE,
                    "sleep",
                    "300",
                ],
            );
            let upload = SourceUpload {
                project_dir: root,
                source: root,
                target: "/code",
                excluded: &[],
                create_missing: false,
            };
            let summary = engine.upload_tree(&name, &upload).await.unwrap();
            // .dockerignore itself is sent (no pattern excludes it), as `COPY . .` would copy it.
            assert_eq!((summary.files, summary.symlinks), (5, 2), "{summary:?}");
            // A bound sub-folder goes to its own target, with the root's rules.
            let sub = SourceUpload {
                source: &root.join("app"),
                target: "/srv/app",
                ..upload
            };
            engine.upload_tree(&name, &sub).await.unwrap();
            docker(url, &["start", &name]);

            let listing = exec_output(
                &engine,
                &name,
                &[
                    "sh",
                    "-c",
                    "cd / && find code srv -printf '%p %y %m %l\\n' | sed 's/ $//' | sort",
                ],
            )
            .await;
            assert_eq!(
                listing,
                "code d 750\n\
                 code/.dockerignore f 644\n\
                 code/app d 710\n\
                 code/app/__init__.py f 644\n\
                 code/app/data.bin f 644\n\
                 code/app/models.py f 644\n\
                 code/bin d 755\n\
                 code/bin/run f 750\n\
                 code/host-link l 777 /etc/hostname\n\
                 code/models-link.py l 777 app/models.py\n\
                 srv d 755\n\
                 srv/app d 710\n\
                 srv/app/__init__.py f 644\n\
                 srv/app/data.bin f 644\n\
                 srv/app/models.py f 644\n",
                "engine {url}: .dockerignore'd paths absent, modes and links kept"
            );
            let sums = exec_output(
                &engine,
                &name,
                &[
                    "sh",
                    "-c",
                    "sha256sum code/app/data.bin; cat code/models-link.py; code/bin/run",
                ],
            )
            .await;
            assert!(sums.starts_with(&big_sum), "engine {url}: {sums}");
            assert!(sums.contains("X = 1\nran\n"), "engine {url}: {sums}");
            docker(url, &["rm", "-f", &name]);
        }
    });
}

#[test]
fn an_upload_into_a_missing_container_names_the_container_and_the_engine() {
    let second = second_engine();
    let tree = project_tree();
    runtime().block_on(async {
        let engine = DockerEngine::connect_to(&address(second)).await.unwrap();
        let upload = SourceUpload {
            project_dir: tree.path(),
            source: tree.path(),
            target: "/code",
            excluded: &[],
            create_missing: false,
        };
        let err = engine
            .upload_tree("cs-no-such-container", &upload)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cs-no-such-container"), "{err}");
        assert!(err.contains(&format!("on engine {second}")), "{err}");
    });
}

/// Probe containers left on an engine.
fn probe_containers(url: &str) -> String {
    docker(
        url,
        &[
            "ps",
            "-a",
            "--filter",
            "name=compose-shard-probe",
            "--format",
            "{{.Names}}",
        ],
    )
}

fn markers_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".compose-shard-visible-"))
        .collect()
}

/// In a thread with a private mount namespace: a tmpfs at `mountpoint` (an empty folder on
/// the host), a `project` folder inside it; the check for the checkout, the tmpfs folder and
/// the folder inside it. Returns the three answers.
fn check_from_private_mount_namespace(
    url: String,
    checkout: PathBuf,
    mountpoint: PathBuf,
) -> [bool; 3] {
    std::thread::spawn(move || {
        // SAFETY: plain syscalls on this thread's own namespace; arguments are valid C strings.
        unsafe {
            assert_eq!(
                libc::unshare(libc::CLONE_NEWNS),
                0,
                "unshare(CLONE_NEWNS) failed (these tests need root): {}",
                std::io::Error::last_os_error()
            );
            let root = std::ffi::CString::new("/").unwrap();
            assert_eq!(
                libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null()
                ),
                0,
                "making mounts private failed: {}",
                std::io::Error::last_os_error()
            );
            let target = std::ffi::CString::new(mountpoint.to_str().unwrap()).unwrap();
            let fstype = std::ffi::CString::new("tmpfs").unwrap();
            assert_eq!(
                libc::mount(
                    fstype.as_ptr(),
                    target.as_ptr(),
                    fstype.as_ptr(),
                    0,
                    std::ptr::null()
                ),
                0,
                "mounting a tmpfs failed: {}",
                std::io::Error::last_os_error()
            );
        }
        let project = mountpoint.join("project");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join("app.py"), "print('only here')\n").unwrap();
        let answers = runtime().block_on(async {
            let engine = DockerEngine::connect_to(&address(&url)).await.unwrap();
            [
                engine
                    .engine_sees_path(PYTHON_IMAGE, &checkout)
                    .await
                    .unwrap(),
                engine
                    .engine_sees_path(PYTHON_IMAGE, &mountpoint)
                    .await
                    .unwrap(),
                engine
                    .engine_sees_path(PYTHON_IMAGE, &project)
                    .await
                    .unwrap(),
            ]
        });
        assert!(markers_in(&mountpoint).is_empty() && markers_in(&project).is_empty());
        answers
    })
    .join()
    .unwrap()
}

#[test]
fn the_visibility_check_tells_a_path_the_engine_sees_from_one_it_cannot() {
    let second = second_engine();
    let checkout = crate_root();
    runtime().block_on(async {
        for url in [FIRST, second] {
            let engine = DockerEngine::connect_to(&address(url)).await.unwrap();
            assert!(
                engine
                    .engine_sees_path(PYTHON_IMAGE, &checkout)
                    .await
                    .unwrap(),
                "engine {url} sees the checkout"
            );
        }
    });
    assert!(markers_in(&checkout).is_empty(), "the marker is removed");

    for url in [FIRST, second] {
        let host_side = tempfile::Builder::new()
            .prefix("cs-hidden-")
            .tempdir()
            .unwrap();
        let [checkout_seen, mountpoint_seen, project_seen] = check_from_private_mount_namespace(
            url.to_string(),
            checkout.clone(),
            host_side.path().to_path_buf(),
        );
        assert!(
            checkout_seen,
            "{url}: the same check still sees the shared checkout"
        );
        assert!(
            !mountpoint_seen,
            "{url}: the folder exists for the engine too, but holds other files (an empty folder)"
        );
        assert!(
            !project_seen,
            "{url}: the folder does not exist for the engine at all"
        );
        assert!(
            !host_side.path().join("project").exists(),
            "the tmpfs never reached the host's namespace"
        );
        assert_eq!(
            probe_containers(url),
            "",
            "{url}: no probe container is left"
        );
    }
}

/// Labelled leftovers of run `run` (created by a process that is gone) on engine `url`.
fn make_leftovers(url: &str, run: &str, dead_pid: u32) -> Vec<String> {
    let labels = [
        "--label".to_string(),
        "dev.compose-shard.managed=true".to_string(),
        "--label".to_string(),
        format!("dev.compose-shard.run={run}"),
        "--label".to_string(),
        format!("dev.compose-shard.pid={dead_pid}"),
    ];
    let name = format!("{run}-x");
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.splice(2..2, labels.iter().map(String::as_str));
        docker(url, &all);
    };
    with(&["network", "create", &name]);
    with(&["volume", "create", &name]);
    with(&[
        "container",
        "create",
        "--name",
        &name,
        "--network",
        &name,
        "-v",
        &format!("{name}:/data"),
        PYTHON_IMAGE,
        "true",
    ]);
    vec![
        format!("container {name}"),
        format!("network {name}"),
        format!("volume {name}"),
    ]
}

fn labelled(url: &str, run: &str) -> Vec<String> {
    let filter = format!("label=dev.compose-shard.run={run}");
    let mut found = Vec::new();
    for (kind, list, format) in [
        ("container", ["ps", "-a"], "{{.Names}}"),
        ("network", ["network", "ls"], "{{.Name}}"),
        ("volume", ["volume", "ls"], "{{.Name}}"),
    ] {
        let names = docker(
            url,
            &[&list[..], &["--filter", &filter, "--format", format]].concat(),
        );
        found.extend(
            names
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| format!("{kind} {l}")),
        );
    }
    found.sort();
    found
}

#[test]
fn clean_removes_leftovers_on_every_engine_given() {
    let second = second_engine();
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let run = unique("csclean");
    for url in [FIRST, second] {
        let mut made = make_leftovers(url, &run, dead_pid);
        made.sort();
        assert_eq!(labelled(url, &run), made);
    }

    // The default mode finds them by their dead creator, on both engines (dry run only: the
    // real removal is scoped to this run, so other tests' leftovers stay theirs to check).
    let dry = binary()
        .args([
            "clean",
            "--dry-run",
            "--docker-host",
            FIRST,
            "--docker-host",
            second,
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    for url in [FIRST, second] {
        for what in ["container", "network", "volume"] {
            let line = format!("engine {url}: would remove {what} {run}-x (run {run})");
            assert!(out.contains(&line), "missing {line:?} in:\n{out}");
        }
    }

    // An engine that does not answer is reported; the others are still cleaned; exit 3.
    let clean = binary()
        .args([
            "clean",
            "--run",
            &run,
            "--docker-host",
            FIRST,
            "--docker-host",
            "unix:///nonexistent/compose-shard.sock",
            "--docker-host",
            second,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&clean.stdout);
    let err = String::from_utf8_lossy(&clean.stderr);
    assert_eq!(clean.status.code(), Some(3), "{out}{err}");
    assert!(
        err.contains("unix:///nonexistent/compose-shard.sock"),
        "{err}"
    );
    for url in [FIRST, second] {
        assert!(
            out.contains(&format!("engine {url}: removed 3 resources")),
            "{out}"
        );
        assert_eq!(labelled(url, &run), Vec::<String>::new(), "{url}");
    }
}
