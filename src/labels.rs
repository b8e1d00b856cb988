//! Label keys put on everything a run creates, so leftovers can always be found and removed.
//!
//! Docker Compose's own labels are set too (so `docker compose ls`/`ps` understand the
//! groups); ours add the run id and the group. [`run_id`] makes the id.

/// Compose: the project name (`<base>-<run>-g<k>`).
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
/// Compose: the service name.
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
/// Compose: the container number within the service (always 1 here).
pub const COMPOSE_CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// Compose: whether the container is a one-off (`run`) container.
pub const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";
/// Compose: the network key on a network.
pub const COMPOSE_NETWORK: &str = "com.docker.compose.network";
/// Compose: the volume key on a volume.
pub const COMPOSE_VOLUME: &str = "com.docker.compose.volume";

/// compose-shard: marks every resource a run created (value `true`).
pub const MANAGED: &str = "dev.compose-shard.managed";
/// compose-shard: the run id.
pub const RUN: &str = "dev.compose-shard.run";
/// compose-shard: the 1-based group number.
pub const GROUP: &str = "dev.compose-shard.group";
/// compose-shard: the original project name.
pub const BASE_PROJECT: &str = "dev.compose-shard.base-project";
/// compose-shard: the pid of the process that created the resource (for leftover warnings).
pub const PID: &str = "dev.compose-shard.pid";

/// compose-shard: on a snapshot's template volume, the snapshot's key (kept across runs,
/// removed by `clean --snapshots`).
pub const SNAPSHOT: &str = "dev.compose-shard.snapshot";

/// A short id, unique per run: part of every engine-side name and label ([`RUN`]).
pub fn run_id() -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::digest(format!("{nanos}-{}", std::process::id()).as_bytes());
    hex::encode(&digest[..3])
}
