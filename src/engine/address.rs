//! [`EngineAddress`]: where a Docker engine is, parsed and checked before any connection.
//!
//! The forms are the docker CLI's, so a value that works with `docker -H` (or
//! `docker --context`) works here:
//! - `unix:///path/to/docker.sock` (an empty path means `/var/run/docker.sock`);
//! - `tcp://HOST[:PORT]` and `http://HOST[:PORT]` (port 2375 when left out, as the docker CLI
//!   does), over TLS when `DOCKER_TLS_VERIFY` is set to a non-empty value, with `ca.pem`,
//!   `cert.pem` and `key.pem` from `DOCKER_CERT_PATH` (default: the docker config folder,
//!   `~/.docker`); `https://HOST[:PORT]` is always TLS;
//! - `ssh://[USER@]HOST`: bollard runs `ssh HOST docker system dial-stdio`, as the docker CLI
//!   does, so the remote host needs the docker CLI and the user access to its engine. A port
//!   in the URL is refused: bollard 0.21 passes `HOST:PORT` to ssh as a host name; a
//!   `~/.ssh/config` alias with `Port` does the same job;
//! - the name of a Docker context (`~/.docker/contexts/meta/<sha256 of name>/meta.json`:
//!   `Endpoints.docker.Host`, with TLS material from
//!   `~/.docker/contexts/tls/<sha256 of name>/docker/`). `default` is the default engine.
//!
//! Where the docker CLI differs: a server certificate is always verified. A context with
//! `SkipTLSVerify` and `DOCKER_TLS` without `DOCKER_TLS_VERIFY` (TLS without verification)
//! are refused with an error saying what to do instead, because bollard's TLS transport has no
//! way to skip verification and an unverified connection to an engine is root on that host
//! for whoever sits in between.
//!
//! Parsing is pure: the environment comes in as a lookup function and the filesystem is only
//! read for contexts, so every rule is tested without a daemon.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The forms an engine address may take, for error messages.
pub const ACCEPTED_FORMS: &str = "use unix:///path/to/docker.sock, tcp://HOST:PORT (TLS when DOCKER_TLS_VERIFY=1, certificates from DOCKER_CERT_PATH), https://HOST:PORT, ssh://[USER@]HOST (a port through ~/.ssh/config), or the name of a Docker context (`docker context ls`)";

/// The socket the docker CLI uses when nothing else is configured.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The port the docker CLI assumes for `tcp://HOST` without one.
const DEFAULT_TCP_PORT: u16 = 2375;

/// An engine address that cannot be used, naming the value, where it came from, and what is
/// accepted instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The value is not a usable URL or context name.
    #[error("{origin} {value:?}: {problem}; {ACCEPTED_FORMS}")]
    Invalid {
        /// Where the value came from (`DOCKER_HOST`, `--docker-host`, `context prod`...).
        origin: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A context name with no context of that name.
    #[error("{origin} {name:?}: no Docker context of that name (looked for {}); `docker context ls` lists the contexts, or give a URL ({ACCEPTED_FORMS})", path.display())]
    UnknownContext {
        /// Where the name came from.
        origin: String,
        /// The context name.
        name: String,
        /// The meta.json that does not exist.
        path: PathBuf,
    },
    /// A context's files could not be read or make no sense.
    #[error("Docker context {name:?}: {}: {problem}; fix it with `docker context update {name}` or recreate it", path.display())]
    BadContext {
        /// The context name.
        name: String,
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// TLS is asked for, but a certificate file is missing or the set is incomplete.
    #[error("{engine}: {problem} ({}); {hint}", path.display())]
    TlsFiles {
        /// The engine address.
        engine: String,
        /// The file or folder concerned.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: String,
    },
    /// TLS without verifying the server's certificate was asked for.
    #[error("{engine}: {why} asks for TLS without verifying the engine's certificate, which compose-shard does not do (whoever sits in between would control the engine); put the engine's CA certificate in {} and verify, or reach the engine through an SSH-forwarded socket (`ssh -NL /tmp/docker.sock:/var/run/docker.sock HOST`, then unix:///tmp/docker.sock)", ca.display())]
    UnverifiedTls {
        /// The engine address.
        engine: String,
        /// What asked for it (`DOCKER_TLS`, `SkipTLSVerify in context prod`).
        why: String,
        /// Where the CA certificate would go.
        ca: PathBuf,
    },
}

/// The TLS files for a connection: the CA that signed the engine's certificate, and the client
/// certificate and key when the engine asks for one (both or neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `cert.pem` and `key.pem`, when present.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl TlsFiles {
    /// The files in `dir` (docker's names). A missing `ca.pem` is an error; `cert.pem` and
    /// `key.pem` are optional but go together.
    fn in_dir(dir: &Path, engine: &str) -> Result<TlsFiles, AddressError> {
        let err = |path: PathBuf, problem: String, hint: &str| AddressError::TlsFiles {
            engine: engine.to_string(),
            path,
            problem,
            hint: hint.to_string(),
        };
        let ca = dir.join("ca.pem");
        if !ca.is_file() {
            return Err(err(
                ca,
                "TLS needs the CA certificate ca.pem, which is not there".into(),
                "copy the engine's ca.pem there, or point DOCKER_CERT_PATH at the folder holding ca.pem, cert.pem and key.pem",
            ));
        }
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let client = match (cert.is_file(), key.is_file()) {
            (true, true) => Some((cert, key)),
            (false, false) => None,
            (true, false) => {
                return Err(err(
                    key,
                    "cert.pem is there but its key.pem is not".into(),
                    "put the client key beside the certificate, or remove both",
                ))
            }
            (false, true) => {
                return Err(err(
                    cert,
                    "key.pem is there but its cert.pem is not".into(),
                    "put the client certificate beside the key, or remove both",
                ))
            }
        };
        Ok(TlsFiles { ca, client })
    }
}

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A Unix socket on this machine (perhaps forwarded from another one).
    Unix {
        /// The socket's path.
        socket: PathBuf,
    },
    /// Plain HTTP over TCP.
    Tcp {
        /// `HOST:PORT`.
        authority: String,
    },
    /// HTTPS with the engine's certificate verified.
    Tls {
        /// `HOST:PORT`.
        authority: String,
        /// Certificates.
        files: TlsFiles,
    },
    /// The docker CLI on another host, through ssh.
    Ssh {
        /// `[USER@]HOST`.
        destination: String,
    },
}

/// A parsed, checked engine address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAddress {
    /// The URL (`unix:///var/run/docker.sock`, `tcp://build1:2376`, `ssh://ci@build2`).
    url: String,
    /// The context it came from, if any.
    context: Option<String>,
    /// How to connect.
    transport: Transport,
}

/// What the environment says about engines (the docker CLI's variables). Built from the
/// process environment by [`EngineEnv::from_process`], or by hand in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineEnv {
    /// `DOCKER_HOST` (empty counts as unset).
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT` (empty counts as unset).
    pub docker_context: Option<String>,
    /// `DOCKER_TLS_VERIFY` set to a non-empty value.
    pub tls_verify: bool,
    /// `DOCKER_TLS` set to a non-empty value (TLS without verification).
    pub tls_unverified: bool,
    /// `DOCKER_CERT_PATH`, else the docker config folder.
    pub cert_path: PathBuf,
    /// `DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: PathBuf,
}

impl EngineEnv {
    /// The docker CLI's variables from a lookup (`std::env::var` in the program).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> EngineEnv {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let config_dir = get("DOCKER_CONFIG").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(get("HOME").unwrap_or_else(|| "/root".into())).join(".docker")
        });
        EngineEnv {
            docker_host: get("DOCKER_HOST").map(|v| v.trim().to_string()),
            docker_context: get("DOCKER_CONTEXT").map(|v| v.trim().to_string()),
            tls_verify: get("DOCKER_TLS_VERIFY").is_some(),
            tls_unverified: get("DOCKER_TLS").is_some(),
            cert_path: get("DOCKER_CERT_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| config_dir.clone()),
            config_dir,
        }
    }

    /// The docker CLI's variables from this process's environment.
    pub fn from_process() -> EngineEnv {
        EngineEnv::from_lookup(&|key| std::env::var(key).ok())
    }
}

impl EngineAddress {
    /// The engine used when none is named: `DOCKER_HOST`, else `DOCKER_CONTEXT`, else the
    /// `currentContext` of the docker config file, else the default socket (the docker CLI's
    /// order).
    pub fn default_engine(env: &EngineEnv) -> Result<EngineAddress, AddressError> {
        if let Some(host) = &env.docker_host {
            return EngineAddress::parse_url(host, "DOCKER_HOST", env);
        }
        if let Some(name) = &env.docker_context {
            return EngineAddress::from_context(name, "DOCKER_CONTEXT", env);
        }
        if let Some(name) = current_context(&env.config_dir)? {
            return EngineAddress::from_context(&name, "currentContext in config.json", env);
        }
        Ok(EngineAddress::unix(PathBuf::from(DEFAULT_SOCKET)))
    }

    /// An address as given to `--docker-host` or in `docker-hosts`: a URL, or a context name.
    /// `origin` says where it came from, for errors.
    pub fn resolve(
        value: &str,
        origin: &str,
        env: &EngineEnv,
    ) -> Result<EngineAddress, AddressError> {
        let value = value.trim();
        if value.contains("://") {
            return EngineAddress::parse_url(value, origin, env);
        }
        if is_context_name(value) {
            return EngineAddress::from_context(value, origin, env);
        }
        Err(AddressError::Invalid {
            origin: origin.into(),
            value: value.into(),
            problem: "it is neither a URL (`SCHEME://...`) nor a Docker context name".into(),
        })
    }

    fn unix(socket: PathBuf) -> EngineAddress {
        EngineAddress {
            url: format!("unix://{}", socket.display()),
            context: None,
            transport: Transport::Unix { socket },
        }
    }

    /// Parse a URL; TLS settings for `tcp://` come from `env`.
    pub fn parse_url(
        value: &str,
        origin: &str,
        env: &EngineEnv,
    ) -> Result<EngineAddress, AddressError> {
        let invalid = |problem: String| AddressError::Invalid {
            origin: origin.into(),
            value: value.into(),
            problem,
        };
        let Some((scheme, rest)) = value.split_once("://") else {
            return Err(invalid("it has no scheme (`SCHEME://...`)".into()));
        };
        match scheme {
            "unix" => {
                let path = if rest.is_empty() { DEFAULT_SOCKET } else { rest };
                if !path.starts_with('/') {
                    return Err(invalid(format!(
                        "the socket path {path:?} is not absolute (unix:///path has three slashes)"
                    )));
                }
                Ok(EngineAddress::unix(PathBuf::from(path)))
            }
            "tcp" | "http" | "https" => {
                let authority = tcp_authority(rest).map_err(invalid)?;
                let url = format!("tcp://{authority}");
                let tls = scheme == "https" || (scheme == "tcp" && env.tls_verify);
                if scheme == "tcp" && !env.tls_verify && env.tls_unverified {
                    return Err(AddressError::UnverifiedTls {
                        engine: url,
                        why: "DOCKER_TLS without DOCKER_TLS_VERIFY".into(),
                        ca: env.cert_path.join("ca.pem"),
                    });
                }
                let transport = if tls {
                    Transport::Tls {
                        files: TlsFiles::in_dir(&env.cert_path, &url)?,
                        authority,
                    }
                } else {
                    Transport::Tcp { authority }
                };
                Ok(EngineAddress {
                    url,
                    context: None,
                    transport,
                })
            }
            "ssh" => {
                let destination = ssh_destination(rest).map_err(invalid)?;
                Ok(EngineAddress {
                    url: format!("ssh://{destination}"),
                    context: None,
                    transport: Transport::Ssh { destination },
                })
            }
            "npipe" => Err(invalid(
                "Windows named pipes (npipe://) do not exist on this system".into(),
            )),
            "fd" => Err(invalid(
                "fd:// is a socket handed over by systemd to dockerd, not something a client can connect to".into(),
            )),
            other => Err(invalid(format!("unknown scheme `{other}`"))),
        }
    }

    /// The engine of the Docker context `name` (`default` is the default engine).
    pub fn from_context(
        name: &str,
        origin: &str,
        env: &EngineEnv,
    ) -> Result<EngineAddress, AddressError> {
        if name == "default" {
            return match &env.docker_host {
                Some(host) => EngineAddress::parse_url(host, "DOCKER_HOST", env),
                None => Ok(EngineAddress::unix(PathBuf::from(DEFAULT_SOCKET))),
            };
        }
        let hash = hex::encode(Sha256::digest(name.as_bytes()));
        let meta = env
            .config_dir
            .join("contexts/meta")
            .join(&hash)
            .join("meta.json");
        let text = match std::fs::read_to_string(&meta) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AddressError::UnknownContext {
                    origin: origin.into(),
                    name: name.into(),
                    path: meta,
                })
            }
            Err(e) => {
                return Err(AddressError::BadContext {
                    name: name.into(),
                    path: meta,
                    problem: format!("cannot read it: {e}"),
                })
            }
        };
        let endpoint =
            ContextEndpoint::parse(&text).map_err(|problem| AddressError::BadContext {
                name: name.into(),
                path: meta.clone(),
                problem,
            })?;
        let tls_dir = env
            .config_dir
            .join("contexts/tls")
            .join(&hash)
            .join("docker");
        let context_origin = format!("Docker context {name:?}:");
        let mut address = EngineAddress::parse_url(
            &endpoint.host,
            &context_origin,
            // The context's own TLS settings replace the environment's.
            &EngineEnv::default(),
        )?;
        if let Transport::Tcp { authority } = &address.transport {
            let has_tls = tls_dir.is_dir()
                && std::fs::read_dir(&tls_dir).is_ok_and(|mut d| d.next().is_some());
            if endpoint.skip_tls_verify {
                return Err(AddressError::UnverifiedTls {
                    engine: format!("context {name} ({})", address.url),
                    why: format!("SkipTLSVerify in context {name}"),
                    ca: tls_dir.join("ca.pem"),
                });
            }
            if has_tls {
                let engine = format!("context {name} ({})", address.url);
                address.transport = Transport::Tls {
                    authority: authority.clone(),
                    files: TlsFiles::in_dir(&tls_dir, &engine)?,
                };
            }
        }
        address.context = Some(name.to_string());
        Ok(address)
    }

    /// The URL (`tcp://build1:2376`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The context this address came from, if any.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// How to connect.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Whether the engine is on another machine as far as the address tells (TCP, SSH). A
    /// Unix socket counts as local even though it may be forwarded from elsewhere: whether
    /// the engine sees this machine's files is what `Backend::engine_sees_path` checks.
    pub fn is_remote(&self) -> bool {
        !matches!(self.transport, Transport::Unix { .. })
    }
}

impl std::fmt::Display for EngineAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.context {
            Some(name) => write!(f, "{} (context {name})", self.url),
            None => f.write_str(&self.url),
        }
    }
}

/// `HOST[:PORT]` of a tcp URL, with the docker CLI's default port; no path, query or user.
fn tcp_authority(rest: &str) -> Result<String, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err("a TCP address is HOST:PORT with no path".into());
    }
    if rest.contains('@') {
        return Err("a TCP address has no user (`USER@` is for ssh://)".into());
    }
    let (host, port) = split_host_port(rest)?;
    Ok(format!("{host}:{}", port.unwrap_or(DEFAULT_TCP_PORT)))
}

/// `[USER@]HOST` of an ssh URL, checked.
fn ssh_destination(rest: &str) -> Result<String, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err("an SSH address is [USER@]HOST with no path".into());
    }
    let host_port = match rest.rsplit_once('@') {
        Some(("", _)) => return Err("the user before `@` is empty".into()),
        Some((user, _)) if user.contains(':') => {
            return Err("a password in the URL is not supported; use ssh keys or an agent".into())
        }
        Some((_, host_port)) => host_port,
        None => rest,
    };
    if let (_, Some(port)) = split_host_port(host_port)? {
        // bollard 0.21 hands `USER@HOST:PORT` to ssh as a host name, which ssh cannot resolve.
        return Err(format!(
            "bollard's SSH transport cannot pass a port (:{port}) to ssh; give the host an alias in ~/.ssh/config (`Host NAME`, `HostName ...`, `Port {port}`) and use ssh://[USER@]NAME"
        ));
    }
    Ok(rest.to_string())
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{text:?} opens `[` without closing it"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {p:?} after the address"))?,
            ),
        };
        (&text[..inside.len() + 2], port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("the host name is empty".into());
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("the port {p:?} is not a number from 1 to 65535")),
        },
    };
    Ok((host, port))
}

/// Docker's rule for context names: `^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$`.
fn is_context_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && text.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
}

/// `Endpoints.docker` of a context's meta.json.
#[derive(Debug)]
struct ContextEndpoint {
    host: String,
    skip_tls_verify: bool,
}

impl ContextEndpoint {
    fn parse(text: &str) -> Result<ContextEndpoint, String> {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let docker = doc
            .get("Endpoints")
            .and_then(|e| e.get("docker"))
            .ok_or("it has no Endpoints.docker (not a Docker engine context)")?;
        let host = docker
            .get("Host")
            .and_then(|h| h.as_str())
            .filter(|h| !h.is_empty())
            .ok_or("Endpoints.docker has no Host")?;
        Ok(ContextEndpoint {
            host: host.to_string(),
            skip_tls_verify: docker
                .get("SkipTLSVerify")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
    }
}

/// `currentContext` of `<config>/config.json`, unless absent or `default`.
fn current_context(config_dir: &Path) -> Result<Option<String>, AddressError> {
    let path = config_dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) => return Ok(None),
    };
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(doc) => doc,
        // The docker CLI fails on a broken config.json too, but only when it reads it for
        // this: say so rather than silently using another engine.
        Err(e) => {
            return Err(AddressError::BadContext {
                name: "(current)".into(),
                path,
                problem: format!("not valid JSON: {e}"),
            })
        }
    };
    Ok(doc
        .get("currentContext")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty() && *c != "default")
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EngineEnv {
        EngineEnv {
            config_dir: PathBuf::from("/nonexistent/.docker"),
            cert_path: PathBuf::from("/nonexistent/.docker"),
            ..Default::default()
        }
    }

    fn parse(value: &str) -> Result<EngineAddress, AddressError> {
        EngineAddress::resolve(value, "--docker-host", &env())
    }

    #[test]
    fn urls_of_each_scheme_parse_to_their_transport() {
        let a = parse("unix:///run/x/docker.sock").unwrap();
        assert_eq!(
            a.transport(),
            &Transport::Unix {
                socket: "/run/x/docker.sock".into()
            }
        );
        assert!(!a.is_remote());
        assert_eq!(
            parse("unix://").unwrap().url(),
            "unix:///var/run/docker.sock"
        );
        let t = parse("tcp://build1:2375").unwrap();
        assert_eq!(
            t.transport(),
            &Transport::Tcp {
                authority: "build1:2375".into()
            }
        );
        assert!(t.is_remote());
        assert_eq!(parse("tcp://build1").unwrap().url(), "tcp://build1:2375");
        assert_eq!(
            parse("http://10.0.0.5:2375/").unwrap().url(),
            "tcp://10.0.0.5:2375"
        );
        assert_eq!(parse("tcp://[::1]:2375").unwrap().url(), "tcp://[::1]:2375");
        let s = parse("ssh://ci@build2").unwrap();
        assert_eq!(
            s.transport(),
            &Transport::Ssh {
                destination: "ci@build2".into()
            }
        );
        assert_eq!(s.to_string(), "ssh://ci@build2");
    }

    #[test]
    fn bad_values_name_the_value_the_origin_and_the_accepted_forms() {
        for (value, problem) in [
            ("garbage://x", "unknown scheme `garbage`"),
            ("unix://relative.sock", "not absolute"),
            ("tcp://host:99999", "port \"99999\""),
            ("tcp://host:0", "port \"0\""),
            ("tcp://:2375", "host name is empty"),
            ("tcp://h:2375/v1.41", "no path"),
            ("tcp://me@h:2375", "no user"),
            ("ssh://", "host name is empty"),
            ("ssh://@h", "user before `@` is empty"),
            ("ssh://me:secret@h", "password"),
            ("ssh://ci@build2:2222", "~/.ssh/config"),
            ("npipe:////./pipe/docker_engine", "named pipes"),
            ("fd://", "systemd"),
            ("localhost:2375", "neither a URL"),
            ("/var/run/docker.sock", "neither a URL"),
            ("tcp://[::1", "without closing"),
        ] {
            let message = parse(value).unwrap_err().to_string();
            assert!(message.contains(problem), "{value}: {message}");
            assert!(
                message.starts_with(&format!("--docker-host {value:?}")),
                "{value}: {message}"
            );
            assert!(message.contains("unix:///path/to/docker.sock"), "{message}");
            assert!(message.contains("ssh://[USER@]HOST"), "{message}");
        }
    }

    #[test]
    fn tcp_uses_tls_when_docker_tls_verify_is_set_with_files_from_docker_cert_path() {
        let certs = tempfile::tempdir().unwrap();
        let mut env = env();
        env.tls_verify = true;
        env.cert_path = certs.path().to_path_buf();
        let err = EngineAddress::parse_url("tcp://h:2376", "DOCKER_HOST", &env).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("tcp://h:2376: "), "{message}");
        assert!(message.contains("ca.pem"), "{message}");
        assert!(
            message.contains(&certs.path().display().to_string()),
            "{message}"
        );

        std::fs::write(certs.path().join("ca.pem"), "x").unwrap();
        let a = EngineAddress::parse_url("tcp://h:2376", "DOCKER_HOST", &env).unwrap();
        assert_eq!(
            a.transport(),
            &Transport::Tls {
                authority: "h:2376".into(),
                files: TlsFiles {
                    ca: certs.path().join("ca.pem"),
                    client: None
                }
            }
        );
        std::fs::write(certs.path().join("cert.pem"), "x").unwrap();
        let message = EngineAddress::parse_url("tcp://h:2376", "DOCKER_HOST", &env)
            .unwrap_err()
            .to_string();
        assert!(message.contains("key.pem is not"), "{message}");
        std::fs::write(certs.path().join("key.pem"), "x").unwrap();
        let a = EngineAddress::parse_url("tcp://h:2376", "DOCKER_HOST", &env).unwrap();
        let Transport::Tls { files, .. } = a.transport() else {
            panic!("{a:?}")
        };
        assert_eq!(
            files.client,
            Some((certs.path().join("cert.pem"), certs.path().join("key.pem")))
        );
        // https:// is TLS without DOCKER_TLS_VERIFY; tcp:// without it is plain.
        env.tls_verify = false;
        assert!(matches!(
            EngineAddress::parse_url("https://h:2376", "x", &env)
                .unwrap()
                .transport(),
            Transport::Tls { .. }
        ));
        assert!(matches!(
            EngineAddress::parse_url("tcp://h:2376", "x", &env)
                .unwrap()
                .transport(),
            Transport::Tcp { .. }
        ));
        env.tls_unverified = true;
        let message = EngineAddress::parse_url("tcp://h:2376", "x", &env)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("DOCKER_TLS without DOCKER_TLS_VERIFY"),
            "{message}"
        );
        assert!(message.contains("SSH-forwarded socket"), "{message}");
    }

    #[test]
    fn env_from_lookup_follows_the_docker_cli() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = EngineEnv::from_lookup(&vars(&[("HOME", "/home/u"), ("DOCKER_TLS_VERIFY", "")]));
        assert_eq!(e.config_dir, PathBuf::from("/home/u/.docker"));
        assert_eq!(e.cert_path, PathBuf::from("/home/u/.docker"));
        assert!(
            !e.tls_verify,
            "an empty DOCKER_TLS_VERIFY is unset, as for the docker CLI"
        );
        let e = EngineEnv::from_lookup(&vars(&[
            ("DOCKER_CONFIG", "/cfg"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_HOST", " tcp://h:1 "),
        ]));
        assert_eq!(e.cert_path, PathBuf::from("/cfg"));
        assert!(e.tls_verify);
        assert_eq!(e.docker_host.as_deref(), Some("tcp://h:1"));
    }

    /// A docker config folder with one context, laid out as `docker context create` does.
    fn context_dir(name: &str, meta: &str, tls: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let hash = hex::encode(Sha256::digest(name.as_bytes()));
        let meta_dir = dir.path().join("contexts/meta").join(&hash);
        std::fs::create_dir_all(&meta_dir).unwrap();
        std::fs::write(meta_dir.join("meta.json"), meta).unwrap();
        if !tls.is_empty() {
            let tls_dir = dir.path().join("contexts/tls").join(&hash).join("docker");
            std::fs::create_dir_all(&tls_dir).unwrap();
            for f in tls {
                std::fs::write(tls_dir.join(f), "pem").unwrap();
            }
        }
        dir
    }

    fn env_in(dir: &Path) -> EngineEnv {
        EngineEnv {
            config_dir: dir.to_path_buf(),
            cert_path: dir.to_path_buf(),
            ..Default::default()
        }
    }

    #[test]
    fn contexts_are_found_by_the_sha256_of_their_name() {
        let dir = context_dir(
            "build-1",
            r#"{"Name":"build-1","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://b1:2376","SkipTLSVerify":false}}}"#,
            &["ca.pem", "cert.pem", "key.pem"],
        );
        let a = EngineAddress::resolve("build-1", "--docker-host", &env_in(dir.path())).unwrap();
        assert_eq!(a.context(), Some("build-1"));
        assert_eq!(a.to_string(), "tcp://b1:2376 (context build-1)");
        let Transport::Tls { authority, files } = a.transport() else {
            panic!("{a:?}")
        };
        assert_eq!(authority, "b1:2376");
        assert!(files.ca.ends_with("docker/ca.pem"));
        assert!(files.client.is_some());

        let err = EngineAddress::resolve("build-2", "--docker-host", &env_in(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Docker context of that name"), "{err}");
        assert!(err.contains("\"build-2\""), "{err}");
        assert!(err.contains("docker context ls"), "{err}");
    }

    #[test]
    fn context_without_tls_files_is_plain_and_ssh_and_unix_contexts_work() {
        let dir = context_dir(
            "plain",
            r#"{"Endpoints":{"docker":{"Host":"tcp://p:2375"}}}"#,
            &[],
        );
        let a = EngineAddress::resolve("plain", "x", &env_in(dir.path())).unwrap();
        assert!(matches!(a.transport(), Transport::Tcp { .. }));
        let dir = context_dir(
            "remote",
            r#"{"Endpoints":{"docker":{"Host":"ssh://ci@r"}}}"#,
            &[],
        );
        let a = EngineAddress::resolve("remote", "x", &env_in(dir.path())).unwrap();
        assert_eq!(a.url(), "ssh://ci@r");
        // DOCKER_TLS_VERIFY of the environment does not apply to a context's endpoint.
        let dir = context_dir(
            "sock",
            r#"{"Endpoints":{"docker":{"Host":"unix:///run/other.sock"}}}"#,
            &[],
        );
        let mut env = env_in(dir.path());
        env.tls_verify = true;
        let a = EngineAddress::resolve("sock", "x", &env).unwrap();
        assert_eq!(a.url(), "unix:///run/other.sock");
    }

    #[test]
    fn broken_contexts_say_which_file_and_what_is_wrong() {
        let dir = context_dir(
            "skip",
            r#"{"Endpoints":{"docker":{"Host":"tcp://s:2376","SkipTLSVerify":true}}}"#,
            &["ca.pem"],
        );
        let err = EngineAddress::resolve("skip", "x", &env_in(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SkipTLSVerify in context skip"), "{err}");
        let dir = context_dir("k8s", r#"{"Endpoints":{"kubernetes":{}}}"#, &[]);
        let err = EngineAddress::resolve("k8s", "x", &env_in(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Endpoints.docker"), "{err}");
        assert!(err.contains("meta.json"), "{err}");
        let dir = context_dir("junk", "{", &[]);
        let err = EngineAddress::resolve("junk", "x", &env_in(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let dir = context_dir(
            "nocert",
            r#"{"Endpoints":{"docker":{"Host":"tcp://n:2376"}}}"#,
            &["cert.pem", "key.pem"],
        );
        let err = EngineAddress::resolve("nocert", "x", &env_in(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("context nocert (tcp://n:2376)"), "{err}");
        assert!(err.contains("ca.pem"), "{err}");
        let dir = context_dir(
            "badhost",
            r#"{"Endpoints":{"docker":{"Host":"tcp://"}}}"#,
            &[],
        );
        let err = EngineAddress::resolve("badhost", "x", &env_in(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Docker context \"badhost\":"), "{err}");
    }

    #[test]
    fn default_engine_follows_docker_host_then_context_then_config_then_socket() {
        let dir = context_dir(
            "cur",
            r#"{"Endpoints":{"docker":{"Host":"tcp://cur:2375"}}}"#,
            &[],
        );
        let mut env = env_in(dir.path());
        assert_eq!(
            EngineAddress::default_engine(&env).unwrap().url(),
            "unix:///var/run/docker.sock"
        );
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"cur"}"#,
        )
        .unwrap();
        assert_eq!(
            EngineAddress::default_engine(&env).unwrap().url(),
            "tcp://cur:2375"
        );
        env.docker_context = Some("default".into());
        assert_eq!(
            EngineAddress::default_engine(&env).unwrap().url(),
            "unix:///var/run/docker.sock"
        );
        env.docker_host = Some("unix:///h.sock".into());
        assert_eq!(
            EngineAddress::default_engine(&env).unwrap().url(),
            "unix:///h.sock"
        );
        assert_eq!(
            EngineAddress::resolve("default", "x", &env).unwrap().url(),
            "unix:///h.sock"
        );
    }
}
