//! `redis-ha sync --every PERIOD`: a sync at once on every Sentinel event that can move
//! roles (`watch`) and on every request of Sentinel's scripts over the hand-off socket
//! (`asked`), soon again after a sync that could not finish (`pace`), and every PERIOD
//! whatever happened, with the isolation guard on a thread of its own. The period heals
//! what nothing announced: events lost to a Sentinel restart or a broken subscription.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SyncError;
use super::asked::{self, Asked};
use super::once::reporting;
use super::watch::Watch;
use crate::config::Config;
use crate::deadline::Deadline;
use crate::exit::HelperExit;
use crate::handoff::{Answer, Listener, Peers};
use crate::ocf::Logger;
use crate::process::Process;
use crate::wake::{GuardWake, Trigger};

/// Runs until killed; returns only when the guard cannot be started.
pub(crate) fn every(p: &Process, path: &Path, period: Duration, dry_run: bool) -> HelperExit {
    let log = Logger::for_tool("redis-ha-sync", p);
    // Sentinel's events and scripts wake the loop at once; the period is the healer's.
    let trigger = Arc::new(Trigger::default());
    let asked = Arc::new(Asked::new(Arc::clone(&trigger)));
    // The socket comes first, so its directory gets our mode before the guard writes its
    // record there; with a config that does not load yet, at the first round it does.
    // A dry run writes nothing, so it answers nobody.
    let mut listening = dry_run;
    if !listening && let Ok(config) = Config::load(path) {
        listen(&config, &asked, p, &log);
        listening = true;
    }
    // The isolation guard, on its own faster cadence (a sync may wait seconds for a
    // block), woken at once by every sync that wrote a role or found this node primary
    // before the guard opened its writes (another node's sync may have written it), and
    // by the events while it leaves this node's writes open (`GuardWake`).
    let guard = Arc::new(GuardWake::default());
    if !dry_run {
        let guard_log = Logger::for_tool("redis-ha-guard", p);
        let guard_path = path.to_path_buf();
        let wake = Arc::clone(&guard);
        let spawned = std::thread::Builder::new()
            .name("guard".into())
            .spawn(move || crate::guard::run(&guard_path, &guard_log, &wake));
        if let Err(e) = spawned {
            log.error(&format!("cannot start the isolation guard: {e}"));
            return HelperExit::Retry;
        }
    }
    let mut watch = Watch::new(
        Arc::clone(&trigger),
        Arc::clone(&guard),
        Arc::clone(&asked),
        Logger::for_tool("redis-ha-events", p),
    );
    // The config is re-read every round. The first comes at startup, not at an event.
    let mut round = Round::Period;
    loop {
        let start = Instant::now();
        let number = asked.starting();
        let answer = match Config::load(path) {
            Ok(config) => {
                if !listening {
                    listen(&config, &asked, p, &log);
                    listening = true;
                }
                let me = config.guard.local_node();
                let courtesy = (round == Round::Event).then_some(&me);
                let (report, result) = reporting(&config, &log, dry_run, Deadline::NONE, courtesy);
                guard.synced(
                    !report.written.is_empty(),
                    report.primary.as_ref().is_some_and(|(node, _)| *node == me),
                );
                if let Err(e) = &result {
                    log.warn(&e.logged());
                }
                watch.follow(&config, &report.sentinels);
                asked::answer(&report, &result)
            }
            Err(e) => {
                let e = SyncError::from(e);
                log.warn(&e.logged());
                Answer::new(e.exit(), &e.to_string())
            }
        };
        // The answer carries the round's outcome in Sentinel's terms: retry or not.
        let retry = answer.exit == HelperExit::Retry;
        asked.finished(number, answer);
        let (next, wait) = pace(&round, retry, period, start.elapsed());
        round = match trigger.wait(wait) {
            Some(why) => {
                log.info(&format!("event: {why}: syncing now"));
                Round::Event
            }
            None => next,
        };
    }
}

/// Why a round of the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// A Sentinel event, or a script's request (each is a Sentinel event): every node's
    /// loop runs at it, the promoted node's too, so this one leaves a promotion of
    /// another node to that node's own sync first (`Sync::courtesy`).
    Event,
    /// Nothing happened for a period (or the loop just started).
    Period,
    /// The last round stopped on something another try may clear (no quorum, no
    /// Sentinel majority, a block not running yet, the Sentinels moving on: exit 1 in
    /// Sentinel's terms), after waiting this long. It is this node's own business: no
    /// other node's sync is woken with it, so it leaves nothing to one.
    Retry(Duration),
}

/// The first retry's delay; each next one doubles, up to the period. Soon, because what
/// clears a failed sync often comes with no Sentinel event: the partition's quorum
/// returning after Corosync re-forms (a second or two after a heal), a block starting.
/// In chaos seed 29606, step 31, a promotion written from a view the Sentinels had taken
/// back while the write waited 0.9 s for Corosync stayed in the CIB until the next period:
/// its correction met no quorum, and nothing but the period ran it again.
const RETRY_FIRST: Duration = Duration::from_millis(250);

/// The next round if no event comes first, and how long the loop waits for it after a
/// round that `took` this long: a period counts from the round's start, a retry's delay
/// from its end.
fn pace(last: &Round, retry: bool, period: Duration, took: Duration) -> (Round, Duration) {
    if !retry {
        return (Round::Period, period.saturating_sub(took));
    }
    let delay = match last {
        Round::Retry(before) => before.saturating_mul(2),
        _ => RETRY_FIRST,
    }
    .min(period);
    (Round::Retry(delay), delay)
}

/// Serves Sentinel's scripts at the config's `sync_socket` on a thread of its own, for
/// the process's life (a new path takes a restart). Without it they sync themselves.
fn listen(config: &Config, asked: &Arc<Asked>, p: &Process, log: &Logger) {
    let listener = match Listener::bind(&config.sync_socket) {
        Ok(listener) => listener,
        Err(e) => {
            log.error(&format!(
                "not serving Sentinel's scripts: {e}; they sync themselves, which needs \
                 rights on the CIB"
            ));
            return;
        }
    };
    log.info(&format!(
        "serving Sentinel's scripts at {}",
        listener.path().display()
    ));
    let asked = Arc::clone(asked);
    let serve_log = Logger::for_tool("redis-ha-sync", p);
    let spawned = std::thread::Builder::new()
        .name("handoff".into())
        .spawn(move || {
            listener.serve(Peers::of_host(), &serve_log, move |request, within| {
                asked.ask(request, within)
            })
        });
    if let Err(e) = spawned {
        log.error(&format!("not serving Sentinel's scripts: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sync_is_tried_again_soon_then_less_often_up_to_the_period() {
        let period = Duration::from_secs(5);
        let ms = Duration::from_millis;
        let took = Duration::from_millis(300);
        let rest = period - took;
        let cases: &[(Round, bool, Round, Duration)] = &[
            (Round::Period, false, Round::Period, rest),
            (Round::Event, false, Round::Period, rest),
            (Round::Retry(ms(1000)), false, Round::Period, rest),
            (Round::Period, true, Round::Retry(ms(250)), ms(250)),
            (Round::Event, true, Round::Retry(ms(250)), ms(250)),
            (Round::Retry(ms(250)), true, Round::Retry(ms(500)), ms(500)),
            (
                Round::Retry(ms(2000)),
                true,
                Round::Retry(ms(4000)),
                ms(4000),
            ),
            (Round::Retry(ms(4000)), true, Round::Retry(period), period),
            (Round::Retry(period), true, Round::Retry(period), period),
        ];
        for (last, retry, round, wait) in cases {
            assert_eq!(
                pace(last, *retry, period, took),
                (*round, *wait),
                "after {last:?}, retry {retry}"
            );
        }
        // A period shorter than the first retry bounds it; a round longer than the
        // period is followed at once.
        assert_eq!(
            pace(&Round::Period, true, ms(100), took),
            (Round::Retry(ms(100)), ms(100))
        );
        assert_eq!(
            pace(&Round::Period, false, ms(100), took),
            (Round::Period, Duration::ZERO)
        );
    }
}
