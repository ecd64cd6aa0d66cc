//! Syncs that Sentinel's scripts asked the service for (`crate::handoff`): each request
//! is answered by the first sync that starts after it came, so it never gets a verdict
//! older than its event; requests that come together share one sync, as the event
//! watcher's wake-ups do.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::SyncError;
use super::report::Report;
use crate::exit::HelperExit;
use crate::handoff::{Answer, Request};
use crate::wake::Trigger;

/// Numbers the loop's syncs and hands each finished one's answer to the requests that
/// wait for it.
pub(crate) struct Asked {
    state: Mutex<Syncs>,
    done: Condvar,
    /// The loop's wake-up.
    wake: Arc<Trigger>,
}

#[derive(Default)]
struct Syncs {
    started: u64,
    finished: u64,
    /// The answer of sync number `finished`.
    last: Option<Answer>,
}

impl Asked {
    pub(crate) fn new(wake: Arc<Trigger>) -> Self {
        Asked {
            state: Mutex::new(Syncs::default()),
            done: Condvar::new(),
            wake,
        }
    }

    /// Wakes the loop and waits, at most `within`, for a sync that started after now.
    pub(crate) fn ask(&self, request: &Request, within: Duration) -> Answer {
        let syncs = self.state.lock().expect("no panics under this lock");
        let want = syncs.started + 1;
        self.wake.fire(format!(
            "{} {} (handed over)",
            request.origin.word(),
            request.reason
        ));
        let (syncs, _) = self
            .done
            .wait_timeout_while(syncs, within, |s| s.finished < want)
            .expect("no panics under this lock");
        match &syncs.last {
            Some(answer) if syncs.finished >= want => answer.clone(),
            _ => Answer::new(
                HelperExit::Retry,
                &format!(
                    "the service's sync did not finish within {} s",
                    within.as_secs()
                ),
            ),
        }
    }

    /// The loop starts a sync: its number.
    pub(crate) fn starting(&self) -> u64 {
        let mut syncs = self.state.lock().expect("no panics under this lock");
        syncs.started += 1;
        syncs.started
    }

    /// Sync `number` is over: every request that waits for it or an older one gets
    /// `answer`.
    pub(crate) fn finished(&self, number: u64, answer: Answer) {
        let mut syncs = self.state.lock().expect("no panics under this lock");
        syncs.finished = number;
        syncs.last = Some(answer);
        self.done.notify_all();
    }
}

/// What a sync's outcome tells the script that asked for it.
pub(crate) fn answer(report: &Report, result: &Result<(), SyncError>) -> Answer {
    match result {
        Ok(()) => Answer::new(HelperExit::Done, &report.summary(false)),
        Err(e) => Answer::new(e.exit(), &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::Origin;

    #[test]
    fn a_request_is_answered_by_a_sync_that_started_after_it() {
        let wake = Arc::new(Trigger::default());
        let asked = Arc::new(Asked::new(Arc::clone(&wake)));
        // A sync is under way when the request comes: its answer is not the request's.
        let running = asked.starting();
        let a2 = Arc::clone(&asked);
        let waiter = std::thread::spawn(move || {
            a2.ask(
                &Request::new(Origin::Notify, "+switch-master m"),
                Duration::from_secs(60),
            )
        });
        // The request woke the loop (the first reason given is kept).
        let why = wake.wait(Duration::from_secs(60)).unwrap();
        assert_eq!(why, "sentinel-notify +switch-master m (handed over)");
        asked.finished(running, Answer::new(HelperExit::GiveUp, "old"));
        let next = asked.starting();
        asked.finished(next, Answer::new(HelperExit::Done, "new"));
        let got = waiter.join().unwrap();
        assert_eq!((got.exit, got.message.as_str()), (HelperExit::Done, "new"));
    }

    #[test]
    fn no_sync_in_time_is_a_retry() {
        let asked = Asked::new(Arc::new(Trigger::default()));
        let got = asked.ask(
            &Request::new(Origin::Reconfig, "m leader start"),
            Duration::from_millis(10),
        );
        assert_eq!(got.exit, HelperExit::Retry);
        assert!(got.message.contains("did not finish"), "{}", got.message);
    }

    #[test]
    fn outcomes_map_to_sentinels_contract() {
        let report = Report::default();
        let table = [
            (Ok(()), HelperExit::Done),
            (Err(SyncError::NoQuorum), HelperExit::Retry),
            (Err(SyncError::Unmapped), HelperExit::GiveUp),
            (
                Err(SyncError::ResolvedLate {
                    names: vec![crate::cluster::NodeName("node1".into())],
                }),
                HelperExit::Retry,
            ),
        ];
        for (result, want) in table {
            let a = answer(&report, &result);
            assert_eq!(a.exit, want, "{result:?}");
        }
        let a = answer(&report, &Err(SyncError::NoQuorum));
        assert_eq!(
            a.message,
            "this node's partition has no quorum: writing nothing"
        );
    }
}
