//! `compose-shard merge`: combine the results of several groups or runners into one JUnit file,
//! one Cobertura file and an updated durations file.
//!
//! Inputs are report files (JUnit or Cobertura, told apart by their root element) or result
//! folders written by `run` (see `report::ResultsLayout`). Folders contribute their `g<k>`
//! groups under their own numbers; groups their `plan.json` lists that no input supplies are
//! reported as missing; plain JUnit files become further groups in the order given. Every
//! output (the durations file through the durations store) is staged and only committed once
//! all of them are ready (see `report::StagedFile`), so a failed merge changes nothing. Exit
//! code: 0 when every test passed, 1 when some failed, errored, ran twice, never ran or a
//! group is missing, 2 for unusable input.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::config::MergeConfig;
use crate::durations_store;
use crate::errors::{Error, ExitCode};
use crate::plan::Pruning;
use crate::report::{
    classify, github_annotations, github_blob_base, github_log_group, github_step_summary,
    merge_coverage, merge_junit, read_plan_groups, render_slowest, render_summary_table,
    summaries_from_junit, GroupResult, JunitTotals, ReportKind, ResultsLayout, StagedFile,
};

/// Annotations beyond this many would drown the job page (GitHub shows 10 per step anyway).
const ANNOTATION_CAP: usize = 50;

/// `(group, node ids)` of a plan.
type PlanGroups = Vec<(usize, Vec<String>)>;

/// The groups, collected tests and coverage files the inputs amount to.
#[derive(Default)]
struct Inputs {
    groups: BTreeMap<usize, (GroupResult, PathBuf)>,
    /// The first `plan.json` read, and its `(group, node ids)`.
    plan: Option<(PathBuf, PlanGroups)>,
    junit_files: Vec<PathBuf>,
    coverage_files: Vec<PathBuf>,
}

/// Execute `compose-shard merge`.
pub fn execute(cfg: MergeConfig) -> Result<ExitCode, Error> {
    let inputs = gather(&cfg.inputs)?;
    let expected: Option<Vec<String>> = inputs
        .plan
        .as_ref()
        .map(|(_, groups)| groups.iter().flat_map(|(_, t)| t.iter().cloned()).collect());
    let groups = group_results(&inputs);
    if let (Some(path), true) = (&cfg.junit_xml, groups.is_empty()) {
        return Err(Error::Usage(format!(
            "--junit-xml {}: none of the inputs is a JUnit report (pass JUnit files or result folders with g<k>/junit.xml, or drop --junit-xml)",
            path.display()
        )));
    }

    // Every output is staged first and replaced only once all of them are ready.
    let mut staged = Vec::new();
    let totals = if groups.is_empty() {
        None
    } else {
        Some(stage_junit(
            &cfg,
            &groups,
            expected.as_deref(),
            &mut staged,
        )?)
    };
    if let Some(path) = &cfg.cov_xml {
        staged.push(stage_coverage(path, &groups, &inputs)?);
    }
    if let Some(path) = &cfg.store_durations {
        let measured = totals.as_ref().map_or(&[][..], |t| &t.durations[..]);
        let pruning: Option<Pruning> = expected
            .as_ref()
            .map(|ids| Pruning::whole(ids.iter().cloned().collect()));
        staged.push(durations_store::stage_update(
            path,
            measured.iter().cloned(),
            pruning.as_ref(),
        )?);
    }
    for file in staged {
        file.commit()?;
    }

    let Some(totals) = totals else {
        return Ok(ExitCode::Success);
    };
    print_summaries(&totals, &totals.durations, &group_logs(&inputs))?;
    Ok(if totals.all_passed() {
        ExitCode::Success
    } else {
        ExitCode::TestsFailed
    })
}

/// Merge the groups' JUnit, staged for `--junit-xml` when given (else only counted).
fn stage_junit(
    cfg: &MergeConfig,
    groups: &[GroupResult],
    expected: Option<&[String]>,
    staged: &mut Vec<StagedFile>,
) -> Result<JunitTotals, Error> {
    Ok(match &cfg.junit_xml {
        Some(path) => {
            let mut file = StagedFile::create(path)?;
            let totals = merge_junit(groups, expected, file.writer())?;
            staged.push(file);
            totals
        }
        None => merge_junit(groups, expected, &mut std::io::sink())?,
    })
}

/// Merge the groups' and the inputs' coverage, staged for `--cov-xml PATH`.
fn stage_coverage(
    path: &Path,
    groups: &[GroupResult],
    inputs: &Inputs,
) -> Result<StagedFile, Error> {
    let mut coverage_inputs: Vec<PathBuf> =
        groups.iter().filter_map(|g| g.coverage.clone()).collect();
    coverage_inputs.extend(inputs.coverage_files.iter().cloned());
    if coverage_inputs.is_empty() {
        return Err(Error::Usage(format!(
            "--cov-xml {}: none of the inputs has coverage XML (pass Cobertura files or result folders with g<k>/coverage.xml)",
            path.display()
        )));
    }
    let mut file = StagedFile::create(path)?;
    let totals = merge_coverage(&coverage_inputs, file.writer())?;
    eprintln!(
        "coverage: {} files, lines {}/{} ({}), branches {}/{}",
        totals.files,
        totals.lines_covered,
        totals.lines_valid,
        totals.line_rate,
        totals.branches_covered,
        totals.branches_valid
    );
    Ok(file)
}

/// `(title, output.log)` of every group that came from a result folder and left a log.
fn group_logs(inputs: &Inputs) -> Vec<(String, PathBuf)> {
    inputs
        .groups
        .iter()
        .map(|(k, (result, folder))| {
            (
                format!("group {k}/{} output", result.groups),
                ResultsLayout::new(folder).output_log(*k),
            )
        })
        .filter(|(_, log)| log.is_file())
        .collect()
}

fn print_summaries(
    totals: &JunitTotals,
    measured: &[(String, f64)],
    logs: &[(String, PathBuf)],
) -> Result<(), Error> {
    let summaries = summaries_from_junit(totals);
    print!("{}", render_summary_table(&summaries, totals));
    if !measured.is_empty() {
        print!("\n{}", render_slowest(measured, 10));
    }
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        for (title, path) in logs {
            let log = std::fs::read(path).map_err(|source| Error::Io {
                action: "read",
                path: path.clone(),
                source,
            })?;
            print!(
                "{}",
                github_log_group(title, &String::from_utf8_lossy(&log))
            );
        }
        for line in github_annotations(totals, ANNOTATION_CAP) {
            println!("{line}");
        }
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            let link_base = match (
                std::env::var("GITHUB_SERVER_URL"),
                std::env::var("GITHUB_REPOSITORY"),
                std::env::var("GITHUB_SHA"),
            ) {
                (Ok(server), Ok(repo), Ok(sha)) => Some(github_blob_base(&server, &repo, &sha)),
                _ => None,
            };
            let markdown = github_step_summary(&summaries, totals, link_base.as_deref());
            let path = PathBuf::from(path);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(markdown.as_bytes()))
                .map_err(|source| Error::Io {
                    action: "append the job summary to",
                    path,
                    source,
                })?;
        }
    }
    Ok(())
}

/// Sort the inputs into result folders, JUnit files and Cobertura files.
fn gather(paths: &[PathBuf]) -> Result<Inputs, Error> {
    let mut inputs = Inputs::default();
    for path in paths {
        if path.is_dir() {
            add_folder(&mut inputs, path)?;
        } else if path.is_file() {
            match classify(path)? {
                ReportKind::Junit => inputs.junit_files.push(path.clone()),
                ReportKind::Cobertura => inputs.coverage_files.push(path.clone()),
            }
        } else {
            return Err(Error::Usage(format!(
                "input {} does not exist (pass report files or result folders written by `run`)",
                path.display()
            )));
        }
    }
    Ok(inputs)
}

fn add_folder(inputs: &mut Inputs, folder: &Path) -> Result<(), Error> {
    let layout = ResultsLayout::new(folder);
    let plan_path = layout.plan();
    let present = layout.groups_present()?;
    if !plan_path.is_file() && present.is_empty() {
        return Err(Error::Usage(format!(
            "{} is neither a report nor a result folder (no plan.json, no g<k>/ folders)",
            folder.display()
        )));
    }
    if plan_path.is_file() {
        let plan = read_plan_groups(&plan_path)?;
        match &inputs.plan {
            Some((first, groups)) if *groups != plan => {
                return Err(Error::Usage(format!(
                    "{} and {} come from different plans; merge only results of one run (run --plan FILE on every runner)",
                    first.display(),
                    plan_path.display()
                )))
            }
            Some(_) => {}
            None => inputs.plan = Some((plan_path.clone(), plan)),
        }
    }
    let groups = inputs
        .plan
        .as_ref()
        .map_or(present.last().copied().unwrap_or(0), |(_, g)| g.len());
    for k in present {
        let result = layout.group_result(k, groups)?;
        if let Some((_, other)) = inputs.groups.get(&k) {
            return Err(Error::Usage(format!(
                "group {k} is in both {} and {}; pass each group's results once",
                other.display(),
                folder.display()
            )));
        }
        inputs.groups.insert(k, (result, folder.to_path_buf()));
    }
    Ok(())
}

/// Groups in number order: folders' groups, the plan's groups no input supplied (missing),
/// then plain JUnit files as further groups.
fn group_results(inputs: &Inputs) -> Vec<GroupResult> {
    let planned: Vec<usize> = inputs
        .plan
        .as_ref()
        .map(|(_, g)| g.iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    let mut numbers: Vec<usize> = inputs.groups.keys().copied().chain(planned).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let total = numbers.len() + inputs.junit_files.len();
    let mut out: Vec<GroupResult> = numbers
        .iter()
        .map(|k| match inputs.groups.get(k) {
            Some((result, _)) => GroupResult {
                groups: total,
                ..result.clone()
            },
            None => GroupResult {
                group: *k,
                groups: total,
                missing_reason: Some(format!(
                    "no input holds results for group {k} of the plan (was its runner's result folder passed to merge?)"
                )),
                ..GroupResult::default()
            },
        })
        .collect();
    let next = numbers.last().copied().unwrap_or(0);
    for (i, file) in inputs.junit_files.iter().enumerate() {
        out.push(GroupResult {
            group: next + i + 1,
            groups: total.max(next + inputs.junit_files.len()),
            junit: Some(file.clone()),
            ..GroupResult::default()
        });
    }
    out
}
