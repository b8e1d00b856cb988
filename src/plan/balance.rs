//! The balancing core: assign weighted units to groups so the heaviest group is light.
//!
//! Weights are whole microseconds (`u64`), so sums are exact and independent of summation
//! order, and comparisons have no rounding ties; this is what makes the result identical on
//! every machine. Units are identified by their index, and callers number them in a stable
//! order (sorted by unit name), so every tie is broken by name.
//!
//! Two steps:
//! 1. Longest processing time first (LPT), exactly pytest-split's `least_duration`: units by
//!    weight, heaviest first (ties: lower index first), each to the currently lightest group
//!    (ties: lower group index).
//! 2. Refinement: take the heaviest group H and try the other groups from the lightest up;
//!    apply the move of one unit, or the swap of two units, between H and that group which
//!    leaves both of them lightest, but only if both end strictly below H's old load. Repeat
//!    until the heaviest group cannot be improved or a work budget is spent.
//!
//! 3. Units of weight zero (tests recorded as 0.0 s) change no load; they are spread over the
//!    groups by unit count instead of all landing in one group.
//!
//! Guarantee: every accepted step replaces H's load by two values below it and leaves the
//! other groups alone, so the slowest group never gets heavier than LPT's, and the sorted
//! vector of group loads strictly decreases, so the loop terminates even without the budget.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Refinement rounds at most (each applies one move or swap).
const MAX_ROUNDS: usize = 10_000;
/// Binary searches at most, over all rounds; bounds the time for 100,000 tiny units.
const MAX_LOOKUPS: usize = 2_000_000;

/// The group (0-based) of each unit and the resulting loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// `group_of[unit]`.
    pub group_of: Vec<usize>,
    /// Total weight per group.
    pub loads: Vec<u64>,
}

impl Assignment {
    /// The heaviest group's load.
    pub fn max_load(&self) -> u64 {
        self.loads.iter().copied().max().unwrap_or(0)
    }
}

/// LPT followed by refinement, then units of weight zero spread by count; `groups` must be
/// at least 1.
pub fn balance(weights: &[u64], groups: usize) -> Assignment {
    let mut assignment = longest_first(weights, groups);
    refine(weights, &mut assignment);
    spread_weightless(weights, &mut assignment);
    assignment
}

/// LPT puts every unit of weight zero into one group (its load never rises, so the same group
/// stays lightest): all tests of a suite recorded as 0.0 s would run in group 1. They change
/// no load, so moving them cannot hurt the slowest group; give each, in unit order, to the
/// group with the fewest units (ties: lower group).
fn spread_weightless(weights: &[u64], assignment: &mut Assignment) {
    let mut units = vec![0usize; assignment.loads.len()];
    for (unit, &g) in assignment.group_of.iter().enumerate() {
        if weights[unit] > 0 {
            units[g] += 1;
        }
    }
    let mut fewest: BinaryHeap<Reverse<(usize, usize)>> = units
        .iter()
        .enumerate()
        .map(|(g, &n)| Reverse((n, g)))
        .collect();
    for (unit, &w) in weights.iter().enumerate() {
        if w == 0 {
            let Reverse((n, g)) = fewest.pop().expect("at least one group");
            assignment.group_of[unit] = g;
            fewest.push(Reverse((n + 1, g)));
        }
    }
}

/// Longest processing time first, ties broken by unit index and group index.
pub fn longest_first(weights: &[u64], groups: usize) -> Assignment {
    assert!(groups >= 1, "callers check for at least one group");
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_unstable_by_key(|&u| (Reverse(weights[u]), u));
    let mut lightest: BinaryHeap<Reverse<(u64, usize)>> =
        (0..groups).map(|g| Reverse((0, g))).collect();
    let mut group_of = vec![0; weights.len()];
    let mut loads = vec![0u64; groups];
    for u in order {
        let Reverse((load, g)) = lightest.pop().expect("at least one group");
        let load = load.saturating_add(weights[u]);
        group_of[u] = g;
        loads[g] = load;
        lightest.push(Reverse((load, g)));
    }
    Assignment { group_of, loads }
}

/// One accepted change between the heaviest group and another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Exchange {
    /// Move unit `.0` from the heavy group to the other.
    Move(u32),
    /// Swap unit `.0` of the heavy group with unit `.1` of the other.
    Swap(u32, u32),
}

/// Members of one group as `(weight, unit)`, sorted, for nearest-weight lookups.
type Members = Vec<(u64, u32)>;

fn refine(weights: &[u64], assignment: &mut Assignment) {
    let groups = assignment.loads.len();
    if groups < 2 {
        return;
    }
    let mut members: Vec<Members> = vec![Vec::new(); groups];
    for (unit, &g) in assignment.group_of.iter().enumerate() {
        members[g].push((weights[unit], unit as u32));
    }
    for m in &mut members {
        m.sort_unstable();
    }
    let mut lookups = 0usize;
    for _ in 0..MAX_ROUNDS {
        let loads = &assignment.loads;
        let heavy = (0..groups)
            .max_by_key(|&g| (loads[g], Reverse(g)))
            .expect("at least two groups");
        let mut others: Vec<usize> = (0..groups).filter(|&g| loads[g] < loads[heavy]).collect();
        others.sort_unstable_by_key(|&g| (loads[g], g));
        let found = others.into_iter().find_map(|light| {
            best_exchange(
                &members[heavy],
                &members[light],
                assignment.loads[heavy],
                assignment.loads[light],
                &mut lookups,
            )
            .map(|ex| (light, ex))
        });
        let Some((light, exchange)) = found else {
            return;
        };
        apply(weights, assignment, &mut members, heavy, light, exchange);
        if lookups >= MAX_LOOKUPS {
            return;
        }
    }
}

/// The exchange that minimises the larger of the two new loads, if that is below `heavy_load`.
/// Ties prefer moves over swaps, then lower unit indices.
fn best_exchange(
    heavy: &Members,
    light: &Members,
    heavy_load: u64,
    light_load: u64,
    lookups: &mut usize,
) -> Option<Exchange> {
    let gap = heavy_load - light_load;
    let half = gap / 2;
    // Moving net weight t from heavy to light gives loads heavy-t and light+t.
    let cost = |t: u64| {
        heavy_load
            .saturating_sub(t)
            .max(light_load.saturating_add(t))
    };
    let useful = |t: u64| t > 0 && t < gap;
    let mut best: Option<(u64, Exchange)> = None;
    let mut consider = |t: u64, ex: Exchange| {
        if useful(t) {
            let candidate = (cost(t), ex);
            if best.map_or(true, |b| candidate < b) {
                best = Some(candidate);
            }
        }
    };
    *lookups += 1;
    for (w, unit) in nearest(heavy, half).into_iter().flatten() {
        consider(w, Exchange::Move(unit));
    }
    let mut i = 0;
    while i < heavy.len() && *lookups < MAX_LOOKUPS {
        let (a, a_unit) = heavy[i];
        // Skip to the next distinct weight: equal weights give equal swaps, and the first of a
        // run has the lowest unit index.
        i += heavy[i..].partition_point(|&(w, _)| w == a);
        if a == 0 {
            continue;
        }
        *lookups += 1;
        // Swapping b for a moves t = a - b; the best b is near a - gap/2.
        let candidates = match a.checked_sub(half) {
            Some(target) => nearest(light, target),
            None => [light.first().copied(), None],
        };
        for (b, b_unit) in candidates.into_iter().flatten() {
            if b < a {
                consider(a - b, Exchange::Swap(a_unit, b_unit));
            }
        }
    }
    best.filter(|&(c, _)| c < heavy_load).map(|(_, ex)| ex)
}

/// The member with the largest weight `<= x` and the one with the smallest weight `> x`, each
/// the lowest unit index among equal weights.
fn nearest(members: &Members, x: u64) -> [Option<(u64, u32)>; 2] {
    let above = members.partition_point(|&(w, _)| w <= x);
    let below = (above > 0).then(|| {
        let w = members[above - 1].0;
        members[members.partition_point(|&(v, _)| v < w)]
    });
    [below, members.get(above).copied()]
}

fn apply(
    weights: &[u64],
    assignment: &mut Assignment,
    members: &mut [Members],
    heavy: usize,
    light: usize,
    exchange: Exchange,
) {
    let mut relocate = |unit: u32, from: usize, to: usize| {
        let entry = (weights[unit as usize], unit);
        let at = members[from]
            .binary_search(&entry)
            .expect("unit is a member of its group");
        members[from].remove(at);
        let at = members[to].binary_search(&entry).unwrap_err();
        members[to].insert(at, entry);
        assignment.group_of[unit as usize] = to;
        assignment.loads[from] -= entry.0;
        assignment.loads[to] += entry.0;
    };
    match exchange {
        Exchange::Move(unit) => relocate(unit, heavy, light),
        Exchange::Swap(a, b) => {
            relocate(a, heavy, light);
            relocate(b, light, heavy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_matches_hand_computation() {
        // 5,4,3,3,3 over 2 groups: 5->g0, 4->g1, 3->g1 (7), 3->g0 (8), 3->g1 (10).
        let a = longest_first(&[3, 5, 3, 4, 3], 2);
        assert_eq!(a.loads, vec![8, 10]);
        assert_eq!(a.group_of, vec![1, 0, 0, 1, 1]);
    }

    #[test]
    fn refinement_beats_longest_first_on_its_classic_bad_case() {
        // LPT's textbook worst case for 2 groups: 3,3,2,2,2 -> LPT gives 7 vs optimum 6.
        let weights = [3, 3, 2, 2, 2];
        assert_eq!(longest_first(&weights, 2).max_load(), 7);
        let refined = balance(&weights, 2);
        assert_eq!(refined.max_load(), 6);
        assert_eq!(refined.loads.iter().sum::<u64>(), 12);
    }

    #[test]
    fn more_groups_than_units_leaves_groups_empty() {
        let a = balance(&[10, 20], 4);
        assert_eq!(a.loads, vec![20, 10, 0, 0]);
    }

    #[test]
    fn weightless_units_are_spread_by_count() {
        let a = balance(&[0, 0, 5, 0, 0, 0], 3);
        assert_eq!(a.loads, vec![5, 0, 0]);
        // Group 0 already holds the 5; the five zeros go 1, 2, 0, 1, 2.
        assert_eq!(a.group_of, vec![1, 2, 0, 0, 1, 2]);
        assert_eq!(longest_first(&[0, 0, 0], 2).group_of, vec![0, 0, 0]);
    }

    #[test]
    fn nearest_picks_both_sides_and_lowest_index() {
        let m: Members = vec![(1, 7), (3, 2), (3, 9), (8, 1)];
        assert_eq!(nearest(&m, 4), [Some((3, 2)), Some((8, 1))]);
        assert_eq!(nearest(&m, 0), [None, Some((1, 7))]);
        assert_eq!(nearest(&m, 9), [Some((8, 1)), None]);
    }
}
