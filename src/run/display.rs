//! The live display: one indicatif line per group on a terminal, or plain `[g2] ...` lines
//! for CI logs. It consumes [`Event`]s and is the only place that prints during a run.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use super::event::{Activity, Event, TestOutcome};
use super::outcome::GroupStatus;
use crate::config::ProgressMode;

/// `queue: 12 units, ~34s left`.
fn queue_left((units, seconds): (usize, f64)) -> String {
    if units == 0 {
        return "queue empty".into();
    }
    format!("queue: {units} units, ~{}s left", seconds.round() as u64)
}

/// Bars or plain lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayMode {
    /// indicatif bars.
    Bars,
    /// Prefixed lines.
    Plain,
}

impl DisplayMode {
    /// `--progress auto` means bars only when stderr is a terminal.
    pub fn resolve(mode: ProgressMode) -> DisplayMode {
        match mode {
            ProgressMode::Bars => DisplayMode::Bars,
            ProgressMode::Plain => DisplayMode::Plain,
            ProgressMode::Auto if std::io::stderr().is_terminal() => DisplayMode::Bars,
            ProgressMode::Auto => DisplayMode::Plain,
        }
    }
}

struct GroupLine {
    bar: Option<ProgressBar>,
    activity: Activity,
    planned: usize,
    done: usize,
    failed: usize,
    /// Units taken from the queue (dynamic mode).
    units: Option<usize>,
    started: Instant,
}

/// Consumes events until the channel closes.
pub struct Display {
    mode: DisplayMode,
    /// Where plain lines go (standard error, or a buffer in tests).
    plain: std::sync::Mutex<Box<dyn std::io::Write + Send>>,
    multi: MultiProgress,
    groups: BTreeMap<usize, GroupLine>,
    /// The queue's units and estimated seconds left (dynamic mode).
    queue: Option<(usize, f64)>,
}

impl Display {
    /// A display in `mode`.
    pub fn new(mode: DisplayMode) -> Display {
        Display::writing_to(mode, Box::new(std::io::stderr()))
    }

    /// A display whose plain lines go to `plain`.
    pub fn writing_to(mode: DisplayMode, plain: Box<dyn std::io::Write + Send>) -> Display {
        let multi = MultiProgress::with_draw_target(match mode {
            DisplayMode::Bars => ProgressDrawTarget::stderr(),
            DisplayMode::Plain => ProgressDrawTarget::hidden(),
        });
        Display {
            mode,
            plain: std::sync::Mutex::new(plain),
            multi,
            groups: BTreeMap::new(),
            queue: None,
        }
    }

    /// Print events as they come, until every sender is gone.
    pub async fn consume(mut self, mut events: UnboundedReceiver<Event>) {
        while let Some(event) = events.recv().await {
            self.handle(event);
        }
        for line in self.groups.values() {
            if let Some(bar) = &line.bar {
                bar.finish();
            }
        }
    }

    fn print(&self, text: &str) {
        match self.mode {
            DisplayMode::Bars => {
                let _ = self.multi.println(text);
            }
            DisplayMode::Plain => {
                let mut out = self.plain.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(out, "{text}");
            }
        }
    }

    fn line(&mut self, group: usize) -> &mut GroupLine {
        let mode = self.mode;
        let multi = &self.multi;
        self.groups.entry(group).or_insert_with(|| {
            let bar = (mode == DisplayMode::Bars).then(|| {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:.bold} [{bar:24}] {pos}/{len} {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(format!("[g{group}]"));
                bar.enable_steady_tick(Duration::from_millis(250));
                bar
            });
            GroupLine {
                bar,
                activity: Activity::Creating,
                planned: 0,
                done: 0,
                failed: 0,
                units: None,
                started: Instant::now(),
            }
        })
    }

    fn refresh(&mut self, group: usize) {
        let queue = self.queue;
        let line = self.line(group);
        if let Some(bar) = &line.bar {
            bar.set_length(line.planned as u64);
            bar.set_position(line.done as u64);
            let work = match (line.units, queue) {
                (Some(units), Some(queue)) => format!("{units} units | {} | ", queue_left(queue)),
                _ => String::new(),
            };
            bar.set_message(format!(
                "{} | {} failed | {work}{}s",
                line.activity,
                line.failed,
                line.started.elapsed().as_secs()
            ));
        }
    }

    // One arm per event kind, each a few lines: splitting it would only scatter the match.
    fn handle(&mut self, event: Event) {
        match event {
            Event::Info(text) => {
                if self.mode == DisplayMode::Plain {
                    self.print(&text)
                }
            }
            Event::Notice(text) => self.print(&text),
            Event::Warning(text) => self.print(&format!("warning: {text}")),
            Event::Activity { group, activity } => {
                let line = self.line(group);
                line.activity = activity.clone();
                let elapsed = line.started.elapsed().as_secs();
                if self.mode == DisplayMode::Plain {
                    self.print(&format!("[g{group}] {activity} ({elapsed}s)"));
                }
                self.refresh(group);
            }
            Event::Planned { group, tests } => {
                self.line(group).planned = tests;
                if self.mode == DisplayMode::Plain {
                    self.print(&format!("[g{group}] {tests} tests"));
                }
                self.refresh(group);
            }
            Event::Unit {
                group,
                units,
                tests,
                remaining_units,
                remaining_seconds,
            } => {
                self.queue = Some((remaining_units, remaining_seconds));
                let line = self.line(group);
                line.units = Some(units);
                line.planned += tests;
                let (done, failed) = (line.done, line.failed);
                if self.mode == DisplayMode::Plain && tests > 0 {
                    self.print(&format!(
                        "[g{group}] took {tests} test(s): {units} units, {done} tests done, {failed} failed so far | {}",
                        queue_left((remaining_units, remaining_seconds))
                    ));
                }
                self.refresh(group);
            }
            Event::Test {
                group,
                node_id,
                outcome,
            } => {
                let line = self.line(group);
                if matches!(outcome, TestOutcome::Failed | TestOutcome::Error) {
                    line.failed += 1;
                    let word = if outcome == TestOutcome::Failed { "FAILED" } else { "ERROR" };
                    self.print(&format!("[g{group}] {word} {node_id}"));
                }
                self.line(group).done += 1;
                self.refresh(group);
            }
            Event::GroupDone(report) => {
                let c = &report.counts;
                let status = match &report.status {
                    GroupStatus::Passed | GroupStatus::Failed => report.status.label().to_string(),
                    other => other.to_string(),
                };
                self.print(&format!(
                    "[g{}] {status}: {} passed, {} failed, {} skipped, {} errors of {} tests",
                    report.group, c.passed, c.failed, c.skipped, c.errors, c.planned
                ));
                let group = report.group;
                if let Some(bar) = &self.line(group).bar {
                    bar.finish();
                }
            }
            Event::Interrupted { forced: false } => {
                self.print("interrupted: stopping, removing everything this run created (Ctrl-C again to hurry)")
            }
            Event::Interrupted { forced: true } => {
                self.print("second interrupt: removal is already forced; finishing it so nothing is left behind")
            }
            Event::Removed(list) => {
                if !list.is_empty() && self.mode == DisplayMode::Plain {
                    self.print(&format!("removed {}", list.join(", ")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::run::event::{GroupReport, TestCounts};
    use crate::run::outcome::{EnvironmentFailure, FailureCause, Lingering};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn done(group: usize, status: GroupStatus, counts: (usize, usize, usize)) -> Event {
        Event::GroupDone(Box::new(GroupReport {
            status,
            counts: TestCounts {
                planned: counts.0 + counts.1 + counts.2,
                done: counts.0 + counts.1,
                passed: counts.0,
                failed: counts.1,
                ..TestCounts::default()
            },
            ..GroupReport::new(group)
        }))
    }

    // Over 80 lines: one event of every kind, in the order a run emits them, read best as
    // one script beside its snapshot.
    #[tokio::test]
    async fn the_plain_display_of_every_kind_of_event() {
        let buffer = Shared::default();
        let display = Display::writing_to(DisplayMode::Plain, Box::new(buffer.clone()));
        let (events, rx) = crate::run::EventSink::channel();
        let script = vec![
            Event::Info("run abc123: 4 group(s), results in compose-shard-results".into()),
            Event::Activity {
                group: 1,
                activity: Activity::Creating,
            },
            Event::Activity {
                group: 1,
                activity: Activity::Starting("db".into()),
            },
            Event::Activity {
                group: 1,
                activity: Activity::WaitingFor(vec!["db".into(), "redis".into()]),
            },
            Event::Activity {
                group: 1,
                activity: Activity::Collecting,
            },
            Event::Planned { group: 1, tests: 3 },
            Event::Unit {
                group: 2,
                units: 1,
                tests: 4,
                remaining_units: 9,
                remaining_seconds: 12.4,
            },
            Event::Test {
                group: 1,
                node_id: "t.py::ok".into(),
                outcome: TestOutcome::Passed,
            },
            Event::Test {
                group: 1,
                node_id: "t.py::bad".into(),
                outcome: TestOutcome::Failed,
            },
            Event::Test {
                group: 2,
                node_id: "t.py::boom".into(),
                outcome: TestOutcome::Error,
            },
            Event::Warning("[g2] t.py::slow ran longer than --test-timeout".into()),
            Event::Notice("[g3] kept: enter it with `docker exec -it x sh`".into()),
            done(1, GroupStatus::Failed, (1, 1, 1)),
            done(
                2,
                GroupStatus::TestTimedOut {
                    test: "t.py::slow".into(),
                    limit: Duration::from_secs(5),
                },
                (3, 0, 1),
            ),
            done(
                3,
                GroupStatus::Environment(EnvironmentFailure {
                    service: Some("db".into()),
                    cause: FailureCause::NotHealthyInTime,
                    state: Some("running (health: starting)".into()),
                    log_tail: None,
                }),
                (0, 0, 0),
            ),
            done(
                4,
                GroupStatus::TimedOut {
                    limit: Duration::from_secs(60),
                    stacks: None,
                },
                (2, 0, 5),
            ),
            Event::Warning(format!(
                "[g1] {}",
                Lingering {
                    threads: 1,
                    stacks: Some(
                        "Thread 'stuck' (non-daemon, id 1):\n  File \"t.py\", line 3, in work"
                            .into()
                    ),
                    grace: Duration::from_secs(30),
                    killed: false,
                }
            )),
            Event::Interrupted { forced: false },
            Event::Removed(vec!["container shop-abc123-g1-db-1".into()]),
        ];
        for event in script {
            events.emit(event);
        }
        drop(events);
        display.consume(rx).await;
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        insta::with_settings!({filters => vec![(r"\(\d+s\)", "(Ns)")]}, {
            insta::assert_snapshot!(text);
        });
    }
}
