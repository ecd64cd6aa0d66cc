//! Sentinel's scripts: `sentinel-reconfig` (its `client-reconfig-script`) and
//! `sentinel-notify` (its `notification-script`). Each parses its arguments and the
//! config first, then hands the event to the `redis-ha sync --every` service over its
//! socket (`crate::handoff`) and exits as the service's sync did; where no service
//! answers, it runs one sync itself (`crate::sync::once`), ended before Sentinel would
//! kill it. The exit code is Sentinel's contract.

mod argv;
mod fallback;

use argv::{ArgvError, Notify, Reconfig};
#[cfg(feature = "fuzzing")]
pub(crate) use argv::{Notify as NotifyArgs, Reconfig as ReconfigArgs};

use std::time::Duration;

use crate::config::{self, Config};
use crate::deadline::Deadline;
use crate::exit::HelperExit;
use crate::handoff::{self, Origin, Request};
use crate::ocf::Logger;
use crate::process::Process;
use crate::sync::{self, SyncError};

/// `client-reconfig-script`: any failover this config follows triggers a sync.
pub(crate) fn reconfig(p: &Process) -> HelperExit {
    let log = Logger::for_tool("redis-ha-sentinel-reconfig", p);
    let Some(args) = parsed(&log, Reconfig::parse(after_argv0(p))) else {
        return HelperExit::GiveUp;
    };
    log.info(&format!("triggered: {args}"));
    let config = load(p).and_then(|config| {
        // First, before any question: is this our master at all?
        if args.master != config.master_name {
            return Err(SyncError::OtherMaster {
                called: args.master.clone(),
                follows: config.master_name.clone(),
            });
        }
        Ok(config)
    });
    match config {
        Ok(config) => synced(
            &log,
            &config,
            &Request::new(Origin::Reconfig, &args.to_string()),
        ),
        Err(e) => sync::finish(&log, Err(e)),
    }
}

/// `notification-script`: only events that can change roles sync.
pub(crate) fn notify(p: &Process) -> HelperExit {
    let log = Logger::for_tool("redis-ha-sentinel-notify", p);
    let Some(args) = parsed(&log, Notify::parse(after_argv0(p))) else {
        return HelperExit::GiveUp;
    };
    if !args.syncs() {
        return HelperExit::Done;
    }
    let event = args.event.to_string();
    log.info(&format!("triggered: {event}"));
    match load(p) {
        Ok(config) => synced(&log, &config, &Request::new(Origin::Notify, &event)),
        Err(e) => sync::finish(&log, Err(e)),
    }
}

/// The most a script may take when it syncs itself (no service answered), from its
/// start. Sentinel kills a script after 60 s (`SENTINEL_SCRIPT_MAX_RUNTIME`) and retries
/// it like an exit 1, but nothing then says why; each step of a sync is bounded (the lock
/// 20 s, a Pacemaker tool 10 s, a Sentinel exchange `timeout_ms`, the block wait
/// `block_wait_ms` up to 60 s) and their sum is not. Every step takes its bound from what
/// is left of this; the 10 s to spare cover what a step may overrun its bound by (a child
/// killed at the deadline: its pipes read for up to 0.6 s more), the summary line, a
/// loaded host.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(50);

/// One sync for `request`: by the service when it answers, else here, within
/// [`SCRIPT_DEADLINE`].
fn synced(log: &Logger, config: &Config, request: &Request) -> HelperExit {
    let deadline = Deadline::after(SCRIPT_DEADLINE);
    match handoff::ask(&config.sync_socket, request) {
        Ok(answer) => {
            let line = format!("the sync service answered: {}", answer.message);
            match answer.exit {
                HelperExit::Done => log.info(&line),
                HelperExit::Retry => log.error(&format!("{line} (will retry)")),
                HelperExit::GiveUp => log.error(&line),
            }
            answer.exit
        }
        Err(e) if e.service_absent() => {
            log.info(&format!("no sync service ({e}): syncing here"));
            let result = sync::once(config, log, false, deadline);
            let late = deadline.passed().then_some(SCRIPT_DEADLINE);
            match fallback::without_service(&e.to_string(), result, late) {
                Ok(()) => HelperExit::Done,
                Err(e) => {
                    let exit = e.exit();
                    let retry = if exit == HelperExit::Retry {
                        " (will retry)"
                    } else {
                        ""
                    };
                    log.error(&format!("{e}{retry}"));
                    exit
                }
            }
        }
        Err(e) => {
            log.error(&format!(
                "the sync service did not answer: {e} (will retry)"
            ));
            HelperExit::Retry
        }
    }
}

fn after_argv0(p: &Process) -> &[std::ffi::OsString] {
    p.args().get(1..).unwrap_or_default()
}

/// The arguments, or `None` once the reason Sentinel must not retry is logged.
fn parsed<T>(log: &Logger, args: Result<T, ArgvError>) -> Option<T> {
    args.inspect_err(|e| log.error(&format!("{e}: giving up")))
        .ok()
}

fn load(p: &Process) -> Result<Config, SyncError> {
    Ok(Config::load(&config::path_from_env(p))?)
}
