//! `--groups auto`: the number of isolated environments that pays off.
//!
//! Every extra environment costs start-up (containers, a database initialisation, the test
//! container's own collection) and shares the engine's CPUs with the others; it pays back a
//! share of the test time. The predicted wall time for `n` groups on `c` CPUs is
//!
//! ```text
//! start(n)   = environment * (1 + (n - 1) / (3c))     measured: 4 environments on 2 cores
//!                                                      are ready ~1.4-1.6x later than one
//! collect(n) = collection * max(1, n / c)             every group collects, CPU-bound
//! tests(n)   = max(total / parallel(n), longest unit)
//! parallel(n)= min(n, c / f)                          f: CPU seconds per wall second of the
//!                                                      tests (the last run's measure, else 1)
//! ```
//!
//! and the choice is the smallest `n` whose prediction is within 5 % (and 1 s) of the best,
//! so a suite of a few seconds gets one group. It never exceeds the CPUs unless the last
//! run measured tests that mostly wait (f < 0.5: on the database, the network): more groups
//! than CPUs would only make computing tests slower (and timing-sensitive ones fail). Without
//! recorded durations nothing is known about the suite's size, and one group is chosen:
//! never slower than running it alone.

/// Conservative start-up of one environment when no earlier run measured it (seconds).
pub const DEFAULT_ENVIRONMENT_SECONDS: f64 = 10.0;
/// Conservative collection time of one group when no earlier run measured it (seconds).
pub const DEFAULT_COLLECTION_SECONDS: f64 = 2.0;

/// What the choice is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoInputs {
    /// Recorded test time of the whole suite (seconds), if any durations are recorded.
    pub test_seconds: Option<f64>,
    /// The longest unit that cannot be split (seconds).
    pub longest_unit: f64,
    /// Seconds until one environment alone is ready (measured earlier, or the default).
    pub environment_seconds: f64,
    /// Seconds one group's pytest takes to collect (measured earlier, or the default).
    pub collection_seconds: f64,
    /// CPUs of the engine.
    pub cpus: usize,
    /// The most groups memory allows.
    pub max_groups: usize,
    /// CPU seconds per wall second of the tests, as the last run measured them.
    pub cpu_fraction: Option<f64>,
}

/// Below this CPU share the tests wait more than they compute, and groups beyond the CPUs pay.
pub const WAITING: f64 = 0.5;

/// The share of the engine's CPUs the groups' tests used together at or above which a CPU
/// share measured over those groups says only what each group got.
pub const SATURATED: f64 = 0.75;

/// The share of the host's CPU time busy over a run at or above which the CPUs were the
/// limit, whatever the tests' own share: the services they wait on (a database answering
/// queries) run on the same CPUs.
pub const HOST_SATURATED: f64 = 0.85;

/// The CPUs each of `groups` groups (on average over the time, at least one) kept busy on a
/// host of `cpus` CPUs that was busy for `busy` of the time (0-1): what a group costs the
/// host, the services its tests wait on included.
pub fn cpus_per_group(busy: f64, cpus: usize, groups: f64) -> f64 {
    busy * cpus.max(1) as f64 / groups.max(1.0)
}

/// The tests' CPU share as a demand, from `measured` over `groups` groups on `cpus` CPUs:
/// when the groups' tests together kept the CPUs busy (`groups x measured >= SATURATED x
/// cpus`) each got what the others left, and tests that compute would have read the same as
/// tests that wait: they are taken to compute (1). Without this, a run with too many groups
/// read a low share, and the next chose more groups still (a real project: 5-6 groups on 2
/// CPUs, 28-33 % read where its tests use 53 % alone, 1.8x slower than one group).
pub fn demand_share(measured: f64, groups: usize, cpus: usize) -> f64 {
    if measured * groups.max(1) as f64 >= SATURATED * cpus.max(1) as f64 {
        1.0
    } else {
        measured
    }
}

/// The CPU share assumed for tests: the measured one (at least 5 %), else that they compute.
pub fn assumed_share(measured: Option<f64>) -> f64 {
    measured.unwrap_or(1.0).clamp(0.05, 1.0)
}

/// How much longer each of `n` groups collecting together on `cpus` CPUs takes than one
/// alone (collection is CPU-bound).
pub fn collect_slowdown(n: usize, cpus: usize) -> f64 {
    (n.max(1) as f64 / cpus.max(1) as f64).max(1.0)
}

/// How much later `n` environments that start together on `cpus` CPUs are ready than one
/// alone: measured, 4 environments on 2 cores are ready ~1.4-1.6x later than one.
pub fn start_slowdown(n: usize, cpus: usize) -> f64 {
    1.0 + (n.max(1) as f64 - 1.0) / (3.0 * cpus.max(1) as f64)
}

impl AutoInputs {
    /// The CPU share assumed for the tests: the measured one, else that they compute.
    fn fraction(&self) -> f64 {
        assumed_share(self.cpu_fraction)
    }

    /// The most groups worth predicting: the CPUs, or four times them for tests that wait.
    fn limit(&self) -> usize {
        let cpus = self.cpus.max(1);
        let limit = if self.fraction() < WAITING {
            cpus * 4
        } else {
            cpus
        };
        limit.min(self.max_groups.max(1)).min(64)
    }
}

/// The choice and why.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoChoice {
    /// Number of groups.
    pub groups: usize,
    /// Predicted wall seconds for 1..=N groups (empty without durations).
    pub predictions: Vec<(usize, f64)>,
    /// One line for the summary.
    pub reason: String,
}

/// Predicted wall seconds for `n` groups.
pub fn predict(inputs: &AutoInputs, total: f64, n: usize) -> f64 {
    let c = inputs.cpus.max(1) as f64;
    let n_f = n as f64;
    let start = inputs.environment_seconds * start_slowdown(n, inputs.cpus);
    let collect = inputs.collection_seconds * collect_slowdown(n, inputs.cpus);
    let parallel = n_f.min(c / inputs.fraction());
    start + collect + (total / parallel).max(inputs.longest_unit)
}

/// Choose the number of groups.
pub fn choose_groups(inputs: &AutoInputs) -> AutoChoice {
    let Some(total) = inputs.test_seconds.filter(|t| t.is_finite() && *t > 0.0) else {
        return AutoChoice {
            groups: 1,
            predictions: Vec::new(),
            reason: "auto chose 1 group to start with: no durations recorded yet, so the suite's size is unknown (a run that may grow adds groups as its tests show the suite's size; this run records the durations, in the user's cache or the --store-durations file, and the next run chooses from them)".into(),
        };
    };
    let predictions: Vec<(usize, f64)> = (1..=inputs.limit())
        .map(|n| (n, predict(inputs, total, n)))
        .collect();
    let best = predictions
        .iter()
        .map(|(_, t)| *t)
        .fold(f64::INFINITY, f64::min);
    let (groups, predicted) = predictions
        .iter()
        .copied()
        .find(|(_, t)| *t <= best * 1.05 || *t <= best + 1.0)
        .unwrap_or((1, best));
    let alone = predictions[0].1;
    AutoChoice {
        groups,
        reason: format!(
            "auto chose {groups} group(s) on {} CPUs: {total:.1}s of recorded tests{}, {:.1}s to start an environment, predicted {predicted:.1}s (1 group: {alone:.1}s)",
            inputs.cpus,
            match inputs.cpu_fraction {
                Some(f) if f < WAITING => format!(" that mostly wait ({:.0}% CPU)", f * 100.0),
                Some(f) => format!(" that compute ({:.0}% CPU)", f * 100.0),
                None => String::new(),
            },
            inputs.environment_seconds
        ),
        predictions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_measured_while_the_cpus_were_busy_is_taken_as_computing() {
        // 6 groups on 2 CPUs reading 30 % each kept both CPUs busy: no evidence of waiting.
        assert_eq!(demand_share(0.30, 6, 2), 1.0);
        assert_eq!(demand_share(0.50, 3, 2), 1.0);
        // 4 groups at 28 % used 1.1 of 2 CPUs: the tests do wait.
        assert_eq!(demand_share(0.28, 4, 2), 0.28);
        assert_eq!(demand_share(0.53, 1, 2), 0.53);
    }

    #[test]
    fn a_busy_host_is_shared_out_over_its_groups() {
        // 2 CPUs 70 % busy under 4 groups: each cost 0.35 CPU.
        assert!((cpus_per_group(0.7, 2, 4.0) - 0.35).abs() < 1e-9);
        assert!((cpus_per_group(0.9, 2, 1.0) - 1.8).abs() < 1e-9);
        // No groups and no CPUs read as one of each rather than dividing by zero.
        assert!((cpus_per_group(0.5, 0, 0.0) - 0.5).abs() < 1e-9);
    }

    fn inputs(total: Option<f64>) -> AutoInputs {
        AutoInputs {
            test_seconds: total,
            longest_unit: 0.5,
            environment_seconds: 6.0,
            collection_seconds: 1.0,
            cpus: 2,
            max_groups: 16,
            cpu_fraction: None,
        }
    }

    #[test]
    fn never_more_groups_than_cpus_unless_the_tests_wait() {
        let computing = choose_groups(&inputs(Some(6000.0)));
        assert_eq!(computing.groups, 2, "{computing:?}");
        let mut waiting = inputs(Some(6000.0));
        waiting.cpu_fraction = Some(0.1);
        let choice = choose_groups(&waiting);
        assert!(choice.groups > 2 && choice.groups <= 8, "{choice:?}");
        assert!(
            choice.reason.contains("mostly wait (10% CPU)"),
            "{}",
            choice.reason
        );
        let mut measured = inputs(Some(6000.0));
        measured.cpu_fraction = Some(0.9);
        assert_eq!(choose_groups(&measured).groups, 2);
    }

    #[test]
    fn a_suite_of_a_few_seconds_gets_one_group() {
        assert_eq!(choose_groups(&inputs(Some(2.0))).groups, 1);
    }

    #[test]
    fn a_long_suite_uses_the_cpus() {
        let choice = choose_groups(&inputs(Some(600.0)));
        assert_eq!(choice.groups, 2, "{choice:?}");
        assert!(choice.reason.contains("600.0s"), "{}", choice.reason);
    }

    #[test]
    fn no_durations_means_one_group_and_says_how_to_do_better() {
        let choice = choose_groups(&inputs(None));
        assert_eq!(choice.groups, 1);
        assert!(
            choice.reason.contains("this run records the durations"),
            "{}",
            choice.reason
        );
        assert!(choice.reason.contains("--store-durations"));
    }

    #[test]
    fn memory_caps_the_choice() {
        let mut i = inputs(Some(6000.0));
        i.cpus = 16;
        i.max_groups = 3;
        assert_eq!(choose_groups(&i).groups, 3);
    }

    #[test]
    fn a_long_unit_bounds_the_gain() {
        let mut i = inputs(Some(100.0));
        i.longest_unit = 95.0;
        assert_eq!(choose_groups(&i).groups, 1);
    }
}
