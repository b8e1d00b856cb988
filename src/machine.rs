//! This machine's resources as `--groups auto` needs them: its CPUs, how many groups its
//! available memory carries, and how busy its CPUs were over a run.
//!
//! The planner (`plan::auto_groups`) is pure and takes these as inputs; reading them is here.

/// The host's CPU time counters (`/proc/stat`'s first line), in clock ticks: busy at normal
/// priority or above, and all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    busy: u64,
    total: u64,
}

impl CpuSample {
    /// Counters as read: `busy` of `total` clock ticks.
    pub fn new(busy: u64, total: u64) -> Self {
        CpuSample { busy, total }
    }

    /// The share of the host's CPU time that was busy (anything but idle, I/O wait and niced
    /// work) from `self` to `later`; `None` when no time passed.
    pub fn busy_until(&self, later: &CpuSample) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let busy = later.busy.checked_sub(self.busy)?;
        (total > 0).then(|| busy as f64 / total as f64)
    }
}

/// The host's CPU counters now; `None` without `/proc/stat` (not Linux).
pub fn cpu_sample() -> Option<CpuSample> {
    parse_cpu_sample(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// [`cpu_sample`] from the text of `/proc/stat` (`cpu  user nice system idle iowait irq
/// softirq steal ...`).
fn parse_cpu_sample(stat: &str) -> Option<CpuSample> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 5 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    // Idle and I/O wait, and niced work: low-priority processes (a background build) yield
    // the CPUs to the groups' containers, so they do not make the CPUs busy for them.
    let idle = fields[3] + fields[4] + fields[1];
    Some(CpuSample {
        busy: total - idle,
        total,
    })
}

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
    fn the_hosts_busy_share_comes_from_proc_stat() {
        let a = parse_cpu_sample("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n").unwrap();
        let b = parse_cpu_sample("cpu  250 0 100 850 50 0 0 0 0 0\n").unwrap();
        // 200 busy ticks of 250.
        assert_eq!(a.busy_until(&b), Some(0.8));
        // Niced work (a background build at low priority) leaves the CPUs to the groups.
        let c = parse_cpu_sample("cpu  250 200 100 850 50 0 0 0 0 0\n").unwrap();
        assert_eq!(a.busy_until(&c), Some(200.0 / 450.0));
        assert_eq!(a.busy_until(&a), None);
        assert_eq!(parse_cpu_sample("intr 1 2 3\n"), None);
    }

    #[test]
    fn available_memory_caps_the_groups_at_one_and_a_half_gib_each() {
        let text = "MemTotal:       16000000 kB\nMemAvailable:    6291456 kB\n";
        assert_eq!(groups_for_meminfo(text), 4);
        assert_eq!(groups_for_meminfo("MemAvailable: 1000 kB\n"), 1);
        assert_eq!(groups_for_meminfo(""), usize::MAX);
        assert!(memory_group_cap() >= 1 && cpus() >= 1);
    }
}
