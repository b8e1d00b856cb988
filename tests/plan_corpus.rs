//! The planner on real pytest-split durations files from public projects (the shared corpus,
//! read in place: `COMPOSE_SHARD_SHARED`, else `../shared` beside the crate; see
//! tests/fixtures/durations/SOURCES.md). Missing corpus files fail these tests, never skip.

use std::path::PathBuf;

use compose_shard::config::SplitBy;
use compose_shard::plan::{split, to_micros, unit_of, Durations};

fn corpus() -> Vec<(String, String)> {
    let shared = std::env::var_os("COMPOSE_SHARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("corpus/durations");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read the durations corpus at {} ({e}); set COMPOSE_SHARD_SHARED to the shared folder",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test_durations"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected the corpus's durations files in {}",
        dir.display()
    );
    files
}

#[test]
fn real_durations_files_round_trip_byte_for_byte() {
    for (name, text) in corpus() {
        let durations = Durations::parse(&text).unwrap();
        assert_eq!(durations.to_json(), text.trim_end(), "{name}");
    }
}

#[test]
fn real_suites_split_within_a_thousandth_of_the_lower_bound() {
    for (name, text) in corpus() {
        let durations = Durations::parse(&text).unwrap();
        let tests: Vec<String> = durations.0.keys().cloned().collect();
        for by in [SplitBy::Test, SplitBy::Class, SplitBy::Module] {
            let mut units = std::collections::HashMap::<&str, u64>::new();
            for t in &tests {
                *units.entry(unit_of(t, by)).or_default() += to_micros(durations.0[t]);
            }
            let heaviest_unit = units.values().copied().max().unwrap() as f64 / 1e6;
            let total: f64 = units.values().map(|&w| w as f64 / 1e6).sum();
            for groups in [2, 4, 8, 16] {
                let plan = split(&tests, &durations, groups, by).unwrap();
                assert_eq!(plan.total_tests(), tests.len());
                let slowest = plan.slowest_seconds();
                // No split can beat the ideal share or the heaviest unit.
                let bound = (total / groups as f64).max(heaviest_unit);
                assert!(
                    slowest <= bound * 1.001,
                    "{name} {by:?} N={groups}: slowest {slowest} vs lower bound {bound}"
                );
                assert!(slowest <= plan.longest_first_slowest_seconds);
            }
        }
    }
}
