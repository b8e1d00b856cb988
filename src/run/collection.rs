//! Collect once, plan, publish: the first group whose environment is ready offers its test
//! container; the suite is collected there, the planner splits it, and every group waiting
//! for its tests receives the assignment (or the reason there is none).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::backend::Backend;
use super::error::RunError;
use super::event::{Event, EventSink};
use super::pytest_command::collect_invocation;
use super::spec::{Assignment, RunSpec, TestSource};
use crate::engine::ExecRequest;

/// What groups waiting for their tests see.
#[derive(Debug, Clone)]
pub(crate) enum PlanState {
    /// Collection or planning is under way.
    Pending,
    /// The assignment of tests to groups.
    Ready(Arc<Assignment>),
    /// Collection or planning failed, or no environment became ready.
    Failed(String),
}

/// A ready test container, offered for collection.
pub(crate) struct ReadyEnv {
    /// The test container.
    pub container: String,
    /// PYTHONPATH to keep after the plugin folder.
    pub python_path: Option<String>,
    /// Working directory for the exec.
    pub working_dir: Option<String>,
    /// User for the exec.
    pub user: Option<String>,
}

/// Wait for the first ready environment, collect there, plan, and publish the assignment.
pub(crate) async fn coordinate<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    source: TestSource,
    mut ready: mpsc::UnboundedReceiver<ReadyEnv>,
    plan_tx: watch::Sender<PlanState>,
    events: &EventSink,
) -> (Option<Vec<String>>, Assignment, Option<RunError>) {
    let planner = match source {
        TestSource::Fixed(assignment) => {
            let _ = plan_tx.send(PlanState::Ready(Arc::new(assignment.clone())));
            return (None, assignment, None);
        }
        TestSource::Collect(planner) => planner,
    };
    let Some(env) = ready.recv().await else {
        let reason = "no environment became ready, so the tests could not be collected".to_string();
        let _ = plan_tx.send(PlanState::Failed(reason));
        return (None, BTreeMap::new(), None);
    };
    events.emit(Event::Info("collecting tests".into()));
    let invocation = collect_invocation(&spec.command, env.python_path.as_deref());
    let request = ExecRequest {
        cmd: invocation.argv.clone(),
        env: spec.env.iter().cloned().chain(invocation.env).collect(),
        working_dir: env.working_dir.clone(),
        user: env.user.clone(),
    };
    let mut output = Vec::new();
    let result = backend
        .exec(&env.container, &request, &mut |chunk| {
            output.extend_from_slice(chunk)
        })
        .await;
    let text = String::from_utf8_lossy(&output).into_owned();
    let fail = |reason: String| {
        let _ = plan_tx.send(PlanState::Failed(reason.clone()));
        (None, BTreeMap::new(), Some(RunError::Collection(reason)))
    };
    match result {
        Ok(o) if matches!(o.exit_code, Some(0) | Some(5)) => {}
        Ok(o) => {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return fail(format!(
                "collecting tests with `{}` failed (exit code {}):\n{}",
                invocation.argv.join(" "),
                o.exit_code.map_or("unknown".into(), |c| c.to_string()),
                tail.join("\n")
            ));
        }
        Err(e) => return fail(crate::errors::render_chain(&e)),
    }
    // The plan module's parser rejects output that would silently lose tests (collection
    // errors, the non-`-q` tree form).
    let collected = match crate::plan::parse_collect_output(&text) {
        Ok(ids) => ids,
        Err(problem) => {
            return fail(format!(
                "the output of `{}` cannot be used as the test list: {problem}",
                invocation.argv.join(" ")
            ))
        }
    };
    events.emit(Event::Info(format!("collected {} tests", collected.len())));
    match planner(collected.clone()) {
        Ok(assignment) => {
            let _ = plan_tx.send(PlanState::Ready(Arc::new(assignment.clone())));
            (Some(collected), assignment, None)
        }
        Err(e) => {
            let (_, a, f) = fail(e);
            (Some(collected), a, f)
        }
    }
}
