//! This machine's resources as `--groups auto` needs them: its CPUs, and how many groups its
//! available memory carries.
//!
//! The planner (`plan::auto_groups`) is pure and takes these as inputs; reading them is here.

/// The memory one group is assumed to need: 1.5 GiB, in KiB (the unit of `/proc/meminfo`).
const GROUP_MEMORY_KIB: u64 = 1536 * 1024;

/// The CPUs this process may use, at least 1.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most groups this machine's memory carries (1.5 GiB each), at least 1: the cap of
/// `--groups auto`. Without `/proc/meminfo` (not Linux) memory sets no cap.
pub fn memory_group_cap() -> usize {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    groups_for_meminfo(&meminfo)
}

/// [`memory_group_cap`] from the text of `/proc/meminfo` (`MemAvailable:  123456 kB`).
fn groups_for_meminfo(meminfo: &str) -> usize {
    let mem_groups = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(usize::MAX, |kb| (kb / GROUP_MEMORY_KIB) as usize);
    mem_groups.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_caps_the_groups_at_one_and_a_half_gib_each() {
        let text = "MemTotal:       16000000 kB\nMemAvailable:    6291456 kB\n";
        assert_eq!(groups_for_meminfo(text), 4);
        assert_eq!(groups_for_meminfo("MemAvailable: 1000 kB\n"), 1);
        assert_eq!(groups_for_meminfo(""), usize::MAX);
        assert!(memory_group_cap() >= 1 && cpus() >= 1);
    }
}
