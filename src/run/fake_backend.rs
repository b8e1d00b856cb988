//! A scripted in-memory engine for orchestrator tests: it records every call, keeps the
//! resources it "created" with their labels (so tests can check nothing is left), and plays
//! per-service behaviours (healthy after N polls, never healthy, exits...). Its test
//! container plays the plugin's side of the protocol with the protocol's own names and the
//! run's token; what each test does is scripted per node id ([`Step`], passing by default).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::protocol::{
    dump_request_name, env, unit_file_names, Token, COLLECTED_FILE, LATER_LINE, RESULTS_DIR,
    STOP_FILE_NAME, TESTS_FILE_NAME, TESTS_READY_NAME,
};
use crate::compose::{Network, Project, Service, Volume};
use crate::engine::{
    ContainerOverrides, ContainerStatus, EngineError, EngineInfo, ExecOutcome, ExecRequest, Health,
    ImageConfig, ImageSource, ManagedResource, ResourceKind, SourceUpload, UploadSummary,
};
use crate::labels;

/// How the fake pytest's tests ended.
enum Played {
    /// pytest's session ended with this status.
    Status(i64),
    /// The container died (or was killed) before.
    Died,
}

/// How a service's container behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Running, no healthcheck.
    Running,
    /// Healthcheck passes after this many polls.
    HealthyAfter(usize),
    /// Healthcheck never passes (stays starting).
    NeverHealthy,
    /// Turns unhealthy on the first poll.
    Unhealthy,
    /// Exits with this code right away.
    Exits(i64),
    /// The engine still says "starting" (its first probe is one interval away), but the
    /// healthcheck's own test passes when run through exec.
    ProbePasses,
    /// Running, no healthcheck; its ports accept connections only after this many polls.
    PortOpensAfter(usize),
    /// The engine still says "starting"; its ports accept connections, and its healthcheck's
    /// own test passes, only after this many polls.
    ListensAfter(usize),
}

/// What a test does when the fake pytest runs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Its call fails.
    Fail,
    /// Its setup fails.
    Error,
    /// It runs past `--test-timeout`: the plugin reports the timeout, the test as an error,
    /// and ends the session (exit 2).
    TimesOut,
    /// It passes but leaves a non-daemon thread behind: after the session the plugin
    /// reports the lingering thread and ends the process with pytest's status.
    LeavesThread,
    /// It passes but leaves a process behind that the plugin cannot end: the container
    /// keeps running after `finished` until it is killed.
    KeepsProcessAlive,
    /// It passes, printing lines that imitate the plugin (without the run's token).
    PrintsForgedLines,
    /// It fails in the groups' own run and passes in every later run (retries, replays).
    FailsFirstTime,
    /// It fails when this other test ran before it in the same process.
    FailsAfter(String),
}

/// The address a fake container reports while its ports are still closed.
const CLOSED_PORTS_ADDRESS: &str = "10.0.0.254";

#[derive(Debug, Clone)]
pub(super) struct FakeContainer {
    service: String,
    group: usize,
    behaviour: Behaviour,
    polls: usize,
    files: HashMap<String, String>,
    /// The test container (created with the test command).
    test: bool,
    /// The test container's exit code once its command ended.
    exit: Option<i64>,
    killed: bool,
    /// Created for a dynamic run (`COMPOSE_SHARD_DIST=dynamic`).
    dynamic: bool,
    /// Tests its pytest finished.
    finished: usize,
    /// Those tests, in order.
    played: Vec<String>,
    /// Stack dumps asked for (`dump-K.request`) and answered.
    dumps: u64,
    /// The run's token, from the test container's environment.
    token: String,
    /// `COMPOSE_SHARD_ATTEMPT` from its environment (empty for the groups' own run).
    attempt: String,
    /// The container whose network namespace it joins (`network_mode: container:x`).
    joins: Option<String>,
    /// Started, and its start call returned.
    running: bool,
    /// How each played test ended: passed, failed or error.
    outcomes: Vec<&'static str>,
    /// The engine runs its healthcheck (not turned off for compose-shard to run it).
    engine_health: bool,
}

/// The fake engine.
#[derive(Default)]
pub struct FakeBackend {
    /// Calls in order (`network x`, `start db@proj`, `poll db@proj`, `exec collect`...).
    pub calls: RefCell<Vec<String>>,
    /// Live resources: (kind, name) -> labels.
    pub resources: RefCell<BTreeMap<(ResourceKind, String), HashMap<String, String>>>,
    pub(super) containers: RefCell<HashMap<String, FakeContainer>>,
    /// Behaviours by service name (default Running); `service@group` overrides for one group.
    pub behaviours: HashMap<String, Behaviour>,
    /// Node ids every group's pytest collects.
    pub collected: Vec<String>,
    /// What tests do, by node id (passing when absent).
    pub script: HashMap<String, Step>,
    /// Node ids one group collects instead (unstable parametrized ids).
    pub collected_by_group: HashMap<usize, Vec<String>>,
    /// Collection fails (pytest reports collection errors and exits 2).
    pub collect_fails: bool,
    /// Make the image unavailable.
    pub missing_image: Option<String>,
    /// pytest never finishes (for interrupt and timeout tests).
    pub tests_hang: bool,
    /// pytest's `--maxfail` as the plugin reports it (0: none).
    pub maxfail: usize,
    /// How long each test says it took (seconds, default 0.01), and how long it really
    /// takes (default: no time at all).
    pub test_seconds: Option<(f64, std::time::Duration)>,
    /// After each test the plugin reports the tests' CPU seconds as this share of the
    /// seconds they said they took (`cpu` lines); none by default.
    pub test_cpu_share: Option<f64>,
    /// A group's test container dies (exit 137) after finishing this many tests.
    pub dies_after: HashMap<usize, usize>,
    /// A group's engine goes away once that group has finished this many tests: uploads
    /// into its container fail, and its pytest, asking for its next chunk while its last
    /// test ends as the real plugin does, then waits for an answer that never comes (until
    /// it is killed).
    pub engine_gone_after: HashMap<usize, usize>,
    /// `next K now` requests answered "later", by group.
    pub told_later: RefCell<Vec<usize>>,
    /// The overrides the last test container was created with.
    pub last_test_overrides: RefCell<Option<ContainerOverrides>>,
    /// Mounting a snapshot's layer fails (an engine without overlay support).
    pub layers_fail: bool,
    /// The engine does not see this machine's folders (a runner in a container, a remote
    /// engine): `engine_sees_path` answers false.
    pub paths_hidden: bool,
    /// Trees uploaded: (container, source, target), in order.
    pub uploaded_trees: RefCell<Vec<(String, PathBuf, String)>>,
    /// What `engine_info` answers (default: 2 CPUs, 4 GiB, address `fake`).
    pub info: Option<EngineInfo>,
    /// How long starting a container takes (default: no time at all).
    pub start_takes: std::time::Duration,
    /// How long the test container's pytest takes to collect (default: no time at all).
    pub collect_takes: std::time::Duration,
    /// Images with an id and `VOLUME`s (by image name); others have no id, so their
    /// services get no snapshot.
    pub image_volumes: HashMap<String, Vec<String>>,
    /// (image, path) pairs where the image has files.
    pub image_files: Vec<(String, String)>,
    /// Data in each container's volumes, by path (what a snapshot copies).
    pub volume_data: RefCell<HashMap<String, HashMap<String, Vec<u8>>>>,
    /// What a service's log ends with (by service name; default: a `FATAL` line).
    pub logs: HashMap<String, String>,
}

impl FakeBackend {
    /// Names of resources still present.
    pub fn remaining(&self) -> Vec<String> {
        self.resources
            .borrow()
            .keys()
            .map(|(k, n)| format!("{k} {n}"))
            .collect()
    }

    fn collection_of(&self, group: usize) -> Vec<String> {
        self.collected_by_group
            .get(&group)
            .cloned()
            .unwrap_or_else(|| self.collected.clone())
    }

    /// The service and group of a container.
    fn owner(&self, container: &str) -> (String, usize) {
        let containers = self.containers.borrow();
        let c = &containers[container];
        (c.service.clone(), c.group)
    }

    fn killed(&self, container: &str) -> bool {
        self.containers.borrow()[container].killed
    }

    /// A plugin line of `container`'s run, with its token.
    fn line(&self, container: &str, text: &str) -> Vec<u8> {
        let token = self.containers.borrow()[container].token.clone();
        format!("{}{text}\n", Token::new(&token).prefix()).into_bytes()
    }

    /// What the test container's pytest (with the plugin) prints; returns its exit code.
    async fn play_pytest(
        &self,
        container: &str,
        group: usize,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> i64 {
        let say = |text: &str| self.line(container, text);
        on_output(b"entrypoint: waiting for db\n");
        if self.collect_fails {
            on_output(b"ERROR tests/test_x.py - ImportError\n");
            on_output(&say("collection-errors 1"));
            return 2;
        }
        let n = self.collection_of(group).len();
        tokio::time::sleep(self.collect_takes).await;
        on_output(&say(&format!("maxfail {}", self.maxfail)));
        on_output(&say(&format!("collected {n}")));
        let status = match self.play_tests(container, group, on_output).await {
            Played::Status(status) => status,
            Played::Died => return 137,
        };
        on_output(&say(&format!("finished {status}")));
        let leaves = |step: Step| {
            let played = self.containers.borrow()[container].played.clone();
            played.iter().any(|id| self.script.get(id) == Some(&step))
        };
        if leaves(Step::KeepsProcessAlive) {
            while !self.killed(container) {
                self.answer_dumps(container, on_output);
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            return 137;
        }
        if leaves(Step::LeavesThread) {
            on_output(&say("stacks 1 lingering"));
            on_output(&say("lingering 1 1"));
        }
        status
    }

    /// The tests as the plugin runs them (static list or queue chunks); pytest's status.
    async fn play_tests(
        &self,
        container: &str,
        group: usize,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Played {
        let say = |text: &str| self.line(container, text);
        let dynamic = self.containers.borrow()[container].dynamic;
        let mut failed = false;
        let mut finished = 0;
        let mut k = 0;
        let mut asked = 0;
        loop {
            let (list_name, ready_name) = if dynamic {
                k += 1;
                if asked < k {
                    on_output(&say(&format!("next {k}")));
                    asked = k;
                }
                unit_file_names(k)
            } else {
                (TESTS_FILE_NAME.to_string(), TESTS_READY_NAME.to_string())
            };
            let waited = self
                .wait_for_list(container, &list_name, &ready_name, on_output)
                .await;
            let Some(list) = waited else {
                return Played::Died;
            };
            if list.is_empty() {
                break;
            }
            if list.trim_end() == LATER_LINE {
                // Asked `now` and told later: ask again, and wait.
                self.told_later.borrow_mut().push(group);
                continue;
            }
            let ids: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
            for (i, id) in ids.iter().copied().enumerate() {
                if dynamic && i + 1 == ids.len() {
                    // The real plugin asks for its next chunk as its chunk's last test starts.
                    on_output(&say(&format!("next {} now", k + 1)));
                    asked = k + 1;
                    tokio::task::yield_now().await;
                }
                if self.containers.borrow()[container]
                    .files
                    .contains_key(STOP_FILE_NAME)
                {
                    on_output(&say("stopped maxfail"));
                    return Played::Status(i64::from(failed));
                }
                if self.dies_after.get(&group) == Some(&finished) {
                    return Played::Died;
                }
                if self.script.get(id) == Some(&Step::TimesOut) {
                    on_output(&say("stacks 1 timeout"));
                    on_output(&say(&format!("timeout 1 5.000 {id}")));
                    on_output(&say(&format!("done error 5.000000 {id}")));
                    self.played(container, id);
                    if let Some(c) = self.containers.borrow_mut().get_mut(container) {
                        c.outcomes.push("error");
                    }
                    return Played::Status(2);
                }
                if let Some((_, takes)) = self.test_seconds {
                    tokio::time::sleep(takes).await;
                }
                failed |= self.play_test(container, id, on_output);
                finished += 1;
                self.report_cpu(container, finished, on_output);
                // Let the other groups' futures run between tests, as real pytest would.
                tokio::task::yield_now().await;
            }
            if !dynamic {
                break;
            }
        }
        Played::Status(i64::from(failed))
    }

    /// The plugin's `cpu` line after `finished` tests, with [`FakeBackend::test_cpu_share`].
    fn report_cpu(
        &self,
        container: &str,
        finished: usize,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) {
        if let Some(share) = self.test_cpu_share {
            let (said, _) = self
                .test_seconds
                .unwrap_or((0.01, std::time::Duration::ZERO));
            let wall = said * finished as f64;
            on_output(&self.line(container, &format!("cpu {:.3} {wall:.3}", wall * share)));
        }
    }

    fn played(&self, container: &str, id: &str) {
        if let Some(c) = self.containers.borrow_mut().get_mut(container) {
            c.finished += 1;
            c.played.push(id.to_string());
        }
    }

    /// One test's output (split mid-line to exercise line reassembly); true if it failed.
    fn play_test(
        &self,
        container: &str,
        id: &str,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> bool {
        let outcome = {
            let containers = self.containers.borrow();
            let c = &containers[container];
            match self.script.get(id) {
                Some(Step::Fail) => "failed",
                Some(Step::Error) => "error",
                Some(Step::FailsFirstTime) if c.attempt.is_empty() => "failed",
                Some(Step::FailsAfter(culprit)) if c.played.contains(culprit) => "failed",
                _ => "passed",
            }
        };
        let (said, _) = self
            .test_seconds
            .unwrap_or((0.01, std::time::Duration::ZERO));
        let mut text = format!("{id} \n.").into_bytes();
        if self.script.get(id) == Some(&Step::PrintsForgedLines) {
            let forged = format!(
                "##compose-shard## done failed 0.1 {id}\n##compose-shard## stopped maxfail\n##compose-shard:not-the-token## next 9\n##compose-shard:not-the-token## finished 3\n"
            );
            text.extend(forged.into_bytes());
        }
        text.extend(self.line(container, &format!("done {outcome} {said:.6} {id}")));
        let (a, b) = text.split_at(text.len() / 2);
        on_output(a);
        on_output(b);
        self.played(container, id);
        if let Some(c) = self.containers.borrow_mut().get_mut(container) {
            c.outcomes.push(outcome);
        }
        outcome != "passed"
    }

    /// Answer the stack dumps asked for since the last look, as the plugin's watchdog does.
    fn answer_dumps(&self, container: &str, on_output: &mut (dyn FnMut(&[u8]) + Send)) {
        loop {
            let asked = {
                let mut containers = self.containers.borrow_mut();
                let c = containers.get_mut(container).expect("known container");
                let next = c.dumps + 1;
                if !c.files.contains_key(&dump_request_name(next)) {
                    return;
                }
                c.dumps = next;
                next
            };
            on_output(&self.line(container, &format!("stacks {asked} request {asked}")));
        }
    }

    /// Wait, as the plugin does, for `ready_name`, then read `list_name`; `None` once the
    /// container is killed.
    async fn wait_for_list(
        &self,
        container: &str,
        list_name: &str,
        ready_name: &str,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Option<String> {
        loop {
            if self.killed(container) {
                return None;
            }
            self.answer_dumps(container, on_output);
            let ready = self.containers.borrow()[container]
                .files
                .contains_key(ready_name);
            if ready && !self.tests_hang {
                return Some(self.containers.borrow()[container].files[list_name].clone());
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    fn record(&self, call: String) {
        self.calls.borrow_mut().push(call);
    }

    fn matches(labels: &HashMap<String, String>, selector: &str) -> bool {
        match selector.split_once('=') {
            Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
            None => labels.contains_key(selector),
        }
    }

    fn status_of(c: &FakeContainer) -> ContainerStatus {
        if c.test {
            return ContainerStatus {
                state: if c.exit.is_some() {
                    "exited"
                } else {
                    "running"
                }
                .into(),
                running: c.exit.is_none(),
                exit_code: c.exit,
                oom_killed: false,
                health: Health::None,
                ip_addresses: vec!["10.0.0.9".into()],
            };
        }
        let (state, running, exit_code, health) = match c.behaviour {
            Behaviour::Running | Behaviour::PortOpensAfter(_) => {
                ("running", true, None, Health::None)
            }
            Behaviour::HealthyAfter(n) if c.polls > n => ("running", true, None, Health::Healthy),
            Behaviour::HealthyAfter(_)
            | Behaviour::NeverHealthy
            | Behaviour::ProbePasses
            | Behaviour::ListensAfter(_) => ("running", true, None, Health::Starting),
            Behaviour::Unhealthy => ("running", true, None, Health::Unhealthy),
            Behaviour::Exits(code) => ("exited", false, Some(code), Health::None),
        };
        // Its healthcheck turned off, the engine says nothing of its health.
        let health = if c.engine_health {
            health
        } else {
            Health::None
        };
        let address = match c.behaviour {
            Behaviour::PortOpensAfter(n) | Behaviour::ListensAfter(n) if c.polls <= n => {
                CLOSED_PORTS_ADDRESS
            }
            _ => "10.0.0.2",
        };
        ContainerStatus {
            state: state.into(),
            running,
            exit_code,
            oom_killed: false,
            health,
            ip_addresses: vec![address.into()],
        }
    }
}

/// A tar archive of a folder named after `path`'s last part (mode 0700, owner 999) holding
/// one file with `content`.
fn folder_archive(path: &str, content: &[u8]) -> Vec<u8> {
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("data");
    let mut builder = tar::Builder::new(Vec::new());
    let mut folder = tar::Header::new_gnu();
    folder.set_entry_type(tar::EntryType::Directory);
    folder.set_mode(0o700);
    folder.set_uid(999);
    folder.set_size(0);
    builder
        .append_data(&mut folder, format!("{name}/"), std::io::empty())
        .expect("in memory");
    let mut file = tar::Header::new_gnu();
    file.set_size(content.len() as u64);
    file.set_mode(0o600);
    builder
        .append_data(&mut file, format!("{name}/content"), content)
        .expect("in memory");
    builder.into_inner().expect("in memory")
}

/// The file held by a [`folder_archive`].
fn folder_content(archive: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut reader = tar::Archive::new(archive);
    let mut entries = reader.entries().ok()?;
    let mut file = entries.nth(1)?.ok()?;
    let mut content = Vec::new();
    file.read_to_end(&mut content).ok()?;
    Some(content)
}

fn into_hash(labels: &indexmap::IndexMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl super::backend::Backend for FakeBackend {
    async fn build_image(
        &self,
        service: &Service,
        _excluded: &[PathBuf],
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(String, ImageSource), EngineError> {
        self.record(format!("build {}", service.name));
        on_line("Step 1/1 : FROM scratch");
        Ok((format!("{}:cs-0000", service.name), ImageSource::Built))
    }

    async fn ensure_image(
        &self,
        image: &str,
        _allow_pull: bool,
        _on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ImageSource, EngineError> {
        self.record(format!("image {image}"));
        if self.missing_image.as_deref() == Some(image) {
            return Err(EngineError::ImageUnavailable {
                image: image.into(),
                engine: "fake".into(),
                message: "pull failed: no registry".into(),
            });
        }
        Ok(ImageSource::Local)
    }

    async fn create_network(&self, name: &str, net: &Network) -> Result<(), EngineError> {
        self.record(format!("network {name}"));
        self.resources
            .borrow_mut()
            .insert((ResourceKind::Network, name.into()), into_hash(&net.labels));
        Ok(())
    }

    async fn create_volume(&self, name: &str, vol: &Volume) -> Result<(), EngineError> {
        self.record(format!("volume {name}"));
        self.resources
            .borrow_mut()
            .insert((ResourceKind::Volume, name.into()), into_hash(&vol.labels));
        Ok(())
    }

    async fn create_service(
        &self,
        project: &Project,
        service: &Service,
        overrides: &ContainerOverrides,
    ) -> Result<String, EngineError> {
        let name = crate::engine::container_name(project, service);
        let group = project.isolation.as_ref().map_or(1, |i| i.group);
        let test = overrides.command.is_some();
        self.record(format!("create {}@g{group}", service.name));
        // As the engine: a container joining another's network namespace needs it to exist
        // (and, to start, to run).
        let joins = service
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
            .map(str::to_string);
        if let Some(joined) = joins.as_deref() {
            if !self.containers.borrow().contains_key(joined) {
                return Err(joined_missing(joined));
            }
        }
        for bind in service
            .volumes
            .iter()
            .filter(|m| m.kind == crate::compose::MountKind::Bind)
        {
            self.record(format!("bind {}@g{group} {}", service.name, bind.target));
        }
        for (target, bytes) in &overrides.data_in_memory {
            let mib = bytes >> 20;
            self.record(format!("tmpfs {}@g{group} {target} {mib}MiB", service.name));
        }
        if overrides.own_healthcheck {
            self.record(format!("engine healthcheck off {}@g{group}", service.name));
        }
        if test {
            *self.last_test_overrides.borrow_mut() = Some(overrides.clone());
        }
        let behaviour = self
            .behaviours
            .get(&format!("{}@{group}", service.name))
            .or_else(|| self.behaviours.get(&service.name))
            .copied()
            .unwrap_or(Behaviour::Running);
        self.resources.borrow_mut().insert(
            (ResourceKind::Container, name.clone()),
            into_hash(&service.labels),
        );
        self.containers.borrow_mut().insert(
            name.clone(),
            FakeContainer {
                service: service.name.clone(),
                group,
                behaviour,
                polls: 0,
                files: HashMap::new(),
                test,
                exit: None,
                killed: false,
                finished: 0,
                played: Vec::new(),
                dumps: 0,
                dynamic: env_value(overrides, env::DIST) == "dynamic",
                token: env_value(overrides, env::TOKEN),
                attempt: env_value(overrides, super::explain::ATTEMPT_ENV),
                outcomes: Vec::new(),
                joins,
                running: false,
                engine_health: !overrides.own_healthcheck,
            },
        );
        tokio::task::yield_now().await;
        Ok(name)
    }

    async fn start(&self, container: &str) -> Result<(), EngineError> {
        let (service, group) = {
            let containers = self.containers.borrow();
            let c = &containers[container];
            (c.service.clone(), c.group)
        };
        self.record(format!("start {service}@g{group}"));
        let joined = self.containers.borrow()[container].joins.clone();
        if let Some(joined) = joined {
            if !self
                .containers
                .borrow()
                .get(&joined)
                .is_some_and(|j| j.running)
            {
                return Err(joined_missing(&joined));
            }
        }
        tokio::time::sleep(self.start_takes).await;
        if let Some(c) = self.containers.borrow_mut().get_mut(container) {
            c.running = true;
        }
        Ok(())
    }

    async fn kill(&self, container: &str) -> Result<(), EngineError> {
        self.record(format!("kill {container}"));
        if let Some(c) = self.containers.borrow_mut().get_mut(container) {
            c.killed = true;
        }
        Ok(())
    }

    async fn stop(&self, container: &str, grace_seconds: u32) -> Result<(), EngineError> {
        let (service, group) = self.owner(container);
        self.record(format!("stop {service}@g{group} {grace_seconds}s"));
        Ok(())
    }

    async fn archive_to_file(
        &self,
        container: &str,
        path: &str,
        dest: &std::path::Path,
    ) -> Result<Option<u64>, EngineError> {
        let (service, group) = self.owner(container);
        self.record(format!("copy out {service}@g{group} {path}"));
        let data = self.volume_data.borrow();
        let stored = data
            .get(container)
            .and_then(|paths| paths.get(path))
            .cloned()
            .unwrap_or_else(|| format!("initialised {service} {path}").into_bytes());
        // As the engine sends it: the folder first (its owner and mode), then its files.
        let archive = folder_archive(path, &stored);
        std::fs::write(dest, &archive).map_err(|source| EngineError::Io {
            action: "write".into(),
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(Some(archive.len() as u64))
    }

    async fn extract_file_into(
        &self,
        container: &str,
        dir: &str,
        archive: &crate::engine::ArchiveFile,
    ) -> Result<(), EngineError> {
        let (service, group) = self.owner(container);
        self.record(format!("copy in {service}@g{group} {dir}"));
        let content = archive.read_all().map_err(|source| EngineError::Io {
            action: "read".into(),
            path: archive.path.clone(),
            source,
        })?;
        let content = folder_content(&content).unwrap_or(content);
        self.volume_data
            .borrow_mut()
            .entry(container.to_string())
            .or_default()
            .insert(dir.to_string(), content);
        Ok(())
    }

    async fn volume_mountpoint(&self, name: &str) -> Result<Option<String>, EngineError> {
        let known = self
            .resources
            .borrow()
            .contains_key(&(ResourceKind::Volume, name.to_string()));
        Ok(known.then(|| format!("/fake/volumes/{name}/_data")))
    }

    async fn create_local_volume(
        &self,
        name: &str,
        driver_opts: &indexmap::IndexMap<String, String>,
        labels: &indexmap::IndexMap<String, String>,
    ) -> Result<String, EngineError> {
        match driver_opts.get("o") {
            Some(o) => self.record(format!("layer volume {name} {o}")),
            None => self.record(format!("volume {name}")),
        }
        self.resources
            .borrow_mut()
            .insert((ResourceKind::Volume, name.into()), into_hash(labels));
        Ok(format!("/fake/volumes/{name}/_data"))
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.record(format!("remove volume {name}"));
        self.resources
            .borrow_mut()
            .remove(&(ResourceKind::Volume, name.into()));
        Ok(())
    }

    async fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        let (service, group) = self.owner(name);
        self.record(format!("remove {service}@g{group}"));
        self.resources
            .borrow_mut()
            .remove(&(ResourceKind::Container, name.into()));
        Ok(())
    }

    async fn fill_volume(
        &self,
        volume: &str,
        image: &str,
        archive: &crate::engine::ArchiveFile,
    ) -> Result<(), EngineError> {
        self.record(format!(
            "fill {volume} from {image} ({} bytes)",
            archive.len
        ));
        Ok(())
    }

    async fn upload_archive_bytes(
        &self,
        container: &str,
        dir: &str,
        archive: Vec<u8>,
    ) -> Result<(), EngineError> {
        let (service, group) = self.owner(container);
        self.record(format!("layer root {service}@g{group} {dir}"));
        if self.layers_fail {
            return Err(EngineError::Io {
                action: "mount an overlay volume for".into(),
                path: dir.into(),
                source: std::io::Error::other("invalid argument"),
            });
        }
        // The layer shows the template's content: what a restore by copying would have put.
        let _ = archive;
        self.volume_data
            .borrow_mut()
            .entry(container.to_string())
            .or_default()
            .insert(dir.to_string(), b"layered".to_vec());
        Ok(())
    }

    async fn image_has_files_at(&self, image: &str, path: &str) -> Result<bool, EngineError> {
        self.record(format!("look {image} {path}"));
        Ok(self
            .image_files
            .iter()
            .any(|(i, p)| i == image && p == path))
    }

    async fn image_config(&self, image: &str) -> Result<ImageConfig, EngineError> {
        self.record(format!("inspect image {image}"));
        let volumes = self.image_volumes.get(image);
        Ok(ImageConfig {
            env: vec![("PYTHONPATH".into(), "/opt/lib".into())],
            id: volumes
                .map(|_| format!("sha256:{image}"))
                .unwrap_or_default(),
            volumes: volumes.cloned().unwrap_or_default(),
            ..Default::default()
        })
    }

    async fn follow_logs(
        &self,
        container: &str,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), EngineError> {
        let (test, group) = {
            let containers = self.containers.borrow();
            (containers[container].test, containers[container].group)
        };
        if !test {
            return Ok(());
        }
        let exit = self.play_pytest(container, group, on_output).await;
        if let Some(c) = self.containers.borrow_mut().get_mut(container) {
            c.exit = Some(exit);
        }
        Ok(())
    }

    async fn wait_exit(&self, container: &str) -> Result<Option<i64>, EngineError> {
        Ok(self.containers.borrow()[container].exit)
    }

    async fn read_file(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>, EngineError> {
        self.record(format!("read {path}"));
        let group = self.containers.borrow()[container].group;
        if path.starts_with(&format!("{RESULTS_DIR}/stacks-")) {
            let stacks = "Thread 'stuck-worker' (non-daemon, id 7):\n  File \"tests/t.py\", line 3, in work\n    lock.acquire()\n";
            return Ok(Some(stacks.as_bytes().to_vec()));
        }
        if path != COLLECTED_FILE {
            return Ok(None);
        }
        Ok(Some(self.collection_of(group).join("\n").into_bytes()))
    }

    async fn status(&self, container: &str) -> Result<ContainerStatus, EngineError> {
        let mut containers = self.containers.borrow_mut();
        let c = containers.get_mut(container).expect("known container");
        c.polls += 1;
        self.record(format!("poll {}", c.service));
        Ok(Self::status_of(c))
    }

    async fn port_open(&self, status: &ContainerStatus, _port: u16) -> bool {
        status
            .ip_addresses
            .iter()
            .all(|a| a != CLOSED_PORTS_ADDRESS)
    }

    async fn logs_tail(&self, container: &str, _lines: usize) -> Result<String, EngineError> {
        let service = self
            .containers
            .borrow()
            .get(container)
            .map(|c| c.service.clone());
        if let Some(log) = service.and_then(|s| self.logs.get(&s)) {
            return Ok(log.clone());
        }
        Ok(format!("log of {container}: FATAL something broke\n"))
    }

    /// Only healthchecks run through exec now.
    async fn exec(
        &self,
        container: &str,
        _request: &ExecRequest,
        _on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<ExecOutcome, EngineError> {
        let mut containers = self.containers.borrow_mut();
        let c = containers.get_mut(container).expect("known container");
        self.record(format!("healthcheck {}", c.service));
        let passes = match c.behaviour {
            Behaviour::Running | Behaviour::ProbePasses | Behaviour::PortOpensAfter(_) => true,
            Behaviour::HealthyAfter(n) | Behaviour::ListensAfter(n) => c.polls > n,
            _ => false,
        };
        Ok(ExecOutcome {
            exit_code: Some(if passes { 0 } else { 1 }),
        })
    }

    async fn upload(
        &self,
        container: &str,
        dir: &str,
        files: &[(&str, &[u8])],
    ) -> Result<(), EngineError> {
        if let [(super::protocol::GATE_FILE, _)] = files {
            // The gate: pytest may load the project's code from now on.
            let (service, group) = self.owner(container);
            self.record(format!("let go {service}@g{group}"));
        } else {
            self.record(format!("upload {dir}"));
        }
        tokio::task::yield_now().await;
        let mut containers = self.containers.borrow_mut();
        let c = containers.get_mut(container).expect("known container");
        if self
            .engine_gone_after
            .get(&c.group)
            .is_some_and(|n| c.finished >= *n)
        {
            return Err(EngineError::Io {
                action: "upload files into".into(),
                path: dir.into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection closed before message completed",
                ),
            });
        }
        for (name, content) in files {
            c.files.insert(
                name.to_string(),
                String::from_utf8_lossy(content).into_owned(),
            );
        }
        Ok(())
    }

    async fn upload_folders(
        &self,
        container: &str,
        folders: &[crate::engine::Folder<'_>],
    ) -> Result<(), EngineError> {
        for (dir, files) in folders {
            self.upload(container, dir, files).await?;
        }
        Ok(())
    }

    /// The results folder holds a JUnit file of the tests the container played.
    async fn download(
        &self,
        container: &str,
        _path: &str,
        target: &Path,
    ) -> Result<Vec<PathBuf>, EngineError> {
        let containers = self.containers.borrow();
        let mut cases = String::new();
        if let Some(c) = containers.get(container) {
            for (id, outcome) in c.played.iter().zip(&c.outcomes) {
                let (classname, name) = crate::report::node_id::mangle(id);
                let child = match *outcome {
                    "failed" => "<failure message=\"assert False\">assert False</failure>",
                    "error" => "<error message=\"failed on setup\">RuntimeError</error>",
                    _ => "",
                };
                cases.push_str(&format!(
                    "<testcase classname=\"{classname}\" name=\"{name}\" time=\"0.010\">{child}</testcase>"
                ));
            }
        }
        let xml =
            format!("<testsuites><testsuite name=\"pytest\">{cases}</testsuite></testsuites>");
        std::fs::write(target.join("junit.xml"), xml).unwrap();
        Ok(vec![PathBuf::from("junit.xml")])
    }

    async fn list_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError> {
        Ok(self
            .resources
            .borrow()
            .iter()
            .filter(|(_, l)| Self::matches(l, label))
            .map(|((kind, name), l)| ManagedResource {
                kind: *kind,
                name: name.clone(),
                run_id: l.get(labels::RUN).cloned(),
                pid: l.get(labels::PID).and_then(|p| p.parse().ok()),
            })
            .collect())
    }

    async fn upload_tree(
        &self,
        container: &str,
        upload: &SourceUpload<'_>,
    ) -> Result<UploadSummary, EngineError> {
        self.record(format!("upload tree {}", upload.target));
        if !self.containers.borrow().contains_key(container) {
            return Err(EngineError::Io {
                action: format!("copy into missing container {container}:"),
                path: upload.source.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        self.uploaded_trees.borrow_mut().push((
            container.to_string(),
            upload.source.to_path_buf(),
            upload.target.to_string(),
        ));
        tokio::task::yield_now().await;
        Ok(UploadSummary {
            files: 1,
            dirs: 1,
            ..Default::default()
        })
    }

    async fn engine_sees_path(&self, image: &str, dir: &Path) -> Result<bool, EngineError> {
        self.record(format!("probe {image} {}", dir.display()));
        Ok(!self.paths_hidden)
    }

    async fn engine_info(&self) -> Result<EngineInfo, EngineError> {
        Ok(self.info.clone().unwrap_or_else(|| EngineInfo {
            address: "fake".into(),
            cpus: 2,
            memory_bytes: 4 << 30,
            name: "fake".into(),
            server_version: "0.0".into(),
            operating_system: "fake".into(),
            id: "FAKE:ENGINE".into(),
        }))
    }

    /// The fake engine's containers have no file system of this machine's.
    async fn shares_host_folders(&self) -> bool {
        false
    }

    async fn remove_labelled(&self, label: &str) -> Result<Vec<ManagedResource>, EngineError> {
        self.record(format!("remove {label}"));
        let found = self.list_labelled(label).await?;
        let mut resources = self.resources.borrow_mut();
        for r in &found {
            resources.remove(&(r.kind, r.name.clone()));
        }
        Ok(found)
    }
}

/// The engine's refusal of a container joining one that does not exist or run.
fn joined_missing(joined: &str) -> EngineError {
    EngineError::Io {
        action: "join the network namespace of".into(),
        path: joined.into(),
        source: std::io::Error::other("No such container, or not running"),
    }
}

/// The value the overrides give to an environment variable of the container ("" if none).
fn env_value(overrides: &ContainerOverrides, key: &str) -> String {
    overrides
        .env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}
