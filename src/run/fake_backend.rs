//! A scripted in-memory engine for orchestrator tests: it records every call, keeps the
//! resources it "created" with their labels (so tests can check nothing is left), and plays
//! per-service behaviours (healthy after N polls, never healthy, exits...).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::compose::{Network, Project, Service, Volume};
use crate::engine::{
    ContainerOverrides, ContainerStatus, EngineError, ExecOutcome, ExecRequest, Health,
    ImageSource, ManagedResource, ResourceKind,
};
use crate::labels;

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
}

#[derive(Debug, Clone)]
pub(super) struct FakeContainer {
    service: String,
    behaviour: Behaviour,
    polls: usize,
    files: HashMap<String, String>,
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
    /// Node ids the collection prints.
    pub collected: Vec<String>,
    /// Collection exit code.
    pub collect_exit: i64,
    /// Make the image unavailable.
    pub missing_image: Option<String>,
    /// pytest never finishes (for interrupt and timeout tests).
    pub tests_hang: bool,
    /// The last test exec's request.
    pub last_test_exec: RefCell<Option<ExecRequest>>,
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
        let (state, running, exit_code, health) = match c.behaviour {
            Behaviour::Running => ("running", true, None, Health::None),
            Behaviour::HealthyAfter(n) if c.polls > n => ("running", true, None, Health::Healthy),
            Behaviour::HealthyAfter(_) | Behaviour::NeverHealthy => {
                ("running", true, None, Health::Starting)
            }
            Behaviour::Unhealthy => ("running", true, None, Health::Unhealthy),
            Behaviour::Exits(code) => ("exited", false, Some(code), Health::None),
        };
        ContainerStatus {
            state: state.into(),
            running,
            exit_code,
            oom_killed: false,
            health,
            ip_addresses: vec!["10.0.0.2".into()],
        }
    }
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

    async fn start_service(
        &self,
        project: &Project,
        service: &Service,
        overrides: &ContainerOverrides,
    ) -> Result<String, EngineError> {
        let name = crate::engine::container_name(project, service);
        let group = project.isolation.as_ref().map_or(1, |i| i.group);
        self.record(format!(
            "start {}@g{group}{}",
            service.name,
            if overrides.entrypoint.is_some() {
                " (sleeping)"
            } else {
                ""
            }
        ));
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
                behaviour,
                polls: 0,
                files: HashMap::new(),
            },
        );
        tokio::task::yield_now().await;
        Ok(name)
    }

    async fn status(&self, container: &str) -> Result<ContainerStatus, EngineError> {
        let mut containers = self.containers.borrow_mut();
        let c = containers.get_mut(container).expect("known container");
        c.polls += 1;
        self.record(format!("poll {}", c.service));
        Ok(Self::status_of(c))
    }

    async fn port_open(&self, _status: &ContainerStatus, _port: u16) -> bool {
        true
    }

    async fn container_env(&self, _container: &str) -> Result<Vec<(String, String)>, EngineError> {
        Ok(vec![("PYTHONPATH".into(), "/opt/lib".into())])
    }

    async fn logs_tail(&self, container: &str, _lines: usize) -> Result<String, EngineError> {
        Ok(format!("log of {container}: FATAL something broke\n"))
    }

    async fn exec(
        &self,
        container: &str,
        request: &ExecRequest,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<ExecOutcome, EngineError> {
        if request.cmd.iter().any(|a| a == "--collect-only") {
            self.record("exec collect".into());
            let mut out = self.collected.join("\n");
            out.push_str("\n\n3 tests collected\n");
            on_output(out.as_bytes());
            return Ok(ExecOutcome {
                exit_code: Some(self.collect_exit),
            });
        }
        self.record(format!("exec pytest in {container}"));
        *self.last_test_exec.borrow_mut() = Some(request.clone());
        if self.tests_hang {
            std::future::pending::<()>().await;
        }
        let list = self.containers.borrow()[container].files["tests.txt"].clone();
        let mut failed = false;
        for id in list.lines().filter(|l| !l.is_empty()) {
            let outcome = if id.contains("fail") {
                "failed"
            } else {
                "passed"
            };
            failed |= outcome == "failed";
            let text = format!("{id} \n.##compose-shard## done {outcome} {id}\n");
            // Split mid-line to exercise line reassembly.
            let (a, b) = text.split_at(text.len() / 2);
            on_output(a.as_bytes());
            on_output(b.as_bytes());
        }
        Ok(ExecOutcome {
            exit_code: Some(if failed { 1 } else { 0 }),
        })
    }

    async fn upload(
        &self,
        container: &str,
        dir: &str,
        files: &[(&str, &[u8])],
    ) -> Result<(), EngineError> {
        self.record(format!("upload {dir}"));
        let mut containers = self.containers.borrow_mut();
        let c = containers.get_mut(container).expect("known container");
        for (name, content) in files {
            c.files.insert(
                name.to_string(),
                String::from_utf8_lossy(content).into_owned(),
            );
        }
        Ok(())
    }

    async fn download(
        &self,
        _container: &str,
        _path: &str,
        target: &Path,
    ) -> Result<Vec<PathBuf>, EngineError> {
        std::fs::write(target.join("junit.xml"), "<testsuites/>").unwrap();
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
