//! The test phase of one group: upload the plugin and the node-id list, exec pytest with
//! progress parsing and the full output kept in `<out>/g<k>/output.log`, then copy the result
//! files out.

use std::io::Write;
use std::path::PathBuf;

use super::backend::Backend;
use super::event::{Event, EventSink, GroupStatus, Phase, TestCounts, TestOutcome};
use super::pytest_command::{
    group_invocation, parse_plugin_line, PluginLine, PLUGIN_DIR, PLUGIN_SOURCE, RESULTS_DIR,
};
use super::spec::RunSpec;
use crate::compose::Service;
use crate::engine::ExecRequest;

/// What the test phase produced.
#[derive(Debug)]
pub struct TestPhaseOutcome {
    /// Group status.
    pub status: GroupStatus,
    /// Counters.
    pub counts: TestCounts,
    /// pytest's exit code.
    pub pytest_exit: Option<i64>,
    /// Node ids that finished.
    pub ran: Vec<String>,
    /// Files copied out.
    pub files: Vec<PathBuf>,
}

/// Feeds exec output into the log file and the counters, line by line.
struct OutputTracker<'a> {
    group: usize,
    log: Option<std::fs::File>,
    partial: Vec<u8>,
    counts: TestCounts,
    ran: Vec<String>,
    missing: Vec<String>,
    events: &'a EventSink,
}

impl OutputTracker<'_> {
    fn feed(&mut self, chunk: &[u8]) {
        if let Some(log) = &mut self.log {
            let _ = log.write_all(chunk);
        }
        self.partial.extend_from_slice(chunk);
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.line(&line);
        }
    }

    fn line(&mut self, line: &str) {
        match parse_plugin_line(line) {
            Some(PluginLine::Done { node_id, outcome }) => {
                match outcome {
                    TestOutcome::Passed => self.counts.passed += 1,
                    TestOutcome::Failed => self.counts.failed += 1,
                    TestOutcome::Skipped => self.counts.skipped += 1,
                    TestOutcome::Error => self.counts.errors += 1,
                }
                self.counts.done += 1;
                self.events.emit(Event::Test {
                    group: self.group,
                    node_id: node_id.clone(),
                    outcome,
                });
                self.ran.push(node_id);
            }
            Some(PluginLine::Missing(id)) => self.missing.push(id),
            None => {}
        }
    }
}

/// Run the group's tests in its test container.
#[allow(clippy::too_many_arguments)]
pub async fn run_tests<B: Backend>(
    backend: &B,
    spec: &RunSpec,
    group: usize,
    container: &str,
    python_path: Option<&str>,
    service: &Service,
    tests: &[String],
    events: &EventSink,
) -> TestPhaseOutcome {
    let group_dir = spec.out_dir.join(format!("g{group}"));
    let mut outcome = TestPhaseOutcome {
        status: GroupStatus::Passed,
        counts: TestCounts {
            planned: tests.len(),
            ..Default::default()
        },
        pytest_exit: None,
        ran: Vec::new(),
        files: Vec::new(),
    };
    events.emit(Event::Planned {
        group,
        tests: tests.len(),
    });
    if let Err(e) = std::fs::create_dir_all(&group_dir) {
        outcome.status =
            GroupStatus::EnvironmentError(format!("failed to create {}: {e}", group_dir.display()));
        return outcome;
    }
    let mut list = tests.join("\n");
    list.push('\n');
    let files: [(&str, &[u8]); 2] = [
        ("compose_shard_plugin.py", PLUGIN_SOURCE.as_bytes()),
        ("tests.txt", list.as_bytes()),
    ];
    if let Err(e) = backend.upload(container, PLUGIN_DIR, &files).await {
        outcome.status = GroupStatus::EnvironmentError(crate::errors::render_chain(&e));
        return outcome;
    }

    events.emit(Event::Phase {
        group,
        phase: Phase::Testing,
    });
    let invocation = group_invocation(&spec.command, python_path, &spec.env);
    let request = ExecRequest {
        cmd: invocation.argv,
        env: invocation.env,
        working_dir: service.working_dir.clone(),
        user: service.user.clone(),
    };
    let mut tracker = OutputTracker {
        group,
        log: std::fs::File::create(group_dir.join("output.log")).ok(),
        partial: Vec::new(),
        counts: outcome.counts.clone(),
        ran: Vec::new(),
        missing: Vec::new(),
        events,
    };
    let mut feed = |chunk: &[u8]| tracker.feed(chunk);
    let exec = backend.exec(container, &request, &mut feed);
    let result = match spec.timeout {
        Some(limit) => tokio::time::timeout(limit, exec).await.map_err(|_| limit),
        None => Ok(exec.await),
    };
    if !tracker.partial.is_empty() {
        let rest = String::from_utf8_lossy(&std::mem::take(&mut tracker.partial)).into_owned();
        tracker.line(&rest);
    }
    outcome.counts = tracker.counts;
    outcome.ran = tracker.ran;
    for id in &tracker.missing {
        events.emit(Event::Warning(format!(
            "[g{group}] planned test was not collected in this group: {id}"
        )));
    }
    outcome.status = match result {
        Err(limit) => GroupStatus::TimedOut(limit),
        Ok(Err(e)) => GroupStatus::EnvironmentError(crate::errors::render_chain(&e)),
        Ok(Ok(exec)) => {
            outcome.pytest_exit = exec.exit_code;
            classify_exit(backend, container, exec.exit_code, &outcome.counts).await
        }
    };

    events.emit(Event::Phase {
        group,
        phase: Phase::Copying,
    });
    match backend.download(container, RESULTS_DIR, &group_dir).await {
        Ok(files) => outcome.files = files,
        Err(e) => events.emit(Event::Warning(format!(
            "[g{group}] could not copy results out: {}",
            crate::errors::render_chain(&e)
        ))),
    }
    outcome
}

/// pytest's exit code -> group status. 0 passed, 1 tests failed, 5 nothing collected (an
/// empty group is fine); 2-4 (interrupted, internal, usage error) count as failed; anything
/// else means the process was killed, so the container's state gives the cause.
async fn classify_exit<B: Backend>(
    backend: &B,
    container: &str,
    code: Option<i64>,
    counts: &TestCounts,
) -> GroupStatus {
    match code {
        Some(0) | Some(5) if counts.failed + counts.errors == 0 => GroupStatus::Passed,
        Some(0..=5) => GroupStatus::Failed,
        other => {
            // A killed container can still read as running for a moment after its exec
            // stream ended; wait briefly so the cause (exit code, OOM) is the real one.
            let mut state = String::new();
            for _ in 0..10 {
                match backend.status(container).await {
                    Ok(s) => {
                        state = s.describe();
                        if !s.running {
                            break;
                        }
                    }
                    Err(e) => {
                        state = crate::errors::render_chain(&e);
                        break;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            GroupStatus::EnvironmentError(format!(
                "the test process ended abnormally (exit code {}); test container: {state}",
                other.map_or("unknown".into(), |c| c.to_string())
            ))
        }
    }
}
