//! The isolation guard: on every node, several times a second, it asks whether this node
//! is confirmed in what it serves (its Pacemaker partition has quorum, a Sentinel majority
//! names its Redis primary or a synced replica) and refuses locally, with its own firewall
//! rules, whatever it cannot confirm. It closes what Pacemaker cannot: the write port of an
//! old primary cut off from the majority (its partition cannot learn it was demoted), and
//! the ports that a stop of the block clones opens (standby, shutdown, quorum loss).
//! `redis-ha sync --every` runs it on a thread of its own.

mod enforce;
mod reads_back;
pub(crate) mod record;
mod rules;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cluster::{Cluster, NodeName, Pacemaker};
use crate::config::{Config, ConfigError, GuardSettings};
use crate::deadline::Deadline;
use crate::firewall::{Iptables, Port, Xtables};
use crate::lock::LockFile;
use crate::observe::{Observation, Resolve, observe, resolver};
use crate::ocf::Logger;
use crate::sentinel::Sentinels;
use crate::wake::GuardWake;
use enforce::{EnforceError, Enforcer};
use reads_back::hold_reads;
use record::{PortRecord, Record};
use rules::{Decision, Inputs, PacemakerSide, SentinelSide, refuse};

/// Why a round changed nothing: the rules stay as they are.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GuardError {
    #[error("config: {0}; the guard's rules stay as they are")]
    Config(#[from] ConfigError),
    #[error("cannot apply the guard: {0}")]
    Apply(#[from] EnforceError),
}

/// One round's questions, asked at once with the real clients: the CIB (bounded by the
/// reaction time) and every Sentinel (bounded by half of it); then the node names, when
/// the config maps none, resolved within half of it too.
fn gather(config: &Config, node: &NodeName) -> Inputs {
    let react = config.guard.react;
    let pacemaker = Pacemaker {
        timeout: react,
        deadline: Deadline::NONE,
    };
    let mut sentinels = match config.sentinel_client() {
        Ok(s) => s,
        Err(e) => {
            return Inputs {
                pacemaker: Err("not asked".into()),
                sentinels: Err(e.to_string()),
            };
        }
    };
    sentinels.timeout = react / 2;
    observed(config, &pacemaker, &sentinels, &resolver(react / 2), node)
}

/// What this node can confirm, from one observation of the cluster.
fn observed<C: Cluster + Sync, S: Sentinels + Sync>(
    config: &Config,
    cluster: &C,
    sentinels: &S,
    resolve: Resolve<'_>,
    node: &NodeName,
) -> Inputs {
    inputs(&observe(config, cluster, sentinels, resolve), node)
}

fn inputs(seen: &Observation, node: &NodeName) -> Inputs {
    // Without the CIB the observation maps nothing: its Sentinel side says why.
    Inputs {
        pacemaker: seen
            .cib
            .as_ref()
            .map(|cib| PacemakerSide {
                quorate: cib.state.quorate,
                local_role: cib.effective_role(node),
            })
            .map_err(ToString::to_string),
        sentinels: seen
            .sentinels
            .as_ref()
            .map(|mapped| SentinelSide {
                local_role: mapped.assignment.desired.get(node).copied(),
                primary: mapped.assignment.primary.as_ref().map(|(n, _)| n.clone()),
                redis: mapped
                    .assignment
                    .redis
                    .get(node)
                    .and_then(|a| a.first())
                    .cloned(),
                primary_redis: mapped.assignment.primary.as_ref().map(|(_, a)| a.clone()),
            })
            .map_err(ToString::to_string),
    }
}

/// Unix time in ms, as the record keeps it.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// iptables with 5 s for one round's calls, 2 s each for the xtables lock.
fn firewall() -> Iptables {
    Iptables::new(Xtables::new(
        Duration::from_secs(5),
        Duration::from_secs(2),
        false,
    ))
}

/// What a port refused since boot says, until the guard's first round decides.
const AT_BOOT: &str = "closed at boot until the guard can confirm this node";

/// Refuses both public ports with the guard's own rules before anything could confirm
/// this node: at boot (`redis-ha ports install --closed`, from redis-ha-ports.service,
/// before Redis listens and before Pacemaker places the block clones). The guard's first
/// round lifts what it can confirm. With the guard off nothing would, so nothing is
/// closed (`Ok(false)`).
pub(crate) fn close_at_boot(settings: &GuardSettings) -> Result<bool, GuardError> {
    if !settings.enabled {
        return Ok(false);
    }
    let decision = Decision {
        write: Some(AT_BOOT.to_string()),
        read: Some(AT_BOOT.to_string()),
    };
    Enforcer::new(LockFile::host(), Duration::from_secs(10), false).apply(
        &firewall(),
        settings,
        Some(&decision),
    )?;
    Ok(true)
}

/// The guard's loop, forever: re-reads the config every round (a broken config keeps
/// the rules as they are), checks every quarter of the reaction time and at once when
/// `wake` fires (a sync that wrote a role, a Sentinel event while this node takes
/// writes), logs every change. Its rules stay when the process ends: what was refused
/// stays refused.
pub(crate) fn run(path: &Path, log: &Logger, wake: &GuardWake) -> ! {
    let mut enforcer = Enforcer::new(LockFile::host(), Duration::from_secs(2), true);
    let mut shown: Option<Record> = None;
    let mut last_error = String::new();
    loop {
        let start = Instant::now();
        let round = Config::load(path)
            .map_err(GuardError::from)
            .and_then(|config| {
                let (record, decision) = round(&config, shown.as_ref());
                // A new time budget every round: Xtables bounds its whole life.
                enforcer.apply(&firewall(), &config.guard, decision.as_ref())?;
                // Off, it has nothing to refuse at an event.
                wake.set_serves_writes(decision.is_some_and(|d| d.write.is_none()));
                Ok((
                    record,
                    config.guard.react,
                    config.guard.record_file,
                    config.guard.enabled,
                ))
            });
        let pause = match round {
            Ok((record, react, record_file, enabled)) => {
                last_error.clear();
                log_changes(log, shown.as_ref(), &record);
                let written = if enabled {
                    record.write(&record_file)
                } else {
                    // Off: `redis-ha status` says so rather than show an old record.
                    std::fs::remove_file(&record_file).or_else(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => Ok(()),
                        _ => Err(e),
                    })
                };
                if let Err(e) = written {
                    log.warn(&format!("cannot write the guard's record: {e}"));
                }
                shown = Some(record);
                react / 4
            }
            Err(e) => {
                // What is in force is not known: every event may matter.
                wake.set_serves_writes(true);
                let e = e.to_string();
                if e != last_error {
                    log.error(&e);
                    last_error = e;
                }
                Duration::from_millis(250)
            }
        };
        // Until the next round, or at once when the sync or an event says so.
        wake.wait(pause.saturating_sub(start.elapsed()));
    }
}

/// One round's decision (None when the guard is off) and the record it leaves.
fn round(config: &Config, before: Option<&Record>) -> (Record, Option<Decision>) {
    let settings = &config.guard;
    let node = settings.local_node();
    let now = now_ms();
    let decision = settings.enabled.then(|| {
        let inputs = gather(config, &node);
        let mut decision = refuse(&inputs);
        // Reads it refused come back once this node's Redis has caught up (reads_back).
        let refused_before = before
            .and_then(|r| r.ports.iter().find(|p| p.kind == "read"))
            .is_none_or(|p| p.refused.is_some());
        hold_reads(&mut decision, refused_before, &inputs.sentinels, || {
            config.redis_client().ok().map(|mut r| {
                r.timeout = settings.react / 2;
                r
            })
        });
        decision
    });
    let port = |kind: &str, port: Port, refused: Option<String>| {
        let port = port.get();
        let since_ms = before
            .and_then(|r| r.ports.iter().find(|p| p.kind == kind && p.port == port))
            .filter(|p| p.refused.is_some() == refused.is_some())
            .map_or(now, |p| p.since_ms);
        PortRecord {
            kind: kind.to_string(),
            port,
            refused,
            since_ms,
        }
    };
    let (write, read) = match &decision {
        Some(d) => (d.write.clone(), d.read.clone()),
        None => (None, None),
    };
    let record = Record {
        node: node.to_string(),
        checked_ms: now,
        ports: vec![
            port("write", settings.write_port, write),
            port("read", settings.read_port, read),
        ],
    };
    (record, decision)
}

/// One line per port whose state or reason changed.
fn log_changes(log: &Logger, before: Option<&Record>, now: &Record) {
    for p in &now.ports {
        let old = before.and_then(|r| {
            r.ports
                .iter()
                .find(|o| o.kind == p.kind && o.port == p.port)
        });
        if old.map(|o| &o.refused) == Some(&p.refused) {
            continue;
        }
        match &p.refused {
            Some(why) => log.warn(&format!("guard: {} port {} refused: {why}", p.kind, p.port)),
            None if old.is_some() => log.info(&format!(
                "guard: {} port {} lifted (left to the block clones)",
                p.kind, p.port
            )),
            None => {}
        }
    }
}
