//! Syncs that Sentinel's scripts asked the service for (`crate::handoff`): each request
//! is answered by the first sync that starts after its event, so it never gets a verdict
//! older than that event; requests that come together share one sync, as the event
//! watcher's wake-ups do. An event the watcher heard on its subscription first (Sentinel
//! publishes at once, and starts its scripts from its 100 ms timer) is answered by the
//! sync that it woke, not one more.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::SyncError;
use super::report::Report;
use crate::exit::HelperExit;
use crate::handoff::{Answer, Origin, Request};
use crate::wake::Trigger;

/// How long an event heard on a subscription is remembered for a script's request of it
/// (Sentinel starts a script within 100 ms, later when it is busy or its scripts queue).
const HEARD_FOR: Duration = Duration::from_secs(10);

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
    /// Events the watcher heard, newest last, each with the first sync that started
    /// after it was heard.
    heard: VecDeque<Heard>,
}

struct Heard {
    event: String,
    answered_by: u64,
    at: Instant,
}

impl Syncs {
    /// Forgets the events heard more than [`HEARD_FOR`] ago.
    fn forget_old(&mut self) {
        while self
            .heard
            .front()
            .is_some_and(|h| h.at.elapsed() >= HEARD_FOR)
        {
            self.heard.pop_front();
        }
    }

    /// The first sync that started after `event` was last heard, if it was, lately.
    fn after_heard(&mut self, event: &str) -> Option<u64> {
        self.forget_old();
        self.heard
            .iter()
            .rev()
            .find(|h| h.event == event)
            .map(|h| h.answered_by)
    }
}

impl Asked {
    pub(crate) fn new(wake: Arc<Trigger>) -> Self {
        Asked {
            state: Mutex::new(Syncs::default()),
            done: Condvar::new(),
            wake,
        }
    }

    /// The watcher heard `event` (`+sdown master m 10.0.0.1 6379`, as Sentinel gives a
    /// notification script its type and description) on a subscription: the next sync to
    /// start answers a script's request of it.
    pub(crate) fn heard(&self, event: &str) {
        let mut syncs = self.state.lock().expect("no panics under this lock");
        syncs.forget_old();
        let answered_by = syncs.started + 1;
        syncs.heard.push_back(Heard {
            event: event.to_string(),
            answered_by,
            at: Instant::now(),
        });
    }

    /// Waits, at most `within`, for a sync that started after the request's event: the
    /// one its hearing woke when the watcher heard it first, else one that starts after
    /// now (the loop is woken for it).
    pub(crate) fn ask(&self, request: &Request, within: Duration) -> Answer {
        let mut syncs = self.state.lock().expect("no panics under this lock");
        let next = syncs.started + 1;
        let want = match request.origin {
            Origin::Notify => syncs.after_heard(&request.reason).unwrap_or(next),
            // Its arguments are no event's text.
            Origin::Reconfig => next,
        };
        if want == next {
            self.wake.fire(format!(
                "{} {} (handed over)",
                request.origin.word(),
                request.reason
            ));
        }
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
    fn a_request_for_an_event_the_watcher_heard_first_is_answered_by_the_sync_it_woke() {
        let wake = Arc::new(Trigger::default());
        let asked = Arc::new(Asked::new(Arc::clone(&wake)));
        let first = asked.starting();
        asked.finished(first, Answer::new(HelperExit::Done, "before the event"));
        // Heard on a subscription; the sync it woke is under way when the script asks.
        asked.heard("+sdown master m 10.0.0.1 6379");
        let woken = asked.starting();
        let ask = |reason: &str| {
            let (a, reason) = (Arc::clone(&asked), reason.to_string());
            std::thread::spawn(move || {
                a.ask(
                    &Request::new(Origin::Notify, &reason),
                    Duration::from_secs(60),
                )
            })
        };
        let same = ask("+sdown master m 10.0.0.1 6379");
        // Not one more sync for it.
        assert_eq!(wake.wait(Duration::from_millis(50)), None);
        // An event not heard (the subscription missed it) wakes the loop for a new one.
        let other = ask("+odown master m 10.0.0.1 6379 #quorum 2/2");
        let why = wake.wait(Duration::from_secs(60)).unwrap();
        assert_eq!(
            why,
            "sentinel-notify +odown master m 10.0.0.1 6379 #quorum 2/2 (handed over)"
        );
        asked.finished(woken, Answer::new(HelperExit::Done, "woken"));
        let got = same.join().unwrap();
        assert_eq!(
            (got.exit, got.message.as_str()),
            (HelperExit::Done, "woken")
        );
        let next = asked.starting();
        asked.finished(next, Answer::new(HelperExit::Retry, "next"));
        assert_eq!(other.join().unwrap().message, "next");
        // Once answered, a late request of the same event is answered at once.
        let late = asked.ask(
            &Request::new(Origin::Notify, "+sdown master m 10.0.0.1 6379"),
            Duration::from_secs(60),
        );
        assert_eq!(late.message, "next");
        assert_eq!(wake.wait(Duration::from_millis(10)), None);
        // A reconfiguration script's arguments are no event's text: always a new sync.
        let r = {
            let a = Arc::clone(&asked);
            std::thread::spawn(move || {
                let request = Request::new(Origin::Reconfig, "+sdown master m 10.0.0.1 6379");
                a.ask(&request, Duration::from_secs(60))
            })
        };
        assert!(wake.wait(Duration::from_secs(60)).is_some());
        let last = asked.starting();
        asked.finished(last, Answer::new(HelperExit::Done, "last"));
        assert_eq!(r.join().unwrap().message, "last");
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
