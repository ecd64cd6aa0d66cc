//! Host names to addresses within a deadline. The system's resolver (`getaddrinfo`, behind
//! `to_socket_addrs`) takes no timeout and cannot be interrupted, and a name server that
//! never answers holds it for as long as `resolv.conf` says (seconds per try, several
//! tries): every name is looked up on a thread of its own, all at once, and a lookup still
//! running at the deadline is left behind, its answer dropped. One lookup per name runs at
//! a time in a process: a caller that finds one running waits for it rather than start
//! another, so a silent name server costs the guard's rounds (four a second) no thread
//! each.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What became of one name by the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Its addresses; none when the name does not resolve.
    Addrs(Vec<IpAddr>),
    /// Still being looked up at the deadline.
    Late,
}

/// Each of `names`, in order, looked up at once within `timeout` for them all. An IP
/// address is its own answer.
pub(crate) fn within(names: &[&str], timeout: Duration) -> Vec<Resolved> {
    SYSTEM.within(names, Instant::now() + timeout)
}

/// [`within`] for one name.
pub(crate) fn one(name: &str, timeout: Duration) -> Resolved {
    within(&[name], timeout).pop().expect("one answer per name")
}

static SYSTEM: Lookups = Lookups::new(system);

/// The system's resolver (`/etc/hosts`, DNS, as nsswitch.conf says).
fn system(name: &str) -> Vec<IpAddr> {
    (name, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// The lookups running in this process, by name.
struct Lookups {
    lookup: fn(&str) -> Vec<IpAddr>,
    running: Mutex<BTreeMap<String, Arc<Pending>>>,
}

/// One running lookup: its answer once it is there.
#[derive(Default)]
struct Pending {
    answer: Mutex<Option<Vec<IpAddr>>>,
    done: Condvar,
}

impl Lookups {
    const fn new(lookup: fn(&str) -> Vec<IpAddr>) -> Self {
        Lookups {
            lookup,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    fn within(&'static self, names: &[&str], deadline: Instant) -> Vec<Resolved> {
        let started: Vec<Result<IpAddr, Arc<Pending>>> = names
            .iter()
            .map(|name| name.parse::<IpAddr>().map_err(|_| self.start(name)))
            .collect();
        started
            .into_iter()
            .map(|lookup| match lookup {
                Ok(ip) => Resolved::Addrs(vec![ip]),
                Err(pending) => pending.wait(deadline),
            })
            .collect()
    }

    /// The running lookup of `name`, started now if there is none.
    fn start(&'static self, name: &str) -> Arc<Pending> {
        let mut running = self.running.lock().expect("no panics under this lock");
        if let Some(pending) = running.get(name) {
            return Arc::clone(pending);
        }
        let pending = Arc::new(Pending::default());
        running.insert(name.to_string(), Arc::clone(&pending));
        drop(running);
        let (owned, answering) = (name.to_string(), Arc::clone(&pending));
        let spawned = std::thread::Builder::new()
            .name("resolve".into())
            .spawn(move || {
                let addrs = (self.lookup)(&owned);
                self.finish(&owned, &answering, addrs);
            });
        if spawned.is_err() {
            // No thread to look it up on: as a name that does not resolve.
            self.finish(name, &pending, Vec::new());
        }
        pending
    }

    /// `name`'s lookup is over: its waiters get `addrs`, the next caller a new lookup.
    fn finish(&self, name: &str, pending: &Pending, addrs: Vec<IpAddr>) {
        self.running
            .lock()
            .expect("no panics under this lock")
            .remove(name);
        *pending.answer.lock().expect("no panics under this lock") = Some(addrs);
        pending.done.notify_all();
    }
}

impl Pending {
    fn wait(&self, deadline: Instant) -> Resolved {
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = self.answer.lock().expect("no panics under this lock");
        let (answer, _) = self
            .done
            .wait_timeout_while(answer, left, |a| a.is_none())
            .expect("no panics under this lock");
        match &*answer {
            Some(addrs) => Resolved::Addrs(addrs.clone()),
            None => Resolved::Late,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Names starting with `silent` take 3 s (a name server that does not answer), the
    /// others answer at once.
    fn slow(name: &str) -> Vec<IpAddr> {
        if name == "silent-once" {
            ONCE.fetch_add(1, Ordering::SeqCst);
        }
        if name.starts_with("silent") {
            std::thread::sleep(Duration::from_secs(3));
            return vec!["10.0.0.9".parse().unwrap()];
        }
        match name {
            "node1" => vec!["10.0.0.1".parse().unwrap()],
            _ => Vec::new(),
        }
    }

    /// How often `silent-once` was looked up.
    static ONCE: AtomicUsize = AtomicUsize::new(0);
    static SLOW: Lookups = Lookups::new(slow);

    #[test]
    fn a_silent_name_costs_the_deadline_and_the_others_still_resolve() {
        let start = Instant::now();
        let got = SLOW.within(
            &["silent-a", "node1", "10.0.0.7", "nowhere", "silent-b"],
            Instant::now() + Duration::from_millis(300),
        );
        let took = start.elapsed();
        assert_eq!(
            got,
            [
                Resolved::Late,
                Resolved::Addrs(vec!["10.0.0.1".parse().unwrap()]),
                Resolved::Addrs(vec!["10.0.0.7".parse().unwrap()]),
                Resolved::Addrs(vec![]),
                Resolved::Late,
            ]
        );
        // Both silent names waited for at once, not one after the other.
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }

    #[test]
    fn a_name_still_being_looked_up_is_not_looked_up_again() {
        for _ in 0..10 {
            let got = SLOW.within(&["silent-once"], Instant::now() + Duration::from_millis(20));
            assert_eq!(got, [Resolved::Late]);
        }
        assert_eq!(ONCE.load(Ordering::SeqCst), 1);
        // A caller still waiting when the answer comes gets it.
        let got = SLOW.within(&["silent-once"], Instant::now() + Duration::from_secs(5));
        assert_eq!(got, [Resolved::Addrs(vec!["10.0.0.9".parse().unwrap()])]);
    }
}
