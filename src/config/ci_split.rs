//! CI-native parallelism: when a CI runs N parallel copies of one job, its variables say which
//! copy this is, and `run` takes them as `--only K` and N groups (a static split, the same
//! plan on every copy), with no flags, as pytest-split users expect.
//!
//! | CI | variables | counted from |
//! |---|---|---|
//! | GitLab CI (`parallel: N`) | `CI_NODE_INDEX`, `CI_NODE_TOTAL` | 1 |
//! | CircleCI (`parallelism: N`) | `CIRCLE_NODE_INDEX`, `CIRCLE_NODE_TOTAL` | 0 |
//! | Buildkite (`parallelism: N`) | `BUILDKITE_PARALLEL_JOB`, `BUILDKITE_PARALLEL_JOB_COUNT` | 0 |
//!
//! A total of 1 is no split (CircleCI sets its variables on every job, GitLab sets
//! `CI_NODE_TOTAL=1` on every job that is not parallel). Values that do not fit together (an
//! index without a total, a total of 2 or more without an index, an index out of range, a
//! non-number) are a usage error naming the variables, as are two CIs that both split the job.
//! GitLab also sets these variables on the jobs of `parallel: matrix:`, which run different
//! configurations rather than shares of one suite; GitLab names the copies of `parallel: N`
//! `JOB K/N`, so when `CI_JOB_NAME` is set and does not end in ` K/N` the variables are not
//! taken as a split. Which of flags, CI and pyproject.toml wins is [`super::RunSettings`]'s.

/// The CI variables that split one job into parallel copies: this copy's group and the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiSplit {
    /// The CI, as users know it (`GitLab CI`, `CircleCI`, `Buildkite`).
    pub ci: &'static str,
    /// This copy's group, 1-based.
    pub group: usize,
    /// How many copies run, so how many groups there are.
    pub groups: usize,
    /// The variables it came from, as `NAME=value, NAME=value`.
    pub variables: String,
}

impl CiSplit {
    /// `group 2 of 3 from GitLab CI (CI_NODE_INDEX=2, CI_NODE_TOTAL=3)`.
    pub fn describe(&self) -> String {
        format!(
            "group {} of {} from {} ({})",
            self.group, self.groups, self.ci, self.variables
        )
    }
}

/// One CI's pair of variables.
struct CiVariables {
    ci: &'static str,
    index: &'static str,
    total: &'static str,
    /// The index of the first copy (1 on GitLab, 0 elsewhere).
    first: usize,
}

const CIS: [CiVariables; 3] = [
    CiVariables {
        ci: "GitLab CI",
        index: "CI_NODE_INDEX",
        total: "CI_NODE_TOTAL",
        first: 1,
    },
    CiVariables {
        ci: "CircleCI",
        index: "CIRCLE_NODE_INDEX",
        total: "CIRCLE_NODE_TOTAL",
        first: 0,
    },
    CiVariables {
        ci: "Buildkite",
        index: "BUILDKITE_PARALLEL_JOB",
        total: "BUILDKITE_PARALLEL_JOB_COUNT",
        first: 0,
    },
];

/// The split the environment's CI variables give, if any; `env` looks a variable up (unset
/// and empty are the same). The error names the variables and their values.
pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<CiSplit>, String> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut found: Vec<CiSplit> = Vec::new();
    for vars in &CIS {
        if let Some(split) = split_of(vars, get(vars.index), get(vars.total))? {
            found.push(split);
        }
    }
    if let [first, second, ..] = &found[..] {
        return Err(format!(
            "both {} ({}) and {} ({}) split this job into parallel copies; unset the variables of the one not running this job, or choose with --only K and --groups N",
            first.ci, first.variables, second.ci, second.variables
        ));
    }
    let Some(split) = found.pop() else {
        return Ok(None);
    };
    if split.ci == "GitLab CI" {
        if let Some(job) = get("CI_JOB_NAME") {
            if !job.ends_with(&format!(" {}/{}", split.group, split.groups)) {
                // A `parallel: matrix:` job: one configuration of several, not a share.
                return Ok(None);
            }
        }
    }
    Ok(Some(split))
}

/// One CI's split from its index and total, if they split the job.
fn split_of(
    vars: &CiVariables,
    index: Option<String>,
    total: Option<String>,
) -> Result<Option<CiSplit>, String> {
    let (ci, index_name, total_name) = (vars.ci, vars.index, vars.total);
    let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "(unset)".into());
    let variables = format!(
        "{index_name}={}, {total_name}={}",
        shown(&index),
        shown(&total)
    );
    let inconsistent = |problem: String| {
        format!(
            "{ci}'s parallel-job variables do not fit together ({variables}): {problem}; fix them, or choose the group with --only K and --groups N"
        )
    };
    let number = |name: &str, value: &str| {
        value
            .trim()
            .parse::<usize>()
            .map_err(|_| inconsistent(format!("{name} must be a whole number, not {value:?}")))
    };
    let total = match total {
        None if index.is_none() => return Ok(None),
        None => {
            return Err(inconsistent(format!(
                "{index_name} is set but {total_name} is not"
            )))
        }
        Some(text) => number(total_name, &text)?,
    };
    if total == 0 {
        return Err(inconsistent(format!("{total_name} must be 1 or more")));
    }
    let Some(index) = index else {
        if total == 1 {
            return Ok(None);
        }
        return Err(inconsistent(format!(
            "{total_name} is {total} but {index_name} is not set"
        )));
    };
    let index = number(index_name, &index)?;
    let last = vars.first + total - 1;
    if index < vars.first || index > last {
        return Err(inconsistent(format!(
            "{index_name} must be between {} and {last} ({ci} counts from {})",
            vars.first, vars.first
        )));
    }
    if total == 1 {
        return Ok(None);
    }
    Ok(Some(CiSplit {
        ci,
        group: index - vars.first + 1,
        groups: total,
        variables,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_in(vars: &[(&str, &str)]) -> Result<Option<CiSplit>, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        detect(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn split(vars: &[(&str, &str)]) -> (usize, usize, &'static str) {
        let s = detect_in(vars).unwrap().expect("a split");
        (s.group, s.groups, s.ci)
    }

    #[test]
    fn gitlab_counts_from_one() {
        assert_eq!(
            split(&[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "3")]),
            (2, 3, "GitLab CI")
        );
        assert_eq!(
            split(&[("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "3")]).0,
            3
        );
        let s = detect_in(&[
            ("CI_NODE_INDEX", "2"),
            ("CI_NODE_TOTAL", "3"),
            ("CI_JOB_NAME", "test 2/3"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            s.describe(),
            "group 2 of 3 from GitLab CI (CI_NODE_INDEX=2, CI_NODE_TOTAL=3)"
        );
        // Every GitLab job that is not parallel has CI_NODE_TOTAL=1 and no index.
        assert_eq!(detect_in(&[("CI_NODE_TOTAL", "1")]).unwrap(), None);
        assert_eq!(
            detect_in(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "1")]).unwrap(),
            None
        );
    }

    #[test]
    fn gitlab_matrix_jobs_are_not_a_split() {
        let matrix = [
            ("CI_NODE_INDEX", "2"),
            ("CI_NODE_TOTAL", "3"),
            ("CI_JOB_NAME", "test: [3.12]"),
        ];
        assert_eq!(detect_in(&matrix).unwrap(), None);
    }

    #[test]
    fn circleci_and_buildkite_count_from_zero() {
        assert_eq!(
            split(&[("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "3")]),
            (1, 3, "CircleCI")
        );
        assert_eq!(
            split(&[("CIRCLE_NODE_INDEX", "2"), ("CIRCLE_NODE_TOTAL", "3")]).0,
            3
        );
        // CircleCI sets both on every job; without `parallelism` the total is 1.
        assert_eq!(
            detect_in(&[("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "1")]).unwrap(),
            None
        );
        assert_eq!(
            split(&[
                ("BUILDKITE_PARALLEL_JOB", "1"),
                ("BUILDKITE_PARALLEL_JOB_COUNT", "4")
            ]),
            (2, 4, "Buildkite")
        );
        let s = detect_in(&[
            ("BUILDKITE_PARALLEL_JOB", "3"),
            ("BUILDKITE_PARALLEL_JOB_COUNT", "4"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            s.describe(),
            "group 4 of 4 from Buildkite (BUILDKITE_PARALLEL_JOB=3, BUILDKITE_PARALLEL_JOB_COUNT=4)"
        );
    }

    #[test]
    fn no_variables_no_split() {
        assert_eq!(detect_in(&[]).unwrap(), None);
        assert_eq!(
            detect_in(&[("CI_NODE_INDEX", ""), ("CI_NODE_TOTAL", " ")]).unwrap(),
            None
        );
    }

    #[test]
    fn inconsistent_values_are_errors_naming_the_variables() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("CI_NODE_INDEX", "4"), ("CI_NODE_TOTAL", "3")],
                "CI_NODE_INDEX must be between 1 and 3 (GitLab CI counts from 1)",
            ),
            (
                &[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "3")],
                "CI_NODE_INDEX must be between 1 and 3",
            ),
            (
                &[("CIRCLE_NODE_INDEX", "3"), ("CIRCLE_NODE_TOTAL", "3")],
                "CIRCLE_NODE_INDEX must be between 0 and 2 (CircleCI counts from 0)",
            ),
            (
                &[("CI_NODE_INDEX", "two"), ("CI_NODE_TOTAL", "3")],
                "CI_NODE_INDEX must be a whole number, not \"two\"",
            ),
            (
                &[
                    ("BUILDKITE_PARALLEL_JOB", "0"),
                    ("BUILDKITE_PARALLEL_JOB_COUNT", "-2"),
                ],
                "BUILDKITE_PARALLEL_JOB_COUNT must be a whole number",
            ),
            (
                &[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "0")],
                "CI_NODE_TOTAL must be 1 or more",
            ),
            (
                &[("CIRCLE_NODE_INDEX", "1")],
                "CIRCLE_NODE_INDEX is set but CIRCLE_NODE_TOTAL is not",
            ),
            (
                &[("CI_NODE_TOTAL", "3")],
                "CI_NODE_TOTAL is 3 but CI_NODE_INDEX is not set",
            ),
        ];
        for (vars, says) in cases {
            let err = detect_in(vars).unwrap_err();
            assert!(err.contains(says), "{vars:?}: {err}");
            for (name, value) in vars.iter() {
                assert!(err.contains(&format!("{name}={value}")), "{err}");
            }
            assert!(err.contains("--only K and --groups N"), "{err}");
        }
    }

    #[test]
    fn two_cis_splitting_one_job_is_an_error() {
        let err = detect_in(&[
            ("CI_NODE_INDEX", "1"),
            ("CI_NODE_TOTAL", "2"),
            ("CIRCLE_NODE_INDEX", "0"),
            ("CIRCLE_NODE_TOTAL", "2"),
        ])
        .unwrap_err();
        assert!(
            err.contains("GitLab CI (CI_NODE_INDEX=1, CI_NODE_TOTAL=2)")
                && err.contains("CircleCI (CIRCLE_NODE_INDEX=0, CIRCLE_NODE_TOTAL=2)"),
            "{err}"
        );
        // A CI that does not split (total 1) does not conflict.
        assert_eq!(
            split(&[
                ("CI_NODE_INDEX", "2"),
                ("CI_NODE_TOTAL", "2"),
                ("CIRCLE_NODE_INDEX", "0"),
                ("CIRCLE_NODE_TOTAL", "1"),
            ]),
            (2, 2, "GitLab CI")
        );
    }
}
