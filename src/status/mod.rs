//! `redis-ha status`: one screen for an operator. Per node: its `redis_role`, what the
//! Sentinels say its Redis is, which block clones run there, and whether all of that
//! agrees. Read-only; see `StatusExit` for the exit codes.

mod guard_lines;
mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use crate::cluster::{Cib, Cluster, Pacemaker};
use crate::config::Config;
use crate::exit::StatusExit;
use crate::observe::{Assignment, Mapped, Resolve, observe, resolver};
use crate::sentinel::{Addr, RedisServers, ReplicaView, Sentinels};

pub(crate) use guard_lines::GuardView;
pub(crate) use render::render;

/// Everything the screen shows, gathered once.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) master_name: String,
    /// Pacemaker's side, or why it could not be read.
    pub(crate) cluster: Result<Cib, String>,
    /// The Sentinels' side, or why no decision could be made.
    pub(crate) sentinels: Result<SentinelSummary, String>,
    /// What the isolation guard on this node refuses.
    pub(crate) guard: GuardView,
}

/// What the Sentinels say, mapped to nodes, with each Redis described.
#[derive(Debug, Clone)]
pub(crate) struct SentinelSummary {
    pub(crate) reached: usize,
    pub(crate) known: usize,
    pub(crate) epoch: u64,
    /// The master of the newest configuration, and whether it is objectively down.
    pub(crate) master: Addr,
    pub(crate) master_down: bool,
    pub(crate) assignment: Assignment,
    /// Each Redis of the newest configuration, as that configuration describes it.
    pub(crate) redis: BTreeMap<Addr, RedisState>,
}

/// One Redis as the newest configuration describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedisState {
    Master {
        flags: Vec<String>,
    },
    Replica {
        view: ReplicaView,
        /// Bytes behind the master (its `INFO replication` and the replica's, read now),
        /// or why that could not be read.
        lag: Result<u64, String>,
    },
}

/// Reads the config, the CIB and the Sentinels, prints the screen.
pub(crate) fn run(path: &Path) -> StatusExit {
    let snapshot = Config::load(path).and_then(|config| {
        let sentinels = config.sentinel_client()?;
        let servers = config.redis_client()?;
        let cluster = Pacemaker::for_helper();
        let resolve = resolver(config.timeout);
        Ok(gather(&config, &cluster, &sentinels, &servers, &resolve))
    });
    let snapshot = match snapshot {
        Ok(snapshot) => snapshot,
        Err(e) => {
            eprintln!("redis-ha status: {e}");
            return StatusExit::Unusable;
        }
    };
    let (text, agree) = render(&snapshot);
    print!("{text}");
    if agree {
        StatusExit::Agree
    } else {
        StatusExit::Disagree
    }
}

/// One observation of the cluster, each Redis's replication read, the guard's record.
fn gather<C: Cluster + Sync, S: Sentinels + Sync>(
    config: &Config,
    cluster: &C,
    sentinels: &S,
    servers: &impl RedisServers,
    resolve: Resolve<'_>,
) -> Snapshot {
    let seen = observe(config, cluster, sentinels, resolve);
    Snapshot {
        master_name: config.master_name.clone(),
        sentinels: seen
            .sentinels
            .map(|mapped| summary(mapped, servers))
            .map_err(|e| e.to_string()),
        cluster: seen.cib.map_err(|e| e.to_string()),
        guard: guard_view(config),
    }
}

/// The guard's record, read now. It counts as stalled after four rounds and 2 s.
fn guard_view(config: &Config) -> GuardView {
    let g = &config.guard;
    if !g.enabled {
        return GuardView::Off;
    }
    match crate::guard::record::Record::read(&g.record_file) {
        Ok(record) => GuardView::Record {
            record,
            now_ms: crate::guard::now_ms(),
            stale_after_ms: g.react.as_millis() as u64 + 2000,
        },
        Err(e) => GuardView::NoRecord(e),
    }
}

/// The Sentinels' side, with each replica's lag read from the servers themselves.
fn summary(mapped: Mapped, servers: &impl RedisServers) -> SentinelSummary {
    let newest = mapped.verdict.newest();
    let truth = &mapped.verdict.truth;
    let master = newest.master.addr.clone();
    let master_offset = servers
        .replication(&master)
        .map_err(|e| e.to_string())
        .and_then(|r| {
            r.offset
                .ok_or_else(|| format!("{master} reports no replication offset"))
        });
    let mut redis = BTreeMap::new();
    redis.insert(
        master.clone(),
        RedisState::Master {
            flags: newest.master.flags.clone(),
        },
    );
    for view in &newest.replicas {
        let lag = master_offset.clone().and_then(|m| {
            let r = servers.replication(&view.addr).map_err(|e| e.to_string())?;
            let offset = r
                .offset
                .ok_or_else(|| format!("{} reports no replication offset", view.addr))?;
            Ok(m.saturating_sub(offset))
        });
        redis.insert(
            view.addr.clone(),
            RedisState::Replica {
                view: view.clone(),
                lag,
            },
        );
    }
    SentinelSummary {
        reached: truth.reached,
        known: truth.known,
        epoch: truth.epoch,
        master_down: newest.master.has_flag("o_down"),
        master,
        assignment: mapped.assignment,
        redis,
    }
}
