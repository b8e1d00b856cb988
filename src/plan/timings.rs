//! What earlier runs measured about the environments, kept beside the durations file
//! (`.compose-shard-timings.json`) so `--groups auto` can predict start-up: seconds until one
//! environment alone is ready and seconds one group's pytest takes to collect, both
//! normalised to one group on the engine's CPUs (see [`super::auto_groups`]).

use serde::{Deserialize, Serialize};

/// The file's name, in the durations file's folder.
pub const TIMINGS_FILE: &str = ".compose-shard-timings.json";

/// Measured start-up figures, and what the last run's tests were like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTimings {
    /// Seconds until one environment alone is ready.
    pub environment_seconds: f64,
    /// Seconds one group's pytest takes to collect.
    pub collection_seconds: f64,
    /// CPU seconds the test processes spent per wall second of their tests (0: they wait on
    /// services or the network, 1: they compute), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_fraction: Option<f64>,
    /// The tests that failed in that run (to tell a test that fails now but passed then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

impl RunTimings {
    /// Parse the file; `None` for anything that is not a valid, finite, non-negative record
    /// (the figures only steer a prediction: a bad file falls back to the defaults).
    pub fn parse(text: &str) -> Option<RunTimings> {
        let mut t: RunTimings = serde_json::from_str(text).ok()?;
        let ok = |v: f64| v.is_finite() && (0.0..1e6).contains(&v);
        t.cpu_fraction = t.cpu_fraction.filter(|f| f.is_finite() && *f >= 0.0);
        (ok(t.environment_seconds) && ok(t.collection_seconds)).then_some(t)
    }

    /// The record in the file at `path`, if there is a valid one (see [`RunTimings::parse`]).
    pub fn read(path: &std::path::Path) -> Option<RunTimings> {
        RunTimings::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// The file's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// From one run of `groups` groups on `cpus` CPUs: the median environment and collection
    /// times of its groups, normalised to one group.
    pub fn from_run(
        environment: &[f64],
        collection: &[f64],
        groups: usize,
        cpus: usize,
    ) -> Option<Self> {
        Some(RunTimings {
            environment_seconds: median(environment)?
                / super::auto_groups::start_slowdown(groups, cpus),
            collection_seconds: median(collection)?
                / super::auto_groups::collect_slowdown(groups, cpus),
            cpu_fraction: None,
            failed: Vec::new(),
        })
    }

    /// With what the run's tests were like: their CPU and wall seconds per group on an
    /// engine of `cpus` CPUs (the share as a demand: see
    /// [`super::auto_groups::demand_share`]; taken as computing when the host's CPUs were
    /// busy for `host_busy` >= [`super::auto_groups::HOST_SATURATED`] of the run), and the
    /// tests that failed.
    pub fn with_tests(
        mut self,
        cpu_wall: &[(f64, f64)],
        (cpus, host_busy): (usize, Option<f64>),
        failed: Vec<String>,
    ) -> Self {
        let (cpu, wall) = cpu_wall
            .iter()
            .fold((0.0, 0.0), |(c, w), (gc, gw)| (c + gc, w + gw));
        let saturated = host_busy.is_some_and(|b| b >= super::auto_groups::HOST_SATURATED);
        // What each group cost the host's CPUs, the services its tests wait on included.
        let host_share = host_busy.map_or(0.0, |b| {
            super::auto_groups::cpus_per_group(b, cpus, cpu_wall.len())
        });
        // A short run (one test to reproduce a failure) is mostly start-up: the host's CPUs
        // were busy setting up, which says nothing about the tests; it keeps what a longer
        // run measured (see [`RunTimings::or_kept`]).
        let per_group = wall / cpu_wall.len().max(1) as f64;
        let start_up = self.environment_seconds + self.collection_seconds;
        self.cpu_fraction = (per_group >= (MEASURED_ENOUGH * start_up).max(1.0)).then(|| {
            if saturated {
                1.0
            } else {
                super::auto_groups::demand_share(cpu / wall, cpu_wall.len(), cpus)
                    .max(host_share)
                    .min(1.0)
            }
        });
        self.failed = failed;
        self
    }
}

/// Seconds of tests per group, in start-ups of one environment, a run needs before its
/// tests' CPU share is taken: with twice, the tests fill at least two thirds of the time the
/// host's CPUs were measured over.
pub const MEASURED_ENOUGH: f64 = 2.0;

impl RunTimings {
    /// This run's figures, keeping the tests' CPU share `earlier` measured when this run was
    /// too short to measure it.
    pub fn or_kept(mut self, earlier: Option<&RunTimings>) -> Self {
        if self.cpu_fraction.is_none() {
            self.cpu_fraction = earlier.and_then(|e| e.cpu_fraction);
        }
        self
    }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_nonsense() {
        let t = RunTimings {
            environment_seconds: 4.5,
            collection_seconds: 1.25,
            cpu_fraction: None,
            failed: Vec::new(),
        };
        assert_eq!(RunTimings::parse(&t.to_json()), Some(t.clone()));
        // An older file without the tests' figures still reads.
        assert_eq!(
            RunTimings::parse("{\"environment_seconds\": 4.5, \"collection_seconds\": 1.25}"),
            Some(t.clone())
        );
        let with = t.clone().with_tests(
            &[(3.0, 30.0), (1.0, 10.0)],
            (2, Some(0.1)),
            vec!["t.py::a".into()],
        );
        assert_eq!(with.cpu_fraction, Some(0.1));
        // Five groups on 2 CPUs that read 33 % each kept the CPUs busy: taken as computing.
        let busy = t
            .clone()
            .with_tests(&[(10.0, 30.0); 5], (2, None), Vec::new());
        assert_eq!(busy.cpu_fraction, Some(1.0));
        // Four groups reading 28 % (1.1 CPUs) while the host was 95 % busy (the databases
        // they wait on use the same CPUs): the same.
        let host = t
            .clone()
            .with_tests(&[(8.4, 30.0); 4], (2, Some(0.95)), Vec::new());
        assert_eq!(host.cpu_fraction, Some(1.0));
        let calm = t
            .clone()
            .with_tests(&[(8.4, 30.0); 4], (2, Some(0.3)), Vec::new());
        assert!((calm.cpu_fraction.unwrap() - 0.28).abs() < 1e-9);
        // The host 70 % busy with those four groups: each cost 0.35 CPU, more than its tests.
        let dear = t
            .clone()
            .with_tests(&[(8.4, 30.0); 4], (2, Some(0.7)), Vec::new());
        assert!((dear.cpu_fraction.unwrap() - 0.35).abs() < 1e-9);
        assert_eq!(RunTimings::parse(&with.to_json()), Some(with.clone()));
        // One short test (mostly start-up, the host busy setting up): no share measured, and
        // the one a longer run measured is kept.
        let short = t
            .clone()
            .with_tests(&[(0.5, 4.8)], (2, Some(0.9)), Vec::new());
        assert_eq!(short.cpu_fraction, None);
        // The bar is twice one environment's start-up (4.5 + 1.25 s here) per group.
        let under = |secs: f64| {
            t.clone()
                .with_tests(&[(0.1, secs); 2], (2, Some(0.1)), vec![])
        };
        assert_eq!(under(11.0).cpu_fraction, None);
        assert!(under(12.0).cpu_fraction.is_some());
        assert_eq!(short.clone().or_kept(Some(&with)).cpu_fraction, Some(0.1));
        assert_eq!(short.or_kept(None).cpu_fraction, None);
        assert_eq!(
            with.clone().or_kept(Some(&busy)).cpu_fraction,
            Some(0.1),
            "a measured share replaces the earlier one"
        );
        assert_eq!(
            RunTimings::parse("{\"environment_seconds\": -1, \"collection_seconds\": 1}"),
            None
        );
        assert_eq!(RunTimings::parse("[]"), None);
    }

    #[test]
    fn a_four_group_run_is_normalised_to_one_group() {
        let t = RunTimings::from_run(&[7.0, 7.5, 8.0, 9.0], &[2.0, 2.0, 2.0, 2.0], 4, 2).unwrap();
        assert!((t.environment_seconds - 8.0 / 1.5).abs() < 1e-9);
        assert!((t.collection_seconds - 1.0).abs() < 1e-9);
    }
}
