//! A wake-up between threads: a waiter sleeps until its deadline or until another
//! thread fires, and learns the first reason given since it last looked (a burst of
//! fires is one wake-up).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The first event since the loop last looked, and a way to wait for one.
#[derive(Debug, Default)]
pub(crate) struct Trigger {
    pending: Mutex<Option<String>>,
    wake: Condvar,
}

impl Trigger {
    pub(crate) fn fire(&self, why: String) {
        let mut pending = self.pending.lock().expect("no panics under this lock");
        pending.get_or_insert(why);
        self.wake.notify_all();
    }

    /// Waits until an event or `timeout`; the event's reason, which is then consumed.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<String> {
        let pending = self.pending.lock().expect("no panics under this lock");
        let (mut pending, _) = self
            .wake
            .wait_timeout_while(pending, timeout, |p| p.is_none())
            .expect("no panics under this lock");
        pending.take()
    }
}

/// The isolation guard's wake-up. A Sentinel event wakes it only while its last round
/// left this node's write port open: there an event may mean the node must stop taking
/// writes at once (its master called down, a failover under way, a partial partition
/// that the Sentinels see and its Pacemaker partition may not). Everywhere else its
/// refusals stand already or follow the block clones, which the sync moves at the same
/// event, and its own cadence bounds the rest; each round reads the CIB with a
/// `cibadmin` of its own, and the rounds that every event of every Sentinel started on
/// every node ran right while the new primary's write block stopped (README, "Failover
/// benchmark"). Anything else (the sync wrote a role, a Sentinel's events were lost)
/// wakes it always.
#[derive(Debug)]
pub(crate) struct GuardWake {
    trigger: Trigger,
    serves_writes: AtomicBool,
}

impl Default for GuardWake {
    /// Until its first round, as if it served writes: no event is missed before it knows.
    fn default() -> Self {
        GuardWake {
            trigger: Trigger::default(),
            serves_writes: AtomicBool::new(true),
        }
    }
}

impl GuardWake {
    /// A Sentinel event that can move roles.
    pub(crate) fn event(&self, why: String) {
        if self.serves_writes() {
            self.trigger.fire(why);
        }
    }

    /// Anything else that calls for a round at once.
    pub(crate) fn fire(&self, why: String) {
        self.trigger.fire(why);
    }

    /// What the guard's round just left: this node's write port open or not.
    pub(crate) fn set_serves_writes(&self, open: bool) {
        self.serves_writes.store(open, Ordering::SeqCst);
    }

    pub(crate) fn serves_writes(&self) -> bool {
        self.serves_writes.load(Ordering::SeqCst)
    }

    /// As [`Trigger::wait`].
    pub(crate) fn wait(&self, timeout: Duration) -> Option<String> {
        self.trigger.wait(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn events_wake_the_guard_only_where_it_leaves_writes_open() {
        let g = GuardWake::default();
        // (its last round left writes open: None before the first, an event or not,
        // the wake-up it gets)
        let steps: [(Option<bool>, bool, Option<&str>); 4] = [
            (None, true, Some("+odown master")),
            (Some(false), true, None),
            (Some(false), false, Some("the sync wrote a role")),
            (Some(true), true, Some("+odown master")),
        ];
        for (open, event, want) in steps {
            if let Some(open) = open {
                g.set_serves_writes(open);
            }
            match event {
                true => g.event("+odown master".into()),
                false => g.fire("the sync wrote a role".into()),
            }
            let got = g.wait(Duration::from_millis(1));
            assert_eq!(got.as_deref(), want, "{open:?}, event {event}");
        }
    }

    #[test]
    fn a_burst_of_events_is_one_wake_up() {
        let t = Trigger::default();
        assert_eq!(t.wait(Duration::from_millis(1)), None, "nothing yet");
        t.fire("+odown master".into());
        t.fire("+switch-master a".into());
        t.fire("+switch-master b".into());
        assert_eq!(
            t.wait(Duration::from_secs(5)).as_deref(),
            Some("+odown master")
        );
        assert_eq!(t.wait(Duration::from_millis(1)), None, "consumed");
        // A wait is cut short by an event from another thread.
        let t = Arc::new(t);
        let t2 = Arc::clone(&t);
        let fired = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.fire("+sdown".into());
        });
        let waited = Instant::now();
        assert_eq!(t.wait(Duration::from_secs(30)).as_deref(), Some("+sdown"));
        assert!(waited.elapsed() < Duration::from_secs(30));
        fired.join().unwrap();
    }
}
