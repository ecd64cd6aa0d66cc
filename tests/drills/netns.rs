//! Client code runs on threads that entered the client namespace (rha-client, where
//! HAProxy listens): a network namespace is per thread, and sockets keep the namespace
//! they were made in, so the 10 ms loops need no process per request.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

pub(crate) const CLIENT_NETNS: &str = "/run/netns/rha-client";

/// Runs `f` to completion on a thread inside the client namespace.
pub(crate) fn in_client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        enter_client();
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn enter_client() {
    let fd = File::open(CLIENT_NETNS).unwrap_or_else(|e| panic!("open {CLIENT_NETNS}: {e}"));
    setns(&fd, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {CLIENT_NETNS}: {e}"));
}

/// A loop running in the background until stopped; `stop` returns what it recorded.
pub(crate) struct Background<T> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Background<T> {
    /// `tick` runs every `period` (missed ticks are skipped, not bunched) on a thread in
    /// the client namespace (or the host's, `in_client` false), `state` is its record.
    pub(crate) fn start<S: Send + 'static>(
        in_client: bool,
        period: Duration,
        mut state: S,
        mut tick: impl FnMut(&mut S) + Send + 'static,
        finish: impl FnOnce(S) -> T + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            if in_client {
                enter_client();
            }
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                tick(&mut state);
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            finish(state)
        });
        Background {
            stop,
            handle: Some(handle),
        }
    }

    pub(crate) fn stop(mut self) -> T {
        self.stop.store(true, Ordering::Relaxed);
        let h = self.handle.take().expect("stopped once");
        h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        // A drill that failed midway: stop the loop, drop what it recorded.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
