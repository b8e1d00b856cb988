//! Profiles: services that only exist when one of their profiles is active.

use std::collections::HashSet;

use indexmap::IndexMap;

use super::model::Service;

/// Keep services whose profiles are all inactive out of the project (`*` enables all).
pub(crate) fn apply_profiles(services: &mut IndexMap<String, Service>, profiles: &[String]) {
    let all = profiles.iter().any(|p| p == "*");
    let active: HashSet<&str> = profiles.iter().map(String::as_str).collect();
    let disabled: Vec<String> = services
        .values()
        .filter(|s| {
            !all && !s.profiles.is_empty()
                && !s.profiles.iter().any(|p| active.contains(p.as_str()))
        })
        .map(|s| s.name.clone())
        .collect();
    for name in &disabled {
        services.shift_remove(name);
    }
}
