//! The fuzzing harness behind `tests/fuzz_parsers.rs`, on stable Rust: inputs come from
//! proptest strategies (arbitrary bytes and structure-aware generators) and from mutations of
//! seed files (../shared/corpus, tests/fixtures, read in place), for a time budget.
//!
//! - Budget: COMPOSE_SHARD_FUZZ_SECONDS per target (default 3: the short pass of `ci/test`;
//!   `ci/fuzz` gives each target 600).
//! - Seed: COMPOSE_SHARD_FUZZ_SEED (a number), else one drawn from the clock; printed, so
//!   `COMPOSE_SHARD_FUZZ_SEED=N` reruns the same inputs.
//! - Bounds: a case running over 5 s or allocating over 500 MB at its peak is a failure, as
//!   is a panic. The failing input is written to `target/fuzz-failures/<target>-<seed>-<n>`
//!   before the test fails, and its path printed.
//!
//! Cases run on a worker thread so a hang is detected (the worker is then left behind and
//! the test fails at once). Memory is counted by a global allocator that tracks the peak
//! of live bytes, reset before each case.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::{Rng, RngExt};

/// Allocator that counts live bytes and their peak.
pub struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

/// A case over this long is a hang.
pub const CASE_TIME_LIMIT: Duration = Duration::from_secs(5);
/// A case whose live allocations peak over this much is a memory blow-up.
pub const CASE_MEMORY_LIMIT: usize = 500 * 1024 * 1024;

/// What a target run did.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases run.
    pub cases: u64,
    /// The slowest case.
    pub slowest: Duration,
    /// The highest peak of live bytes above the baseline of any case.
    pub peak_bytes: usize,
    /// Cases the parser accepted (the others were rejected with an error): how deep the
    /// inputs reach.
    pub accepted: u64,
}

/// Seconds per target from COMPOSE_SHARD_FUZZ_SECONDS (default 3).
pub fn budget() -> Duration {
    let secs = std::env::var("COMPOSE_SHARD_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// The run's seed: COMPOSE_SHARD_FUZZ_SEED, else from the clock.
pub fn seed() -> u64 {
    std::env::var("COMPOSE_SHARD_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

fn rng_for(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// The real-world corpus folder (../shared/corpus or COMPOSE_SHARD_SHARED/corpus); the
/// fuzz targets fail, not skip, when it is missing.
pub fn shared_corpus() -> PathBuf {
    let shared = std::env::var_os("COMPOSE_SHARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let corpus = shared.join("corpus");
    assert!(
        corpus.is_dir(),
        "the corpus is missing at {} (expected ../shared beside the checkout, or set COMPOSE_SHARD_SHARED)",
        corpus.display()
    );
    corpus
}

/// Every file under `dir` whose name ends with one of `suffixes` (read in place).
pub fn seeds(dir: &Path, suffixes: &[&str]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if suffixes.iter().any(|s| path.to_string_lossy().ends_with(s)) {
                out.push(std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// One byte-level mutation of `input`: flip, insert, delete, duplicate or splice a chunk,
/// insert a token of the format, or truncate.
pub fn mutate(rng: &mut TestRng, input: &[u8], tokens: &[&str], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..=len)
        };
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 => out.insert(at, rng.next_u32() as u8),
            2 if len > 0 => {
                let end = (at + rng.random_range(1..64)).min(len);
                out.drain(at.min(len)..end);
            }
            3 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..256)).min(len);
                let chunk = out[start..end].to_vec();
                let times = rng.random_range(1..8);
                for _ in 0..times {
                    out.splice(at..at, chunk.iter().copied());
                }
            }
            4 if !tokens.is_empty() => {
                let token = tokens[rng.random_range(0..tokens.len())];
                out.splice(at..at, token.bytes());
            }
            5 if !other.is_empty() => {
                let start = rng.random_range(0..other.len());
                let end = (start + rng.random_range(1..512)).min(other.len());
                out.splice(at..at, other[start..end].iter().copied());
            }
            6 => out.truncate(at),
            _ => {}
        }
    }
    out
}

/// Run `check` on inputs for the budget: a third arbitrary or generated by `generate`, the
/// rest mutations of `seeds` (with `tokens` of the format spliced in). Fails on a panic, a
/// case over [`CASE_TIME_LIMIT`] or over [`CASE_MEMORY_LIMIT`], persisting the input.
pub fn fuzz<S>(
    target: &str,
    seeds: &[Vec<u8>],
    tokens: &[&'static str],
    generate: S,
    check: fn(&[u8]) -> bool,
) -> Report
where
    S: Strategy<Value = Vec<u8>>,
{
    let seed = seed();
    let budget = budget();
    eprintln!(
        "fuzz {target}: seed {seed} (rerun with COMPOSE_SHARD_FUZZ_SEED={seed}), budget {budget:?}, {} seed files",
        seeds.len()
    );
    let mut rng = rng_for(seed);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng_for(seed ^ 0x5eed));
    let (to_worker, inputs) = mpsc::channel::<Vec<u8>>();
    let (to_harness, results) = mpsc::channel::<Result<(Duration, usize, bool), String>>();
    std::thread::Builder::new()
        .name(format!("fuzz-{target}"))
        .stack_size(8 << 20)
        .spawn(move || worker(inputs, to_harness, check))
        .unwrap();
    let start = Instant::now();
    let mut report = Report::default();
    while start.elapsed() < budget {
        let input = next_input(&mut rng, &mut runner, seeds, tokens, &generate);
        to_worker.send(input.clone()).unwrap();
        let outcome = match results.recv_timeout(CASE_TIME_LIMIT) {
            Ok(Ok((took, peak, _))) if peak > CASE_MEMORY_LIMIT => Err(format!(
                "allocated {peak} bytes at its peak (limit {CASE_MEMORY_LIMIT}); took {took:?}"
            )),
            Ok(Ok((took, peak, accepted))) => {
                report.accepted += u64::from(accepted);
                report.slowest = report.slowest.max(took);
                report.peak_bytes = report.peak_bytes.max(peak);
                Ok(())
            }
            Ok(Err(panic)) => Err(format!("panicked: {panic}")),
            Err(_) => Err(format!("ran over {CASE_TIME_LIMIT:?}")),
        };
        if let Err(problem) = outcome {
            let saved = persist(target, seed, report.cases, &input);
            panic!(
                "fuzz {target}: case {} {problem}; input saved to {} (seed {seed})",
                report.cases,
                saved.display()
            );
        }
        report.cases += 1;
    }
    eprintln!(
        "fuzz {target}: {} cases ({} accepted) in {:?}, slowest {:?}, peak {} KiB above baseline, no failure",
        report.cases,
        report.accepted,
        start.elapsed(),
        report.slowest,
        report.peak_bytes / 1024
    );
    report
}

fn next_input<S: Strategy<Value = Vec<u8>>>(
    rng: &mut TestRng,
    runner: &mut TestRunner,
    seeds: &[Vec<u8>],
    tokens: &[&'static str],
    generate: &S,
) -> Vec<u8> {
    if seeds.is_empty() || rng.random_range(0..3) == 0 {
        return generate.new_tree(runner).expect("strategy").current();
    }
    let base = &seeds[rng.random_range(0..seeds.len())];
    let other = &seeds[rng.random_range(0..seeds.len())];
    mutate(rng, base, tokens, other)
}

fn worker(
    inputs: mpsc::Receiver<Vec<u8>>,
    results: mpsc::Sender<Result<(Duration, usize, bool), String>>,
    check: fn(&[u8]) -> bool,
) {
    for input in inputs {
        let baseline = LIVE.load(Ordering::Relaxed);
        PEAK.store(baseline, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| check(&input)));
        let took = started.elapsed();
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
        let message = outcome.map(|accepted| (took, peak, accepted)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into())
        });
        if results.send(message).is_err() {
            return;
        }
    }
}

fn persist(target: &str, seed: u64, case: u64, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{target}-{seed}-{case}"));
    std::fs::write(&path, input).unwrap();
    path
}

/// Replay saved inputs: COMPOSE_SHARD_FUZZ_REPLAY=FILE runs `check` on that file only.
pub fn replay(check: fn(&[u8]) -> bool) -> bool {
    match std::env::var_os("COMPOSE_SHARD_FUZZ_REPLAY") {
        Some(path) => {
            let accepted = check(&std::fs::read(path).unwrap());
            eprintln!(
                "replayed: the input was {}",
                if accepted { "accepted" } else { "rejected" }
            );
            true
        }
        None => false,
    }
}
