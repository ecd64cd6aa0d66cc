//! One sync with its real effects, under the host-wide sync lock, logged in one summary
//! line: what Sentinel's scripts, `redis-ha sync` and every round of `--every` run.

use std::time::{Duration, Instant};

use super::SyncError;
use super::report::Report;
use super::run::Sync;
use crate::cluster::{NodeName, Pacemaker};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::exit::HelperExit;
use crate::lock::{HostLock, LockFile};
use crate::observe::resolver;
use crate::ocf::Logger;
use crate::sentinel::RedisServers;

/// How long concurrent invocations (up to 16 per Sentinel) may queue for the lock. A
/// run under a deadline (a Sentinel script's own sync) queues no longer than it leaves.
const LOCK_WAIT: Duration = Duration::from_secs(20);

/// One sync; its summary line is logged whatever the outcome. Every step of it (the
/// lock, each Pacemaker tool and Sentinel or Redis exchange, the name lookups, the
/// catch-up and block waits) ends by `deadline`.
pub(crate) fn once(
    config: &Config,
    log: &Logger,
    dry_run: bool,
    deadline: Deadline,
) -> Result<(), SyncError> {
    reporting(config, log, dry_run, deadline, None).1
}

/// [`once`], with what it saw (nothing, when it could not start: the lock, the
/// password); `courtesy` as [`Sync::courtesy`](super::run::Sync).
pub(crate) fn reporting(
    config: &Config,
    log: &Logger,
    dry_run: bool,
    deadline: Deadline,
    courtesy: Option<&NodeName>,
) -> (Report, Result<(), SyncError>) {
    let start = Instant::now();
    let ready = HostLock::acquire(&LockFile::sync(), deadline.bound(LOCK_WAIT))
        .map_err(SyncError::from)
        .and_then(|lock| Ok((lock, config.sentinel_client()?.within(deadline))));
    let (_lock, sentinels) = match ready {
        Ok(ready) => ready,
        Err(e) => return (Report::default(), Err(e)),
    };
    let cluster = Pacemaker::for_helper().within(deadline);
    let redis = config.redis_client().ok().map(|r| r.within(deadline));
    // Bounded when the names are looked up, late in the sync, not now.
    let resolve = |names: &[&str]| resolver(deadline.bound(config.timeout))(names);
    let sync = Sync {
        config,
        sentinels: &sentinels,
        cluster: &cluster,
        redis: redis.as_ref().map(|r| r as &dyn RedisServers),
        resolve: &resolve,
        dry_run,
        deadline,
        courtesy,
    };
    let (report, result) = sync.run();
    let outcome = match &result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("exit {}", crate::exit::Exit::code(e.exit())),
    };
    log.info(&format!(
        "{} [{outcome}, {} ms]",
        report.summary(dry_run),
        start.elapsed().as_millis()
    ));
    (report, result)
}

/// The outcome in Sentinel's terms, the reason logged when there is one.
pub(crate) fn finish(log: &Logger, result: Result<(), SyncError>) -> HelperExit {
    match result {
        Ok(()) => HelperExit::Done,
        Err(e) => {
            log.error(&e.logged());
            e.exit()
        }
    }
}
