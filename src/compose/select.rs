//! Choosing the service the tests run in.

use std::collections::HashSet;

use super::error::ComposeError;
use super::model::Project;
use super::warnings::name_list;

/// `--service` flag, else `[tool.compose-shard] service` (passed in as `configured`), else the
/// one `build:` service nothing depends on, else an error listing the candidates.
pub fn select_test_service(
    project: &Project,
    flag: Option<&str>,
    configured: Option<&str>,
) -> Result<String, ComposeError> {
    let all: Vec<&str> = project.services.keys().map(String::as_str).collect();
    if let Some((name, origin)) = flag
        .map(|f| (f, "--service"))
        .or_else(|| configured.map(|c| (c, "[tool.compose-shard] service")))
    {
        return if project.services.contains_key(name) {
            Ok(name.to_string())
        } else {
            Err(ComposeError::TestService(format!(
                "{origin} names {name:?}, which is not a service of project {:?} (services: {})",
                project.name,
                name_list(&all)
            )))
        };
    }
    let depended_on: HashSet<&str> = project
        .services
        .values()
        .flat_map(|s| s.depends_on.keys().map(String::as_str))
        .collect();
    let candidates: Vec<&str> = project
        .services
        .values()
        .filter(|s| s.build.is_some() && !depended_on.contains(s.name.as_str()))
        .map(|s| s.name.as_str())
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(ComposeError::TestService(format!(
            "cannot tell which service runs the tests: no service has `build:` without other services depending on it; pass --service NAME or set `service` in [tool.compose-shard] of pyproject.toml (services: {})",
            name_list(&all)
        ))),
        many => Err(ComposeError::TestService(format!(
            "cannot tell which service runs the tests: candidates are {}; pass --service NAME or set `service` in [tool.compose-shard] of pyproject.toml",
            name_list(many)
        ))),
    }
}
