//! One deadline for a whole run, that each of its steps takes its own bound from: the
//! step's usual bound, or what is left, whichever is shorter. Sentinel's scripts run
//! under one when they sync themselves (Sentinel kills a script at 60 s); elsewhere a
//! run has none and every step keeps its usual bound.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: each step keeps its usual bound.
    pub(crate) const NONE: Deadline = Deadline(None);

    /// `budget` from now.
    pub(crate) fn after(budget: Duration) -> Self {
        Deadline(Some(Instant::now() + budget))
    }

    /// The bound of a step that usually takes at most `step`: zero once the deadline
    /// has passed.
    pub(crate) fn bound(&self, step: Duration) -> Duration {
        match self.0 {
            Some(at) => step.min(at.saturating_duration_since(Instant::now())),
            None => step,
        }
    }

    pub(crate) fn passed(&self) -> bool {
        self.0.is_some_and(|at| Instant::now() >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_gets_its_own_bound_or_what_is_left() {
        let s = Duration::from_secs;
        // (case, deadline, step, bound at most, bound at least)
        let table = [
            ("no deadline", Deadline::NONE, s(20), s(20), s(20)),
            ("far deadline", Deadline::after(s(50)), s(20), s(20), s(20)),
            ("near deadline", Deadline::after(s(5)), s(20), s(5), s(4)),
            ("passed", Deadline::after(Duration::ZERO), s(20), s(0), s(0)),
        ];
        for (case, deadline, step, most, least) in table {
            let got = deadline.bound(step);
            assert!(least <= got && got <= most, "{case}: {got:?}");
        }
        assert!(!Deadline::NONE.passed());
        assert!(!Deadline::after(s(50)).passed());
        assert!(Deadline::after(Duration::ZERO).passed());
    }
}
