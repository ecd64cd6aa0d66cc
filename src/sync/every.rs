//! `redis-ha sync --every PERIOD`: the periodic reconciliation, forever, with the
//! isolation guard on a thread of its own. It heals what Sentinel's scripts miss: events
//! lost to a Sentinel restart, and a returning old master (which no script hears of).

use std::path::Path;
use std::time::{Duration, Instant};

use super::once;
use crate::config::Config;
use crate::exit::HelperExit;
use crate::ocf::Logger;
use crate::process::Process;

/// Runs until killed; returns only when the guard cannot be started.
pub(crate) fn every(p: &Process, path: &Path, period: Duration, dry_run: bool) -> HelperExit {
    let log = Logger::for_tool("redis-ha-sync", p);
    // The isolation guard, on its own faster cadence: a sync may wait seconds for a block.
    if !dry_run {
        let guard_log = Logger::for_tool("redis-ha-guard", p);
        let guard_path = path.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("guard".into())
            .spawn(move || crate::guard::run(&guard_path, &guard_log));
        if let Err(e) = spawned {
            log.error(&format!("cannot start the isolation guard: {e}"));
            return HelperExit::Retry;
        }
    }
    // The config is re-read every round.
    loop {
        let start = Instant::now();
        let result = Config::load(path)
            .map_err(Into::into)
            .and_then(|config| once(&config, &log, dry_run));
        if let Err(e) = result {
            log.warn(&e.logged());
        }
        std::thread::sleep(period.saturating_sub(start.elapsed()));
    }
}
