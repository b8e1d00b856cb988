//! Failures explained (`--retries N`): once the groups are done, every test that failed is
//! run again, alone, in a fresh environment of the same project, up to N times. A test that
//! passes on a retry failed either by chance (flaky) or because of what ran before it: a
//! replay of its group's earlier tests, in the same order, in a fresh environment, tells
//! which. When the replay fails too, the test is order-dependent and a bisection
//! ([`crate::plan::Bisection`], several probes at once) finds the earlier tests that make it
//! fail, within a time budget. A test that fails on every retry is a real failure.
//!
//! Every retry, replay and probe is an ordinary run of the orchestrator on a fixed list in
//! fresh environments (their results in `<out>/retries/`, `<out>/replays/` and
//! `<out>/bisect/`), so nothing here differs from how the groups themselves ran.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::time::Duration;

use tokio::time::Instant;

use super::backend::Backend;
use super::event::{Event, EventSink, TestOutcome};
use super::orchestrator::{run_on, EngineSlot, RunOutcome};
use super::spec::{Assignment, ProjectFactory, RunSpec, TestSource};
use crate::config::Dist;
use crate::plan::{BisectStep, BisectVerdict, Bisection};
use crate::report::{read_attempts, Attempt, AttemptOutcome, NodeIdIndex, ResultsLayout};

/// What a failed test turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureClass {
    /// It passed on a retry, and its group's earlier tests do not make it fail.
    Flaky {
        /// The retry it passed on (1-based).
        passed_on: usize,
    },
    /// It passed alone and fails after its group's earlier tests.
    OrderDependent {
        /// Its group in the run.
        group: usize,
        /// The earlier tests that make it fail (empty: the search did not finish).
        culprits: Vec<String>,
        /// A plan that runs just them and the test (`run --plan FILE` reproduces it).
        plan: Option<PathBuf>,
        /// How the search ended, when it named no culprit.
        note: Option<String>,
    },
    /// It failed on every retry.
    Real,
}

impl FailureClass {
    /// Whether the failure counts against the run (flaky tests count as passed).
    pub fn fails_the_run(&self) -> bool {
        !matches!(self, FailureClass::Flaky { .. })
    }

    /// One sentence on what it is.
    pub fn describe(&self) -> String {
        match self {
            FailureClass::Flaky { passed_on } => format!(
                "flaky: it passed on retry {passed_on} in a fresh environment, and the tests its group ran before it do not make it fail"
            ),
            FailureClass::OrderDependent {
                culprits, note, ..
            } if culprits.is_empty() => format!(
                "order-dependent: it passes alone in a fresh environment and fails after the tests its group ran before it{}",
                note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
            ),
            FailureClass::OrderDependent { culprits, .. } => format!(
                "order-dependent: it passes alone in a fresh environment and fails after {}",
                culprits.join(", ")
            ),
            FailureClass::Real => "real: it failed on every retry in a fresh environment".into(),
        }
    }

    /// `flaky`, `order-dependent` or `real`.
    pub fn label(&self) -> &'static str {
        match self {
            FailureClass::Flaky { .. } => "flaky",
            FailureClass::OrderDependent { .. } => "order-dependent",
            FailureClass::Real => "real",
        }
    }
}

/// What the explanation found.
#[derive(Debug, Clone, Default)]
pub struct Explanation {
    /// The retries of each failed test, in order (for the JUnit's flaky/rerun elements).
    pub retries: BTreeMap<String, Vec<Attempt>>,
    /// What each failed test is.
    pub classes: BTreeMap<String, FailureClass>,
    /// Seconds it took.
    pub seconds: f64,
}

impl Explanation {
    /// Tests of `class`'s label.
    pub fn of(&self, label: &str) -> Vec<&String> {
        self.classes
            .iter()
            .filter(|(_, c)| c.label() == label)
            .map(|(id, _)| id)
            .collect()
    }
}

/// What explaining a run needs.
pub struct Explainer<'a, B: Backend> {
    /// The engines the run used.
    pub engines: &'a [EngineSlot<'a, B>],
    /// The run's spec (projects are replaced by fresh ones).
    pub spec: &'a RunSpec,
    /// Fresh isolated projects.
    pub factory: ProjectFactory,
    /// `--retries`.
    pub retries: usize,
    /// How long the bisections may take in all.
    pub budget: Duration,
    /// How many environments may run at once.
    pub parallel: usize,
    /// Where events go.
    pub events: &'a EventSink,
    /// Rounds of probes run so far.
    pub rounds: std::cell::Cell<usize>,
}

/// A failed test and where it failed.
#[derive(Debug, Clone)]
struct Failed {
    id: String,
    group: usize,
    /// The tests its group finished before it, in order.
    earlier: Vec<String>,
}

/// The failed tests of a run (failures and errors, not skips), with what ran before each
/// in its group.
fn failed_tests(outcome: &RunOutcome) -> Vec<Failed> {
    let mut failed = Vec::new();
    for g in &outcome.groups {
        for (i, (id, result)) in g.ran.iter().zip(&g.results).enumerate() {
            if matches!(result.outcome, TestOutcome::Failed | TestOutcome::Error) {
                failed.push(Failed {
                    id: id.clone(),
                    group: g.group,
                    earlier: g.ran[..i].to_vec(),
                });
            }
        }
    }
    for lost in &outcome.lost {
        let earlier = outcome
            .groups
            .iter()
            .find(|g| g.group == lost.group)
            .map(|g| g.ran.clone())
            .unwrap_or_default();
        failed.push(Failed {
            id: lost.node_id.clone(),
            group: lost.group,
            earlier,
        });
    }
    failed
}

impl<B: Backend> Explainer<'_, B> {
    /// Retry, replay and bisect the failures of `outcome`; `next_group` is the first group
    /// number free for fresh environments.
    pub async fn explain(&self, outcome: &RunOutcome, next_group: usize) -> Explanation {
        let started = Instant::now();
        let mut numbers = next_group..;
        let mut explanation = Explanation::default();
        let failed = failed_tests(outcome);
        let mut still: Vec<String> = failed.iter().map(|f| f.id.clone()).collect();
        let mut passed_on: BTreeMap<String, usize> = BTreeMap::new();
        for attempt in 1..=self.retries {
            if still.is_empty() {
                break;
            }
            self.events.emit(Event::Notice(format!(
                "retry {attempt}: running {} failed test(s) again, alone, in a fresh environment",
                still.len()
            )));
            let group = numbers.next().expect("unbounded");
            let lists = BTreeMap::from([(group, still.clone())]);
            let dir = self.spec.out_dir.join("retries").join(attempt.to_string());
            let results = self.run_lists(&lists, &dir, &format!("{attempt}")).await;
            let attempts = results.get(&group).cloned().unwrap_or_default();
            for id in &still {
                let a = attempts.get(id).cloned().unwrap_or_else(|| not_run(id));
                if a.outcome == AttemptOutcome::Passed {
                    passed_on.insert(id.clone(), attempt);
                }
                explanation.retries.entry(id.clone()).or_default().push(a);
            }
            still.retain(|id| !passed_on.contains_key(id));
        }
        for id in &still {
            explanation.classes.insert(id.clone(), FailureClass::Real);
        }
        let candidates: Vec<&Failed> = failed
            .iter()
            .filter(|f| passed_on.contains_key(&f.id))
            .collect();
        let order = self.replay(&candidates, &mut numbers).await;
        for f in &candidates {
            let class = if order.contains(&f.id) {
                FailureClass::OrderDependent {
                    group: f.group,
                    culprits: Vec::new(),
                    plan: None,
                    note: None,
                }
            } else {
                FailureClass::Flaky {
                    passed_on: passed_on[&f.id],
                }
            };
            explanation.classes.insert(f.id.clone(), class);
        }
        let victims: Vec<&Failed> = candidates
            .into_iter()
            .filter(|f| order.contains(&f.id))
            .collect();
        let deadline = started + self.budget;
        for (id, class) in self
            .bisect_all(&victims, &mut numbers, deadline, true)
            .await
        {
            explanation.classes.insert(id, class);
        }
        explanation.seconds = started.elapsed().as_secs_f64();
        explanation
    }

    /// Replay each candidate's group's earlier tests, then the candidate, in a fresh
    /// environment; the candidates that fail again.
    async fn replay(
        &self,
        candidates: &[&Failed],
        numbers: &mut impl Iterator<Item = usize>,
    ) -> Vec<String> {
        let mut failing = Vec::new();
        for (wave, chunk) in candidates.chunks(self.parallel.max(1)).enumerate() {
            let mut lists = BTreeMap::new();
            let mut victim_of = BTreeMap::new();
            for f in chunk {
                let group = numbers.next().expect("unbounded");
                let mut list = f.earlier.clone();
                list.push(f.id.clone());
                lists.insert(group, list);
                victim_of.insert(group, f.id.clone());
            }
            self.events.emit(Event::Notice(format!(
                "replay: {} test(s) that passed alone run again after the tests their group ran before them",
                chunk.len()
            )));
            let dir = self
                .spec
                .out_dir
                .join("replays")
                .join((wave + 1).to_string());
            let results = self.run_lists(&lists, &dir, "replay").await;
            for (group, victim) in victim_of {
                if victim_failed(&results, group, &victim) {
                    failing.push(victim);
                }
            }
        }
        failing
    }

    /// `compose-shard bisect`: search for the earlier tests of its group (`earlier`, in the
    /// order they ran) that make `victim` fail, starting with a replay of all of them; fresh
    /// environments are numbered from `next_group`.
    pub async fn bisect(
        &self,
        victim: &str,
        group: usize,
        earlier: Vec<String>,
        next_group: usize,
    ) -> (FailureClass, usize) {
        let f = Failed {
            id: victim.to_string(),
            group,
            earlier,
        };
        let mut numbers = next_group..;
        let deadline = Instant::now() + self.budget;
        let mut found = self.bisect_all(&[&f], &mut numbers, deadline, false).await;
        let rounds = self.rounds.get();
        (found.remove(0).1, rounds)
    }

    /// Bisect every order-dependent test at once, round by round, within the deadline
    /// (`confirmed`: their replays already failed).
    async fn bisect_all(
        &self,
        victims: &[&Failed],
        numbers: &mut impl Iterator<Item = usize>,
        deadline: Instant,
        confirmed: bool,
    ) -> Vec<(String, FailureClass)> {
        let mut searches: Vec<(&Failed, Bisection)> = victims
            .iter()
            .map(|f| {
                let rounds = Bisection::rounds_for_one_culprit(f.earlier.len()) + 8;
                (*f, Bisection::new(f.earlier.len(), rounds, confirmed))
            })
            .collect();
        let mut round = 0;
        let mut verdicts: BTreeMap<String, BisectVerdict> = BTreeMap::new();
        loop {
            let mut probes: Vec<(usize, usize, Vec<usize>)> = Vec::new();
            for (s, (f, search)) in searches.iter_mut().enumerate() {
                if verdicts.contains_key(&f.id) {
                    continue;
                }
                match search.next_step() {
                    BisectStep::Probe(sets) => {
                        probes.extend(sets.into_iter().enumerate().map(|(i, set)| (s, i, set)))
                    }
                    BisectStep::Done(verdict) => {
                        verdicts.insert(f.id.clone(), verdict);
                    }
                }
            }
            if probes.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for (f, _) in &searches {
                    verdicts
                        .entry(f.id.clone())
                        .or_insert(BisectVerdict::OutOfRounds(Vec::new()));
                }
                break;
            }
            round += 1;
            self.rounds.set(round);
            let results = self.probe(&searches, &probes, numbers, round).await;
            for (s, (_, search)) in searches.iter_mut().enumerate() {
                let mine: Vec<bool> = probes
                    .iter()
                    .zip(&results)
                    .filter(|((owner, _, _), _)| *owner == s)
                    .map(|(_, failed)| *failed)
                    .collect();
                if !mine.is_empty() {
                    search.record(&mine);
                }
            }
        }
        searches
            .iter()
            .map(|(f, _)| {
                let verdict = verdicts
                    .remove(&f.id)
                    .unwrap_or(BisectVerdict::Inconsistent);
                (f.id.clone(), self.order_class(f, verdict))
            })
            .collect()
    }

    /// One round of probes, in waves of at most `parallel` environments: for each probe,
    /// whether its victim failed.
    async fn probe(
        &self,
        searches: &[(&Failed, Bisection)],
        probes: &[(usize, usize, Vec<usize>)],
        numbers: &mut impl Iterator<Item = usize>,
        round: usize,
    ) -> Vec<bool> {
        self.events.emit(Event::Notice(format!(
            "bisect round {round}: {} probe(s), each in a fresh environment",
            probes.len()
        )));
        let mut failed = Vec::with_capacity(probes.len());
        for (wave, chunk) in probes.chunks(self.parallel.max(1)).enumerate() {
            let mut lists = BTreeMap::new();
            let mut victims = Vec::new();
            for (s, _, set) in chunk {
                let f = searches[*s].0;
                let group = numbers.next().expect("unbounded");
                let mut list: Vec<String> = set.iter().map(|&i| f.earlier[i].clone()).collect();
                list.push(f.id.clone());
                lists.insert(group, list);
                victims.push((group, f.id.clone()));
            }
            let dir = self
                .spec
                .out_dir
                .join("bisect")
                .join(format!("round-{round}-{}", wave + 1));
            let results = self.run_lists(&lists, &dir, "bisect").await;
            failed.extend(
                victims
                    .iter()
                    .map(|(group, id)| victim_failed(&results, *group, id)),
            );
        }
        failed
    }

    /// The class of an order-dependent test from its bisection's verdict.
    fn order_class(&self, f: &Failed, verdict: BisectVerdict) -> FailureClass {
        let (culprits, note) = match verdict {
            BisectVerdict::Culprits(c) => (c, None),
            BisectVerdict::OutOfRounds(best)
                if !best.is_empty() && best.len() < f.earlier.len() =>
            {
                (
                    Vec::new(),
                    Some(format!(
                        "the search ran out of time with {} candidate(s) left",
                        best.len()
                    )),
                )
            }
            BisectVerdict::OutOfRounds(_) => {
                (Vec::new(), Some("the search ran out of time".into()))
            }
            BisectVerdict::NotReproduced => (
                Vec::new(),
                Some("it passed after every earlier test of its group: what ran before it does not make it fail".into()),
            ),
            BisectVerdict::Inconsistent => (
                Vec::new(),
                Some("the probes contradicted each other: the failure is not deterministic".into()),
            ),
        };
        let culprits: Vec<String> = culprits.iter().map(|&i| f.earlier[i].clone()).collect();
        let plan = (!culprits.is_empty())
            .then(|| write_culprit_plan(&self.spec.out_dir, &culprits, &f.id).ok())
            .flatten();
        FailureClass::OrderDependent {
            group: f.group,
            culprits,
            plan,
            note,
        }
    }

    /// Run each group's list (group number -> node ids, in order) in a fresh environment of
    /// its own, results under `dir`; what each test did, by group.
    async fn run_lists(
        &self,
        lists: &BTreeMap<usize, Vec<String>>,
        dir: &Path,
        attempt: &str,
    ) -> BTreeMap<usize, BTreeMap<String, Attempt>> {
        let mut spec = self.spec.clone();
        spec.out_dir = dir.to_path_buf();
        spec.dist = Dist::Static;
        spec.keep = false;
        spec.sweep = false;
        spec.placement = Vec::new();
        spec.env.retain(|(k, _)| k != ATTEMPT_ENV);
        spec.env
            .push((ATTEMPT_ENV.to_string(), attempt.to_string()));
        let mut projects = Vec::new();
        for &group in lists.keys() {
            match (self.factory.0)(group) {
                Ok(project) => projects.push(project),
                Err(e) => {
                    self.events.emit(Event::Warning(format!(
                        "could not prepare a fresh environment (group {group}): {}",
                        crate::errors::render_chain(&e)
                    )));
                    return BTreeMap::new();
                }
            }
        }
        spec.projects = projects;
        let _ = std::fs::create_dir_all(dir);
        let assignment: Assignment = lists.clone();
        let outcome = run_on(
            self.engines,
            &spec,
            TestSource::Fixed(assignment),
            self.events,
        )
        .await;
        let layout = ResultsLayout::new(dir);
        let mut results = BTreeMap::new();
        for g in &outcome.groups {
            let ids = lists.get(&g.group).cloned().unwrap_or_default();
            let index = NodeIdIndex::new(&ids);
            let read = read_attempts(&layout.junit(g.group), &index).unwrap_or_default();
            results.insert(g.group, read);
        }
        results
    }
}

/// The environment variable that tells the test process which run it is: `0` (absent) for
/// the groups, `1`, `2`... for retries, `replay` and `bisect` for the searches.
pub const ATTEMPT_ENV: &str = "COMPOSE_SHARD_ATTEMPT";

/// A test that a retry did not run (its environment failed).
fn not_run(id: &str) -> Attempt {
    Attempt {
        outcome: AttemptOutcome::Error,
        message: format!("{id} did not run: the retry's environment failed"),
        text: String::new(),
        time: 0.0,
    }
}

fn victim_failed(
    results: &BTreeMap<usize, BTreeMap<String, Attempt>>,
    group: usize,
    id: &str,
) -> bool {
    results
        .get(&group)
        .and_then(|r| r.get(id))
        .is_some_and(Attempt::failed)
}

/// `<out>/bisect/<test>.json`: a one-group plan of the culprits and the test, which
/// `compose-shard run --plan FILE` reruns.
fn write_culprit_plan(out: &Path, culprits: &[String], victim: &str) -> std::io::Result<PathBuf> {
    let slug: String = victim
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>();
    let slug = slug
        .chars()
        .rev()
        .take(80)
        .collect::<String>()
        .chars()
        .rev()
        .collect::<String>();
    let dir = out.join("bisect");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{slug}.json"));
    let mut list = culprits.to_vec();
    list.push(victim.to_string());
    let plan = crate::plan::plan_of_run(
        &[(1, list)],
        1,
        &crate::plan::Durations::default(),
        crate::config::SplitBy::Test,
    );
    crate::report::write_atomically(&path, |w| {
        w.write_all(plan.to_json().as_bytes())
            .map_err(|source| crate::report::ReportError::Io {
                action: "write",
                path: path.clone(),
                source,
            })
    })
    .map_err(std::io::Error::other)?;
    Ok(path)
}
