//! Errors from the Docker engine. Each says what was being attempted, because a raw bollard
//! error ("404 page not found") does not tell a user which resource or step failed.

use std::path::PathBuf;

/// Errors from the Docker engine, each saying what was being attempted.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The daemon could not be reached.
    #[error("cannot connect to the Docker daemon at {endpoint}: {message}; is it running? Start it (e.g. `sudo systemctl start docker` or `dockerd &`) or set DOCKER_HOST")]
    Unreachable {
        /// Where we tried.
        endpoint: String,
        /// The underlying error.
        message: String,
    },
    /// A Docker API call failed.
    #[error("failed to {action}: {source}")]
    Api {
        /// What was attempted, naming the resource ("create network proj-g2_default").
        action: String,
        /// The bollard error.
        source: bollard::errors::Error,
    },
    /// An image is neither present locally nor pullable.
    #[error("image {image} is not available: {message}; build or load it (e.g. `docker load`, `docker build -t {image} .`) or check the name")]
    ImageUnavailable {
        /// The image reference.
        image: String,
        /// Why the pull failed.
        message: String,
    },
    /// `docker build` reported an error.
    #[error("failed to build image {image} for service {service}: {message}")]
    Build {
        /// The tag being built.
        image: String,
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
    /// Wrap a bollard error with what was being attempted.
    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let action = action.into();
        move |source| EngineError::Api { action, source }
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
