//! From collections to each group's test list. Every group's pytest collects the suite itself
//! (as the container's main process, in parallel with the other groups' start-up) and hands
//! its collection here. The first collection to arrive is the reference the plan is made from
//! (unless the plan was given); each group then gets its share of the plan translated into
//! the ids it collected itself, which differ when a suite makes parametrized ids at
//! collection time ([`crate::plan::match_ids`]).
//!
//! All groups run as futures on one task, so the shared state is a `RefCell` that is never
//! borrowed across an `.await`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::error::RunError;
use super::spec::{Assignment, Planner, TestSource};
use crate::plan::match_ids;

/// What the coordinator knows so far.
enum State {
    /// No collection yet: the plan is made from the first one.
    Waiting(Option<Planner>),
    /// The plan, and the collection it was made from.
    Planned {
        assignment: Assignment,
        reference: Vec<String>,
        collected_here: bool,
    },
    /// Planning failed: no group can run.
    Failed(String),
}

/// Hands every group its test list.
pub(crate) struct Coordinator {
    state: RefCell<State>,
    unstable: RefCell<Vec<(String, String)>>,
    fatal: RefCell<Option<RunError>>,
}

/// What the coordinator learnt over the run.
pub(crate) struct Finished {
    /// The reference collection (when collected in this run).
    pub collected: Option<Vec<String>>,
    /// The plan.
    pub assignment: Assignment,
    /// Planning's fatal error.
    pub fatal: Option<RunError>,
    /// Planned ids matched by position: (planned, collected).
    pub unstable: Vec<(String, String)>,
}

/// A group's share of the plan, in its own ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupTests {
    /// The ids to run.
    pub ids: Vec<String>,
    /// Planned tests this group did not collect.
    pub missing: Vec<String>,
}

impl Coordinator {
    pub(crate) fn new(source: TestSource) -> Self {
        let state = match source {
            // A given plan's ids, in plan order, stand in for the collection it was made
            // from: positions among a function's parametrizations survive as long as they
            // stay in one group (they do when splitting by class or module).
            TestSource::Fixed(assignment) => State::Planned {
                reference: assignment.values().flatten().cloned().collect(),
                assignment,
                collected_here: false,
            },
            TestSource::Collect(planner) => State::Waiting(Some(planner)),
        };
        Coordinator {
            state: RefCell::new(state),
            unstable: RefCell::new(Vec::new()),
            fatal: RefCell::new(None),
        }
    }

    /// The tests `group` runs, given what it collected.
    pub(crate) fn tests_for(
        &self,
        group: usize,
        collected: &[String],
    ) -> Result<GroupTests, String> {
        let mut state = self.state.borrow_mut();
        if let State::Waiting(planner) = &mut *state {
            let planner = planner
                .take()
                .expect("a waiting coordinator has its planner");
            *state = match planner(collected.to_vec()) {
                Ok(assignment) => State::Planned {
                    assignment,
                    reference: collected.to_vec(),
                    collected_here: true,
                },
                Err(reason) => {
                    *self.fatal.borrow_mut() = Some(RunError::Collection(reason.clone()));
                    State::Failed(reason)
                }
            };
        }
        match &mut *state {
            State::Waiting(_) => unreachable!("planned above"),
            State::Failed(reason) => Err(format!("no plan: {reason}")),
            State::Planned {
                assignment,
                reference,
                ..
            } => {
                let planned = assignment.get(&group).map(Vec::as_slice).unwrap_or(&[]);
                let matched = match_ids(planned, reference, collected);
                self.unstable.borrow_mut().extend(matched.unstable);
                Ok(GroupTests {
                    ids: matched.ids,
                    missing: matched.missing,
                })
            }
        }
    }

    /// What the coordinator learnt, once every group is done.
    pub(crate) fn finish(self) -> Finished {
        let (collected, assignment) = match self.state.into_inner() {
            State::Planned {
                assignment,
                reference,
                collected_here,
            } => (collected_here.then_some(reference), assignment),
            State::Waiting(_) | State::Failed(_) => (None, BTreeMap::new()),
        };
        Finished {
            collected,
            assignment,
            fatal: self.fatal.into_inner(),
            unstable: self.unstable.into_inner(),
        }
    }
}
