//! Interrupts: SIGINT/SIGTERM at any phase stop everything, remove what the run created, and
//! make the command exit 130.
//!
//! Stopping is dropping the run's future: nothing new starts after that. Cleanup is by the
//! run's label, so half-created resources are found too; a second sweep shortly after catches
//! a create request that was already on its way to the daemon when the run was dropped.
//! Removal always uses force (SIGKILL), so a second Ctrl-C cannot make it faster; it is
//! acknowledged, and cleanup still completes, because leaving resources behind is worse than
//! waiting a few more seconds.

use std::future::Future;
use std::time::Duration;

use super::backend::Backend;
use super::event::{Event, EventSink};
use super::resource_labels::{describe, run_label};

/// The run was interrupted; what cleanup removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// Resources removed (`container x`, `network y`).
    pub removed: Vec<String>,
    /// Errors met while removing.
    pub errors: Vec<String>,
}

/// How long to wait before the second cleanup sweep.
const SECOND_SWEEP_DELAY: Duration = Duration::from_millis(1500);

/// Remove everything labelled with the run, twice.
async fn sweep<B: Backend>(backends: &[&B], run_id: &str, delay: Duration) -> Interrupted {
    let mut done = Interrupted {
        removed: Vec::new(),
        errors: Vec::new(),
    };
    for pass in 0..2 {
        if pass == 1 {
            tokio::time::sleep(delay).await;
        }
        let label = run_label(run_id);
        let sweeps = backends.iter().map(|b| b.remove_labelled(&label));
        for swept in futures::future::join_all(sweeps).await {
            match swept {
                Ok(removed) => done.removed.extend(describe(&removed)),
                Err(e) => done.errors.push(crate::errors::render_chain(&e)),
            }
        }
    }
    done
}

/// After an interrupt: remove everything the run created. `second` fires on a second
/// interrupt, which is acknowledged while cleanup goes on.
pub async fn clean_up_after_interrupt<B: Backend>(
    backends: &[&B],
    run_id: &str,
    second: impl Future<Output = ()>,
    events: &EventSink,
) -> Interrupted {
    events.emit(Event::Interrupted { forced: false });
    let cleanup = sweep(backends, run_id, SECOND_SWEEP_DELAY);
    tokio::pin!(cleanup);
    let done = tokio::select! {
        done = &mut cleanup => done,
        _ = second => {
            events.emit(Event::Interrupted { forced: true });
            cleanup.await
        }
    };
    if !done.removed.is_empty() {
        events.emit(Event::Removed(done.removed.clone()));
    }
    done
}

/// Run `work` until it finishes or `interrupt` fires; in the latter case drop `work` (nothing
/// new starts) and remove everything the run created.
pub async fn run_interruptible<B: Backend, T>(
    backends: &[&B],
    run_id: &str,
    work: impl Future<Output = T>,
    interrupt: impl Future<Output = ()>,
    second: impl Future<Output = ()>,
    events: &EventSink,
) -> Result<T, Interrupted> {
    tokio::select! {
        out = work => return Ok(out),
        _ = interrupt => {}
    }
    Err(clean_up_after_interrupt(backends, run_id, second, events).await)
}

/// [`run_interruptible`] with SIGINT and SIGTERM as the interrupts.
pub async fn run_with_signals<B: Backend, T>(
    backends: &[&B],
    run_id: &str,
    work: impl Future<Output = T>,
    events: &EventSink,
) -> Result<T, Interrupted> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed before any work starts: from here on, Ctrl-C never kills the process
    // without cleanup.
    let mut int = signal(SignalKind::interrupt()).expect("install the SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    let interrupted = tokio::select! {
        out = work => return Ok(out),
        _ = int.recv() => true,
        _ = term.recv() => true,
    };
    debug_assert!(interrupted);
    let second = async {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    };
    Err(clean_up_after_interrupt(backends, run_id, second, events).await)
}
