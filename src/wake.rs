//! A wake-up between threads: a waiter sleeps until its deadline or until another
//! thread fires, and learns the first reason given since it last looked (a burst of
//! fires is one wake-up).

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

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
