//! A group's test container output, line by line: everything goes to `g<k>/output.log`; the
//! plugin's lines (those with the run's token) update the group's counters and become
//! [`Signal`]s for the handover, the rest is test output, of which the last lines are kept
//! for messages.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::event::{Event, EventSink, TestCounts, TestOutcome, TestResult};
use super::super::protocol::{parse_line, OutputLine, PluginLine, Token};

/// What the output asks the group's handover task to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Signal {
    /// pytest collected: hand over the group's tests (or join the queue).
    Collected,
    /// A dynamic group asks for its Kth chunk: it waits for it, or (`now`) its chunk's last
    /// test is starting and it must be answered at once (a chunk, the end, or later).
    Next {
        /// Which.
        k: u64,
        /// See above.
        now: bool,
    },
    /// A test finished.
    Done {
        /// Its node id.
        node_id: String,
        /// Failed or errored.
        failed: bool,
        /// How long it took.
        seconds: Option<f64>,
    },
    /// The group's pytest `--maxfail`.
    Maxfail(usize),
    /// CPU and wall seconds of the group's tests so far.
    Cpu {
        /// CPU seconds.
        cpu: f64,
        /// Wall seconds.
        wall: f64,
    },
    /// pytest's session is over, with this exit status.
    Finished(i64),
    /// The plugin wrote a stack dump.
    Stacks {
        /// Its number.
        number: u64,
        /// Why.
        reason: String,
    },
    /// A test ran past `--test-timeout`.
    Timeout {
        /// The test.
        node_id: String,
    },
    /// The process outlived pytest; the plugin ends it.
    Lingering {
        /// The stack dump of the threads that kept it alive.
        stacks: u64,
        /// How many.
        threads: usize,
    },
}

/// When a container last printed anything: shared by the output follower, which sets it,
/// and the handover's watchdog, which reads it.
#[derive(Debug)]
pub(crate) struct LastOutput {
    base: Instant,
    nanos: AtomicU64,
}

impl LastOutput {
    fn new() -> Self {
        LastOutput {
            base: Instant::now(),
            nanos: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let nanos = self.base.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        self.nanos.store(nanos, Ordering::Relaxed);
    }

    /// When it was.
    pub fn get(&self) -> Instant {
        self.base + std::time::Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

/// Lines of output kept for messages when a group fails before its tests.
pub(crate) const TAIL_LINES: usize = 40;

/// Feeds the container's output into the log file and the counters, line by line.
pub(crate) struct OutputTracker<'a> {
    group: usize,
    token: Token,
    log: Option<std::fs::File>,
    partial: Vec<u8>,
    /// Counters from the plugin's `done` lines.
    pub counts: TestCounts,
    /// Tests that finished, in order, and how.
    pub ran: Vec<String>,
    /// See `ran`.
    pub results: Vec<TestResult>,
    /// Planned tests this group did not collect.
    pub missing: Vec<String>,
    /// Collection errors pytest reported.
    pub collection_errors: Option<usize>,
    /// pytest's exit status, once its session is over.
    pub finished: Option<i64>,
    /// The test that ran past `--test-timeout`.
    pub timed_out: Option<String>,
    /// CPU and wall seconds of the tests, as the plugin measured them.
    pub cpu: Option<(f64, f64)>,
    signals: Option<mpsc::UnboundedSender<Signal>>,
    tail: VecDeque<String>,
    /// When the container last printed anything.
    last_output: Arc<LastOutput>,
    /// Where events go.
    pub events: &'a EventSink,
}

impl<'a> OutputTracker<'a> {
    /// A tracker for `group`, logging to `log` (if it could be created).
    pub fn new(
        group: usize,
        token: Token,
        log: Option<std::fs::File>,
        events: &'a EventSink,
    ) -> Self {
        OutputTracker {
            group,
            token,
            log,
            partial: Vec::new(),
            counts: TestCounts::default(),
            ran: Vec::new(),
            results: Vec::new(),
            missing: Vec::new(),
            collection_errors: None,
            finished: None,
            timed_out: None,
            cpu: None,
            signals: None,
            tail: VecDeque::new(),
            last_output: Arc::new(LastOutput::new()),
            events,
        }
    }

    /// Send signals to `tx` from now on.
    pub fn signal_to(&mut self, tx: mpsc::UnboundedSender<Signal>) {
        self.signals = Some(tx);
    }

    /// When the container last printed anything (shared with the handover's watchdog).
    pub fn last_output(&self) -> Arc<LastOutput> {
        self.last_output.clone()
    }

    /// The last lines of test output, joined.
    pub fn tail(&self) -> String {
        self.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// A chunk of output.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.last_output.touch();
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

    /// The output ended: the last partial line counts too, and no more signals follow.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            self.line(&rest);
        }
        self.signals = None;
    }

    fn signal(&self, signal: Signal) {
        if let Some(tx) = &self.signals {
            let _ = tx.send(signal);
        }
    }

    fn line(&mut self, line: &str) {
        let parsed = match parse_line(line, &self.token) {
            OutputLine::Plugin(parsed) => parsed,
            OutputLine::Text(text) => {
                if self.tail.len() == TAIL_LINES {
                    self.tail.pop_front();
                }
                self.tail.push_back(text.to_string());
                return;
            }
        };
        match parsed {
            PluginLine::Done {
                node_id,
                outcome,
                seconds,
            } => self.done(node_id, outcome, seconds),
            PluginLine::Missing(id) => self.missing.push(id),
            PluginLine::Collected(_) => self.signal(Signal::Collected),
            PluginLine::Next(k) => self.signal(Signal::Next { k, now: false }),
            PluginLine::NextNow(k) => self.signal(Signal::Next { k, now: true }),
            PluginLine::Maxfail(n) => self.signal(Signal::Maxfail(n)),
            PluginLine::Stopped(reason) => self.events.emit(Event::Info(format!(
                "[g{}] stopped taking tests: {reason}",
                self.group
            ))),
            PluginLine::CollectionErrors(n) => self.collection_errors = Some(n),
            PluginLine::Finished(status) => {
                self.finished = Some(status);
                self.signal(Signal::Finished(status));
            }
            PluginLine::Cpu { cpu, wall } => {
                self.cpu = Some((cpu, wall));
                self.signal(Signal::Cpu { cpu, wall });
            }
            PluginLine::Stacks { number, reason } => self.signal(Signal::Stacks { number, reason }),
            PluginLine::Timeout { node_id, .. } => {
                self.timed_out = Some(node_id.clone());
                self.signal(Signal::Timeout { node_id });
            }
            PluginLine::Lingering { stacks, threads } => {
                self.signal(Signal::Lingering { stacks, threads })
            }
        }
    }

    fn done(&mut self, node_id: String, outcome: TestOutcome, seconds: Option<f64>) {
        match outcome {
            TestOutcome::Passed => self.counts.passed += 1,
            TestOutcome::Failed => self.counts.failed += 1,
            TestOutcome::Skipped => self.counts.skipped += 1,
            TestOutcome::Error => self.counts.errors += 1,
        }
        self.counts.done += 1;
        self.signal(Signal::Done {
            node_id: node_id.clone(),
            failed: matches!(outcome, TestOutcome::Failed | TestOutcome::Error),
            seconds,
        });
        self.events.emit(Event::Test {
            group: self.group,
            node_id: node_id.clone(),
            outcome,
        });
        self.ran.push(node_id);
        self.results.push(TestResult { outcome, seconds });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(token: &Token, text: &str) -> String {
        format!("{}{text}\n", token.prefix())
    }

    #[test]
    fn lines_split_across_chunks_are_whole_and_counted_once() {
        let (events, mut rx) = EventSink::channel();
        let token = Token::new("t0k");
        let mut tracker = OutputTracker::new(2, token.clone(), None, &events);
        let (tx, mut signals) = mpsc::unbounded_channel();
        tracker.signal_to(tx);
        let text = format!(
            "collecting ...\n{}.{}{}",
            line(&token, "collected 2"),
            line(&token, "done passed 0.5 t.py::a"),
            line(&token, "done failed 1.25 t.py::b x[1]"),
        );
        // Feed it a few bytes at a time: lines are reassembled.
        for chunk in text.as_bytes().chunks(7) {
            tracker.feed(chunk);
        }
        tracker.feed(line(&token, "finished 1").as_bytes());
        tracker.feed(b"no newline at the end");
        tracker.finish();
        assert_eq!(tracker.counts.done, 2);
        assert_eq!((tracker.counts.passed, tracker.counts.failed), (1, 1));
        assert_eq!(tracker.ran, ["t.py::a", "t.py::b x[1]"]);
        assert_eq!(tracker.results[1].seconds, Some(1.25));
        assert_eq!(tracker.finished, Some(1));
        assert_eq!(tracker.tail(), "collecting ...\nno newline at the end");
        let mut got = Vec::new();
        while let Ok(s) = signals.try_recv() {
            got.push(s);
        }
        assert_eq!(got[0], Signal::Collected);
        assert!(matches!(&got[2], Signal::Done { failed: true, .. }));
        assert_eq!(got.last(), Some(&Signal::Finished(1)));
        let mut failed_events = 0;
        while let Ok(e) = rx.try_recv() {
            if matches!(
                e,
                Event::Test {
                    outcome: TestOutcome::Failed,
                    ..
                }
            ) {
                failed_events += 1;
            }
        }
        assert_eq!(failed_events, 1);
    }

    #[test]
    fn forged_lines_are_test_output_and_change_nothing() {
        let (events, _rx) = EventSink::channel();
        let token = Token::new("real");
        let mut tracker = OutputTracker::new(1, token.clone(), None, &events);
        let (tx, mut signals) = mpsc::unbounded_channel();
        tracker.signal_to(tx);
        tracker.feed(b"##compose-shard## done failed 0.1 tests/test_plain.py::test_00\n");
        tracker.feed(b"##compose-shard## stopped maxfail\n##compose-shard## next 9\n");
        tracker.feed(b"##compose-shard:fake## finished 0\n");
        tracker.feed(line(&token, "done passed 0.1 tests/test_plain.py::test_00").as_bytes());
        tracker.finish();
        assert_eq!(tracker.counts.done, 1);
        assert_eq!(tracker.counts.failed, 0);
        assert_eq!(tracker.finished, None);
        assert!(tracker.tail().contains("##compose-shard## next 9"));
        let mut got = Vec::new();
        while let Ok(s) = signals.try_recv() {
            got.push(s);
        }
        assert_eq!(got.len(), 1, "{got:?}");
    }

    #[test]
    fn the_tail_keeps_the_last_lines_only() {
        let (events, _rx) = EventSink::channel();
        let mut tracker = OutputTracker::new(1, Token::new("x"), None, &events);
        for i in 0..(TAIL_LINES + 5) {
            tracker.feed(format!("line {i}\n").as_bytes());
        }
        let tail = tracker.tail();
        assert!(tail.starts_with("line 5\n"), "{tail}");
        assert!(tail.ends_with(&format!("line {}", TAIL_LINES + 4)));
    }
}
