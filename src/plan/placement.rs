//! Placing groups on several Docker engines in proportion to what each can carry.
//!
//! An engine's capacity is its CPUs, capped by its memory at 1.5 GiB per group (the same
//! figure `--groups auto` uses); an engine that reports neither counts as one CPU. Groups go
//! out by largest remainder of `groups * capacity / total`, every engine that can carry any
//! getting at least one group while there are enough, ties to the engine listed first. With
//! the work queue the count matters less (a faster engine's groups simply take more work),
//! but a 2-core laptop engine should not get as many environments as a 32-core build host.

/// Memory one group needs, in bytes.
pub const BYTES_PER_GROUP: u64 = 1536 * 1024 * 1024;

/// How many groups an engine with `cpus` and `memory_bytes` can run at once (at least 1).
pub fn capacity(cpus: usize, memory_bytes: u64) -> usize {
    let cpus = cpus.max(1);
    if memory_bytes == 0 {
        return cpus;
    }
    cpus.min((memory_bytes / BYTES_PER_GROUP).max(1) as usize)
}

/// The engine (index into `capacities`) of each of `groups` groups, grouped by engine in
/// order (groups 1..k on the first engine, then the next...).
pub fn place_groups(groups: usize, capacities: &[usize]) -> Vec<usize> {
    if capacities.is_empty() {
        return vec![0; groups];
    }
    let total: usize = capacities.iter().map(|c| (*c).max(1)).sum();
    let mut counts: Vec<usize> = capacities
        .iter()
        .map(|c| groups * (*c).max(1) / total)
        .collect();
    // Largest remainders first; ties to the engine listed first.
    let mut order: Vec<usize> = (0..capacities.len()).collect();
    order.sort_by_key(|&e| std::cmp::Reverse(groups * capacities[e].max(1) % total));
    let left = groups - counts.iter().sum::<usize>();
    for &e in order.iter().cycle().take(left) {
        counts[e] += 1;
    }
    // Every engine gets a group while there are enough: take from the largest.
    for e in 0..counts.len() {
        if counts[e] == 0 && groups >= capacities.len() {
            let largest = (0..counts.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i)));
            if let Some(largest) = largest.filter(|&l| counts[l] > 1) {
                counts[largest] -= 1;
                counts[e] += 1;
            }
        }
    }
    counts
        .iter()
        .enumerate()
        .flat_map(|(e, &n)| std::iter::repeat(e).take(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(placement: &[usize], engine: usize) -> usize {
        placement.iter().filter(|&&e| e == engine).count()
    }

    #[test]
    fn groups_follow_capacity_and_every_engine_gets_one() {
        let p = place_groups(6, &[4, 2]);
        assert_eq!(p, vec![0, 0, 0, 0, 1, 1]);
        let p = place_groups(4, &[2, 2]);
        assert_eq!((count(&p, 0), count(&p, 1)), (2, 2));
        let p = place_groups(3, &[32, 1]);
        assert_eq!(
            (count(&p, 0), count(&p, 1)),
            (2, 1),
            "the small engine still helps"
        );
        let p = place_groups(1, &[2, 2]);
        assert_eq!(p, vec![0]);
        assert_eq!(place_groups(5, &[]), vec![0; 5]);
        for groups in 0..20 {
            for caps in [[1, 1, 1], [8, 2, 1], [0, 4, 4]] {
                let p = place_groups(groups, &caps);
                assert_eq!(p.len(), groups, "{groups} over {caps:?}");
                assert!(p.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }

    #[test]
    fn capacity_is_cpus_capped_by_memory() {
        assert_eq!(capacity(8, 4 * BYTES_PER_GROUP), 4);
        assert_eq!(capacity(2, 64 * BYTES_PER_GROUP), 2);
        assert_eq!(capacity(0, 0), 1);
        assert_eq!(capacity(4, 1), 1);
    }
}
