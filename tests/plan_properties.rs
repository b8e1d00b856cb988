//! Property tests of `plan::split` on random test lists and durations: every test in exactly
//! one group, determinism, collection order inside groups, classes kept together, and a
//! slowest group never heavier than plain longest-first's (a reference written here, apart
//! from the crate's own).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use compose_shard::config::SplitBy;
use compose_shard::plan::{split, to_micros, unit_of, Durations, Plan};
use proptest::prelude::*;

/// Node ids shaped like real ones: optional class, parameters with `::`, spaces, unicode.
fn node_id() -> impl Strategy<Value = String> {
    let file = prop::sample::select(vec![
        "tests/test_a.py",
        "tests/test_b.py",
        "app/x_test.py",
        "tests/ünï/test_c.py",
    ]);
    let class = prop::option::of(prop::sample::select(vec![
        "TestA",
        "TestB",
        "TestOuter::TestIn",
    ]));
    let name = prop::sample::select(vec!["test_one", "test_two", "test_three", "test_4"]);
    let param = prop::option::of(prop::sample::select(vec![
        "[1]",
        "[a::b]",
        "[x y-TestA::z]",
        "[é[ü]]",
        "[0-1-2]",
    ]));
    (file, class, name, param).prop_map(|(f, c, n, p)| {
        let mut id = f.to_string();
        if let Some(c) = c {
            id.push_str("::");
            id.push_str(c);
        }
        id.push_str("::");
        id.push_str(n);
        id.push_str(p.unwrap_or(""));
        id
    })
}

/// A collection (unique ids in some order) and durations in whole microseconds for all of
/// them, so the reference's weights equal the planner's exactly.
fn suite(all_known: bool) -> impl Strategy<Value = (Vec<String>, Vec<(String, f64)>)> {
    prop::collection::btree_set(node_id(), 0..60)
        .prop_flat_map(move |ids| {
            let n = ids.len();
            (
                Just(ids.into_iter().collect::<Vec<_>>()).prop_shuffle(),
                prop::collection::vec(
                    prop_oneof![0u64..2_000_000, 0u64..60_000_000, Just(500_000u64)],
                    n,
                ),
                prop::collection::vec(any::<bool>(), n),
            )
        })
        .prop_map(move |(ids, micros, known)| {
            let durations = ids
                .iter()
                .zip(&micros)
                .zip(&known)
                .filter(|(_, &k)| all_known || k)
                .map(|((id, &us), _)| (id.clone(), us as f64 / 1e6))
                .collect();
            (ids, durations)
        })
}

fn split_by() -> impl Strategy<Value = SplitBy> {
    prop::sample::select(vec![SplitBy::Test, SplitBy::Class, SplitBy::Module])
}

fn durations_from(pairs: &[(String, f64)]) -> Durations {
    Durations(pairs.iter().cloned().collect())
}

/// Plain longest-first: units heaviest first (ties by name), each to the lightest group
/// (ties to the lower index). Returns the slowest group's load in microseconds.
fn reference_longest_first(
    tests: &[String],
    durations: &Durations,
    groups: usize,
    by: SplitBy,
) -> u64 {
    let mut units: BTreeMap<&str, u64> = BTreeMap::new();
    for t in tests {
        let secs = durations.get(t).expect("reference needs every duration");
        *units.entry(unit_of(t, by)).or_default() += to_micros(secs);
    }
    let mut order: Vec<(&str, u64)> = units.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut loads = vec![0u64; groups];
    for (_, w) in order {
        let lightest = (0..groups).min_by_key(|&g| (loads[g], g)).unwrap();
        loads[lightest] += w;
    }
    loads.into_iter().max().unwrap_or(0)
}

fn group_loads(plan: &Plan, durations: &Durations) -> Vec<u64> {
    plan.groups
        .iter()
        .map(|g| {
            g.tests
                .iter()
                .map(|t| to_micros(durations.get(t).unwrap()))
                .sum()
        })
        .collect()
}

fn membership(plan: &Plan) -> Vec<BTreeSet<String>> {
    plan.groups
        .iter()
        .map(|g| g.tests.iter().cloned().collect())
        .collect()
}

proptest! {
    // Integration tests have no lib.rs beside them to store regressions next to; failures
    // print the minimal input instead.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_test_is_in_exactly_one_group(
        (tests, durations) in suite(false), groups in 1usize..12, by in split_by()
    ) {
        let plan = split(&tests, &durations_from(&durations), groups, by).unwrap();
        prop_assert_eq!(plan.groups.len(), groups);
        let mut count: HashMap<&str, usize> = HashMap::new();
        for g in &plan.groups {
            for t in &g.tests {
                *count.entry(t.as_str()).or_default() += 1;
            }
        }
        prop_assert_eq!(count.len(), tests.len());
        prop_assert!(tests.iter().all(|t| count.get(t.as_str()) == Some(&1)));
        let numbers: Vec<usize> = plan.groups.iter().map(|g| g.group).collect();
        prop_assert_eq!(numbers, (1..=groups).collect::<Vec<_>>());
    }

    #[test]
    fn slowest_group_is_never_worse_than_longest_first(
        (tests, durations) in suite(true), groups in 1usize..12, by in split_by()
    ) {
        let durations = durations_from(&durations);
        let plan = split(&tests, &durations, groups, by).unwrap();
        let ours = group_loads(&plan, &durations).into_iter().max().unwrap_or(0);
        let reference = reference_longest_first(&tests, &durations, groups, by);
        prop_assert!(ours <= reference, "ours {} > longest-first {}", ours, reference);
        prop_assert_eq!(to_micros(plan.longest_first_slowest_seconds), reference);
    }

    #[test]
    fn same_inputs_give_the_same_plan_in_any_insertion_or_collection_order(
        (tests, durations) in suite(false),
        groups in 1usize..9,
        by in split_by(),
        seed in any::<u64>(),
    ) {
        let first = split(&tests, &durations_from(&durations), groups, by).unwrap();
        let again = split(&tests, &durations_from(&durations), groups, by).unwrap();
        prop_assert_eq!(&first, &again);

        // Durations inserted in another order and tests collected in another order: the same
        // groups (as sets); only the order inside a group follows the collection.
        let mut shuffled_durations = durations.clone();
        let mut shuffled_tests = tests.clone();
        shuffle(&mut shuffled_durations, seed);
        shuffle(&mut shuffled_tests, seed.rotate_left(17));
        let other = split(&shuffled_tests, &durations_from(&shuffled_durations), groups, by).unwrap();
        prop_assert_eq!(membership(&first), membership(&other));
        prop_assert_eq!(first.to_json().len(), other.to_json().len());
    }

    #[test]
    fn groups_keep_collection_order_and_units_together(
        (tests, durations) in suite(false), groups in 1usize..9, by in split_by()
    ) {
        let plan = split(&tests, &durations_from(&durations), groups, by).unwrap();
        let position: HashMap<&str, usize> =
            tests.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        let mut unit_group: HashMap<&str, usize> = HashMap::new();
        for g in &plan.groups {
            let positions: Vec<usize> = g.tests.iter().map(|t| position[t.as_str()]).collect();
            prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));
            for t in &g.tests {
                let unit = unit_of(t, by);
                let first = *unit_group.entry(unit).or_insert(g.group);
                prop_assert_eq!(first, g.group, "unit {} split across groups", unit);
            }
        }
    }

    #[test]
    fn json_round_trips(
        (tests, durations) in suite(false), groups in 1usize..6, by in split_by()
    ) {
        let plan = split(&tests, &durations_from(&durations), groups, by).unwrap();
        prop_assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
    }
}

/// A deterministic Fisher-Yates shuffle (splitmix64), so failures reproduce from the seed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    let mut next = || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
