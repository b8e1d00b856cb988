//! The [`Dispatcher`]: from collections to the tests each group runs. Every group's pytest
//! collects the suite itself (as the container's main process, in parallel with the other groups' start-up) and
//! hands its collection here; the first collection to arrive is the reference.
//!
//! - Static (`--dist static`, `--only`, `--plan`, `--tests`): a plan is made from the reference
//!   (unless one was given) and each group gets its share, translated into the ids it
//!   collected itself ([`crate::plan::match_ids`]: parametrized ids made at collection time
//!   differ between groups).
//! - Dynamic (the default): the reference's units go into a [`WorkQueue`]; every group must
//!   have collected the same tests (up to those unstable ids) and then pulls chunk after chunk.
//!
//! Both modes count failures across the groups for pytest's `-x`/`--maxfail`.
//!
//! All groups run as futures on one task, so the shared state is one `RefCell` that is never
//! borrowed across an `.await`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use std::sync::Arc;

use super::error::RunError;
use super::outcome::{CollectionFailure, CollectionMismatch};
use super::spec::{Assignment, Planner, TestSource};
use crate::config::SplitBy;
use crate::plan::{match_ids, queue_units, Durations, WorkQueue};

/// What the static coordinator knows so far.
enum Static {
    /// No collection yet: the plan is made from the first one.
    Waiting(Option<Planner>),
    /// The plan, and the collection it was made from.
    Planned {
        assignment: Assignment,
        reference: Vec<String>,
        collected_here: bool,
    },
    /// Planning failed: no group can run.
    Failed(Arc<crate::errors::Error>),
}

/// A group's own ids for the reference's tests.
struct OwnIds {
    /// By reference index.
    ids: Vec<String>,
    /// Own id -> reference index.
    index: HashMap<String, usize>,
}

/// The dynamic coordinator's state.
struct Dynamic {
    /// A group may be abandoned after a test timed out (`--test-timeout`).
    may_abandon: bool,
    /// The most groups there may be (more join with `--groups auto`); 0: the ones there are.
    may_grow_to: usize,
    durations: Durations,
    split_by: SplitBy,
    groups: usize,
    reference: Option<Vec<String>>,
    queue: Option<WorkQueue>,
    own: BTreeMap<usize, OwnIds>,
    units_taken: BTreeMap<usize, usize>,
}

enum Mode {
    Static(Static),
    Dynamic(Box<Dynamic>),
}

/// Hands every group its tests: the static plan's share or the queue's chunks, counts
/// failures for `--maxfail` across the groups, and records what a group's end did to its
/// work.
pub(crate) struct Dispatcher {
    state: RefCell<State>,
}

/// Everything the dispatcher knows, borrowed only between two `.await`s.
struct State {
    mode: Mode,
    unstable: Vec<(String, String)>,
    fatal: Option<RunError>,
    fail_fast: FailFast,
    /// Tests lost with a group that died.
    lost: Vec<LostTest>,
    /// Tests handed to a group that did not run them (it stopped), or never handed out.
    not_run: Vec<String>,
    /// Running test containers by group, to tell them to stop.
    containers: BTreeMap<usize, String>,
    /// When the first chunk or list was handed out.
    first_handed: Option<tokio::time::Instant>,
    /// CPU and wall seconds of each group's tests, as its plugin reported them: the first
    /// report and the latest.
    cpu: BTreeMap<usize, [(f64, f64); 2]>,
}

/// How a group's test process ended, for what becomes of its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupEnd<'a> {
    /// pytest ended by itself: what it was given and did not run, it did not run.
    Finished,
    /// Its container died (or was killed): the test in flight is lost with this cause; the
    /// units it had not started go back to the queue.
    Died(&'a str),
    /// A test timed out (it is finished, as an error): every test the group had not
    /// finished goes back to the queue.
    Abandoned,
}

/// `-x`/`--maxfail` across the groups.
#[derive(Default)]
struct FailFast {
    maxfail: Option<usize>,
    failures: usize,
    stopped: Option<String>,
}

/// A test that was running, or about to, in a group whose container died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostTest {
    /// The group's own node id.
    pub node_id: String,
    /// The group.
    pub group: usize,
    /// Why the group died.
    pub cause: String,
}

/// What the dispatcher learnt over the run.
pub(crate) struct Finished {
    /// The reference collection (when collected in this run).
    pub collected: Option<Vec<String>>,
    /// The static plan (empty in dynamic mode: what ran is in the group reports).
    pub assignment: Assignment,
    /// Planning's fatal error.
    pub fatal: Option<RunError>,
    /// Planned ids matched by position: (planned, collected).
    pub unstable: Vec<(String, String)>,
    /// Why the run stopped early (`--maxfail` reached), if it did.
    pub stopped: Option<String>,
    /// Tests lost with dead groups.
    pub lost: Vec<LostTest>,
    /// Tests that were not run because the run stopped early or no group was left.
    pub not_run: Vec<String>,
}

/// What a group is given once it has collected.
#[derive(Debug, Clone)]
pub(crate) enum Handover {
    /// Static: its whole list, in its own ids, and planned tests it did not collect.
    List {
        /// The ids to run, in order.
        ids: Vec<String>,
        /// Planned tests this group did not collect.
        missing: Vec<String>,
    },
    /// Dynamic: it pulls units from the queue.
    Queue,
}

/// A dynamic group's next chunk, in its own ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct NextChunk {
    /// Own ids, in order; empty when there is no more work.
    pub ids: Vec<String>,
    /// Units left in the queue, and their estimated seconds.
    pub remaining_units: usize,
    /// See `remaining_units`.
    pub remaining_seconds: f64,
}

impl Dispatcher {
    pub(crate) fn new(source: TestSource) -> Self {
        let mode = match source {
            // A given plan's ids, in plan order, stand in for the collection it was made
            // from: positions among a function's parametrizations survive as long as they
            // stay in one group (they do when splitting by class or module).
            TestSource::Fixed(assignment) => Mode::Static(Static::Planned {
                reference: assignment.values().flatten().cloned().collect(),
                assignment,
                collected_here: false,
            }),
            TestSource::Collect(planner) => Mode::Static(Static::Waiting(Some(planner))),
            TestSource::Queue {
                durations,
                split_by,
                groups,
            } => Mode::Dynamic(Box::new(Dynamic {
                may_abandon: false,
                may_grow_to: 0,
                durations,
                split_by,
                groups,
                reference: None,
                queue: None,
                own: BTreeMap::new(),
                units_taken: BTreeMap::new(),
            })),
        };
        Dispatcher {
            state: RefCell::new(State {
                mode,
                unstable: Vec::new(),
                fatal: None,
                fail_fast: FailFast::default(),
                lost: Vec::new(),
                not_run: Vec::new(),
                containers: BTreeMap::new(),
                first_handed: None,
                cpu: BTreeMap::new(),
            }),
        }
    }

    /// Up to `groups` groups may pull from the queue in all (`--groups auto` growing).
    pub(crate) fn may_grow_to(self, groups: usize) -> Self {
        if let Mode::Dynamic(mode) = &mut self.state.borrow_mut().mode {
            mode.may_grow_to = groups;
        }
        self
    }

    /// Groups may be abandoned after a test timed out (`--test-timeout`): free groups wait
    /// for the unfinished work of the others, which may come back.
    pub(crate) fn may_abandon(self, yes: bool) -> Self {
        if let Mode::Dynamic(mode) = &mut self.state.borrow_mut().mode {
            mode.may_abandon = yes;
        }
        self
    }

    /// `group`'s test container is running.
    pub(crate) fn register(&self, group: usize, container: &str) {
        let mut state = self.state.borrow_mut();
        state.containers.insert(group, container.to_string());
    }

    /// `group`'s test container has stopped.
    pub(crate) fn unregister(&self, group: usize) {
        self.state.borrow_mut().containers.remove(&group);
    }

    /// The running test containers, by group.
    pub(crate) fn containers(&self) -> Vec<(usize, String)> {
        let state = self.state.borrow();
        state
            .containers
            .iter()
            .map(|(g, c)| (*g, c.clone()))
            .collect()
    }

    /// `group` collected `collected`: what it runs.
    pub(crate) fn collected(
        &self,
        group: usize,
        collected: &[String],
    ) -> Result<Handover, CollectionFailure> {
        let state = &mut *self.state.borrow_mut();
        let State {
            mode,
            unstable,
            fatal,
            ..
        } = state;
        match mode {
            Mode::Static(mode) => static_share(mode, (unstable, fatal), group, collected),
            Mode::Dynamic(mode) => join_queue(mode, unstable, group, collected),
        }
    }

    /// Whether `group`'s request for work should wait: the queue is empty, but another
    /// group holds unstarted units that come back if it dies (dynamic mode only).
    pub(crate) fn must_wait(&self, group: usize) -> bool {
        let state = self.state.borrow();
        let Mode::Dynamic(mode) = &state.mode else {
            return false;
        };
        state.fail_fast.stopped.is_none()
            && mode
                .queue
                .as_ref()
                .is_some_and(|q| q.others_may_return_work(group))
    }

    /// `group`'s next chunk (dynamic mode; empty otherwise, or when stopped).
    pub(crate) fn next(&self, group: usize) -> NextChunk {
        let state = &mut *self.state.borrow_mut();
        let Mode::Dynamic(mode) = &mut state.mode else {
            return NextChunk::default();
        };
        let (Some(queue), Some(own)) = (mode.queue.as_mut(), mode.own.get(&group)) else {
            return NextChunk::default();
        };
        if let Some(reason) = &state.fail_fast.stopped {
            queue.stop(reason.clone());
        }
        let chunk = queue.take(group);
        state
            .first_handed
            .get_or_insert_with(tokio::time::Instant::now);
        *mode.units_taken.entry(group).or_default() += chunk.units;
        let (remaining_units, remaining_micros) = queue.remaining();
        NextChunk {
            ids: chunk.tests.iter().map(|&t| own.ids[t].clone()).collect(),
            remaining_units,
            remaining_seconds: remaining_micros as f64 / 1e6,
        }
    }

    /// pytest's `--maxfail` as a group reported it (the first report wins; 0 is none).
    pub(crate) fn set_maxfail(&self, maxfail: usize) {
        let ff = &mut self.state.borrow_mut().fail_fast;
        if ff.maxfail.is_none() {
            ff.maxfail = Some(maxfail);
        }
    }

    /// A test finished in `group`. Returns the reason to stop every group when this failure
    /// reached `--maxfail` across the groups.
    pub(crate) fn finished(
        &self,
        group: usize,
        node_id: &str,
        failed: bool,
        seconds: Option<f64>,
    ) -> Option<String> {
        let state = &mut *self.state.borrow_mut();
        if let Mode::Dynamic(mode) = &mut state.mode {
            let index = mode
                .own
                .get(&group)
                .and_then(|own| own.index.get(node_id).copied());
            if let (Some(queue), Some(index)) = (mode.queue.as_mut(), index) {
                queue.finished(group, index, seconds);
            }
        }
        if !failed {
            return None;
        }
        let ff = &mut state.fail_fast;
        ff.failures += 1;
        match ff.maxfail {
            Some(limit) if limit > 0 && ff.failures >= limit && ff.stopped.is_none() => {
                let reason = format!(
                    "{} failure(s) across the groups reached pytest's --maxfail={limit}{}",
                    ff.failures,
                    if limit == 1 { " (-x)" } else { "" }
                );
                ff.stopped = Some(reason.clone());
                Some(reason)
            }
            _ => None,
        }
    }

    /// When the first chunk was handed out (a group's first test came right after).
    pub(crate) fn first_handed(&self) -> Option<tokio::time::Instant> {
        self.state.borrow().first_handed
    }

    /// The queue's work left (estimated seconds), how many tests were measured, and whether
    /// durations were recorded before the run; `None` before the queue exists.
    pub(crate) fn work_left(&self) -> Option<(f64, usize, bool)> {
        let state = &mut *self.state.borrow_mut();
        let Mode::Dynamic(mode) = &mut state.mode else {
            return None;
        };
        let recorded = !mode.durations.is_empty();
        let (micros, measured) = mode.queue.as_mut()?.work_left();
        Some((micros as f64 / 1e6, measured as usize, recorded))
    }

    /// `group`'s tests so far took `cpu` CPU seconds in `wall` wall seconds.
    pub(crate) fn record_cpu(&self, group: usize, cpu: f64, wall: f64) {
        self.state
            .borrow_mut()
            .cpu
            .entry(group)
            .and_modify(|[_, latest]| *latest = (cpu, wall))
            .or_insert([(cpu, wall); 2]);
    }

    /// CPU seconds per wall second of the tests of every group (0: they wait, 1: they
    /// compute), from each group's first report on: the first covers its first tests, which
    /// carry the session's set-up (a test database created, migrations), not what the tests
    /// are like. `None` before a second of tests was measured that way.
    pub(crate) fn cpu_fraction(&self) -> Option<f64> {
        let (cpu, wall) = self
            .state
            .borrow()
            .cpu
            .values()
            .fold((0.0, 0.0), |(c, w), [first, latest]| {
                (c + latest.0 - first.0, w + latest.1 - first.1)
            });
        (wall >= 1.0).then(|| (cpu / wall).max(0.0))
    }

    /// Another group joins the queue (`--groups auto` growing).
    pub(crate) fn add_group(&self) {
        if let Mode::Dynamic(mode) = &mut self.state.borrow_mut().mode {
            mode.groups += 1;
            if let Some(queue) = mode.queue.as_mut() {
                queue.add_group();
            }
        }
    }

    /// Whether groups pull from a work queue.
    pub(crate) fn is_dynamic(&self) -> bool {
        matches!(self.state.borrow().mode, Mode::Dynamic(_))
    }

    /// Tests a group was given but did not run (static mode: it ended after a test timed
    /// out).
    pub(crate) fn not_run(&self, ids: Vec<String>) {
        self.state.borrow_mut().not_run.extend(ids);
    }

    /// Why the run stopped early, if it did.
    pub(crate) fn stopped(&self) -> Option<String> {
        self.state.borrow().fail_fast.stopped.clone()
    }

    /// Units `group` has taken so far.
    pub(crate) fn units_taken(&self, group: usize) -> usize {
        match &self.state.borrow().mode {
            Mode::Dynamic(mode) => mode.units_taken.get(&group).copied().unwrap_or(0),
            Mode::Static(_) => 0,
        }
    }

    /// `group` ended as `end` says. Dynamic mode: a group that died loses its in-flight
    /// unit and its unstarted units go back to the queue; an abandoned group's unfinished
    /// tests all go back; tests a group that finished was given but did not run (it
    /// stopped) are recorded as not run.
    pub(crate) fn group_ended(&self, group: usize, end: GroupEnd<'_>) -> GroupEndNote {
        let state = &mut *self.state.borrow_mut();
        let Mode::Dynamic(mode) = &mut state.mode else {
            return GroupEndNote::default();
        };
        let (Some(queue), Some(own)) = (mode.queue.as_mut(), mode.own.get(&group)) else {
            return GroupEndNote::default();
        };
        let how = match end {
            GroupEnd::Finished => crate::plan::QueueEnd::Finished,
            GroupEnd::Died(_) => crate::plan::QueueEnd::Died,
            GroupEnd::Abandoned => crate::plan::QueueEnd::Abandoned,
        };
        let ended = queue.group_ended(group, how);
        let name = |t: &usize| own.ids[*t].clone();
        if let GroupEnd::Died(cause) = end {
            state.lost.extend(ended.lost.iter().map(|t| LostTest {
                node_id: name(t),
                group,
                cause: cause.to_string(),
            }));
        }
        state.not_run.extend(ended.not_run.iter().map(name));
        GroupEndNote {
            lost: ended.lost.len(),
            requeued: ended.requeued,
        }
    }

    /// What the dispatcher learnt, once every group is done.
    pub(crate) fn finish(self) -> Finished {
        let state = self.state.into_inner();
        let mut not_run = state.not_run;
        let (collected, assignment) = match state.mode {
            Mode::Static(Static::Planned {
                assignment,
                reference,
                collected_here,
            }) => (collected_here.then_some(reference), assignment),
            Mode::Static(_) => (None, BTreeMap::new()),
            Mode::Dynamic(mode) => {
                if let (Some(queue), Some(reference)) = (&mode.queue, &mode.reference) {
                    not_run.extend(queue.leftover().iter().map(|&t| reference[t].clone()));
                }
                (mode.reference, BTreeMap::new())
            }
        };
        Finished {
            collected,
            assignment,
            fatal: state.fatal,
            unstable: state.unstable,
            stopped: state.fail_fast.stopped,
            lost: state.lost,
            not_run,
        }
    }
}

/// A static group's share of the plan (made from the first collection), in its own ids.
fn static_share(
    mode: &mut Static,
    (unstable, fatal): (&mut Vec<(String, String)>, &mut Option<RunError>),
    group: usize,
    collected: &[String],
) -> Result<Handover, CollectionFailure> {
    if let Static::Waiting(planner) = mode {
        let planner = planner
            .take()
            .expect("a waiting dispatcher has its planner");
        *mode = match planner(collected.to_vec()) {
            Ok(assignment) => Static::Planned {
                assignment,
                reference: collected.to_vec(),
                collected_here: true,
            },
            Err(error) => {
                let error = Arc::new(error);
                *fatal = Some(RunError::Collection(Box::new(CollectionFailure::NoPlan(
                    error.clone(),
                ))));
                Static::Failed(error)
            }
        };
    }
    match mode {
        Static::Waiting(_) => unreachable!("planned above"),
        Static::Failed(error) => Err(CollectionFailure::NoPlan(error.clone())),
        Static::Planned {
            assignment,
            reference,
            ..
        } => {
            let planned = assignment.get(&group).map(Vec::as_slice).unwrap_or(&[]);
            let matched = match_ids(planned, reference, collected);
            unstable.extend(matched.unstable);
            Ok(Handover::List {
                ids: matched.ids,
                missing: matched.missing,
            })
        }
    }
}

/// The first collection builds the queue; every later one must hold the same tests.
fn join_queue(
    mode: &mut Dynamic,
    unstable: &mut Vec<(String, String)>,
    group: usize,
    collected: &[String],
) -> Result<Handover, CollectionFailure> {
    let reference = mode.reference.get_or_insert_with(|| {
        let mut seen = HashSet::with_capacity(collected.len());
        collected
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect()
    });
    if mode.queue.is_none() {
        let (units, _) = queue_units(reference, &mode.durations, mode.split_by);
        mode.queue = Some(
            WorkQueue::new(units, reference.len(), mode.groups)
                .may_abandon(mode.may_abandon)
                .may_grow_to(mode.may_grow_to),
        );
    }
    let matched = match_ids(reference, reference, collected);
    let matched_set: HashSet<&str> = matched.ids.iter().map(String::as_str).collect();
    let extra: Vec<String> = collected
        .iter()
        .filter(|id| !matched_set.contains(id.as_str()))
        .cloned()
        .collect();
    if !matched.missing.is_empty() || !extra.is_empty() {
        return Err(CollectionFailure::Differs(CollectionMismatch {
            group,
            missing: matched.missing,
            extra,
        }));
    }
    unstable.extend(matched.unstable);
    let index = matched
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i))
        .collect();
    mode.own.insert(
        group,
        OwnIds {
            ids: matched.ids,
            index,
        },
    );
    Ok(Handover::Queue)
}

/// What a dynamic group's end did to the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GroupEndNote {
    /// Tests lost in flight.
    pub lost: usize,
    /// Units put back for the other groups.
    pub requeued: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn dynamic(groups: usize) -> Dispatcher {
        Dispatcher::new(TestSource::Queue {
            durations: Durations::default(),
            split_by: SplitBy::Test,
            groups,
        })
    }

    #[test]
    fn chunks_are_sized_for_the_groups_that_may_join() {
        let suite: Vec<String> = (0..64).map(|i| format!("t.py::t{i}")).collect();
        let recorded = || Durations(suite.iter().map(|id| (id.clone(), 1.0)).collect());
        let source = || TestSource::Queue {
            durations: recorded(),
            split_by: SplitBy::Test,
            groups: 1,
        };
        let one = Dispatcher::new(source());
        one.collected(1, &suite).unwrap();
        assert_eq!(one.next(1).ids.len(), 16, "64 s over 1 group * 4");
        let may_grow = Dispatcher::new(source()).may_grow_to(8);
        may_grow.collected(1, &suite).unwrap();
        assert_eq!(
            may_grow.next(1).ids.len(),
            2,
            "sized for the 8 groups there may be"
        );
    }

    #[test]
    fn the_tests_cpu_share_leaves_out_each_groups_first_report() {
        let c = dynamic(2);
        // Group 1's first second of tests created the test database: 90 % CPU.
        c.record_cpu(1, 0.9, 1.0);
        assert_eq!(c.cpu_fraction(), None, "nothing measured after the set-up");
        c.record_cpu(1, 1.0, 3.0);
        c.record_cpu(2, 0.8, 1.0);
        c.record_cpu(2, 1.2, 3.0);
        let f = c.cpu_fraction().unwrap();
        assert!((f - 0.5 / 4.0).abs() < 1e-9, "{f}");
    }

    #[test]
    fn dynamic_groups_pull_every_test_exactly_once_in_their_own_ids() {
        let c = dynamic(2);
        let suite = ids(&["t.py::a[x1]", "t.py::b", "t.py::c", "u.py::d"]);
        assert!(matches!(c.collected(1, &suite), Ok(Handover::Queue)));
        // Group 2 made another parameter id at collection time: matched by position.
        let other = ids(&["t.py::a[x2]", "t.py::b", "t.py::c", "u.py::d"]);
        assert!(matches!(c.collected(2, &other), Ok(Handover::Queue)));
        let mut ran = Vec::new();
        loop {
            let mut progressed = false;
            for g in [1, 2] {
                let chunk = c.next(g);
                for id in &chunk.ids {
                    assert_eq!(c.finished(g, id, false, None), None);
                    ran.push((g, id.clone()));
                }
                progressed |= !chunk.ids.is_empty();
            }
            if !progressed {
                break;
            }
        }
        assert_eq!(ran.len(), 4);
        let own_a = ran
            .iter()
            .find(|(_, id)| id.starts_with("t.py::a"))
            .unwrap();
        assert_eq!(
            own_a.1,
            if own_a.0 == 1 {
                "t.py::a[x1]"
            } else {
                "t.py::a[x2]"
            }
        );
        let finished = c.finish();
        assert!(finished.not_run.is_empty() && finished.lost.is_empty());
        assert_eq!(finished.collected.unwrap(), suite);
    }

    #[test]
    fn a_group_that_collected_other_tests_is_refused_naming_them() {
        let c = dynamic(2);
        c.collected(1, &ids(&["t.py::a", "t.py::b"])).unwrap();
        let err = c
            .collected(2, &ids(&["t.py::a", "t.py::z"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing here: t.py::b"), "{err}");
        assert!(err.contains("unknown to the first group: t.py::z"), "{err}");
    }

    #[test]
    fn maxfail_across_groups_stops_the_queue_and_reports_what_did_not_run() {
        let c = dynamic(2);
        let suite: Vec<String> = (0..20).map(|i| format!("t.py::t{i:02}")).collect();
        c.collected(1, &suite).unwrap();
        c.collected(2, &suite).unwrap();
        c.set_maxfail(1);
        let first = c.next(1);
        let second = c.next(2);
        let reason = c.finished(2, &second.ids[0], true, None).expect("-x stops");
        assert!(reason.contains("--maxfail=1 (-x)"), "{reason}");
        assert!(c.next(1).ids.is_empty());
        c.finished(1, &first.ids[0], false, None);
        c.group_ended(1, GroupEnd::Finished);
        c.group_ended(2, GroupEnd::Finished);
        let finished = c.finish();
        assert_eq!(finished.stopped.as_deref(), Some(reason.as_str()));
        // Everything but the two tests that ran is reported as not run.
        assert_eq!(finished.not_run.len(), 18);
    }

    #[test]
    fn a_dead_group_loses_only_its_in_flight_unit() {
        let suite: Vec<String> = (0..8).map(|i| format!("t.py::t{i}")).collect();
        let c = Dispatcher::new(TestSource::Queue {
            durations: Durations(suite.iter().map(|id| (id.clone(), 1.0)).collect()),
            split_by: SplitBy::Test,
            groups: 1,
        });
        c.collected(1, &suite).unwrap();
        c.collected(2, &suite).unwrap();
        let first = c.next(1);
        let second = c.next(1);
        assert_eq!(first.ids.len(), 2, "8 s over 1 group * 4: 2 s chunks");
        c.finished(1, &first.ids[0], false, None);
        let note = c.group_ended(1, GroupEnd::Died("container killed (exit 137)"));
        assert_eq!(note.lost, 1);
        assert_eq!(note.requeued, second.ids.len());
        // Group 2 gets the requeued unit first, then the rest.
        let mut rest = Vec::new();
        loop {
            let chunk = c.next(2);
            if chunk.ids.is_empty() {
                break;
            }
            rest.extend(chunk.ids);
        }
        assert_eq!(rest[..second.ids.len()], second.ids[..]);
        assert_eq!(rest.len(), 6);
        let finished = c.finish();
        assert_eq!(finished.lost.len(), 1);
        assert_eq!(finished.lost[0].node_id, first.ids[1]);
        assert!(finished.lost[0].cause.contains("137"));
    }

    #[test]
    fn static_mode_counts_failures_for_maxfail_too() {
        let mut plan = Assignment::new();
        plan.insert(1, ids(&["t.py::a"]));
        plan.insert(2, ids(&["t.py::b"]));
        let c = Dispatcher::new(TestSource::Fixed(plan));
        c.set_maxfail(2);
        assert_eq!(c.finished(1, "t.py::a", true, None), None);
        assert!(c.finished(2, "t.py::b", true, None).is_some());
        assert!(c.stopped().is_some());
    }
}
