//! The handover: a group's side of the conversation with its plugin, while the test
//! container runs. It answers the plugin's signals (the group's share of a static plan once
//! pytest has collected, the queue's next chunk, `--maxfail` across the groups) and watches
//! over the process: `--timeout` for the whole group, `--exit-grace` once pytest has
//! finished, and a warning with every thread's stack when a group shows no progress for a
//! long time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::backend::Backend;
use super::super::dispatch::{Dispatcher, Handover};
use super::super::event::{Activity, Event, EventSink};
use super::super::outcome::{CollectionFailure, EnvironmentFailure, Lingering};
use super::super::protocol::{
    dump_request_name, stacks_file, unit_file_names, COLLECTED_FILE, LATER_LINE, PLUGIN_DIR,
    STOP_FILE_NAME, TESTS_FILE_NAME, TESTS_READY_NAME,
};
use super::output::{LastOutput, Signal};
use crate::engine::EngineError;

/// Why the handover of a group's tests failed.
#[derive(Debug)]
pub(crate) enum HandoverError {
    /// The group's collection cannot be used.
    Collection(CollectionFailure),
    /// Reading or writing the container's files failed.
    Engine(EngineError),
    /// What must hold before the first test (the dependencies' port probes) failed.
    Gate(EnvironmentFailure),
}

impl From<EngineError> for HandoverError {
    fn from(e: EngineError) -> Self {
        HandoverError::Engine(e)
    }
}

/// What must hold before a group's first test: the port probes of its plain dependencies.
pub type FirstTestGate<'a> = futures::future::LocalBoxFuture<'a, Result<(), EnvironmentFailure>>;

/// The limits the handover watches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch {
    /// `--timeout`: the whole test phase of the group.
    pub group_timeout: Option<Duration>,
    /// `--exit-grace`: how long the process may outlive pytest's session.
    pub exit_grace: Duration,
    /// No output and no finished test for this long: print every thread's stack, once.
    pub stall: Duration,
}

/// How long the plugin has to end a process that outlives `--exit-grace` before
/// compose-shard kills the container itself: a third of the grace, between 100 ms and 10 s.
fn exit_margin(grace: Duration) -> Duration {
    (grace / 3).clamp(Duration::from_millis(100), Duration::from_secs(10))
}
/// How long a stack dump asked for before killing a group (`--timeout`) may take.
const DUMP_WAIT: Duration = Duration::from_secs(5);
/// How often a held request for work is looked at again.
const HELD_RECHECK: Duration = Duration::from_millis(20);

/// What a group was given over its run.
#[derive(Debug, Default)]
pub(crate) struct Given {
    /// When its first tests were handed over.
    pub at: Option<Instant>,
    /// Every id it was given, in order.
    pub ids: Vec<String>,
    /// Planned tests it did not collect (static mode).
    pub missing: Vec<String>,
}

/// What the handover saw besides what it handed over.
#[derive(Debug, Default)]
pub(crate) struct Served {
    /// What the group was given.
    pub given: Given,
    /// `--timeout` ended the group.
    pub timed_out: bool,
    /// The stacks dumped before the group was killed for `--timeout`.
    pub timeout_stacks: Option<String>,
    /// The process outlived pytest.
    pub lingering: Option<Lingering>,
}

/// A list of node ids as a file: one per line.
fn id_file(ids: &[String]) -> String {
    let mut text = ids.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

/// Everything the handover works with.
pub(crate) struct Handing<'a, B: Backend> {
    pub backend: &'a B,
    pub container: &'a str,
    pub group: usize,
    pub dispatcher: &'a Dispatcher,
    pub events: &'a EventSink,
    pub watch: Watch,
    pub last_output: Arc<LastOutput>,
}

/// Read the group's collection and hand it to the dispatcher; in static mode, upload the
/// group's list (with the stop file first when the run has already stopped).
async fn take_collection<B: Backend>(
    h: &Handing<'_, B>,
    given: &mut Given,
) -> Result<Option<usize>, HandoverError> {
    let text = h
        .backend
        .read_file(h.container, COLLECTED_FILE)
        .await?
        .ok_or(HandoverError::Collection(CollectionFailure::FileMissing))?;
    let collected: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    match h
        .dispatcher
        .collected(h.group, &collected)
        .map_err(HandoverError::Collection)?
    {
        Handover::Queue => Ok(None),
        Handover::List { ids, missing } => {
            let list = id_file(&ids);
            let stop = h.dispatcher.stopped().unwrap_or_default();
            let mut files: Vec<(&str, &[u8])> = Vec::with_capacity(3);
            if !stop.is_empty() {
                files.push((STOP_FILE_NAME, stop.as_bytes()));
            }
            // tests.txt comes before tests.ready in the archive, so the list is complete
            // once tests.ready exists.
            files.extend([(TESTS_FILE_NAME, list.as_bytes()), (TESTS_READY_NAME, b"")]);
            h.backend.upload(h.container, PLUGIN_DIR, &files).await?;
            let count = ids.len();
            given.ids = ids;
            given.missing = missing;
            Ok(Some(count))
        }
    }
}

/// Answer a dynamic group's `next K` with its next chunk (empty when the queue is done).
async fn hand_chunk<B: Backend>(h: &Handing<'_, B>, k: u64) -> Result<Vec<String>, HandoverError> {
    let chunk = h.dispatcher.next(h.group);
    let list = id_file(&chunk.ids);
    let (list_name, ready_name) = unit_file_names(k);
    let files: [(&str, &[u8]); 2] = [(&list_name, list.as_bytes()), (&ready_name, b"")];
    h.backend.upload(h.container, PLUGIN_DIR, &files).await?;
    h.events.emit(Event::Unit {
        group: h.group,
        units: h.dispatcher.units_taken(h.group),
        tests: chunk.ids.len(),
        remaining_units: chunk.remaining_units,
        remaining_seconds: chunk.remaining_seconds,
    });
    Ok(chunk.ids)
}

/// Answer `next K now` with [`LATER_LINE`]: no work now, ask again once the test is over.
async fn answer_later<B: Backend>(h: &Handing<'_, B>, k: u64) -> Result<(), HandoverError> {
    let (list_name, ready_name) = unit_file_names(k);
    let list = format!("{LATER_LINE}\n");
    let files: [(&str, &[u8]); 2] = [(&list_name, list.as_bytes()), (&ready_name, b"")];
    h.backend.upload(h.container, PLUGIN_DIR, &files).await?;
    Ok(())
}

/// Tell every other running group to start no further test.
async fn broadcast_stop<B: Backend>(h: &Handing<'_, B>, reason: &str) {
    for (other, container) in h.dispatcher.containers() {
        if other != h.group {
            // A group that has already ended has nothing to stop.
            let _ = h
                .backend
                .upload(
                    &container,
                    PLUGIN_DIR,
                    &[(STOP_FILE_NAME, reason.as_bytes())],
                )
                .await;
        }
    }
}

/// Why a dump of every thread's stack was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DumpFor {
    /// The group showed no progress for a long time.
    Stall,
    /// `--timeout` is ending the group.
    GroupTimeout,
}

/// The handover's state between signals and timers.
struct Serving<'g> {
    served: Served,
    collected: bool,
    gate: Option<FirstTestGate<'g>>,
    /// A request for work held back while another group may still return some.
    held: Option<u64>,
    /// The handover failed: the container is killed, remaining signals only count tests.
    failure: Option<HandoverError>,
    started: Instant,
    finished_at: Option<Instant>,
    dumps: Vec<DumpFor>,
    kill_at: Option<Instant>,
    killed: bool,
    /// A stall warning was asked for (once per group).
    stall_warned: bool,
}

impl<'g> Serving<'g> {
    fn new(gate: FirstTestGate<'g>) -> Self {
        Serving {
            served: Served::default(),
            collected: false,
            gate: Some(gate),
            held: None,
            failure: None,
            started: Instant::now(),
            finished_at: None,
            dumps: Vec::new(),
            kill_at: None,
            killed: false,
            stall_warned: false,
        }
    }

    /// When a timer next needs a look.
    fn next_timer(&self, h: &Handing<'_, impl Backend>) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut at = far;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                at = at.min(t);
            }
        };
        consider(self.held.map(|_| Instant::now() + HELD_RECHECK));
        consider(self.kill_at.filter(|_| !self.killed));
        if !self.served.timed_out {
            consider(h.watch.group_timeout.map(|limit| self.started + limit));
        }
        if self.served.lingering.is_none() && !self.killed {
            consider(
                self.finished_at
                    .map(|f| f + h.watch.exit_grace + exit_margin(h.watch.exit_grace)),
            );
        }
        if !self.stall_warned {
            consider(Some(h.last_output.get() + h.watch.stall));
        }
        at
    }
}

/// Serve the group's signals until its output ends: hand over its tests as it asks, and
/// enforce the group's limits. When a handover fails (the engine went away), the container
/// is killed and the signals still in flight are drained: a test the group finished before
/// the failure counts as finished, not as lost.
pub(crate) async fn serve<B: Backend>(
    h: &Handing<'_, B>,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    gate: FirstTestGate<'_>,
) -> Result<Served, HandoverError> {
    let mut state = Serving::new(gate);
    loop {
        let wake = state.next_timer(h);
        let signal = tokio::select! {
            signal = signals.recv() => match signal {
                Some(signal) => signal,
                None => break,
            },
            () = tokio::time::sleep_until(wake) => {
                on_timer(h, &mut state).await;
                continue;
            }
        };
        if let (&Signal::Next { k, now }, None) = (&signal, &state.failure) {
            if h.dispatcher.must_wait(h.group) {
                if now {
                    // Its chunk's last test is starting: it must not wait with that test in hand.
                    if let Err(e) = answer_later(h, k).await {
                        let _ = h.backend.kill(h.container).await;
                        state.failure = Some(e);
                    }
                } else {
                    state.held = Some(k);
                }
                continue;
            }
        }
        if state.failure.is_some() {
            if let Signal::Done {
                node_id,
                failed,
                seconds,
            } = signal
            {
                h.dispatcher.finished(h.group, &node_id, failed, seconds);
            }
            continue;
        }
        if let Err(e) = handle(h, &mut state, signal).await {
            let _ = h.backend.kill(h.container).await;
            state.failure = Some(e);
        }
    }
    match state.failure {
        Some(e) => Err(e),
        None => Ok(state.served),
    }
}

/// A timer came due: a held request, `--timeout`, the exit grace, a kill after a dump, a
/// stall.
async fn on_timer<B: Backend>(h: &Handing<'_, B>, state: &mut Serving<'_>) {
    let now = Instant::now();
    if let Some(k) = state.held {
        if !h.dispatcher.must_wait(h.group) {
            state.held = None;
            if state.failure.is_none() {
                if let Err(e) = handle(h, state, Signal::Next { k, now: false }).await {
                    let _ = h.backend.kill(h.container).await;
                    state.failure = Some(e);
                }
            }
        }
    }
    if let Some(limit) = h.watch.group_timeout {
        if !state.served.timed_out && now >= state.started + limit {
            state.served.timed_out = true;
            ask_for_stacks(h, state, DumpFor::GroupTimeout).await;
            state.kill_at = Some(now + DUMP_WAIT);
        }
    }
    if state.kill_at.is_some_and(|at| now >= at) && !state.killed {
        kill(h, state).await;
    }
    if let Some(finished) = state.finished_at {
        if state.served.lingering.is_none()
            && !state.killed
            && now >= finished + h.watch.exit_grace + exit_margin(h.watch.exit_grace)
        {
            // The plugin could not end the process: end the container.
            state.served.lingering = Some(Lingering {
                threads: 0,
                stacks: None,
                grace: h.watch.exit_grace,
                killed: true,
            });
            kill(h, state).await;
        }
    }
    if !state.stall_warned && now >= h.last_output.get() + h.watch.stall {
        state.stall_warned = true;
        ask_for_stacks(h, state, DumpFor::Stall).await;
    }
}

async fn kill<B: Backend>(h: &Handing<'_, B>, state: &mut Serving<'_>) {
    state.killed = true;
    let _ = h.backend.kill(h.container).await;
}

/// Ask the plugin for every thread's stack (`dump-K.request`); it answers with a `stacks`
/// line.
async fn ask_for_stacks<B: Backend>(h: &Handing<'_, B>, state: &mut Serving<'_>, why: DumpFor) {
    state.dumps.push(why);
    let name = dump_request_name(state.dumps.len() as u64);
    let _ = h
        .backend
        .upload(h.container, PLUGIN_DIR, &[(name.as_str(), b"")])
        .await;
}

/// The text of the plugin's Nth stack dump, or a note saying it could not be read.
async fn read_stacks<B: Backend>(h: &Handing<'_, B>, number: u64) -> String {
    match h.backend.read_file(h.container, &stacks_file(number)).await {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => format!("({} is missing)", stacks_file(number)),
        Err(e) => format!("(could not read {}: {})", stacks_file(number), e),
    }
}

/// One signal of the plugin.
async fn handle<B: Backend>(
    h: &Handing<'_, B>,
    state: &mut Serving<'_>,
    signal: Signal,
) -> Result<(), HandoverError> {
    if matches!(signal, Signal::Collected | Signal::Next { .. }) {
        if let Some(gate) = state.gate.take() {
            gate.await.map_err(HandoverError::Gate)?;
        }
    }
    let (group, events) = (h.group, h.events);
    let testing = |given: &mut Given| {
        if given.at.is_none() {
            given.at = Some(Instant::now());
            events.emit(Event::Activity {
                group,
                activity: Activity::Testing,
            });
        }
    };
    match signal {
        Signal::Collected if !state.collected => {
            state.collected = true;
            let given = &mut state.served.given;
            if let Some(count) = take_collection(h, given).await? {
                events.emit(Event::Planned {
                    group,
                    tests: count,
                });
                testing(given);
            }
        }
        Signal::Collected => {}
        Signal::Next { k, .. } => {
            let ids = hand_chunk(h, k).await?;
            testing(&mut state.served.given);
            state.served.given.ids.extend(ids);
        }
        Signal::Done {
            node_id,
            failed,
            seconds,
        } => {
            if let Some(reason) = h.dispatcher.finished(group, &node_id, failed, seconds) {
                events.emit(Event::Warning(format!("stopping every group: {reason}")));
                broadcast_stop(h, &reason).await;
            }
        }
        Signal::Maxfail(n) => h.dispatcher.set_maxfail(n),
        Signal::Cpu { cpu, wall } => h.dispatcher.record_cpu(group, cpu, wall),
        Signal::Finished(_) => state.finished_at = Some(Instant::now()),
        Signal::Stacks { number, reason } => on_stacks(h, state, number, &reason).await,
        Signal::Timeout { node_id } => events.emit(Event::Warning(format!(
            "[g{group}] {node_id} ran longer than --test-timeout: recorded as an error with every thread's stack (g{group}/stacks-*.txt); the group ends and its other tests go to the other groups or are reported as not run"
        ))),
        Signal::Lingering { stacks, threads } => {
            let text = read_stacks(h, stacks).await;
            state.served.lingering = Some(Lingering {
                threads,
                stacks: Some(text),
                grace: h.watch.exit_grace,
                killed: false,
            });
        }
    }
    Ok(())
}

/// A stack dump arrived: a stall warning, the stacks of a group ending for `--timeout`, or
/// those of a test that timed out.
async fn on_stacks<B: Backend>(
    h: &Handing<'_, B>,
    state: &mut Serving<'_>,
    number: u64,
    reason: &str,
) {
    // The stacks of a timed-out test are in its report, those of lingering threads come
    // with the `lingering` line: only asked-for dumps are shown here.
    if reason == "timeout" || reason == "lingering" {
        return;
    }
    let text = read_stacks(h, number).await;
    let group = h.group;
    let asked = reason
        .strip_prefix("request ")
        .and_then(|k| k.trim().parse::<usize>().ok())
        .and_then(|k| state.dumps.get(k.wrapping_sub(1)).copied());
    match asked {
        Some(DumpFor::GroupTimeout) => {
            state.served.timeout_stacks = Some(text);
            state.kill_at = Some(Instant::now());
            kill(h, state).await;
        }
        None => {}
        Some(DumpFor::Stall) => h.events.emit(Event::Warning(format!(
            "[g{group}] no test finished and nothing was printed for {}: still waiting; the test process's threads now:\n{}",
            super::super::outcome::format_limit(h.watch.stall),
            text.trim_end()
        ))),
    }
}
