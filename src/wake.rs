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

    /// Anything else that calls for a round at once (a Sentinel's events lost).
    pub(crate) fn fire(&self, why: String) {
        self.trigger.fire(why);
    }

    /// After a sync: a round at once if it `wrote` a role, or if it found this node
    /// primary while the guard still refuses its writes (another node's sync may have
    /// written the promotion, and no event reaches the guard here).
    pub(crate) fn synced(&self, wrote: bool, primary_here: bool) {
        if wrote {
            self.fire("the sync wrote a role".into());
        } else if primary_here && !self.serves_writes() {
            self.fire("the sync found this node primary".into());
        }
    }

    /// What the guard's round just left: this node's write port open or not.
    pub(crate) fn set_serves_writes(&self, open: bool) {
        self.serves_writes.store(open, Ordering::SeqCst);
    }

    fn serves_writes(&self) -> bool {
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

    /// What reaches the guard in one row of its table.
    #[derive(Debug, Clone, Copy)]
    enum Call {
        Event,
        Lost,
        /// A sync: whether it wrote a role, whether it found this node primary.
        Synced(bool, bool),
    }

    #[test]
    fn events_wake_the_guard_only_where_it_leaves_writes_open() {
        use Call::*;
        let g = GuardWake::default();
        // (its last round left writes open: None before the first, what reaches it, the
        // wake-up it gets)
        let steps: [(Option<bool>, Call, Option<&str>); 9] = [
            (None, Event, Some("+odown master")),
            (Some(false), Event, None),
            (Some(false), Lost, Some("events lost")),
            (
                Some(false),
                Synced(true, false),
                Some("the sync wrote a role"),
            ),
            (Some(false), Synced(false, false), None),
            (
                Some(false),
                Synced(false, true),
                Some("the sync found this node primary"),
            ),
            (Some(true), Event, Some("+odown master")),
            (Some(true), Synced(false, true), None),
            (
                Some(true),
                Synced(true, true),
                Some("the sync wrote a role"),
            ),
        ];
        for (open, call, want) in steps {
            if let Some(open) = open {
                g.set_serves_writes(open);
            }
            match call {
                Event => g.event("+odown master".into()),
                Lost => g.fire("events lost".into()),
                Synced(wrote, primary_here) => g.synced(wrote, primary_here),
            }
            let got = g.wait(Duration::from_millis(1));
            assert_eq!(got.as_deref(), want, "{open:?}, {call:?}");
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
