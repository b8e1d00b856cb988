//! `--groups auto` that learns during the run: a dynamic run starts with the groups the
//! recorded durations justify (one without them) and more groups join while the work left
//! pays for starting them. A group that joins starts a fresh environment, collects and
//! pulls from the same queue.
//!
//! With `n` groups the work left, `R` seconds (the queue's estimate, refined by every
//! measured test), takes `R / p(n)`, where `p(n) = min(n, floor(c / f))` is how many groups' worth
//! of tests `c` CPUs carry when the tests spend `f` CPU seconds per wall second (measured
//! in this run as the plugins report it, else the last run's figure, else 1: tests that
//! compute never gain from more groups than CPUs; tests that wait on a database or the
//! network do). `k` groups that join together are useful after `S_k = S (1 + (k - 1) / 3c)`
//! seconds (`S`: what the first group took from its start to its first test; environments
//! that start together share the CPUs), so the run takes `S_k + (R - p(n) S_k) / p(n + k)`.
//! The `k` chosen is the one whose gain, less half an environment's start per group (a
//! start costs the running groups CPU too), is largest, and they join when that is positive
//! and the engine has room ([`Elastic::max_groups`](super::spec::Elastic)); the next ones may
//! join once all of these have their tests. Without recorded durations nothing is decided
//! before a few tests have been measured and the tests have run for as long as an
//! environment takes to start (the first tests measured say little about the rest, and a
//! suite that ends sooner could not have used another environment), so a suite of a few
//! seconds never gets a second environment.

use crate::plan::auto_groups;

/// What the decision looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Groups running now.
    pub groups: usize,
    /// The queue's estimate of the work it has not handed out, in seconds.
    pub remaining_seconds: f64,
    /// Tests whose duration was measured in this run.
    pub measured: usize,
    /// Whether durations were recorded before the run.
    pub recorded: bool,
    /// Seconds from a group's start to its first test.
    pub start_cost: f64,
    /// Seconds since the first test started.
    pub testing_for: f64,
    /// CPUs of the engine.
    pub cpus: usize,
    /// CPU seconds per wall second of the tests (this run's, else the last run's), if known.
    pub cpu_fraction: Option<f64>,
    /// The CPUs each running group keeps busy on the engine's host, the services it waits
    /// on included (the host's busy share x CPUs / groups), if known.
    pub host_share: Option<f64>,
}

/// Tests to measure before deciding anything when no durations were recorded.
pub const MEASURED_BEFORE_DECIDING: usize = 3;

/// Groups that should join now, if any: how many, and why.
pub fn should_grow(p: &Progress, max_groups: usize) -> Option<(usize, String)> {
    if p.groups == 0 || p.groups >= max_groups {
        return None;
    }
    if !p.recorded && (p.measured < MEASURED_BEFORE_DECIDING || p.testing_for < p.start_cost) {
        return None;
    }
    let c = p.cpus.max(1) as f64;
    // What a group costs the CPUs: its tests' share, or what the host's business says it
    // costs with the services its tests wait on (a database answering them), if more.
    let f = auto_groups::assumed_share(
        p.cpu_fraction
            .map(|f| auto_groups::demand_share(f, p.groups, p.cpus)),
    )
    .max(p.host_share.unwrap_or(0.0));
    // Whole groups only: a group beyond what the CPUs carry slows the others as much as it
    // adds (and timing-sensitive tests fail).
    let carried = |groups: usize| (groups as f64).min((c / f).floor().max(1.0));
    let (r, s) = (p.remaining_seconds, p.start_cost.max(0.1));
    let now = r / carried(p.groups);
    let mut best: Option<(usize, f64, f64)> = None;
    for k in 1..=max_groups - p.groups {
        let start = s * auto_groups::start_slowdown(k, p.cpus);
        let done_meanwhile = carried(p.groups) * start;
        if r <= done_meanwhile {
            break;
        }
        let gain = now - (start + (r - done_meanwhile) / carried(p.groups + k));
        let net = gain - 0.5 * s * k as f64;
        if net > 0.0 && best.map_or(true, |(_, _, b)| net > b + 0.5) {
            best = Some((k, gain, net));
        }
    }
    let (k, gain, _) = best?;
    let first = p.groups + 1;
    let which = if k == 1 {
        format!("group {first}")
    } else {
        format!("groups {first}-{}", p.groups + k)
    };
    let load = match p.cpu_fraction {
        Some(f) => format!(" (their tests use {:.0}% of a CPU)", f * 100.0),
        None => String::new(),
    };
    Some((
        k,
        format!(
            "auto added {which}: ~{r:.0}s of tests left for {} group(s){load}, an environment starts in {s:.1}s, so {} more save ~{gain:.0}s",
            p.groups,
            if k == 1 { "one".to_string() } else { k.to_string() }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(groups: usize, remaining: f64, start: f64) -> Progress {
        Progress {
            groups,
            remaining_seconds: remaining,
            measured: 10,
            recorded: false,
            start_cost: start,
            testing_for: start,
            cpus: 2,
            cpu_fraction: Some(0.2),
            host_share: None,
        }
    }

    #[test]
    fn a_long_queue_gets_another_group_a_short_one_does_not() {
        assert!(should_grow(&progress(1, 300.0, 10.0), 4).is_some());
        assert_eq!(should_grow(&progress(1, 15.0, 10.0), 4), None);
        // Two groups need five environments' worth of work left.
        assert!(should_grow(&progress(2, 45.0, 10.0), 4).is_none());
        assert!(should_grow(&progress(2, 120.0, 10.0), 4).is_some());
    }

    #[test]
    fn never_beyond_the_engine_and_never_before_anything_is_measured() {
        assert_eq!(should_grow(&progress(4, 1e6, 1.0), 4), None);
        let unmeasured = Progress {
            measured: 2,
            ..progress(1, 1e6, 1.0)
        };
        assert_eq!(should_grow(&unmeasured, 4), None);
        let too_soon = Progress {
            testing_for: 0.5,
            ..progress(1, 1e6, 1.0)
        };
        assert_eq!(
            should_grow(&too_soon, 4),
            None,
            "tests ran for less than a start"
        );
        assert!(should_grow(
            &Progress {
                recorded: true,
                ..too_soon
            },
            4
        )
        .is_some());
        let recorded = Progress {
            recorded: true,
            ..unmeasured
        };
        assert!(should_grow(&recorded, 4).is_some());
    }

    #[test]
    fn the_reason_says_what_it_weighed() {
        let unknown = Progress {
            cpu_fraction: None,
            ..progress(1, 300.0, 10.0)
        };
        let (k, why) = should_grow(&unknown, 4).unwrap();
        assert_eq!(k, 1, "tests not known to wait: no more groups than CPUs");
        assert!(why.starts_with("auto added group 2: ~300s of tests left for 1 group(s), an environment starts in 10.0s"), "{why}");
    }

    #[test]
    fn tests_that_compute_never_get_more_groups_than_cpus() {
        let computing = Progress {
            cpu_fraction: Some(0.95),
            ..progress(2, 1e4, 5.0)
        };
        assert_eq!(should_grow(&computing, 8), None);
        let unknown = Progress {
            cpu_fraction: None,
            ..progress(2, 1e4, 5.0)
        };
        assert_eq!(
            should_grow(&unknown, 8),
            None,
            "unknown is taken as computing"
        );
        let mostly = Progress {
            cpu_fraction: Some(0.7),
            ..progress(2, 1e4, 5.0)
        };
        assert_eq!(
            should_grow(&mostly, 8),
            None,
            "a third group would not be carried"
        );
        let one = Progress {
            cpu_fraction: Some(0.95),
            ..progress(1, 1e4, 5.0)
        };
        assert_eq!(should_grow(&one, 8).map(|(k, _)| k), Some(1));
    }

    #[test]
    fn what_a_group_costs_the_host_counts_when_it_exceeds_the_tests_own_share() {
        // The tests' own share says 10 %, but each of the two groups keeps 0.9 CPU busy with
        // its database: 2 CPUs carry no third.
        let host = Progress {
            cpu_fraction: Some(0.1),
            host_share: Some(0.9),
            ..progress(2, 1e4, 5.0)
        };
        assert_eq!(should_grow(&host, 8), None);
        // One such group alone: a second one fits.
        let (k, _) = should_grow(&Progress { groups: 1, ..host }, 8).unwrap();
        assert_eq!(k, 1);
    }

    #[test]
    fn a_share_read_while_the_groups_kept_the_cpus_busy_adds_no_group() {
        // Four groups on 2 CPUs reading 40 % each used 1.6 CPUs: each got what was left,
        // which says nothing about waiting.
        let busy = Progress {
            cpu_fraction: Some(0.4),
            ..progress(4, 1e4, 5.0)
        };
        assert_eq!(should_grow(&busy, 8), None);
        // The same share with two groups (0.8 of 2 CPUs) is evidence of waiting.
        let (k, _) = should_grow(&Progress { groups: 2, ..busy }, 8).unwrap();
        assert!(k >= 1);
    }

    #[test]
    fn tests_that_wait_get_several_groups_at_once_beyond_the_cpus() {
        // A minute of waiting tests left for one group, environments start in 6 s: the
        // four a 2-CPU engine carries at a 45 % CPU share join together.
        let waiting = Progress {
            cpu_fraction: Some(0.45),
            ..progress(1, 60.0, 6.0)
        };
        let (k, why) = should_grow(&waiting, 8).unwrap();
        assert_eq!(k, 3, "{why}");
        assert!(
            why.starts_with("auto added groups 2-4: ~60s of tests left for 1 group(s) (their tests use 45% of a CPU), an environment starts in 6.0s, so 3 more save ~"),
            "{why}"
        );
        // Tests that wait almost always are bounded by the engine's room and by what the
        // starts cost, never by the CPUs.
        let idle = Progress {
            cpu_fraction: Some(0.01),
            ..progress(1, 600.0, 6.0)
        };
        let (k, _) = should_grow(&idle, 6).unwrap();
        assert_eq!(k, 5);
        let (k, _) = should_grow(
            &Progress {
                remaining_seconds: 40.0,
                ..idle
            },
            16,
        )
        .unwrap();
        assert!(
            (2..=4).contains(&k),
            "{k}: a short queue pays for fewer starts"
        );
    }
}
