//! Which Docker engines a command uses: the engines it was told to use (by `--docker-host`,
//! repeatable, or `docker-hosts` in `[tool.compose-shard]`: the settings decide which, see
//! `config::resolve::docker_hosts`), else the default engine (`DOCKER_HOST`, `DOCKER_CONTEXT`,
//! the docker config's current context, the default socket).
//!
//! A bad value given by flag or setting is a usage error (exit 2) naming it and where it came
//! from; a bad `DOCKER_HOST` stays an environment error (exit 3), as before multi-engine
//! support. The same engine named twice is refused: its groups would be counted twice.

use super::address::{AddressError, EngineAddress, EngineEnv};
use super::error::EngineError;

/// Why the engines to use cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum EngineListError {
    /// A named engine is not a usable address (a usage error).
    #[error(transparent)]
    Named(AddressError),
    /// The same engine is named twice (a usage error).
    #[error(
        "{origin} names the engine {url} twice ({earlier} and {value:?}); list each engine once"
    )]
    Twice {
        /// Where the engines were named.
        origin: String,
        /// The engine's URL.
        url: String,
        /// The first value naming it.
        earlier: String,
        /// The second value naming it.
        value: String,
    },
    /// No engine was named and the default one is unusable (an environment error).
    #[error(transparent)]
    Default(EngineError),
}

/// The engines to use, in the order given; never empty. `named` are the engines the command
/// was told to use (URLs or Docker context names), `origin` where they were named.
pub fn engine_addresses(
    named: &[String],
    origin: &str,
    env: &EngineEnv,
) -> Result<Vec<EngineAddress>, EngineListError> {
    if named.is_empty() {
        let address = EngineAddress::default_engine(env)
            .map_err(|e| EngineListError::Default(EngineError::from(e)))?;
        return Ok(vec![address]);
    }
    let mut addresses: Vec<EngineAddress> = Vec::new();
    for value in named {
        let address = EngineAddress::resolve(value, origin, env).map_err(EngineListError::Named)?;
        if let Some(earlier) = addresses.iter().find(|a| a.url() == address.url()) {
            return Err(EngineListError::Twice {
                origin: origin.to_string(),
                url: address.url().to_string(),
                earlier: earlier.to_string(),
                value: value.clone(),
            });
        }
        addresses.push(address);
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EngineEnv {
        EngineEnv {
            config_dir: "/nonexistent".into(),
            cert_path: "/nonexistent".into(),
            ..Default::default()
        }
    }

    fn urls(list: &[EngineAddress]) -> Vec<&str> {
        list.iter().map(EngineAddress::url).collect()
    }

    #[test]
    fn named_engines_win_over_the_default() {
        let named = vec!["unix:///a.sock".to_string(), "tcp://b:2375".to_string()];
        assert_eq!(
            urls(&engine_addresses(&named, "--docker-host", &env()).unwrap()),
            ["unix:///a.sock", "tcp://b:2375"]
        );
        let mut with_host = env();
        with_host.docker_host = Some("unix:///from-env.sock".into());
        assert_eq!(
            urls(&engine_addresses(&[], "--docker-host", &with_host).unwrap()),
            ["unix:///from-env.sock"]
        );
    }

    #[test]
    fn bad_and_duplicate_values_are_usage_errors_naming_their_origin() {
        let err = engine_addresses(
            &["tcp://a:1".into(), "http://a:1".into()],
            "--docker-host",
            &env(),
        )
        .unwrap_err();
        assert!(matches!(err, EngineListError::Twice { .. }));
        assert!(
            err.to_string().contains("names the engine tcp://a:1 twice"),
            "{err}"
        );
        let err = engine_addresses(
            &["garbage://x".into()],
            "docker-hosts in [tool.compose-shard]",
            &env(),
        )
        .unwrap_err();
        assert!(matches!(err, EngineListError::Named(_)));
        assert!(
            err.to_string().starts_with(
                "docker-hosts in [tool.compose-shard] \"garbage://x\": unknown scheme"
            ),
            "{err}"
        );
        let mut bad_env = env();
        bad_env.docker_host = Some("garbage://x".into());
        let err = engine_addresses(&[], "--docker-host", &bad_env).unwrap_err();
        assert!(
            matches!(err, EngineListError::Default(_)),
            "a bad DOCKER_HOST stays exit 3"
        );
    }
}
