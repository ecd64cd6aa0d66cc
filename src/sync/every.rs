//! `redis-ha sync --every PERIOD`: a sync at once on every Sentinel event that can move
//! roles (`watch`) and on every request of Sentinel's scripts over the hand-off socket
//! (`asked`), and every PERIOD whatever happened, with the isolation guard on a thread of
//! its own. The period heals what nothing announced: events lost to a Sentinel restart
//! or a broken subscription.

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
use crate::wake::Trigger;

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
    // block), woken at once by the events and by every sync that wrote a role.
    let guard = Arc::new(Trigger::default());
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
        vec![Arc::clone(&trigger), Arc::clone(&guard)],
        Logger::for_tool("redis-ha-events", p),
    );
    // The config is re-read every round.
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
                let (report, result) = reporting(&config, &log, dry_run, Deadline::NONE, Some(&me));
                if !report.written.is_empty() {
                    guard.fire("the sync wrote a role".into());
                }
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
        asked.finished(number, answer);
        if let Some(why) = trigger.wait(period.saturating_sub(start.elapsed())) {
            log.info(&format!("event: {why}: syncing now"));
        }
    }
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
