//! Profiles: services that only exist when one of their profiles is active.
//!
//! Like `docker compose run SERVICE` (compose-go's `WithServicesEnabled`), naming a service
//! whose profiles are all inactive enables *its profiles*: the service and every other
//! service of those profiles. Its dependencies in other inactive profiles stay disabled.

use std::collections::HashSet;

use indexmap::IndexMap;

use super::model::Service;

/// Keep services whose profiles are all inactive out of the project (`*` enables all).
/// `enable` names services (the test service, `--with-service`) whose profiles are added
/// to the active ones; names that are not services are left for the caller to report.
/// Returns the services left out with their profiles, for messages.
pub(crate) fn apply_profiles(
    services: &mut IndexMap<String, Service>,
    profiles: &[String],
    enable: &[String],
) -> IndexMap<String, Vec<String>> {
    let mut active: HashSet<&str> = profiles.iter().map(String::as_str).collect();
    let all = active.contains("*");
    let is_enabled = |s: &Service, active: &HashSet<&str>| {
        all || s.profiles.is_empty() || s.profiles.iter().any(|p| active.contains(p.as_str()))
    };
    let named: Vec<&Service> = enable.iter().filter_map(|n| services.get(n)).collect();
    let mut extra: Vec<&str> = Vec::new();
    for svc in named {
        if !is_enabled(svc, &active) {
            extra.extend(svc.profiles.iter().map(String::as_str));
        }
    }
    active.extend(extra);
    let disabled: Vec<String> = services
        .values()
        .filter(|s| !is_enabled(s, &active))
        .map(|s| s.name.clone())
        .collect();
    disabled
        .iter()
        .filter_map(|name| services.shift_remove(name))
        .map(|s| (s.name, s.profiles))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(defs: &[(&str, &[&str])]) -> IndexMap<String, Service> {
        defs.iter()
            .map(|(name, profiles)| {
                let svc = Service {
                    name: name.to_string(),
                    profiles: profiles.iter().map(|p| p.to_string()).collect(),
                    ..Service::default()
                };
                (name.to_string(), svc)
            })
            .collect()
    }

    fn kept(profiles: &[&str], enable: &[&str]) -> Vec<String> {
        let mut s = services(&[
            ("app", &[]),
            ("tool", &["tools"]),
            ("helper", &["tools"]),
            ("cache", &["cachep"]),
            ("both", &["tools", "debug"]),
        ]);
        let own = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        apply_profiles(&mut s, &own(profiles), &own(enable));
        s.keys().cloned().collect()
    }

    #[test]
    fn inactive_profiles_are_dropped_and_star_enables_all() {
        assert_eq!(kept(&[], &[]), ["app"]);
        assert_eq!(kept(&["debug"], &[]), ["app", "both"]);
        assert_eq!(kept(&["*"], &[]).len(), 5);
    }

    #[test]
    fn naming_a_disabled_service_enables_its_profiles_only() {
        // `docker compose run tool`: tool's profile `tools` is enabled (so helper and both
        // come with it); cache's profile stays inactive.
        assert_eq!(kept(&[], &["tool"]), ["app", "tool", "helper", "both"]);
        // An enabled or unknown name changes nothing.
        assert_eq!(kept(&[], &["app", "nope"]), ["app"]);
    }
}
