//! `--groups auto` that learns during the run: a dynamic run starts with the groups the
//! recorded durations justify (one without them) and more groups join while the work left
//! pays for starting them. A group that joins starts a fresh environment, collects and
//! pulls from the same queue.
//!
//! With `n` groups the work left, `R` seconds (the queue's estimate, refined by every
//! measured test), takes `R / n`; a group that joins is useful after `S` seconds (what the
//! first group took from its start to its first test), so `n + 1` groups take
//! `S + (R - n S) / (n + 1)`, a gain of `(R - n S) / (n (n + 1))`. A group joins when that
//! gain is at least half of `S` (starting an environment costs the others CPU too) and the
//! engine has room ([`Elastic::max_groups`](super::spec::Elastic)), one at a time: the next
//! may join once the last one has its tests. Without recorded durations nothing is decided
//! before a few tests have been measured and the tests have run for as long as an
//! environment takes to start (the first tests measured say little about the rest, and a
//! suite that ends sooner could not have used another environment), so a suite of a few
//! seconds never gets a second environment.

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
}

/// Tests to measure before deciding anything when no durations were recorded.
pub const MEASURED_BEFORE_DECIDING: usize = 3;

/// Why another group should join now, if it should.
pub fn should_grow(p: &Progress, max_groups: usize) -> Option<String> {
    if p.groups == 0 || p.groups >= max_groups {
        return None;
    }
    if !p.recorded && (p.measured < MEASURED_BEFORE_DECIDING || p.testing_for < p.start_cost) {
        return None;
    }
    let n = p.groups as f64;
    let (r, s) = (p.remaining_seconds, p.start_cost.max(0.1));
    let gain = (r - n * s) / (n * (n + 1.0));
    (gain >= 0.5 * s).then(|| {
        format!(
            "auto added group {}: ~{r:.0}s of tests left for {} group(s), an environment starts in {s:.1}s, so another one saves ~{gain:.0}s",
            p.groups + 1,
            p.groups
        )
    })
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
        let why = should_grow(&progress(1, 300.0, 10.0), 4).unwrap();
        assert!(why.starts_with("auto added group 2: ~300s of tests left for 1 group(s), an environment starts in 10.0s"), "{why}");
    }
}
