//! The phases of a group's life, in the order a group goes through them: the one type the
//! orchestrator records, the tables sum up and the timeline draws.

/// A phase of a group's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Building or finding images, before any group starts.
    Images,
    /// Waiting for its turn to start: the engine starts a few environments at a time
    /// (`run::start_turns`).
    Waiting,
    /// Networks, volumes and the dependencies' containers created and started.
    Environment,
    /// Waiting for the conditions the test service declares on its dependencies.
    Readiness,
    /// The test container started; pytest collects.
    Collection,
    /// The tests run.
    Tests,
    /// Result files copied out.
    Results,
    /// The group's resources removed.
    Teardown,
}

impl Phase {
    /// Every phase, in the order a group goes through them (the timeline's legend).
    pub const ALL: [Phase; 8] = [
        Phase::Images,
        Phase::Waiting,
        Phase::Environment,
        Phase::Readiness,
        Phase::Collection,
        Phase::Tests,
        Phase::Results,
        Phase::Teardown,
    ];

    /// Its name in tables, the timeline and the timings file.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Images => "images",
            Phase::Waiting => "waiting",
            Phase::Environment => "environment",
            Phase::Readiness => "readiness",
            Phase::Collection => "collection",
            Phase::Tests => "tests",
            Phase::Results => "results",
            Phase::Teardown => "teardown",
        }
    }

    /// Whether the phase is part of getting a group ready to test.
    pub fn is_setup(self) -> bool {
        matches!(
            self,
            Phase::Environment | Phase::Readiness | Phase::Collection
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One phase of a group's life on the run's time axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseSpan {
    /// The phase.
    pub phase: Phase,
    /// Seconds since the run started.
    pub start: f64,
    /// Seconds since the run started.
    pub end: f64,
}

impl PhaseSpan {
    /// Its length in seconds.
    pub fn seconds(&self) -> f64 {
        self.end - self.start
    }
}
