//! This machine's resources as `--groups auto` needs them: its CPUs, how many groups its
//! available memory carries, and how busy its CPUs were over a run ([`CpuRecorder`]).
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
        let (busy, total) = self.ticks_until(later)?;
        (total > 0).then(|| busy as f64 / total as f64)
    }

    /// The busy and all clock ticks from `self` to `later`; `None` when the counters went
    /// backwards.
    pub fn ticks_until(&self, later: &CpuSample) -> Option<(u64, u64)> {
        Some((
            later.busy.checked_sub(self.busy)?,
            later.total.checked_sub(self.total)?,
        ))
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

/// How often a [`CpuRecorder`] reads the host's counters.
const RECORD_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The host's CPU counters read every 200 ms on a thread of its own, from its start until
/// [`CpuRecorder::finish`]: what a run's tests cost the CPUs is then taken over the moments
/// when every group was testing (see [`crate::plan::timings::testing_load`]), not over the
/// whole run, whose start-ups and teardowns would read as tests that compute.
#[derive(Debug)]
pub struct CpuRecorder {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Vec<(f64, CpuSample)>>,
}

impl CpuRecorder {
    /// Start reading; `None` without `/proc/stat` (not Linux) or when no thread can start.
    pub fn start() -> Option<CpuRecorder> {
        let first = cpu_sample()?;
        let started = std::time::Instant::now();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cpu-recorder".into())
            .spawn(move || {
                let mut trace = vec![(0.0, first)];
                // Until told to stop (or the recorder is dropped).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(RECORD_EVERY)
                {
                    if let Some(sample) = cpu_sample() {
                        trace.push((started.elapsed().as_secs_f64(), sample));
                    }
                }
                if let Some(sample) = cpu_sample() {
                    trace.push((started.elapsed().as_secs_f64(), sample));
                }
                trace
            })
            .ok()?;
        Some(CpuRecorder { stop, thread })
    }

    /// Stop reading; the counters as read, each with the seconds since the start.
    pub fn finish(self) -> Vec<(f64, CpuSample)> {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_default()
    }
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
    fn the_recorder_reads_the_counters_from_its_start_to_its_finish_in_order() {
        let recorder = CpuRecorder::start().expect("Linux has /proc/stat");
        std::thread::sleep(RECORD_EVERY * 5);
        let trace = recorder.finish();
        // The first reading, at least one on the way (a loaded machine may wake the thread
        // late), and one at the finish.
        assert!(trace.len() >= 3, "{} readings", trace.len());
        assert_eq!(trace[0].0, 0.0);
        assert!(trace
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1.total <= w[1].1.total));
        assert!(trace.last().unwrap().0 >= 1.0);
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
