//! Turns to start an environment on one engine: at most `at_once` groups set up at a time.
//!
//! A group's setup (its containers created and started, its services getting ready, pytest
//! loading and collecting) keeps about one and a half CPUs busy: measured on a 2-core machine,
//! one group's setup used 2.4-2.8 CPU-seconds in its first 1.6-2 s. Four groups starting at
//! once on 2 CPUs therefore all wait for each other, and each takes as long as the four
//! together (5-7 s against 1.6-2 s alone): none tests before the last is ready. With the work
//! queue, a group that starts later simply takes less of the work; when the tests wait (on
//! their services, the network) rather than compute, the groups that test leave the CPUs to
//! the next setup, so starting the environments in turns lets the first group test after
//! one setup and the others follow about one setup apart, for the same CPU work. When the
//! tests compute, the groups that test take the CPUs the later setups need, and starting in
//! turns was measured slower (the bundled example at 4 groups: 20.4-21.8 s against 19.0-20.5
//! s all at once): there, and when the last run did not measure its tests, every
//! environment starts at once. A static split gives every group its share before it starts,
//! so there too every group starts at once (a later start would only make its share end
//! later).
//!
//! A turn ends when the group's services meet its test container's conditions (what is left
//! of its setup, pytest loading the project and collecting, keeps one CPU busy, not the
//! engine; a test container that was not started early, behind an entrypoint, keeps the turn
//! until the engine has started it) or when the group ends before that (its environment
//! failed): a [`Turn`] ends itself when dropped. Ending it there rather than once the tests are handed was measured
//! on the latency-bound suite at 4 groups: the last test ended earlier in all 7 alternated
//! pairs (by 0.07-1.45 s, median 0.7 s), the next group starting about 1.8 s after the one before instead of
//! 2.2 s; ending it once the containers are started (before they are ready) made the four
//! setups contend again (the first group tested after 4.1-4.8 s instead of 2.1-2.5 s).

use std::cell::Cell;

use tokio::sync::Notify;

use crate::config::Dist;

/// How many environments an engine with `cpus` CPUs starts at a time for `groups` groups in a
/// run distributed as `dist`, whose tests the last run measured keeping `tests_cpu` of a CPU
/// busy per group: half its CPUs (at least one) with the work queue when the tests of all
/// the groups together keep at most half the CPUs busy; otherwise every one at once (0), as
/// also with a static split, when the engine did not say its CPUs or the tests were not
/// measured.
pub(crate) fn starts_at_once(
    dist: Dist,
    cpus: usize,
    groups: usize,
    tests_cpu: Option<f64>,
) -> usize {
    let waits = tests_cpu.is_some_and(|f| f * groups as f64 <= cpus as f64 / 2.0);
    match dist {
        Dist::Dynamic if cpus > 0 && waits => (cpus / 2).max(1),
        _ => 0,
    }
}

/// The turns of one engine.
#[derive(Debug)]
pub(crate) struct StartTurns {
    /// At most this many setups at a time; 0 is no limit.
    at_once: usize,
    running: Cell<usize>,
    freed: Notify,
}

impl StartTurns {
    /// Turns for at most `at_once` setups at a time (0: no limit).
    pub(crate) fn new(at_once: usize) -> StartTurns {
        StartTurns {
            at_once,
            running: Cell::new(0),
            freed: Notify::new(),
        }
    }

    /// Wait for a turn (in the order the groups asked).
    pub(crate) async fn take(&self) -> Turn<'_> {
        if self.at_once > 0 {
            while self.running.get() >= self.at_once {
                self.freed.notified().await;
            }
        }
        self.running.set(self.running.get() + 1);
        Turn {
            turns: self,
            held: Cell::new(true),
        }
    }

    fn give_back(&self) {
        self.running.set(self.running.get().saturating_sub(1));
        self.freed.notify_one();
    }
}

/// A group's turn to set up; it ends once, at [`Turn::end`] or when dropped.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    turns: &'a StartTurns,
    held: Cell<bool>,
}

impl Turn<'_> {
    /// The group's setup is over: the next group may start.
    pub(crate) fn end(&self) {
        if self.held.replace(false) {
            self.turns.give_back();
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn half_the_engines_cpus_start_at_once_when_queued_tests_wait_else_all() {
        let waiting = Some(0.11);
        assert_eq!(starts_at_once(Dist::Dynamic, 2, 4, waiting), 1);
        assert_eq!(starts_at_once(Dist::Dynamic, 3, 4, waiting), 1);
        assert_eq!(starts_at_once(Dist::Dynamic, 8, 4, waiting), 4);
        assert_eq!(
            starts_at_once(Dist::Dynamic, 0, 4, waiting),
            0,
            "no CPUs said"
        );
        assert_eq!(starts_at_once(Dist::Static, 2, 4, waiting), 0);
        assert_eq!(starts_at_once(Dist::Dynamic, 2, 4, None), 0, "not measured");
        // The example's Django tests: 0.41 of a CPU a group, 1.64 for four on 2 CPUs.
        assert_eq!(starts_at_once(Dist::Dynamic, 2, 4, Some(0.41)), 0);
        assert_eq!(starts_at_once(Dist::Dynamic, 8, 4, Some(0.41)), 4);
        assert_eq!(starts_at_once(Dist::Dynamic, 2, 4, Some(0.25)), 1);
        assert_eq!(starts_at_once(Dist::Dynamic, 2, 4, Some(0.26)), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_turn_waits_until_one_ends_and_ends_once_whether_ended_or_dropped() {
        let turns = Rc::new(StartTurns::new(1));
        let first = turns.take().await;
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let local = tokio::task::LocalSet::new();
        let waiter = {
            let (turns, order) = (turns.clone(), order.clone());
            local.spawn_local(async move {
                let second = turns.take().await;
                order.borrow_mut().push("second started");
                drop(second);
                let third = turns.take().await;
                order.borrow_mut().push("third started");
                third.end();
                third.end();
            })
        };
        local
            .run_until(async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                assert!(
                    order.borrow().is_empty(),
                    "no turn while the first holds it"
                );
                first.end();
                first.end();
                waiter.await.unwrap();
            })
            .await;
        assert_eq!(*order.borrow(), ["second started", "third started"]);
        assert_eq!(turns.running.get(), 0);
        drop(first);
        assert_eq!(turns.running.get(), 0, "a turn ends once");
        let unlimited = StartTurns::new(0);
        let (a, b) = (unlimited.take().await, unlimited.take().await);
        assert_eq!(unlimited.running.get(), 2);
        drop((a, b));
        assert_eq!(unlimited.running.get(), 0);
    }
}
