//! The work queue of a dynamic run (`--dist dynamic`): every group pulls its next chunk of
//! units when it is free, until the queue is empty. Pure state, no I/O; the run module feeds
//! it what the groups report and carries its answers into the containers.
//!
//! - Units follow `--split-by` (a test, a class, a module), weighed by recorded durations or
//!   the planner's estimate ([`super::estimate`]). The units too heavy to share a chunk go
//!   first, longest first; the rest follow in collection order (see [`order_spread`]).
//! - A request gets one unit or several: guided self-scheduling, a chunk weighs about
//!   `remaining / (CHUNK_FACTOR * groups)` (at least a quarter second, and at least one
//!   unit), so early requests are few and large and the end of the run is fine-grained,
//!   which bounds the imbalance by the last small chunk rather than by a whole group's share.
//!   When more groups may join (`--groups auto` growing), chunks are sized for the most
//!   groups there may be, so the first group does not hold a share meant for one group alone
//!   when the others arrive.
//! - The queue learns: each finished test's measured duration re-weighs the pending units of
//!   its module that have no recorded duration, and the units of every module that has no
//!   recorded test at all (their estimate was a guess from other files: the durations
//!   remembered from a run of one file say little about the rest of the suite); the pending
//!   units are then put in queue order again.
//! - A guess is not trusted with the run: a chunk holds at most its share by count of the
//!   tests whose module has no recorded test (`guessed / (CHUNK_FACTOR * groups)`, at least
//!   one unit), so that a guess far too low cannot hand the whole suite to the first group
//!   that asks.
//! - Exactly once: tests are known by their index in the reference collection; every handed
//!   chunk is remembered per group. When a group ends, the first unit it had not finished is
//!   its in-flight unit: lost if the group died, with the cause; the units after it had not
//!   started (a group stays one chunk ahead, no more) and go back to the front of the queue
//!   for the others.
//! - Fail fast: once stopped (the run module counts failures for `-x`/`--maxfail=N` across the
//!   groups), every later request gets nothing.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::durations::Durations;
use super::estimate::{Estimate, Estimator};
use super::model::{GroupPlan, Plan, PLAN_VERSION};
use super::node_id::{module_of, unit_of};
use super::split::to_micros;
use super::split::Units;
use crate::config::SplitBy;

/// A chunk weighs about `remaining / (CHUNK_FACTOR * groups)`.
pub const CHUNK_FACTOR: u64 = 4;
/// ... and at least this much (microseconds): a request and its answer take a few tens of
/// milliseconds, which a chunk of a few tiny tests would not cover.
pub const MIN_CHUNK_MICROS: u64 = 250_000;

/// One unit of work: tests that always run together in one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUnit {
    /// The test, class or module name.
    pub name: String,
    /// Indices into the reference collection, in collection order.
    pub tests: Vec<usize>,
    /// Recorded or estimated duration, microseconds.
    pub micros: u64,
    /// The module (file) of its tests, whose measured durations refine the estimate.
    pub module: String,
    /// The part of `micros` that was recorded.
    pub recorded_micros: u64,
    /// Tests whose duration was estimated.
    pub estimated_tests: usize,
    /// Whether its module had recorded tests, whose median estimated the others. When not,
    /// its estimate is a guess from other modules (or the flat default), which the durations
    /// measured in any module replace until one of its own is measured.
    pub module_recorded: bool,
}

/// The units of `tests` (the reference collection) in collection order, and the estimate
/// used for tests without a recorded duration. [`WorkQueue::new`] puts them in queue order.
pub fn queue_units(
    tests: &[String],
    durations: &Durations,
    split_by: SplitBy,
) -> (Vec<QueueUnit>, Estimate) {
    let estimator = Estimator::new(durations);
    let units = Units::gather(tests, &estimator, split_by);
    let mut out: Vec<QueueUnit> = units
        .names
        .iter()
        .zip(&units.weights)
        .map(|(name, &micros)| QueueUnit {
            name: name.to_string(),
            tests: Vec::new(),
            micros,
            module: module_of(name).to_string(),
            recorded_micros: 0,
            estimated_tests: 0,
            module_recorded: estimator.knows_module(name),
        })
        .collect();
    for &(test, unit) in &units.tests {
        let u = &mut out[unit];
        u.tests.push(test);
        match estimator.recorded(&tests[test]) {
            Some(seconds) => {
                u.recorded_micros = u.recorded_micros.saturating_add(to_micros(seconds))
            }
            None => u.estimated_tests += 1,
        }
    }
    out.sort_by_key(|u| u.tests.first().copied());
    let estimated: usize = units.estimated_tests.iter().sum();
    let estimate = estimator.summary(units.tests.len() - estimated, estimated);
    (out, estimate)
}

/// The queue's order: the units heavier than `big` (a chunk's target weight: they would go
/// alone anyway) first, longest first, so none of them lands in the tail; the rest in
/// collection order. Collection order keeps a module's tests together in the chunks a group
/// takes (its fixtures are set up once per chunk) and mixes heavy and light modules over
/// time, as the suite itself does: sorting every unit longest first starts the run with all
/// groups on the heaviest modules at once, which on a machine with fewer cores than groups
/// made those tests 2.5x slower (database-heavy tests contending for the same disk and
/// cores) and the run slower than a static split.
fn order_spread(units: &mut [QueueUnit], big: u64) {
    units.sort_by_key(|u| {
        let first = u.tests.first().copied().unwrap_or(usize::MAX);
        if u.micros > big {
            (0, std::cmp::Reverse(u.micros), first)
        } else {
            (1, std::cmp::Reverse(0), first)
        }
    });
}

/// The plan of a dynamic run as it happened: what each of `groups` groups ran, in order
/// (`ran`: group number and node ids), with the same estimates a static plan shows, so that
/// `run --plan FILE --only K` reruns exactly what group K ran.
pub fn plan_of_run(
    ran: &[(usize, Vec<String>)],
    groups: usize,
    durations: &Durations,
    split_by: SplitBy,
) -> Plan {
    let estimator = Estimator::new(durations);
    let mut plans: Vec<GroupPlan> = (1..=groups)
        .map(|group| GroupPlan {
            group,
            tests: Vec::new(),
            estimated_seconds: 0.0,
            units: 0,
            estimated_tests: 0,
        })
        .collect();
    let (mut recorded, mut estimated) = (0, 0);
    for (group, tests) in ran {
        let Some(plan) = plans.get_mut(group.wrapping_sub(1)) else {
            continue;
        };
        let mut units = HashSet::new();
        for id in tests {
            let seconds = match estimator.recorded(id) {
                Some(s) => {
                    recorded += 1;
                    s
                }
                None => {
                    estimated += 1;
                    plan.estimated_tests += 1;
                    estimator.estimate(id)
                }
            };
            plan.estimated_seconds += seconds;
            units.insert(unit_of(id, split_by));
        }
        plan.units = units.len();
        plan.tests = tests.clone();
    }
    let total = plans.iter().map(|p| p.estimated_seconds).sum();
    Plan {
        version: PLAN_VERSION,
        split_by,
        estimate: estimator.summary(recorded, estimated),
        estimated_seconds: total,
        longest_first_slowest_seconds: plans
            .iter()
            .map(|p| p.estimated_seconds)
            .fold(0.0, f64::max),
        groups: plans,
    }
}

/// What a group was given in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Reference indices, in the order to run them.
    pub tests: Vec<usize>,
    /// How many units the chunk holds.
    pub units: usize,
    /// Their estimated duration, microseconds.
    pub micros: u64,
}

/// A unit handed to a group, and how many of its tests finished.
#[derive(Debug, Clone)]
struct Handed {
    unit: QueueUnit,
    finished: usize,
}

/// How a group ended, for what becomes of the work it was handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueEnd {
    /// pytest ended by itself: handed tests it did not run were not run (it stopped).
    Finished,
    /// Its container died: the first unit it had not finished is lost (in flight), the
    /// units after it go back to the front of the queue.
    Died,
    /// It was ended on purpose after a test timed out (that test finished, as an error):
    /// every test it had not finished goes back to the front of the queue.
    Abandoned,
}

/// What became of a group's handed work when it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupEnd {
    /// Tests of the unit in flight when the group died (reference indices).
    pub lost: Vec<usize>,
    /// Units that had not started, put back at the front of the queue.
    pub requeued: usize,
    /// Tests handed to a group that ended normally but did not run them (it stopped for
    /// `--maxfail` or was told to stop).
    pub not_run: Vec<usize>,
}

fn mean((sum, count): (u64, u64)) -> Option<u64> {
    (count > 0).then(|| sum / count)
}

/// `unit`'s estimate weighed again: its estimated tests count the mean measured duration of
/// their module, else, when its module has no recorded test, `all` (the mean over every
/// module); `None` when neither applies (or it has no estimated tests): a module's recorded
/// median stands until one of its tests is measured.
fn weighed(
    unit: &QueueUnit,
    measured: &HashMap<String, (u64, u64)>,
    all: Option<u64>,
) -> Option<u64> {
    if unit.estimated_tests == 0 {
        return None;
    }
    let per_test = measured
        .get(&unit.module)
        .copied()
        .and_then(mean)
        .or(all.filter(|_| !unit.module_recorded))?;
    Some(
        unit.recorded_micros
            .saturating_add(per_test.saturating_mul(unit.estimated_tests as u64)),
    )
}

/// The queue of one dynamic run.
#[derive(Debug)]
pub struct WorkQueue {
    pending: VecDeque<QueueUnit>,
    remaining_micros: u64,
    total_micros: u64,
    groups: usize,
    handed: BTreeMap<usize, Vec<Handed>>,
    finished: HashSet<usize>,
    unit_of_test: Vec<usize>,
    stop: Option<String>,
    /// Measured microseconds and test count per module, from finished tests.
    measured: HashMap<String, (u64, u64)>,
    /// The same over every module.
    measured_all: (u64, u64),
    /// Measurements arrived since the pending units were last weighed.
    reweigh: bool,
    /// A group may be abandoned after a test timed out, its unfinished in-flight unit
    /// coming back ([`QueueEnd::Abandoned`]).
    may_abandon: bool,
    /// The most groups that may pull from the queue (more may join during the run).
    may_grow_to: usize,
}

impl WorkQueue {
    /// A queue over `units` (longest first) of a collection of `tests` tests, pulled by
    /// `groups` groups.
    pub fn new(units: Vec<QueueUnit>, tests: usize, groups: usize) -> WorkQueue {
        let total: u64 = units.iter().map(|u| u.micros).fold(0, u64::saturating_add);
        let mut units = units;
        order_spread(&mut units, total / (CHUNK_FACTOR * groups.max(1) as u64));
        WorkQueue {
            pending: units.into(),
            remaining_micros: total,
            total_micros: total,
            groups: groups.max(1),
            handed: BTreeMap::new(),
            finished: HashSet::with_capacity(tests),
            unit_of_test: Vec::new(),
            stop: None,
            measured: HashMap::new(),
            measured_all: (0, 0),
            reweigh: false,
            may_abandon: false,
            may_grow_to: 0,
        }
    }

    /// Up to `groups` groups may pull from the queue in all: chunks are sized for them.
    pub fn may_grow_to(mut self, groups: usize) -> WorkQueue {
        self.may_grow_to = groups;
        let sharers = self.sharers();
        order_spread(
            self.pending.make_contiguous(),
            self.remaining_micros / (CHUNK_FACTOR * sharers),
        );
        self
    }

    /// The groups chunks are sized for.
    fn sharers(&self) -> u64 {
        self.groups.max(self.may_grow_to) as u64
    }

    /// Groups may be abandoned after a test timed out (`--test-timeout`): a free group waits
    /// while another holds any unfinished unit, since all of it may come back.
    pub fn may_abandon(mut self, yes: bool) -> WorkQueue {
        self.may_abandon = yes;
        self
    }

    /// Weigh the pending units again from the durations measured so far (see [`weighed`]),
    /// and put them in queue order again, so that a slow module moves to the front as soon
    /// as one of its tests has run.
    fn weigh_pending(&mut self) {
        let all = self.mean_of_all();
        for unit in self.pending.iter_mut() {
            if let Some(micros) = weighed(unit, &self.measured, all) {
                unit.micros = micros;
            }
        }
        let remaining: u64 = self
            .pending
            .iter()
            .map(|u| u.micros)
            .fold(0, u64::saturating_add);
        let sharers = self.sharers();
        order_spread(
            self.pending.make_contiguous(),
            remaining / (CHUNK_FACTOR * sharers),
        );
        self.remaining_micros = self
            .pending
            .iter()
            .map(|u| u.micros)
            .fold(0, u64::saturating_add);
        self.reweigh = false;
    }

    /// Why the queue stopped handing out work, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stop.as_deref()
    }

    /// Stop handing out work (the run is ending).
    pub fn stop(&mut self, reason: String) {
        self.stop.get_or_insert(reason);
    }

    /// Units and estimated microseconds not yet handed out.
    pub fn remaining(&self) -> (usize, u64) {
        (self.pending.len(), self.remaining_micros)
    }

    /// The mean measured microseconds per test over every module.
    fn mean_of_all(&self) -> Option<u64> {
        mean(self.measured_all)
    }

    /// Pending tests whose module has no recorded test (their weight is a guess).
    fn pending_guessed(&self) -> usize {
        self.pending
            .iter()
            .filter(|u| !u.module_recorded)
            .map(|u| u.estimated_tests)
            .sum()
    }

    /// The estimated microseconds of work left: not yet handed out, and handed but not
    /// finished (each unit's unfinished share), weighed again from every duration measured
    /// so far; and how many tests have been measured.
    pub fn work_left(&mut self) -> (u64, u64) {
        if self.reweigh {
            self.weigh_pending();
        }
        let all = self.mean_of_all();
        let held = self
            .handed
            .values()
            .flatten()
            .filter(|h| h.finished < h.unit.tests.len())
            .map(|h| {
                let micros = weighed(&h.unit, &self.measured, all).unwrap_or(h.unit.micros);
                let left = (h.unit.tests.len() - h.finished) as u64;
                micros.saturating_mul(left) / h.unit.tests.len() as u64
            })
            .fold(0, u64::saturating_add);
        (
            self.remaining_micros.saturating_add(held),
            self.measured_all.1,
        )
    }

    /// Another group pulls from the queue from now on (chunks get smaller).
    pub fn add_group(&mut self) {
        self.groups += 1;
    }

    /// The whole queue's estimate, microseconds.
    pub fn total_micros(&self) -> u64 {
        self.total_micros
    }

    /// The next chunk for `group`; empty when the queue is empty or stopped.
    pub fn take(&mut self, group: usize) -> Chunk {
        let mut chunk = Chunk::default();
        if self.stop.is_some() {
            return chunk;
        }
        if self.reweigh {
            self.weigh_pending();
        }
        let share = CHUNK_FACTOR * self.sharers();
        let target = (self.remaining_micros / share).max(MIN_CHUNK_MICROS);
        let guess_cap = (self.pending_guessed() as u64 / share).max(1);
        let mut guessed = 0u64;
        let mut units = Vec::new();
        while let Some(next) = self.pending.front() {
            let next_guessed = if next.module_recorded {
                0
            } else {
                next.estimated_tests as u64
            };
            if !units.is_empty()
                && (chunk.micros.saturating_add(next.micros) > target
                    || (next_guessed > 0 && guessed + next_guessed > guess_cap))
            {
                break;
            }
            let unit = self.pending.pop_front().expect("front exists");
            chunk.micros = chunk.micros.saturating_add(unit.micros);
            guessed += next_guessed;
            units.push(unit);
        }
        self.remaining_micros = self.remaining_micros.saturating_sub(chunk.micros);
        chunk.units = units.len();
        // Collection order, unit by unit: the group runs its units in the order handed.
        units.sort_by_key(|u| u.tests.first().copied());
        chunk.tests = units.iter().flat_map(|u| u.tests.iter().copied()).collect();
        let handed = self.handed.entry(group).or_default();
        for unit in units {
            for &t in &unit.tests {
                if self.unit_of_test.len() <= t {
                    self.unit_of_test.resize(t + 1, usize::MAX);
                }
                self.unit_of_test[t] = handed.len();
            }
            handed.push(Handed { unit, finished: 0 });
        }
        chunk
    }

    /// Test `test` (a reference index) finished in `group`, taking `seconds` if measured.
    pub fn finished(&mut self, group: usize, test: usize, seconds: Option<f64>) {
        if !self.finished.insert(test) {
            return;
        }
        let unit = self.unit_of_test.get(test).copied().unwrap_or(usize::MAX);
        let Some(h) = self
            .handed
            .get_mut(&group)
            .and_then(|handed| handed.get_mut(unit))
        else {
            return;
        };
        h.finished += 1;
        if let Some(seconds) = seconds.filter(|s| s.is_finite() && *s >= 0.0) {
            let micros = to_micros(seconds);
            let m = self.measured.entry(h.unit.module.clone()).or_default();
            *m = (m.0.saturating_add(micros), m.1 + 1);
            self.measured_all = (
                self.measured_all.0.saturating_add(micros),
                self.measured_all.1 + 1,
            );
            self.reweigh = true;
        }
    }

    /// Whether `asking` should wait for an answer instead of being told the queue is done:
    /// nothing is pending, but another group still holds a unit it has not started behind its
    /// in-flight one, which goes back to the queue if that group dies; or, when groups may be
    /// abandoned (`--test-timeout`), any unit it has not finished.
    pub fn others_may_return_work(&self, asking: usize) -> bool {
        let returnable = if self.may_abandon { 1 } else { 2 };
        self.pending.is_empty()
            && self.stop.is_none()
            && self.handed.iter().any(|(group, handed)| {
                *group != asking
                    && handed
                        .iter()
                        .filter(|h| h.finished < h.unit.tests.len())
                        .count()
                        >= returnable
            })
    }

    /// `group` ended as `how` says (see [`QueueEnd`]).
    pub fn group_ended(&mut self, group: usize, how: QueueEnd) -> GroupEnd {
        let handed = self.handed.remove(&group).unwrap_or_default();
        let mut end = GroupEnd::default();
        let mut in_flight_seen = false;
        let mut requeue = Vec::new();
        for h in handed {
            if h.finished == h.unit.tests.len() {
                continue;
            }
            let undone: Vec<usize> = h
                .unit
                .tests
                .iter()
                .copied()
                .filter(|t| !self.finished.contains(t))
                .collect();
            match how {
                QueueEnd::Finished => end.not_run.extend(undone),
                QueueEnd::Died if !in_flight_seen || h.finished > 0 => {
                    in_flight_seen = true;
                    end.lost.extend(undone);
                }
                QueueEnd::Died => requeue.push(h.unit),
                QueueEnd::Abandoned if undone.is_empty() => {}
                QueueEnd::Abandoned => {
                    // The tests it did not finish, still one unit (they share fixtures).
                    let mut unit = h.unit;
                    let share = undone.len() as u64;
                    let all = unit.tests.len().max(1) as u64;
                    unit.micros = unit.micros.saturating_mul(share) / all;
                    unit.recorded_micros = unit.recorded_micros.saturating_mul(share) / all;
                    unit.estimated_tests = unit.estimated_tests.min(undone.len());
                    unit.tests = undone;
                    requeue.push(unit);
                }
            }
        }
        end.requeued = requeue.len();
        for unit in requeue.into_iter().rev() {
            self.remaining_micros = self.remaining_micros.saturating_add(unit.micros);
            self.pending.push_front(unit);
        }
        end
    }

    /// Units nobody took (every group ended first), as reference indices.
    pub fn leftover(&self) -> Vec<usize> {
        let mut tests: Vec<usize> = self
            .pending
            .iter()
            .flat_map(|u| u.tests.iter().copied())
            .collect();
        tests.sort_unstable();
        tests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn unit(name: &str, tests: &[usize], seconds: u64) -> QueueUnit {
        QueueUnit {
            name: name.into(),
            tests: tests.to_vec(),
            micros: seconds * 1_000_000,
            module: name.into(),
            recorded_micros: seconds * 1_000_000,
            estimated_tests: 0,
            module_recorded: true,
        }
    }

    #[test]
    fn units_follow_split_by_in_collection_order() {
        let tests = ids(&[
            "a.py::A::one",
            "a.py::A::two",
            "a.py::plain",
            "b.py::B::one",
            "c.py::quick",
        ]);
        let durations = Durations(
            [
                ("a.py::A::one", 1.0),
                ("a.py::A::two", 1.0),
                ("a.py::plain", 0.5),
                ("b.py::B::one", 3.0),
                ("c.py::quick", 0.1),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        );
        let (units, estimate) = queue_units(&tests, &durations, SplitBy::Class);
        let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a.py::A", "a.py::plain", "b.py::B", "c.py::quick"]);
        assert_eq!(units[0].tests, vec![0, 1]);
        assert_eq!(units[0].micros, 2_000_000);
        assert_eq!(estimate.recorded_tests, 5);
        let (modules, _) = queue_units(&tests, &durations, SplitBy::Module);
        assert_eq!(modules[1].name, "b.py");
        assert_eq!(modules[1].micros, 3_000_000);
        assert_eq!(modules[0].tests, vec![0, 1, 2]);
    }

    #[test]
    fn the_work_left_counts_what_groups_hold_and_have_not_finished() {
        // Two units of 4 s (two tests each) and four of 1 s, one group: the first chunk
        // takes 4 s of the 12.
        let mut units = vec![unit("big1", &[0, 1], 4), unit("big2", &[2, 3], 4)];
        units.extend((4..8).map(|i| unit(&format!("u{i}"), &[i], 1)));
        let mut q = WorkQueue::new(units, 8, 1);
        assert_eq!(q.work_left().0, 12_000_000);
        let chunk = q.take(1);
        assert_eq!(chunk.micros, 4_000_000, "{chunk:?}");
        assert_eq!(q.work_left().0, 12_000_000, "handed is not done");
        q.finished(1, chunk.tests[0], Some(2.0));
        assert_eq!(q.work_left().0, 10_000_000, "half the unit is left");
        q.finished(1, chunk.tests[1], Some(2.0));
        assert_eq!(q.work_left().0, 8_000_000);
    }

    #[test]
    fn chunks_start_large_and_shrink_and_each_test_is_handed_once() {
        let units: Vec<QueueUnit> = (0..40)
            .map(|i| unit(&format!("u{i:02}"), &[i], 1))
            .collect();
        let mut q = WorkQueue::new(units, 40, 2);
        let first = q.take(1);
        // 40 s remaining over 2 groups * 4: a 5 s chunk.
        assert_eq!(first.units, 5);
        let mut sizes = vec![first.units];
        let mut seen: Vec<usize> = first.tests.clone();
        loop {
            let c = q.take(2);
            if c.units == 0 {
                break;
            }
            sizes.push(c.units);
            seen.extend(&c.tests);
        }
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        assert_eq!(*sizes.last().unwrap(), 1);
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        assert_eq!(q.remaining(), (0, 0));
    }

    #[test]
    fn a_long_unit_goes_alone_and_chunk_tests_run_in_collection_order() {
        let mut units = vec![
            unit("slow", &[3], 60),
            unit("m2", &[5, 6], 1),
            unit("m1", &[1, 2], 1),
        ];
        units.extend((10..30).map(|t| unit(&format!("u{t}"), &[t], 1)));
        let mut q = WorkQueue::new(units, 30, 1);
        assert_eq!(q.take(1).tests, vec![3]);
        // 22 s left for one group: a 5.5 s chunk, run in collection order.
        let next = q.take(1);
        assert_eq!(next.tests, vec![1, 2, 5, 6, 10, 11, 12]);
        assert_eq!(next.units, 5);
    }

    #[test]
    fn a_dead_group_loses_its_in_flight_unit_and_returns_the_unstarted_ones() {
        let units = vec![
            unit("a", &[0, 1], 10),
            unit("b", &[2], 10),
            unit("c", &[3], 10),
            unit("d", &[4], 10),
        ];
        let mut q = WorkQueue::new(units, 5, 1);
        // groups=1, factor 4: 40 s remaining -> 10 s chunks, one unit each.
        assert_eq!(q.take(1).tests, vec![0, 1]);
        assert_eq!(q.take(1).tests, vec![2]);
        q.finished(1, 0, None);
        let end = q.group_ended(1, QueueEnd::Died);
        assert_eq!(end.lost, vec![1]);
        assert_eq!(end.requeued, 1);
        assert_eq!(q.remaining(), (3, 30_000_000));
        // The requeued unit comes first for the next group.
        assert_eq!(q.take(2).tests, vec![2]);
    }

    #[test]
    fn a_free_group_waits_while_another_holds_unstarted_work_and_then_gets_it() {
        let units = vec![
            unit("a", &[0], 10),
            unit("b", &[1], 10),
            unit("c", &[2], 10),
            unit("d", &[3], 10),
        ];
        // groups=1 sizing: one unit per chunk.
        let mut q = WorkQueue::new(units, 4, 1);
        assert_eq!(q.take(2).tests, vec![0]);
        assert_eq!(q.take(2).tests, vec![1]); // asked ahead: b is not started yet
        assert_eq!(q.take(1).tests, vec![2]);
        assert_eq!(q.take(1).tests, vec![3]);
        // Queue empty, but group 2 holds b behind its in-flight a: group 1 must not be told
        // the queue is done.
        assert!(q.others_may_return_work(1));
        assert!(
            q.others_may_return_work(2),
            "group 1 holds d behind its in-flight c"
        );
        let end = q.group_ended(2, QueueEnd::Died);
        assert_eq!(end.lost, vec![0]);
        assert_eq!(end.requeued, 1);
        assert!(!q.others_may_return_work(1));
        assert_eq!(
            q.take(1).tests,
            vec![1],
            "the requeued unit goes to the waiting group"
        );
        // Once a group's only unfinished unit is in flight, nothing can come back from it.
        let mut q = WorkQueue::new(vec![unit("a", &[0], 10), unit("b", &[1], 10)], 2, 1);
        q.take(2);
        q.take(2);
        q.finished(2, 0, None);
        assert!(!q.others_may_return_work(1));
    }

    #[test]
    fn a_group_that_died_between_units_loses_the_next_one_it_was_given() {
        let mut q = WorkQueue::new(vec![unit("a", &[0], 10), unit("b", &[1], 10)], 2, 1);
        q.take(1);
        q.take(1);
        q.finished(1, 0, None);
        let end = q.group_ended(1, QueueEnd::Died);
        assert_eq!(end.lost, vec![1]);
        assert_eq!(end.requeued, 0);
    }

    #[test]
    fn a_stopped_queue_hands_out_nothing_and_handed_tests_are_not_run() {
        let units: Vec<QueueUnit> = (0..8).map(|i| unit(&format!("u{i}"), &[i], 1)).collect();
        let mut q = WorkQueue::new(units, 8, 2);
        let a = q.take(1);
        q.finished(1, a.tests[0], None);
        q.stop("maxfail".into());
        assert!(q.take(1).tests.is_empty());
        assert_eq!(q.stopped(), Some("maxfail"));
        // A normal end with handed tests left: they did not run.
        let end = q.group_ended(1, QueueEnd::Finished);
        assert_eq!(end.not_run, a.tests[1..].to_vec());
        assert!(end.lost.is_empty());
    }

    #[test]
    fn an_abandoned_group_gives_back_every_test_it_did_not_finish() {
        // Two units of four tests each (a class), one unit per chunk.
        let units = vec![unit("a", &[0, 1, 2, 3], 4), unit("b", &[4, 5, 6, 7], 4)];
        let mut q = WorkQueue::new(units, 8, 1);
        let first = q.take(1);
        let second = q.take(1);
        assert_eq!((first.tests.len(), second.tests.len()), (4, 4));
        // Test 0 passed, test 1 timed out (finished as an error), then the group ended.
        q.finished(1, 0, None);
        q.finished(1, 1, None);
        let end = q.group_ended(1, QueueEnd::Abandoned);
        assert!(end.lost.is_empty() && end.not_run.is_empty());
        assert_eq!(end.requeued, 2);
        // The rest of the first unit comes back first, still together, then the second.
        assert_eq!(q.take(2).tests, vec![2, 3]);
        assert_eq!(q.take(2).tests, vec![4, 5, 6, 7]);
        assert!(q.take(2).tests.is_empty());
    }

    #[test]
    fn with_test_timeouts_a_free_group_waits_for_any_unfinished_unit_of_another() {
        let units = vec![unit("a", &[0], 4), unit("b", &[1], 1)];
        let mut plain = WorkQueue::new(units.clone(), 2, 2);
        let mut abandoning = WorkQueue::new(units, 2, 2).may_abandon(true);
        assert_eq!(abandoning.take(1).tests, vec![0]);
        assert_eq!(abandoning.take(2).tests, vec![1]);
        abandoning.finished(2, 1, None);
        // Group 1 holds only its in-flight unit: it comes back if a test times out.
        assert!(abandoning.others_may_return_work(2));
        assert_eq!(plain.take(1).tests, vec![0]);
        assert_eq!(plain.take(2).tests, vec![1]);
        plain.finished(2, 1, None);
        assert!(
            !plain.others_may_return_work(2),
            "a dead group loses it instead"
        );
        // The abandoned unit goes to the group that waited.
        abandoning.group_ended(1, QueueEnd::Abandoned);
        assert_eq!(abandoning.take(2).tests, vec![0]);
    }

    #[test]
    fn the_plan_of_a_run_lists_what_each_group_ran_in_order_and_reads_back() {
        let ran = vec![
            (1, ids(&["b.py::T::two", "a.py::one"])),
            (2, ids(&["c.py::three"])),
        ];
        let durations = Durations([("a.py::one".to_string(), 2.0)].into_iter().collect());
        let plan = plan_of_run(&ran, 3, &durations, SplitBy::Class);
        let text = plan.to_json();
        let back = Plan::from_json(&text).unwrap();
        assert_eq!(back.groups.len(), 3);
        assert_eq!(back.groups[0].tests, ids(&["b.py::T::two", "a.py::one"]));
        assert_eq!(back.groups[0].units, 2);
        assert_eq!(back.groups[0].estimated_tests, 1);
        assert!(back.groups[2].tests.is_empty());
        assert_eq!(back.estimate.recorded_tests, 1);
    }

    #[test]
    fn with_nothing_recorded_a_slow_module_moves_to_the_front_once_one_of_its_tests_ran() {
        let tests: Vec<String> = (0..6)
            .map(|i| format!("a.py::t{i}"))
            .chain((0..6).map(|i| format!("z.py::t{i}")))
            .collect();
        let (units, _) = queue_units(&tests, &Durations::default(), SplitBy::Test);
        let mut q = WorkQueue::new(units, tests.len(), 4);
        // Equal estimates: name order, so a.py first; z.py is the slow one.
        let first = q.take(1);
        assert_eq!(first.tests, vec![0]);
        let second = q.take(2);
        assert_eq!(second.tests, vec![1]);
        let z = q.take(3);
        assert_eq!(z.tests, vec![2]);
        q.finished(1, 0, Some(0.3));
        q.finished(2, 1, Some(0.3));
        // Nothing of z.py measured yet: the a.py mean applies to every module. Take until a
        // z.py test is handed out, and measure it slow.
        let mut got = Vec::new();
        while !got.iter().any(|&t| t >= 6) {
            let c = q.take(3);
            assert!(!c.tests.is_empty());
            got.extend(c.tests);
        }
        let z = *got.iter().find(|&&t| t >= 6).unwrap();
        q.finished(3, z, Some(5.0));
        // Every remaining z.py test now weighs 5 s and goes before any a.py test.
        let next = q.take(4);
        assert!(next.tests.iter().all(|&t| t > z), "{next:?}");
        assert!(q.remaining().1 >= 5_000_000);
    }

    /// The durations a run of one file left behind: two quick tests of `cache.py`, while the
    /// collection also holds 160 tests of four other modules.
    fn suite_after_a_run_of_one_file() -> (Vec<String>, Durations) {
        let mut tests = ids(&["cache.py::get", "cache.py::put"]);
        for module in ["a.py", "b.py", "c.py", "d.py"] {
            tests.extend((0..40).map(|i| format!("{module}::t{i}")));
        }
        let durations = Durations(
            [("cache.py::get", 0.002), ("cache.py::put", 0.002)]
                .map(|(k, v)| (k.to_string(), v))
                .into_iter()
                .collect(),
        );
        (tests, durations)
    }

    #[test]
    fn a_guess_from_a_few_remembered_tests_never_hands_the_suite_to_the_first_group() {
        let (tests, durations) = suite_after_a_run_of_one_file();
        let (units, _) = queue_units(&tests, &durations, SplitBy::Test);
        assert!(units[0].module_recorded && !units[2].module_recorded);
        let mut q = WorkQueue::new(units, tests.len(), 4);
        // The guess (2 ms a test) puts the whole suite under one chunk's minimum weight; the
        // share by count of the 160 guessed tests (160 / 16) bounds the chunk instead.
        let first = q.take(1);
        assert!(first.tests.len() <= 2 + 10, "{} tests", first.tests.len());
        assert!(first.tests.len() >= 10, "{first:?}");
        let mut taken: Vec<usize> = first.tests.clone();
        for group in 2..=4 {
            let c = q.take(group);
            assert!(!c.tests.is_empty() && c.tests.len() <= 10, "{c:?}");
            taken.extend(c.tests);
        }
        assert!(taken.len() < 50, "four groups took {} of 162", taken.len());
        // Chunks shrink as the guessed tests are handed out, and every test goes once.
        let mut rest = Vec::new();
        loop {
            let c = q.take(1);
            if c.tests.is_empty() {
                break;
            }
            assert!(c.tests.len() <= 10);
            rest.extend(c.tests);
        }
        taken.extend(rest);
        taken.sort_unstable();
        assert_eq!(taken, (0..tests.len()).collect::<Vec<_>>());
    }

    #[test]
    fn a_module_without_records_is_weighed_by_every_measurement_and_a_recorded_one_is_not() {
        let (mut tests, mut durations) = suite_after_a_run_of_one_file();
        // e.py has a recorded test that this run did not collect (1 s) and two new ones:
        // their module's median (1 s) stands until one of them is measured.
        tests.extend(ids(&["e.py::new1", "e.py::new2"]));
        durations.0.insert("e.py::gone".to_string(), 1.0);
        let (units, _) = queue_units(&tests, &durations, SplitBy::Test);
        let mut q = WorkQueue::new(units, tests.len(), 4);
        // Before any measurement: 160 guessed tests at the 2 ms median of everything
        // recorded, and e.py's 2 x 1 s, which go first (each heavier than a chunk).
        let (left, _) = q.work_left();
        assert!(left < 2_500_000, "{left}");
        assert_eq!(q.take(1).tests, vec![162]);
        assert_eq!(q.take(2).tests, vec![163]);
        let third = q.take(3);
        let guessed: Vec<usize> = third.tests.iter().copied().filter(|&t| t >= 2).collect();
        assert!(!guessed.is_empty() && guessed.len() <= 10, "{third:?}");
        for &t in &third.tests {
            q.finished(3, t, Some(if t >= 2 { 0.5 } else { 0.002 }));
        }
        // a.py's tests not measured yet count a.py's measured mean (0.5 s); those of b.py-d.py
        // the mean of every measurement; e.py's two held tests keep their module's recorded
        // 1 s each.
        assert!(
            guessed.iter().all(|&t| t < 42),
            "a.py's tests only: {third:?}"
        );
        let (left, measured) = q.work_left();
        let n = third.tests.len() as u64;
        assert_eq!(measured, n);
        let quick = n - guessed.len() as u64;
        let mean = (guessed.len() as u64 * 500_000 + quick * 2_000) / n;
        let a_left = (40 - guessed.len() as u64) * 500_000;
        let cache_left = (2 - quick) * 2_000;
        assert_eq!(left, 2_000_000 + a_left + 120 * mean + cache_left);
    }

    #[test]
    fn recorded_units_keep_their_weight_when_others_are_measured() {
        let tests: Vec<String> = ["a.py::x", "a.py::x2", "b.py::y", "b.py::z"]
            .map(String::from)
            .to_vec();
        let durations = Durations(
            [("a.py::w".to_string(), 5.0), ("b.py::y".to_string(), 3.0)]
                .into_iter()
                .collect(),
        );
        let (units, _) = queue_units(&tests, &durations, SplitBy::Test);
        let mut q = WorkQueue::new(units, 4, 1);
        assert_eq!(q.take(1).tests, vec![0], "a.py's estimate (5 s) first");
        q.finished(1, 0, Some(1.0));
        // a.py measured 1 s: x2 drops behind the recorded 3 s of b.py::y and its 3 s peer.
        assert_eq!(q.take(1).tests, vec![2]);
        q.finished(1, 2, Some(9.0));
        // The recorded test took 9 s: its module's unknown test now weighs 9 s.
        let z = q.take(1);
        assert_eq!((z.tests, z.micros), (vec![3], 9_000_000));
        assert_eq!(q.remaining(), (1, 1_000_000));
    }

    #[test]
    fn units_too_heavy_for_a_chunk_go_first_and_the_rest_keep_collection_order() {
        let tests: Vec<String> = ["a.py::x", "a.py::y", "b.py::slow", "b.py::z", "c.py::w"]
            .map(String::from)
            .to_vec();
        let durations = Durations(
            [
                ("a.py::x", 1.0),
                ("a.py::y", 2.0),
                ("b.py::slow", 0.5),
                ("b.py::z", 3.0),
                ("c.py::w", 2.5),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        );
        let (units, _) = queue_units(&tests, &durations, SplitBy::Test);
        let q = WorkQueue::new(units, tests.len(), 1);
        let names: Vec<&str> = q.pending.iter().map(|u| u.name.as_str()).collect();
        // 9 s for one group: chunks of 2.25 s; the two units above that go first.
        assert_eq!(
            names,
            ["b.py::z", "c.py::w", "a.py::x", "a.py::y", "b.py::slow"]
        );
    }

    #[test]
    fn leftovers_are_what_nobody_took() {
        let mut q = WorkQueue::new(vec![unit("a", &[0], 1), unit("b", &[1], 1)], 2, 4);
        q.take(1);
        assert_eq!(q.leftover(), vec![1]);
    }
}
