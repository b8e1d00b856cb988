//! Finding the tests that make another fail: delta debugging over the tests that ran before
//! it in its group (Zeller's ddmin), several probes at once. Pure: it proposes rounds of
//! probes (sets of earlier tests, each to run in a fresh environment followed by the
//! victim) and is told which of them made the victim fail.
//!
//! 1. A first round replays every earlier test (unless the caller already did): if the
//!    victim passes, its failure was not caused by what ran before it.
//! 2. Then ddmin: the candidates are cut into `n` parts; each part and each complement is a
//!    probe of one round. A failing part becomes the candidates (`n` = 2), else a failing
//!    complement (`n` - 1), else the cut gets finer (2`n`), until no part or complement
//!    fails: the candidates are then 1-minimal, every one of them needed. With a single
//!    culprit every round halves the candidates: ceil(log2(n)) rounds.
//! 3. A last round checks the answer: the culprits with the victim must fail and the victim
//!    alone must pass; otherwise the failure is not deterministic (a flaky test, or state
//!    outside the environment) and no culprit is named.

/// What the search asks for next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BisectStep {
    /// Run these probes (in any order, at once if there is room): each is a list of indices
    /// into the earlier tests, in their original order, to run before the victim.
    Probe(Vec<Vec<usize>>),
    /// The search is over.
    Done(BisectVerdict),
}

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BisectVerdict {
    /// Running these earlier tests (indices, in order) before the victim makes it fail, and
    /// each of them is needed.
    Culprits(Vec<usize>),
    /// The victim passes after every earlier test: it does not depend on them.
    NotReproduced,
    /// Probes contradicted each other: the failure is not deterministic.
    Inconsistent,
    /// The round budget ran out; the smallest failing set found so far.
    OutOfRounds(Vec<usize>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Confirm,
    Narrow,
    Validate,
    Done(BisectVerdict),
}

/// One search.
#[derive(Debug, Clone)]
pub struct Bisection {
    candidates: Vec<usize>,
    granularity: usize,
    stage: Stage,
    pending: Vec<Vec<usize>>,
    rounds: usize,
    max_rounds: usize,
}

impl Bisection {
    /// A search over `earlier` tests (indices 0..earlier), at most `max_rounds` rounds.
    /// `confirmed`: the caller already saw the victim fail after all of them.
    pub fn new(earlier: usize, max_rounds: usize, confirmed: bool) -> Bisection {
        let stage = if confirmed {
            Stage::Narrow
        } else {
            Stage::Confirm
        };
        Bisection {
            candidates: (0..earlier).collect(),
            granularity: 2,
            stage,
            pending: Vec::new(),
            rounds: 0,
            max_rounds,
        }
    }

    /// The rounds of probes asked for so far.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// The rounds a search over `earlier` tests takes at most with a single culprit:
    /// confirmation, ceil(log2(earlier)) halvings, validation.
    pub fn rounds_for_one_culprit(earlier: usize) -> usize {
        let halvings = earlier.max(1).next_power_of_two().trailing_zeros() as usize;
        halvings + 2
    }

    /// The next step: probes to run, or the verdict.
    pub fn next_step(&mut self) -> BisectStep {
        if let Stage::Done(verdict) = &self.stage {
            return BisectStep::Done(verdict.clone());
        }
        if self.stage == Stage::Narrow && self.candidates.len() <= 1 {
            self.stage = Stage::Validate;
        }
        if self.rounds >= self.max_rounds {
            let verdict = BisectVerdict::OutOfRounds(self.candidates.clone());
            self.stage = Stage::Done(verdict.clone());
            return BisectStep::Done(verdict);
        }
        self.pending = match self.stage {
            Stage::Confirm => vec![self.candidates.clone()],
            Stage::Narrow => self.cuts(),
            Stage::Validate => vec![self.candidates.clone(), Vec::new()],
            Stage::Done(_) => unreachable!("returned above"),
        };
        self.rounds += 1;
        BisectStep::Probe(self.pending.clone())
    }

    /// The parts of the candidates and their complements (without repeats).
    fn cuts(&self) -> Vec<Vec<usize>> {
        let c = &self.candidates;
        let n = self.granularity.min(c.len()).max(2);
        let mut parts: Vec<Vec<usize>> = (0..n)
            .map(|i| c[i * c.len() / n..(i + 1) * c.len() / n].to_vec())
            .filter(|p| !p.is_empty())
            .collect();
        if n > 2 {
            let complements: Vec<Vec<usize>> = parts
                .iter()
                .map(|p| c.iter().copied().filter(|t| !p.contains(t)).collect())
                .collect();
            parts.extend(complements);
        }
        parts
    }

    /// Which probes of the last round made the victim fail, in the order they were asked.
    pub fn record(&mut self, failed: &[bool]) {
        let probes = std::mem::take(&mut self.pending);
        let failing = |i: usize| failed.get(i).copied().unwrap_or(false);
        match self.stage {
            Stage::Confirm => {
                self.stage = if failing(0) {
                    Stage::Narrow
                } else {
                    Stage::Done(BisectVerdict::NotReproduced)
                };
            }
            Stage::Validate => {
                self.stage = Stage::Done(if failing(0) && !failing(1) {
                    BisectVerdict::Culprits(self.candidates.clone())
                } else {
                    BisectVerdict::Inconsistent
                });
            }
            Stage::Narrow => self.narrow(&probes, failing),
            Stage::Done(_) => {}
        }
    }

    fn narrow(&mut self, probes: &[Vec<usize>], failing: impl Fn(usize) -> bool) {
        let n = self.granularity.min(self.candidates.len()).max(2);
        let parts = probes.len().min(n);
        if let Some(i) = (0..parts).find(|&i| failing(i)) {
            self.candidates = probes[i].clone();
            self.granularity = 2;
        } else if let Some(i) = (parts..probes.len()).find(|&i| failing(i)) {
            self.candidates = probes[i].clone();
            self.granularity = (n - 1).max(2);
        } else if n < self.candidates.len() {
            self.granularity = (2 * n).min(self.candidates.len());
        } else {
            // No part or complement fails alone: every candidate is needed.
            self.stage = Stage::Validate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a search against `fails` (does the victim fail after these earlier tests?).
    fn search(
        earlier: usize,
        confirmed: bool,
        fails: impl Fn(&[usize]) -> bool,
    ) -> (BisectVerdict, usize) {
        let mut b = Bisection::new(earlier, 64, confirmed);
        loop {
            match b.next_step() {
                BisectStep::Probe(probes) => {
                    let results: Vec<bool> = probes.iter().map(|p| fails(p)).collect();
                    b.record(&results);
                }
                BisectStep::Done(verdict) => return (verdict, b.rounds()),
            }
        }
    }

    #[test]
    fn one_culprit_is_found_in_at_most_ceil_log2_n_plus_2_rounds_wherever_it_is() {
        for n in 1..=130 {
            for culprit in 0..n {
                let (verdict, rounds) = search(n, false, |p| p.contains(&culprit));
                assert_eq!(verdict, BisectVerdict::Culprits(vec![culprit]), "n={n}");
                let bound = (n as f64).log2().ceil() as usize + 2;
                assert!(
                    rounds <= bound,
                    "n={n} culprit={culprit}: {rounds} > {bound}"
                );
                assert!(rounds <= Bisection::rounds_for_one_culprit(n));
            }
        }
    }

    #[test]
    fn two_tests_needed_together_are_both_named() {
        for (n, a, b) in [(16, 3, 12), (10, 0, 9), (33, 15, 16), (7, 1, 2)] {
            let (verdict, _) = search(n, false, |p| p.contains(&a) && p.contains(&b));
            assert_eq!(verdict, BisectVerdict::Culprits(vec![a, b]), "n={n}");
        }
    }

    #[test]
    fn either_of_two_independent_culprits_is_enough() {
        let (verdict, _) = search(20, false, |p| p.contains(&4) || p.contains(&17));
        assert!(
            verdict == BisectVerdict::Culprits(vec![4])
                || verdict == BisectVerdict::Culprits(vec![17]),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_victim_that_passes_after_everything_is_not_order_dependent() {
        let (verdict, rounds) = search(50, false, |_| false);
        assert_eq!((verdict, rounds), (BisectVerdict::NotReproduced, 1));
    }

    #[test]
    fn a_victim_that_fails_alone_too_is_inconsistent_not_blamed_on_a_test() {
        // Fails whatever ran before it (including nothing): the validation round catches it.
        let (verdict, _) = search(8, false, |_| true);
        assert_eq!(verdict, BisectVerdict::Inconsistent);
    }

    #[test]
    fn a_confirmed_failure_skips_the_replay_and_the_budget_is_kept() {
        let (verdict, rounds) = search(8, true, |p| p.contains(&5));
        assert_eq!(verdict, BisectVerdict::Culprits(vec![5]));
        assert_eq!(rounds, 4, "3 halvings and the check");
        let mut b = Bisection::new(1000, 3, false);
        for _ in 0..3 {
            let BisectStep::Probe(probes) = b.next_step() else {
                panic!("still searching")
            };
            let results: Vec<bool> = probes.iter().map(|p| p.contains(&700)).collect();
            b.record(&results);
        }
        match b.next_step() {
            BisectStep::Done(BisectVerdict::OutOfRounds(best)) => {
                assert!(best.contains(&700) && best.len() <= 250, "{}", best.len())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_earlier_tests_means_nothing_to_blame() {
        let (verdict, _) = search(0, false, |_| true);
        assert_eq!(verdict, BisectVerdict::Inconsistent);
    }
}
