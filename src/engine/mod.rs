//! The Docker engine: the only module that uses bollard. Everything else speaks our own types.

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
}
