//! What earlier runs measured about the environments, kept beside the durations file
//! (`.compose-shard-timings.json`) so `--groups auto` can predict start-up: seconds until one
//! environment alone is ready and seconds one group's pytest takes to collect, both
//! normalised to one group on the engine's CPUs (see [`super::auto_groups`]).

use serde::{Deserialize, Serialize};

use crate::machine::CpuSample;
use crate::report::{Phase, PhaseSpan};

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
    /// busy for [`super::auto_groups::HOST_SATURATED`] or more of the time the groups were
    /// testing, `load`), and the tests that failed.
    pub fn with_tests(
        mut self,
        cpu_wall: &[(f64, f64)],
        (cpus, load): (usize, Option<TestingLoad>),
        failed: Vec<String>,
    ) -> Self {
        let (cpu, wall) = cpu_wall
            .iter()
            .fold((0.0, 0.0), |(c, w), (gc, gw)| (c + gc, w + gw));
        let saturated = load.is_some_and(|l| l.busy >= super::auto_groups::HOST_SATURATED);
        // What each group cost the host's CPUs while testing, the services its tests wait on
        // included.
        let host_share = load.map_or(0.0, |l| {
            super::auto_groups::cpus_per_group(l.busy, cpus, l.groups)
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

/// What the host's CPUs did while the groups of a run were testing and nothing else was
/// under way (see [`testing_load`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestingLoad {
    /// The share of the host's CPU time that was busy.
    pub busy: f64,
    /// How many groups were testing, on average over that time.
    pub groups: f64,
}

/// Seconds of such time a run needs before its load is taken.
const LOAD_MEASURED_OVER: f64 = 1.0;

/// The host's load while testing, from its CPU counters as read during the run (`trace`:
/// seconds since the run started, counters) and each group's phases: only the stretches
/// between two readings where at least one group tested throughout and no group was
/// setting up, collecting, copying results or tearing down (a later group's setup beside
/// the first group's tests, a short run's start-up and teardown, would otherwise read as
/// tests that compute). `None` when such stretches add up to less than a second.
pub fn testing_load(trace: &[(f64, CpuSample)], groups: &[&[PhaseSpan]]) -> Option<TestingLoad> {
    let (mut busy, mut total, mut seconds, mut group_seconds) = (0u64, 0u64, 0.0, 0.0);
    for pair in trace.windows(2) {
        let ((from, a), (to, b)) = (pair[0], pair[1]);
        let overlaps = |p: &PhaseSpan| p.start < to && p.end > from;
        let mut testing = 0usize;
        let mut clean = true;
        for phase in groups.iter().flat_map(|g| g.iter()).filter(|p| overlaps(p)) {
            match phase.phase {
                // Nothing of the group's own runs then (a group that joins a growing run
                // shows the time before it as images, while the others test).
                Phase::Waiting | Phase::Images => {}
                Phase::Tests if phase.start <= from && phase.end >= to => testing += 1,
                _ => clean = false,
            }
        }
        let Some((b_busy, b_total)) = a.ticks_until(&b) else {
            continue;
        };
        if clean && testing > 0 {
            busy += b_busy;
            total += b_total;
            seconds += to - from;
            group_seconds += testing as f64 * (to - from);
        }
    }
    (seconds >= LOAD_MEASURED_OVER && total > 0).then(|| TestingLoad {
        busy: busy as f64 / total as f64,
        groups: group_seconds / seconds,
    })
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

    fn load(busy: f64, groups: f64) -> Option<TestingLoad> {
        Some(TestingLoad { busy, groups })
    }

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
            (2, load(0.1, 2.0)),
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
            .with_tests(&[(8.4, 30.0); 4], (2, load(0.95, 4.0)), Vec::new());
        assert_eq!(host.cpu_fraction, Some(1.0));
        let calm = t
            .clone()
            .with_tests(&[(8.4, 30.0); 4], (2, load(0.3, 4.0)), Vec::new());
        assert!((calm.cpu_fraction.unwrap() - 0.28).abs() < 1e-9);
        // The host 70 % busy with those four groups: each cost 0.35 CPU, more than its tests.
        let dear = t
            .clone()
            .with_tests(&[(8.4, 30.0); 4], (2, load(0.7, 4.0)), Vec::new());
        assert!((dear.cpu_fraction.unwrap() - 0.35).abs() < 1e-9);
        assert_eq!(RunTimings::parse(&with.to_json()), Some(with.clone()));
        // One short test (mostly start-up, the host busy setting up): no share measured, and
        // the one a longer run measured is kept.
        let short = t
            .clone()
            .with_tests(&[(0.5, 4.8)], (2, load(0.9, 1.0)), Vec::new());
        assert_eq!(short.cpu_fraction, None);
        // The bar is twice one environment's start-up (4.5 + 1.25 s here) per group.
        let under = |secs: f64| {
            t.clone()
                .with_tests(&[(0.1, secs); 2], (2, load(0.1, 2.0)), vec![])
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

    /// Counters read every 0.2 s for `seconds` on 2 CPUs at 100 ticks a second, busy as
    /// `busy_at` says for each stretch.
    fn trace(seconds: f64, busy_at: impl Fn(f64) -> f64) -> Vec<(f64, CpuSample)> {
        let (mut busy, mut total) = (0u64, 0u64);
        let mut out = vec![(0.0, CpuSample::new(0, 0))];
        let steps = (seconds / 0.2).round() as usize;
        for i in 1..=steps {
            let (from, to) = ((i - 1) as f64 * 0.2, i as f64 * 0.2);
            total += 40;
            busy += (40.0 * busy_at((from + to) / 2.0)).round() as u64;
            out.push((to, CpuSample::new(busy, total)));
        }
        out
    }

    fn phases(list: &[(Phase, f64, f64)]) -> Vec<PhaseSpan> {
        list.iter()
            .map(|&(phase, start, end)| PhaseSpan { phase, start, end })
            .collect()
    }

    #[test]
    fn the_load_is_taken_where_every_group_tests_and_none_sets_up() {
        use Phase::*;
        // One group: a busy start-up (90 %) and teardown, tests that wait (10 %). Over the
        // whole run the host read 40 % busy; while testing it was 10 %.
        let one = phases(&[
            (Environment, 0.0, 1.0),
            (Readiness, 1.0, 1.5),
            (Collection, 1.5, 2.2),
            (Tests, 2.2, 7.4),
            (Teardown, 7.4, 8.0),
        ]);
        let busy = |t: f64| if (2.2..7.4).contains(&t) { 0.1 } else { 0.9 };
        let load = testing_load(&trace(8.0, busy), &[&one]).unwrap();
        assert!((load.busy - 0.1).abs() < 1e-9, "{load:?}");
        assert_eq!(load.groups, 1.0);
        // Two groups in turns: the second sets up (busy) while the first tests; only the
        // time both test counts, with two groups testing.
        let first = phases(&[(Environment, 0.0, 2.2), (Tests, 2.2, 12.0)]);
        let second = phases(&[
            (Waiting, 0.0, 1.5),
            (Environment, 1.5, 4.4),
            (Tests, 4.4, 11.0),
            (Teardown, 11.0, 12.0),
        ]);
        let busy = |t: f64| if (4.4..11.0).contains(&t) { 0.2 } else { 0.95 };
        let load = testing_load(&trace(12.4, busy), &[&first, &second]).unwrap();
        assert!((load.busy - 0.2).abs() < 1e-9, "{load:?}");
        assert_eq!(load.groups, 2.0);
        // A group that joined a growing run at 6 s (its images span before it): one group
        // tests until it joins, two after its setup.
        let joined = phases(&[
            (Images, 0.0, 6.0),
            (Environment, 6.0, 8.0),
            (Tests, 8.0, 12.0),
        ]);
        let busy = |t: f64| if (6.0..8.0).contains(&t) { 0.9 } else { 0.1 };
        let load = testing_load(&trace(12.0, busy), &[&first, &joined]).unwrap();
        assert!((load.busy - 0.1).abs() < 1e-9, "{load:?}");
        assert!(
            (load.groups - (4.0 * 1.0 + 4.0 * 2.0) / 8.0).abs() < 0.06,
            "{load:?}"
        );
        // Less than a second of such time (a one-test run): nothing is taken.
        let short = phases(&[
            (Environment, 0.0, 2.0),
            (Tests, 2.0, 2.7),
            (Teardown, 2.7, 3.0),
        ]);
        assert_eq!(testing_load(&trace(3.0, |_| 0.5), &[&short]), None);
        assert_eq!(testing_load(&[], &[&short]), None);
    }

    #[test]
    fn a_short_run_after_a_full_one_keeps_the_waiting_share() {
        // A one-group run of a few tests that wait, long enough to be measured: its start-up
        // kept the host busy, but the share comes from its tests alone, so the next run still
        // starts its environments in turns (it read 0.6 over the whole run before).
        let t = RunTimings {
            environment_seconds: 1.4,
            collection_seconds: 0.8,
            cpu_fraction: None,
            failed: Vec::new(),
        };
        let run = phases(&[
            (Phase::Environment, 0.0, 1.4),
            (Phase::Collection, 1.4, 2.2),
            (Phase::Tests, 2.2, 7.4),
            (Phase::Teardown, 7.4, 7.8),
        ]);
        let busy = |t: f64| if (2.2..7.4).contains(&t) { 0.05 } else { 0.9 };
        let load = testing_load(&trace(7.8, busy), &[&run]);
        let measured = t.with_tests(&[(0.2, 5.2)], (2, load), Vec::new());
        let share = measured.cpu_fraction.unwrap();
        assert!(
            share <= 0.25,
            "{share}: four groups would start all at once"
        );
    }

    #[test]
    fn a_four_group_run_is_normalised_to_one_group() {
        let t = RunTimings::from_run(&[7.0, 7.5, 8.0, 9.0], &[2.0, 2.0, 2.0, 2.0], 4, 2).unwrap();
        assert!((t.environment_seconds - 8.0 / 1.5).abs() < 1e-9);
        assert!((t.collection_seconds - 1.0).abs() < 1e-9);
    }
}
