//! Errors from the Docker engine. Each says what was being attempted, because a raw bollard
//! error ("404 page not found") does not tell a user which resource or step failed.

use std::path::PathBuf;

/// Errors from the Docker engine, each saying what was being attempted.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The daemon could not be reached.
    #[error("cannot connect to the Docker daemon at {endpoint}: {message}")]
    Unreachable {
        /// Where we tried.
        endpoint: String,
        /// What went wrong and what to do, by cause (see [`EngineError::unreachable`]).
        message: String,
    },
    /// An engine address is not usable (bad URL, unknown context, missing TLS files).
    #[error(transparent)]
    Address(#[from] super::address::AddressError),
    /// A Docker API call failed.
    #[error("failed to {action} on engine {engine}: {source}")]
    Api {
        /// What was attempted, naming the resource ("create network proj-g2_default").
        action: String,
        /// The engine's address.
        engine: String,
        /// The bollard error.
        source: bollard::errors::Error,
    },
    /// An image is neither present locally nor pullable.
    #[error("image {image} is not available on engine {engine}: {message}; build or load it there (e.g. `docker load`, `docker build -t {image} .`) or check the name")]
    ImageUnavailable {
        /// The image reference.
        image: String,
        /// The engine's address.
        engine: String,
        /// Why the pull failed.
        message: String,
    },
    /// `docker build` reported an error.
    #[error("failed to build image {image} for service {service} on engine {engine}: {message}")]
    Build {
        /// The tag being built.
        image: String,
        /// The engine's address.
        engine: String,
        /// The service with the `build:` section.
        service: String,
        /// The builder's error message.
        message: String,
    },
    /// A tar stream from a container contained an entry that would escape the target folder.
    #[error("refusing to extract {entry:?} from {container}: {reason}")]
    UnsafeArchive {
        /// The container the archive came from.
        container: String,
        /// The entry path.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A `.dockerignore` has a pattern Docker refuses too.
    #[error("{}: {message}; fix or remove that line (docker build refuses it too)", path.display())]
    InvalidDockerignore {
        /// The `.dockerignore` file.
        path: PathBuf,
        /// Which pattern and what is wrong with it.
        message: String,
    },
    /// A local file operation failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: String,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl EngineError {
    /// The daemon at `endpoint` did not answer: the advice depends on the cause, found in the
    /// error's sources (a refused TCP connection needs a daemon listening on TCP, a missing
    /// socket a started daemon, a denied one permissions), instead of bollard's bare
    /// "Error in the hyper legacy client: client error (Connect)".
    pub(crate) fn unreachable(
        address: &super::address::EngineAddress,
        err: &bollard::errors::Error,
    ) -> Self {
        let message = match address.transport() {
            super::address::Transport::Ssh { destination } => explain_ssh(destination, err),
            super::address::Transport::Tls { files, .. } if is_tls_failure(err) => format!(
                "the TLS handshake failed: {}; check that {} is the CA that signed the engine's certificate, that the certificate names the host you connect to, and that the engine accepts your client certificate",
                crate::errors::render_chain(err),
                files.ca.display()
            ),
            _ => explain_unreachable(address.url(), err),
        };
        EngineError::Unreachable {
            endpoint: address.to_string(),
            message,
        }
    }

    /// Wrap a bollard error with what was being attempted on which engine.
    pub(crate) fn api(
        engine: &str,
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> Self {
        let action = action.into();
        let engine = engine.to_string();
        move |source| EngineError::Api {
            action,
            engine,
            source,
        }
    }

    /// Whether this is the engine's "no such ..." answer (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            EngineError::Api {
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                },
                ..
            }
        )
    }
}

/// Whether a connection error came from TLS (a certificate or handshake problem) rather than
/// from the network: rustls' errors are wrapped in I/O errors of kind `InvalidData`.
fn is_tls_failure(err: &bollard::errors::Error) -> bool {
    let text = crate::errors::render_chain(err).to_lowercase();
    io_source(err).is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
        || ["certificate", "handshake", "tls"]
            .iter()
            .any(|w| text.contains(w))
}

/// An SSH connection failed: bollard runs `ssh DEST docker system dial-stdio`, as the docker
/// CLI does, so the usual causes are ssh itself (keys, host key) or no docker CLI there.
fn explain_ssh(destination: &str, err: &bollard::errors::Error) -> String {
    format!(
        "{}; compose-shard reaches an engine over SSH as the docker CLI does (`ssh {destination} docker system dial-stdio`): check that `ssh {destination} docker version` works without a prompt (keys or an agent, known host key) and that the docker CLI is installed there, or forward the engine's socket (`ssh -NL /tmp/docker.sock:/var/run/docker.sock {destination}`) and use unix:///tmp/docker.sock",
        crate::errors::render_chain(err)
    )
}

/// Why the daemon at `endpoint` did not answer, and what to do.
fn explain_unreachable(endpoint: &str, err: &bollard::errors::Error) -> String {
    use std::io::ErrorKind;
    let socket = endpoint.strip_prefix("unix://");
    if let bollard::errors::Error::SocketNotFoundError(path) = err {
        return format!(
            "no socket at {path}; start the daemon (`sudo systemctl start docker`, or `dockerd &`) or point DOCKER_HOST at the socket it listens on"
        );
    }
    let io = match err {
        bollard::errors::Error::IOError { err } => Some(err),
        other => io_source(other),
    };
    let Some(io) = io else {
        return match err {
            bollard::errors::Error::RequestTimeoutError => {
                "the daemon did not answer in time; check that it is not hung (`docker info`)".into()
            }
            bollard::errors::Error::DockerResponseServerError { message, .. }
                if message.contains("HTTPS server") =>
            {
                format!(
                    "the engine at {endpoint} speaks TLS; set DOCKER_TLS_VERIFY=1 with its ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH (or use https://), or use a Docker context that holds them"
                )
            }
            other => format!(
                "{}; something answered, but not as a Docker daemon does: check that DOCKER_HOST points at the daemon",
                crate::errors::render_chain(other)
            ),
        };
    };
    match (socket, io.kind()) {
        (Some(path), ErrorKind::PermissionDenied) => format!(
            "permission denied on {path}; run as a user in the `docker` group (`sudo usermod -aG docker $USER`, then log in again) or as root"
        ),
        (Some(path), ErrorKind::ConnectionRefused) => format!(
            "the socket {path} exists but nothing listens on it (the daemon stopped or crashed); restart it (`sudo systemctl restart docker`)"
        ),
        (Some(path), _) => format!("{path}: {io}; check that the daemon is running"),
        (None, ErrorKind::ConnectionRefused) => format!(
            "nothing listens at {endpoint} (connection refused); is the daemon started with `-H {endpoint}` and is the port right? A local daemon usually listens on unix:///var/run/docker.sock instead: unset DOCKER_HOST to use it"
        ),
        (None, ErrorKind::TimedOut) => format!(
            "{endpoint} did not answer (timed out); check the host name, the port and that no firewall drops the connection"
        ),
        (None, _) => format!(
            "{io}; check the host name and port in DOCKER_HOST and that the daemon listens there"
        ),
    }
}

/// The I/O error underneath a bollard error, if any (connection errors are wrapped by hyper).
fn io_source<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

/// An [`EngineError::Io`] maker for `action` on `path` (`.map_err(io_error("read", path))`).
pub(crate) fn io_error(
    action: &str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> EngineError {
    let action = action.to_string();
    let path = path.to_path_buf();
    move |source| EngineError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    async fn connect_error(host: &str) -> String {
        let address = crate::engine::EngineAddress::parse_url(
            host,
            "test",
            &crate::engine::EngineEnv::default(),
        )
        .unwrap();
        match crate::engine::DockerEngine::connect_to(&address).await {
            Ok(_) => panic!("{host} answered"),
            Err(err) => err.to_string(),
        }
    }

    #[tokio::test]
    async fn refused_tcp_connection_says_nothing_listens_not_start_it() {
        let host = format!("tcp://127.0.0.1:{}", closed_port());
        let message = connect_error(&host).await;
        assert!(
            message.contains(&format!("nothing listens at {host}")),
            "{message}"
        );
        assert!(message.contains(&format!("-H {host}")), "{message}");
        assert!(!message.contains("hyper legacy client"), "{message}");
    }

    #[tokio::test]
    async fn ssh_failure_says_what_compose_shard_runs_and_the_socket_alternative() {
        // No sshd listens on this machine's loopback: ssh fails at once (BatchMode, no prompt).
        let host = "ssh://nobody@127.0.0.1";
        let message = connect_error(host).await;
        assert!(
            message.starts_with(&format!("cannot connect to the Docker daemon at {host}:")),
            "{message}"
        );
        assert!(message.contains("docker system dial-stdio"), "{message}");
        assert!(message.contains("ssh -NL"), "{message}");
    }

    #[tokio::test]
    async fn missing_unix_socket_says_where_and_to_start_the_daemon() {
        let message = connect_error("unix:///nonexistent/docker.sock").await;
        assert!(
            message.contains("no socket at /nonexistent/docker.sock"),
            "{message}"
        );
        assert!(message.contains("start the daemon"), "{message}");
    }
}
