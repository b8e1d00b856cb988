//! Which Docker engines a command uses: every `--docker-host` (URL or Docker context name,
//! repeatable), else `docker-hosts` in `[tool.compose-shard]`, else the default engine
//! (`DOCKER_HOST`, `DOCKER_CONTEXT`, the docker config's current context, the default socket).
//!
//! A bad value given by flag or setting is a usage error (exit 2) naming it and where it came
//! from; a bad `DOCKER_HOST` stays an environment error (exit 3), as before multi-engine
//! support. The same engine named twice is refused: its groups would be counted twice.

use super::address::{EngineAddress, EngineEnv};
use crate::errors::Error;
use crate::pyproject::Settings;

/// The engines to use, in the order given; never empty.
pub fn engine_addresses(
    flags: &[String],
    settings: &Settings,
    env: &EngineEnv,
) -> Result<Vec<EngineAddress>, Error> {
    let (values, origin) = if !flags.is_empty() {
        (flags, "--docker-host")
    } else {
        (
            settings.docker_hosts.as_slice(),
            "docker-hosts in [tool.compose-shard]",
        )
    };
    if values.is_empty() {
        let address =
            EngineAddress::default_engine(env).map_err(super::error::EngineError::from)?;
        return Ok(vec![address]);
    }
    let mut addresses: Vec<EngineAddress> = Vec::new();
    for value in values {
        let address =
            EngineAddress::resolve(value, origin, env).map_err(|e| Error::Usage(e.to_string()))?;
        if let Some(earlier) = addresses.iter().find(|a| a.url() == address.url()) {
            return Err(Error::Usage(format!(
                "{origin} names the engine {} twice ({earlier} and {value:?}); list each engine once",
                address.url()
            )));
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
    fn flags_win_over_settings_which_win_over_the_default() {
        let settings = Settings {
            docker_hosts: vec!["tcp://s1:2375".into(), "ssh://ci@s2".into()],
            ..Settings::default()
        };
        let flags = vec!["unix:///a.sock".to_string(), "tcp://b:2375".to_string()];
        assert_eq!(
            urls(&engine_addresses(&flags, &settings, &env()).unwrap()),
            ["unix:///a.sock", "tcp://b:2375"]
        );
        assert_eq!(
            urls(&engine_addresses(&[], &settings, &env()).unwrap()),
            ["tcp://s1:2375", "ssh://ci@s2"]
        );
        let mut with_host = env();
        with_host.docker_host = Some("unix:///from-env.sock".into());
        assert_eq!(
            urls(&engine_addresses(&[], &Settings::default(), &with_host).unwrap()),
            ["unix:///from-env.sock"]
        );
    }

    #[test]
    fn bad_and_duplicate_values_are_usage_errors_naming_their_origin() {
        let err = engine_addresses(
            &["tcp://a:1".into(), "http://a:1".into()],
            &Settings::default(),
            &env(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Usage(_)));
        assert!(
            err.to_string().contains("names the engine tcp://a:1 twice"),
            "{err}"
        );
        let settings = Settings {
            docker_hosts: vec!["garbage://x".into()],
            ..Settings::default()
        };
        let err = engine_addresses(&[], &settings, &env()).unwrap_err();
        assert!(matches!(err, Error::Usage(_)));
        assert!(
            err.to_string().starts_with(
                "docker-hosts in [tool.compose-shard] \"garbage://x\": unknown scheme"
            ),
            "{err}"
        );
        let mut bad_env = env();
        bad_env.docker_host = Some("garbage://x".into());
        let err = engine_addresses(&[], &Settings::default(), &bad_env).unwrap_err();
        assert!(
            matches!(err, Error::Engine(_)),
            "a bad DOCKER_HOST stays exit 3"
        );
    }
}
