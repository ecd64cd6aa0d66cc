//! The Sentinel helper's entry points: `sentinel-reconfig`, `sentinel-notify` and
//! `redis-ha sync`, each one sync under a host-wide lock, logged in one summary line.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cluster::Pacemaker;
use crate::config::{self, Config};
use crate::lock::HostLock;
use crate::ocf::Logger;
use crate::process::Process;
use crate::sync::{Sync, SyncError};

/// Events of Sentinel's notification script that can change who should be what.
const SYNC_EVENTS: &[&str] = &["+sdown", "-sdown", "+odown", "-odown", "+switch-master"];

/// How long concurrent invocations (up to 16 per Sentinel) may queue for the lock. With
/// the sync's own bounds (1 s per Sentinel, 10 s per Pacemaker tool, the block wait) it
/// keeps a run inside Sentinel's 60 s kill.
const LOCK_WAIT: Duration = Duration::from_secs(20);

/// `client-reconfig-script`: `<master> <role> <state> <from-ip> <from-port> <to-ip> <to-port>`.
/// The arguments only trigger; the truth is read from the Sentinels.
pub(crate) fn reconfig(p: &Process) -> i32 {
    let log = Logger::for_tool("redis-ha-sentinel-reconfig", p);
    let args: Vec<&str> = p.args().iter().skip(1).filter_map(|a| a.to_str()).collect();
    if args.len() != 7 || p.args().len() != 8 {
        log.error(&format!(
            "expected 7 arguments (<master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>), got {}: giving up",
            p.args().len().saturating_sub(1)
        ));
        return 2;
    }
    log.info(&format!("triggered: {}", args.join(" ")));
    with_config(p, &log, |config| {
        if args[0] != config.master_name {
            return Err(SyncError::GiveUp(format!(
                "called for master {:?}, but the config follows {:?}",
                args[0], config.master_name
            )));
        }
        sync_once(config, &log, false)
    })
}

/// `notification-script`: `<event> <description>`; only events that can change roles sync.
pub(crate) fn notify(p: &Process) -> i32 {
    let log = Logger::for_tool("redis-ha-sentinel-notify", p);
    let args: Vec<&str> = p.args().iter().skip(1).filter_map(|a| a.to_str()).collect();
    if args.len() != 2 || p.args().len() != 3 {
        log.error("expected 2 arguments (<event> <description>): giving up");
        return 2;
    }
    if !SYNC_EVENTS.contains(&args[0]) {
        return 0;
    }
    log.info(&format!("triggered: {} {}", args[0], args[1]));
    with_config(p, &log, |config| sync_once(config, &log, false))
}

/// `redis-ha sync [--dry-run] [--every PERIOD]`.
pub(crate) fn sync(
    p: &Process,
    config_path: Option<&Path>,
    dry_run: bool,
    every: Option<Duration>,
) -> i32 {
    let log = Logger::for_tool("redis-ha-sync", p);
    let path = config_path.map_or_else(|| path_from_env(p), Path::to_path_buf);
    let Some(period) = every else {
        return match Config::load(&path) {
            Ok(config) => finish(&log, sync_once(&config, &log, dry_run)),
            Err(e) => finish(&log, Err(SyncError::GiveUp(e.to_string()))),
        };
    };
    // The isolation guard, on its own faster cadence: a sync may wait seconds for a block.
    if !dry_run {
        let guard_log = Logger::for_tool("redis-ha-guard", p);
        let guard_path = path.clone();
        let spawned = std::thread::Builder::new()
            .name("guard".into())
            .spawn(move || crate::guard::run(&guard_path, &guard_log));
        if let Err(e) = spawned {
            log.error(&format!("cannot start the isolation guard: {e}"));
            return 1;
        }
    }
    // The periodic reconciliation: heals events Sentinel lost (restarts) or never sends
    // (a returning old master). The config is re-read every round.
    loop {
        let start = Instant::now();
        let result = Config::load(&path)
            .map_err(|e| SyncError::GiveUp(e.to_string()))
            .and_then(|config| sync_once(&config, &log, dry_run));
        if let Err(e) = result {
            log.warn(&e.to_string());
        }
        std::thread::sleep(period.saturating_sub(start.elapsed()));
    }
}

/// `$REDIS_HA_CONFIG`, else the default path.
pub(crate) fn path_from_env(p: &Process) -> PathBuf {
    PathBuf::from(p.var("REDIS_HA_CONFIG").unwrap_or(config::DEFAULT_PATH))
}

fn with_config(p: &Process, log: &Logger, f: impl FnOnce(&Config) -> Result<(), SyncError>) -> i32 {
    let result = Config::load(&path_from_env(p))
        .map_err(|e| SyncError::GiveUp(e.to_string()))
        .and_then(|config| f(&config));
    finish(log, result)
}

fn finish(log: &Logger, result: Result<(), SyncError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            log.error(&e.to_string());
            e.exit_code()
        }
    }
}

/// One sync under the host-wide sync lock, logged as one summary line.
fn sync_once(config: &Config, log: &Logger, dry_run: bool) -> Result<(), SyncError> {
    let start = Instant::now();
    let _lock =
        HostLock::acquire(&lock_path(), LOCK_WAIT).map_err(|e| SyncError::Retry(e.to_string()))?;
    let sentinels = config.sentinel_client().map_err(SyncError::GiveUp)?;
    let cluster = Pacemaker::for_helper();
    let sync = Sync {
        config,
        sentinels: &sentinels,
        cluster: &cluster,
        resolve: &resolve,
        dry_run,
    };
    let (report, result) = sync.run();
    let outcome = match &result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("exit {}", e.exit_code()),
    };
    log.info(&format!(
        "{} [{outcome}, {} ms]",
        report.summary(dry_run),
        start.elapsed().as_millis()
    ));
    result
}

/// Next to the agents' lock, but its own: a sync may wait seconds for a block, and the
/// agents must not queue behind it.
fn lock_path() -> PathBuf {
    let agents = crate::lock::default_path();
    agents.with_file_name("redis-ha-sync.lock")
}

/// The addresses a cluster node name resolves to (`/etc/hosts`, DNS).
pub(crate) fn resolve(name: &str) -> Vec<IpAddr> {
    (name, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default()
}
