//! Sentinel's scripts: `sentinel-reconfig` (its `client-reconfig-script`) and
//! `sentinel-notify` (its `notification-script`). Each parses its arguments first, then
//! runs one sync (`crate::sync::once`); the exit code is Sentinel's contract.

mod argv;

use argv::{ArgvError, Notify, Reconfig};

use crate::config::{self, Config};
use crate::exit::HelperExit;
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
    let result = load(p).and_then(|config| {
        // First, before any lock or question: is this our master at all?
        if args.master != config.master_name {
            return Err(SyncError::OtherMaster {
                called: args.master.clone(),
                follows: config.master_name.clone(),
            });
        }
        sync::once(&config, &log, false)
    });
    sync::finish(&log, result)
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
    log.info(&format!("triggered: {} {}", args.event, args.description));
    let result = load(p).and_then(|config| sync::once(&config, &log, false));
    sync::finish(&log, result)
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
