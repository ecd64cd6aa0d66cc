//! `redis-ha status`: one screen for an operator. Per node: its `redis_role`, what the
//! Sentinels say its Redis is, which block clones run there, and whether all of that
//! agrees. Read-only; exit 0 when everything agrees, 1 when anything disagrees or cannot be
//! known, 2 when the config is unusable.

mod guard;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::cluster::{NodeName, Pacemaker};
use crate::config::Config;
use crate::sentinel::{Addr, RedisSentinels, RedisServers, ReplicaView, SentinelView};
use crate::sync::{Assignment, Sync, decide};

pub(crate) use guard::GuardView;
pub(crate) use render::render;

/// Everything the screen shows, gathered once.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) master_name: String,
    /// Pacemaker's side, or why it could not be read.
    pub(crate) cluster: Result<ClusterSide, String>,
    /// The Sentinels' side, or why no decision could be made.
    pub(crate) sentinels: Result<SentinelSide, String>,
    /// What the isolation guard on this node refuses.
    pub(crate) guard: GuardView,
}

/// What the CIB says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClusterSide {
    pub(crate) quorate: bool,
    /// Every node with its permanent `redis_role` (None: not set).
    pub(crate) roles: BTreeMap<NodeName, Option<String>>,
    /// `redis_role` with a lifetime, which overrides the permanent one.
    pub(crate) transient: BTreeMap<NodeName, String>,
    /// The Sentinel `config-epoch` the roles were last written from.
    pub(crate) applied_epoch: Option<u64>,
    pub(crate) read_blocks: BTreeSet<NodeName>,
    pub(crate) write_blocks: BTreeSet<NodeName>,
}

/// What the Sentinels say, mapped to nodes.
#[derive(Debug, Clone)]
pub(crate) struct SentinelSide {
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

/// Reads the config, the CIB and the Sentinels, prints the screen; the exit code.
pub(crate) fn run(path: &Path) -> i32 {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("redis-ha status: {e}");
            return 2;
        }
    };
    let snapshot = match gather(&config) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            eprintln!("redis-ha status: {e}");
            return 2;
        }
    };
    let (text, agree) = render(&snapshot);
    print!("{text}");
    if agree { 0 } else { 1 }
}

fn gather(config: &Config) -> Result<Snapshot, String> {
    let sentinels = config.sentinel_client()?;
    let servers = config.redis_client()?;
    let cluster = Pacemaker::for_helper();
    let sync = Sync {
        config,
        sentinels: &sentinels,
        cluster: &cluster,
        resolve: &crate::helper::resolve,
        dry_run: true,
    };
    let cluster_side = cluster_side(&cluster);
    let sentinel_side = match &cluster_side {
        Ok(c) => sentinel_side(&sync, &servers, c),
        // Without the node list the Sentinels' view cannot be mapped to nodes.
        Err(_) => Err("not asked: the cluster's nodes are unknown".to_string()),
    };
    Ok(Snapshot {
        master_name: config.master_name.clone(),
        cluster: cluster_side,
        sentinels: sentinel_side,
        guard: guard_view(config),
    })
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

/// One `cibadmin --query`: roles, quorum, and where the blocks run, read from the same
/// operation history the sync waits on.
fn cluster_side(pacemaker: &Pacemaker) -> Result<ClusterSide, String> {
    let cib = pacemaker.cib().map_err(|e| e.to_string())?;
    Ok(ClusterSide {
        quorate: cib.state.quorate,
        roles: cib.state.roles,
        applied_epoch: cib.state.applied_epoch,
        transient: cib.transient_roles,
        read_blocks: cib.read_blocks,
        write_blocks: cib.state.write_blocks,
    })
}

fn sentinel_side(
    sync: &Sync<'_, RedisSentinels, Pacemaker>,
    servers: &impl RedisServers,
    cluster: &ClusterSide,
) -> Result<SentinelSide, String> {
    let views = sync.views().map_err(|e| e.to_string())?;
    let truth = decide(&views, &sync.config.sentinels).map_err(|e| e.to_string())?;
    let newest: &SentinelView = views
        .iter()
        .max_by_key(|v| v.master.config_epoch)
        .expect("a decision needs at least one view");
    let state = crate::cluster::ClusterState {
        quorate: cluster.quorate,
        roles: cluster.roles.clone(),
        applied_epoch: cluster.applied_epoch,
        write_blocks: cluster.write_blocks.clone(),
    };
    let assignment = sync.assign(&truth, &state);
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
    Ok(SentinelSide {
        reached: truth.reached,
        known: truth.known,
        epoch: truth.epoch,
        master,
        master_down: newest.master.has_flag("o_down"),
        assignment,
        redis,
    })
}
