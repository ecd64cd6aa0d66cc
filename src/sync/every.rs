//! `redis-ha sync --every PERIOD`: a sync at once on every Sentinel event that can move
//! roles (`watch`), and every PERIOD whatever happened, with the isolation guard on a
//! thread of its own. The period heals what nothing announced: events lost to a Sentinel
//! restart or a broken subscription.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SyncError;
use super::once::reporting;
use super::watch::Watch;
use crate::config::Config;
use crate::exit::HelperExit;
use crate::ocf::Logger;
use crate::process::Process;
use crate::wake::Trigger;

/// Runs until killed; returns only when the guard cannot be started.
pub(crate) fn every(p: &Process, path: &Path, period: Duration, dry_run: bool) -> HelperExit {
    let log = Logger::for_tool("redis-ha-sync", p);
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
    // Sentinel's events wake the loop at once; the period is the healer's.
    let trigger = Arc::new(Trigger::default());
    let mut watch = Watch::new(
        vec![Arc::clone(&trigger), Arc::clone(&guard)],
        Logger::for_tool("redis-ha-events", p),
    );
    // The config is re-read every round.
    loop {
        let start = Instant::now();
        match Config::load(path) {
            Ok(config) => {
                let (report, result) = reporting(&config, &log, dry_run);
                if !report.written.is_empty() {
                    guard.fire("the sync wrote a role".into());
                }
                if let Err(e) = result {
                    log.warn(&e.logged());
                }
                watch.follow(&config, &report.sentinels);
            }
            Err(e) => log.warn(&SyncError::from(e).logged()),
        }
        if let Some(why) = trigger.wait(period.saturating_sub(start.elapsed())) {
            log.info(&format!("event: {why}: syncing now"));
        }
    }
}
