//! What `docker compose run`'s own flags change in the service it runs, applied to the test
//! service before the project is isolated per group: `--entrypoint` (cleared here, its words
//! lead the test command), `-u/--user`, `-w/--workdir`, `-v/--volume`, `--no-deps`,
//! `--cap-add`, `--cap-drop` and `-l/--label`.

use std::path::Path;

use serde_yaml::Value;

use super::model::{MountKind, Project};
use super::select::{restrict, run_closure};
use super::volumes::parse_mount;

/// The flags given, as typed.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags<'a> {
    /// `--entrypoint` was given: the service runs its command with no entrypoint before it
    /// (the image's is not inherited either).
    pub clear_entrypoint: bool,
    /// `-u/--user`.
    pub user: Option<&'a str>,
    /// `-w/--workdir`.
    pub workdir: Option<&'a str>,
    /// `-v/--volume`, short syntax.
    pub volumes: &'a [String],
    /// `--no-deps`: none of the service's dependencies is started (the service whose network
    /// namespace it joins, `network_mode: service:x`, still is: the container needs it), only
    /// the services asked for besides it (`--with-service`, `also`).
    pub no_deps: bool,
    /// The services started besides the test service whatever it depends on.
    pub also: &'a [String],
    /// `--cap-add`: added to the service's `cap_add`.
    pub cap_add: &'a [String],
    /// `--cap-drop`: added to the service's `cap_drop`.
    pub cap_drop: &'a [String],
    /// `-l/--label`, `KEY=VALUE` (or `KEY`: an empty value): set on the service's labels.
    pub labels: &'a [String],
}

/// `-l KEY=VALUE` as Compose takes it: `KEY` alone is an empty value; the key must not be
/// empty.
fn parse_label(given: &str) -> Result<(String, String), String> {
    let (key, value) = given.split_once('=').unwrap_or((given, ""));
    if key.trim().is_empty() {
        return Err(format!(
            "-l {given:?}: a label needs a name (expected KEY=VALUE, e.g. -l team=backend)"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Apply `flags` to `service` of `project`. A relative bind source is resolved against
/// `cwd`, as Compose v2 resolves `run -v ./x:/y` (not against the project directory); a
/// volume named by `-v` and not declared by the project is declared, so that every group
/// gets its own (Compose would create one volume of that name, shared by every run). A
/// mount at a target the service mounts already replaces it, as an override file's would.
pub fn apply_run_flags(
    project: &mut Project,
    service: &str,
    flags: &RunFlags<'_>,
    cwd: &Path,
    home: Option<&str>,
) -> Result<(), String> {
    let mut mounts = Vec::new();
    for given in flags.volumes {
        let mount = parse_mount(&Value::String(given.clone()), cwd, home)
            .map_err(|e| format!("-v {given:?}: {e} (expected SOURCE:TARGET[:MODE] or TARGET)"))?;
        mounts.push(mount);
    }
    let labels = flags
        .labels
        .iter()
        .map(|l| parse_label(l))
        .collect::<Result<Vec<_>, _>>()?;
    for mount in &mounts {
        if let (MountKind::Volume, Some(name)) = (mount.kind, &mount.source) {
            project.volumes.entry(name.clone()).or_default();
        }
    }
    let Some(svc) = project.services.get_mut(service) else {
        return Ok(());
    };
    if flags.clear_entrypoint {
        svc.entrypoint = Some(Vec::new());
    }
    if let Some(user) = flags.user {
        svc.user = Some(user.to_string());
    }
    if let Some(dir) = flags.workdir {
        svc.working_dir = Some(dir.to_string());
    }
    for mount in mounts {
        svc.volumes.retain(|m| m.target != mount.target);
        svc.volumes.push(mount);
    }
    for (given, list) in [
        (flags.cap_add, &mut svc.cap_add),
        (flags.cap_drop, &mut svc.cap_drop),
    ] {
        for cap in given {
            if !list.contains(cap) {
                list.push(cap.clone());
            }
        }
    }
    svc.labels.extend(labels);
    if flags.no_deps {
        let joined = svc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
            .map(str::to_string);
        let also = flags.also;
        svc.depends_on
            .retain(|dep, _| Some(dep) == joined.as_ref() || also.contains(dep));
        let keep = run_closure(project, service, flags.also).map_err(|e| e.to_string())?;
        *project = restrict(project, &keep);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::load_from_str;

    fn project() -> Project {
        let yaml = "services:\n  app:\n    image: python\n    entrypoint: [uvicorn, main:app]\n    user: app\n    volumes: [\".:/code\", \"cache:/cache\"]\n    cap_add: [SYS_PTRACE]\n    labels: {team: web, tier: api}\nvolumes:\n  cache: {}\n";
        let env = std::collections::HashMap::new();
        let options = crate::config::ComposeOptions::default();
        load_from_str(
            &[("compose.yaml", yaml)],
            Path::new("/proj"),
            &env,
            &options,
        )
        .unwrap()
        .project
    }

    #[test]
    fn a_label_without_a_name_is_a_usage_error_that_says_what_to_write() {
        let mut p = project();
        let labels = ["=x".to_string()];
        let flags = RunFlags {
            labels: &labels,
            ..RunFlags::default()
        };
        let e = apply_run_flags(&mut p, "app", &flags, Path::new("/cwd"), None).unwrap_err();
        assert!(e.contains("-l \"=x\": a label needs a name"), "{e}");
        assert!(e.contains("KEY=VALUE"), "{e}");
    }

    #[test]
    fn run_flags_change_the_service_as_compose_run_does() {
        let mut p = project();
        let volumes = [
            "./out:/code/out:ro".to_string(),
            "/data:/code".to_string(),
            "scratch:/scratch".to_string(),
            "/anon".to_string(),
        ];
        let caps = ["NET_ADMIN".to_string(), "SYS_PTRACE".to_string()];
        let dropped = ["CHOWN".to_string()];
        let labels = [
            "team=backend".to_string(),
            "ci".to_string(),
            "a=b=c".to_string(),
        ];
        let flags = RunFlags {
            clear_entrypoint: true,
            user: Some("0:0"),
            workdir: Some("/code/tests"),
            volumes: &volumes,
            cap_add: &caps,
            cap_drop: &dropped,
            labels: &labels,
            ..RunFlags::default()
        };
        apply_run_flags(&mut p, "app", &flags, Path::new("/cwd"), None).unwrap();
        let app = &p.services["app"];
        assert_eq!(app.cap_add, ["SYS_PTRACE", "NET_ADMIN"]);
        assert_eq!(app.cap_drop, ["CHOWN"]);
        let labelled: Vec<(&str, &str)> = app
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labelled,
            [
                ("team", "backend"),
                ("tier", "api"),
                ("ci", ""),
                ("a", "b=c")
            ]
        );
        assert_eq!(app.entrypoint, Some(vec![]));
        assert_eq!(app.user.as_deref(), Some("0:0"));
        assert_eq!(app.working_dir.as_deref(), Some("/code/tests"));
        let mounts: Vec<(Option<&str>, &str, bool)> = app
            .volumes
            .iter()
            .map(|m| (m.source.as_deref(), m.target.as_str(), m.read_only))
            .collect();
        // `/code` replaced by the flag's bind; relative sources from the current directory.
        assert_eq!(
            mounts,
            [
                (Some("cache"), "/cache", false),
                (Some("/cwd/out"), "/code/out", true),
                (Some("/data"), "/code", false),
                (Some("scratch"), "/scratch", false),
                (None, "/anon", false),
            ]
        );
        // A volume the project does not declare is declared (each group gets its own).
        assert!(p.volumes.contains_key("scratch"));
    }

    #[test]
    fn no_deps_starts_the_test_service_alone_with_what_is_asked_for_besides_it() {
        let yaml = "services:\n  app:\n    image: python\n    depends_on: [db, cache]\n  db:\n    image: postgres\n  cache:\n    image: redis\n  mail:\n    image: mailhog\n    depends_on: [cache]\n  vpn:\n    image: vpn\n  side:\n    image: python\n    network_mode: service:vpn\n    depends_on: [db]\n";
        let env = std::collections::HashMap::new();
        let options = crate::config::ComposeOptions::default();
        let loaded = load_from_str(&[("compose.yaml", yaml)], Path::new("/p"), &env, &options);
        let project = loaded.unwrap().project;
        let names = |p: &Project| p.services.keys().cloned().collect::<Vec<_>>();
        let also = ["mail".to_string()];
        let flags = RunFlags {
            no_deps: true,
            also: &also,
            ..RunFlags::default()
        };
        let mut p = project.clone();
        apply_run_flags(&mut p, "app", &flags, Path::new("/"), None).unwrap();
        assert_eq!(names(&p), ["app", "cache", "mail"]);
        assert!(p.services["app"].depends_on.is_empty());
        // The service whose network it joins stays; its declared dependencies go.
        let mut p = project.clone();
        let alone = RunFlags {
            no_deps: true,
            ..RunFlags::default()
        };
        apply_run_flags(&mut p, "side", &alone, Path::new("/"), None).unwrap();
        assert_eq!(names(&p), ["vpn", "side"]);
    }

    #[test]
    fn no_flags_change_nothing_and_a_bad_volume_names_the_flag() {
        let mut p = project();
        let before = p.clone();
        apply_run_flags(&mut p, "app", &RunFlags::default(), Path::new("/"), None).unwrap();
        assert_eq!(p, before);
        let bad = ["a:b:c:d".to_string()];
        let flags = RunFlags {
            volumes: &bad,
            ..RunFlags::default()
        };
        let err = apply_run_flags(&mut p, "app", &flags, Path::new("/"), None).unwrap_err();
        assert!(err.starts_with("-v \"a:b:c:d\": "), "{err}");
    }
}
