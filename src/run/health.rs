//! Healthchecks compose-shard runs itself.
//!
//! The engine runs a container's healthcheck every `interval` for as long as the container
//! lives: at N groups, N copies of every checked service are probed through the whole run
//! (measured on a 2-core machine: 4 groups of PostgreSQL and Redis with 1 s intervals kept
//! about 0.55 of a CPU busy with probes during the tests), although a run needs each
//! service's health once, when a dependent waits for `service_healthy`. So the engine's
//! healthcheck is turned off in the containers of a run (kept environments keep it) and the
//! same test runs here through exec until it passes, by the same rule as the engine's: a
//! success is healthy; failures count after `start_period`, and `retries` of them,
//! `interval` apart at the engine's pace, are unhealthy.

use std::time::Duration;

use tokio::time::Instant;

use super::backend::Backend;
use super::outcome::{EnvironmentFailure, FailureCause};
use super::startup::{failure, healthcheck_passes, healthcheck_test, probe_ports, Timing};
use crate::compose::Service;
use crate::engine::ImageConfig;

/// The engine's defaults for what a healthcheck leaves unset.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;

/// The first pause between two looks at a starting service; each pause is half as long
/// again as the one before, up to the poll interval or the healthcheck's interval.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// A service's healthcheck as the engine would run it: the compose file's test and timing
/// over its image's, the engine's defaults for the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRule {
    /// The command to run in the container.
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

impl HealthRule {
    /// The rule for `service`, or `None` when it has no test to run (none, or disabled).
    pub fn of(service: &Service, image: Option<&ImageConfig>) -> Option<HealthRule> {
        let command = healthcheck_test(service, image)?;
        let own = service.healthcheck.as_ref();
        let from_image = image.map(|i| i.healthcheck_timing).unwrap_or_default();
        let seconds = |s: Option<f64>| {
            s.filter(|s| *s > 0.0 && s.is_finite())
                .map(Duration::from_secs_f64)
        };
        Some(HealthRule {
            command,
            interval: seconds(own.and_then(|h| h.interval))
                .or(from_image.interval)
                .unwrap_or(DEFAULT_INTERVAL),
            timeout: seconds(own.and_then(|h| h.timeout))
                .or(from_image.timeout)
                .unwrap_or(DEFAULT_TIMEOUT),
            retries: own
                .and_then(|h| h.retries)
                .filter(|r| *r > 0)
                .map(|r| r.min(u64::from(u32::MAX)) as u32)
                .or(from_image.retries)
                .unwrap_or(DEFAULT_RETRIES),
            start_period: seconds(own.and_then(|h| h.start_period))
                .or(from_image.start_period)
                .unwrap_or_default(),
        })
    }

    /// Whether the service is unhealthy: `failures` failed runs after the start period, and
    /// as long since the container started as the engine would have taken to count
    /// `retries` of them (one every `interval`, after `start_period`). Runs here come
    /// sooner than the engine's; a failure is never called sooner than the engine would.
    pub fn unhealthy(&self, running_for: Duration, failures: u32) -> bool {
        failures >= self.retries && running_for >= self.start_period + self.interval * self.retries
    }

    /// Whether to run the test now: at once where the service declares no TCP port, else
    /// once one accepts connections (told from here at no cost to the service), or from
    /// the moment the engine's own first run would have come.
    pub fn may_run(&self, running_for: Duration, has_ports: bool, listening: bool) -> bool {
        !has_ports || listening || running_for >= self.interval
    }

    /// The pause after `pause`: half as long again, at most the healthcheck's interval and
    /// the run's poll interval.
    pub fn next_pause(&self, pause: Duration, poll: Duration) -> Duration {
        (pause * 3 / 2)
            .min(self.interval)
            .min(poll.max(FIRST_PAUSE))
    }
}

/// Wait until the service's healthcheck passes, running it here ([`HealthRule`]).
pub(super) async fn wait_healthy_here<B: Backend>(
    backend: &B,
    service: &Service,
    container: &str,
    image: Option<&ImageConfig>,
    timing: Timing,
) -> Result<(), EnvironmentFailure> {
    let fail = |reason, status| failure(backend, &service.name, container, reason, status);
    let Some(rule) = HealthRule::of(service, image) else {
        return Err(fail(FailureCause::NoHealthcheck, None).await);
    };
    let ports = probe_ports(service, image);
    let mut running_since: Option<Instant> = None;
    let mut failures = 0;
    let mut pause = FIRST_PAUSE.min(rule.interval);
    loop {
        let status = backend
            .status(container)
            .await
            .map_err(EnvironmentFailure::engine)?;
        if status.has_exited() {
            return Err(fail(FailureCause::ExitedBeforeHealthy, Some(&status)).await);
        }
        if status.running {
            let since = *running_since.get_or_insert_with(Instant::now);
            let has_ports = !ports.ports.is_empty();
            let listening = has_ports
                && since.elapsed() < rule.interval
                && ports
                    .open(backend, &status, super::startup::HEALTH_PORT_PROBE_LIMIT)
                    .await;
            if rule.may_run(since.elapsed(), has_ports, listening) {
                if healthcheck_passes(backend, container, &rule.command, rule.timeout).await {
                    return Ok(());
                }
                if since.elapsed() >= rule.start_period {
                    failures += 1;
                }
                if rule.unhealthy(since.elapsed(), failures) {
                    return Err(fail(FailureCause::Unhealthy, Some(&status)).await);
                }
            }
        }
        if Instant::now() >= timing.deadline {
            return Err(fail(FailureCause::NotHealthyInTime, Some(&status)).await);
        }
        tokio::time::sleep(pause).await;
        pause = rule.next_pause(pause, timing.poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::Healthcheck;
    use crate::engine::HealthTiming;

    fn service(healthcheck: Option<Healthcheck>) -> Service {
        Service {
            name: "db".into(),
            healthcheck,
            ..Default::default()
        }
    }

    fn check(test: &[&str]) -> Healthcheck {
        Healthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_rule_takes_the_compose_timing_over_the_image_and_the_engine_defaults_for_the_rest() {
        let mut own = check(&["CMD-SHELL", "pg_isready"]);
        own.interval = Some(1.0);
        own.retries = Some(0); // 0 is unset for the engine too
        let image = ImageConfig {
            healthcheck_timing: HealthTiming {
                interval: Some(Duration::from_secs(7)),
                timeout: Some(Duration::from_secs(4)),
                retries: Some(5),
                start_period: None,
            },
            ..Default::default()
        };
        let rule = HealthRule::of(&service(Some(own)), Some(&image)).unwrap();
        assert_eq!(rule.command, vec!["/bin/sh", "-c", "pg_isready"]);
        assert_eq!(rule.interval, Duration::from_secs(1));
        assert_eq!(rule.timeout, Duration::from_secs(4));
        assert_eq!(rule.retries, 5);
        assert_eq!(rule.start_period, Duration::ZERO);

        let bare = HealthRule::of(&service(Some(check(&["CMD", "true"]))), None).unwrap();
        assert_eq!(
            (bare.interval, bare.timeout, bare.retries),
            (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_RETRIES)
        );
    }

    #[test]
    fn the_image_test_applies_when_the_compose_file_has_none_and_disabled_means_no_rule() {
        let image = ImageConfig {
            healthcheck_test: Some(vec!["CMD".into(), "redis-cli".into(), "ping".into()]),
            ..Default::default()
        };
        let rule = HealthRule::of(&service(None), Some(&image)).unwrap();
        assert_eq!(rule.command, vec!["redis-cli", "ping"]);
        assert_eq!(
            HealthRule::of(&service(Some(check(&["NONE"]))), Some(&image)),
            None
        );
        assert_eq!(HealthRule::of(&service(None), None), None);
    }

    fn rule(interval: u64, retries: u32, start_period: u64) -> HealthRule {
        HealthRule {
            command: vec!["true".into()],
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(30),
            retries,
            start_period: Duration::from_secs(start_period),
        }
    }

    #[test]
    fn unhealthy_never_sooner_than_the_engine_would_say_so() {
        let r = rule(2, 3, 10);
        let s = Duration::from_secs;
        // Many quick failures early are not enough: the engine would still be counting.
        assert!(!r.unhealthy(s(5), 40));
        assert!(!r.unhealthy(s(15), 40));
        // Start period plus three intervals, and three counted failures.
        assert!(r.unhealthy(s(16), 3));
        assert!(!r.unhealthy(s(16), 2));
        assert!(!r.unhealthy(s(100), 0));
    }

    #[test]
    fn the_test_runs_at_once_without_ports_once_a_port_listens_or_from_the_engines_first_run() {
        let r = rule(2, 3, 0);
        let ms = Duration::from_millis;
        assert!(r.may_run(ms(0), false, false));
        assert!(!r.may_run(ms(300), true, false));
        assert!(r.may_run(ms(300), true, true));
        assert!(r.may_run(ms(2000), true, false));
    }

    #[test]
    fn pauses_grow_by_half_up_to_the_interval_and_the_poll() {
        let ms = Duration::from_millis;
        let r = rule(1, 3, 0);
        assert_eq!(r.next_pause(ms(100), ms(500)), ms(150));
        assert_eq!(r.next_pause(ms(400), ms(500)), ms(500));
        let short = HealthRule {
            interval: ms(200),
            ..rule(1, 3, 0)
        };
        assert_eq!(short.next_pause(ms(180), ms(500)), ms(200));
        // A tiny poll interval still leaves the first pause between runs.
        assert_eq!(r.next_pause(ms(100), ms(10)), ms(100));
    }
}
