//! What the Sentinels say: one Sentinel's view of the monitored master, its replicas, the
//! other Sentinels and its own id, read with plain `SENTINEL MASTER/REPLICAS/SENTINELS/MYID`.

mod addr;
mod client;
mod events;
mod parse;
mod wire;

pub(crate) use addr::{
    AclUser, Addr, Credentials, SENTINEL_PORT, canonical_host, host_of, parse_addr, read_password,
};
pub(crate) use client::{RedisClients, RedisSentinels};
pub(crate) use events::{Event, Subscription};
pub(crate) use wire::connect;
#[cfg(feature = "fuzzing")]
pub(crate) use {parse::view, wire::next_reply};

use std::time::Duration;

/// `SENTINEL MASTER <name>` as one Sentinel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MasterView {
    pub(crate) addr: Addr,
    /// e.g. `master`, `s_down`, `o_down`, `disconnected`, `failover_in_progress`.
    pub(crate) flags: Vec<String>,
    /// The configuration epoch: bumped by every failover this Sentinel learned of.
    pub(crate) config_epoch: u64,
    /// Sentinels this one knows besides itself.
    pub(crate) num_other_sentinels: u32,
    pub(crate) quorum: u32,
    /// `down-after-milliseconds`: how long without a valid reply makes it `s_down`.
    pub(crate) down_after: Duration,
    /// `failover-timeout`: a Sentinel tries a failover of this master again twice this
    /// long after its last try began (a split election's retry).
    pub(crate) failover_timeout: Duration,
    /// `failover-state` while this Sentinel leads a failover (`select_slave`,
    /// `send_slaveof_noone`, `wait_promotion`, `reconf_slaves`, `update_config`).
    pub(crate) failover_state: Option<String>,
    /// `last-ok-ping-reply`: since the master last answered this Sentinel's PING (sent
    /// every second).
    pub(crate) last_ok_ping: Duration,
    /// `s-down-time`: since this Sentinel found it subjectively down (while `s_down`).
    pub(crate) s_down_for: Option<Duration>,
    /// `role-reported-time`: since this Sentinel took it for a master (reset at its
    /// `+switch-master`, and when it started monitoring it).
    pub(crate) master_for: Option<Duration>,
}

/// One entry of `SENTINEL REPLICAS <name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplicaView {
    pub(crate) addr: Addr,
    /// e.g. `slave`, `s_down`, `o_down`, `disconnected`, `promoted`.
    pub(crate) flags: Vec<String>,
    /// `master-link-status` is `ok`.
    pub(crate) link_ok: bool,
    /// `master-host`/`master-port`: whom the replica replicates from.
    pub(crate) master: Option<Addr>,
    /// `slave-repl-offset`, for the operator's status screen.
    pub(crate) repl_offset: Option<u64>,
    /// `master-link-down-time` in milliseconds (0 while the link is up).
    pub(crate) link_down: Duration,
    /// What a failover leader weighs to choose the replica it promotes.
    pub(crate) candidacy: Candidacy,
}

/// The figures of one `SENTINEL REPLICAS` entry that Sentinel's `sentinelSelectSlave`
/// weighs (`observe::select`); `None` where a Sentinel did not say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Candidacy {
    /// `slave-priority`: lower is preferred, 0 is never promoted.
    pub(crate) priority: Option<u32>,
    /// `runid`: the last tie-break (a replica that never answered INFO has none).
    pub(crate) run_id: Option<String>,
    /// `info-refresh`: how old the INFO is that `slave-repl-offset` comes from.
    pub(crate) info_age: Option<Duration>,
    /// `last-ok-ping-reply`: since the replica last answered this Sentinel's PING.
    pub(crate) last_ok_ping: Option<Duration>,
}

/// Everything one Sentinel says about the monitored master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelView {
    /// The Sentinel that answered.
    pub(crate) sentinel: Addr,
    /// Its own id (`SENTINEL MYID`): what tells one Sentinel reached under several
    /// addresses from several Sentinels. `None` where it refuses the command (an ACL
    /// user from before this release lacks `+sentinel|myid`): then the peers' lists
    /// name it, as they name every Sentinel they have met.
    pub(crate) id: Option<String>,
    pub(crate) master: MasterView,
    pub(crate) replicas: Vec<ReplicaView>,
    /// The other Sentinels it knows (`SENTINEL SENTINELS`).
    pub(crate) sentinels: Vec<Peer>,
}

/// Another Sentinel as one Sentinel knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Peer {
    /// Its announced address.
    pub(crate) addr: Addr,
    /// Its id (`runid`, the `SENTINEL MYID` it announces); `None` where not yet known.
    pub(crate) id: Option<String>,
}

impl MasterView {
    pub(crate) fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

impl ReplicaView {
    pub(crate) fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Down for the Sentinel: no valid reply for down-after-milliseconds (`s_down`) or
    /// agreed so (`o_down`); not merely `disconnected`.
    pub(crate) fn is_down(&self) -> bool {
        self.has_flag("s_down") || self.has_flag("o_down")
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum SentinelError {
    /// Connection refused, timed out, reset: worth retrying.
    #[error("Sentinel {addr} unreachable: {reason}")]
    Unreachable { addr: Addr, reason: String },
    /// The Sentinel answered but does not monitor this master: a configuration error.
    #[error("Sentinel {addr} does not monitor a master named {name:?}")]
    UnknownMaster { addr: Addr, name: String },
    /// Wrong or missing password, unknown ACL user, or a command the user may not run.
    #[error("Sentinel {addr} refused our credentials: {reason}")]
    Auth { addr: Addr, reason: String },
    /// An answer we cannot read.
    #[error("Sentinel {addr} gave an answer we cannot read: {reason}")]
    Protocol { addr: Addr, reason: String },
}

/// Asks one Sentinel for its view of a master.
pub(crate) trait Sentinels {
    fn view(&self, sentinel: &Addr, master_name: &str) -> Result<SentinelView, SentinelError>;

    /// A replica's own `slave_repl_offset`, asked of it directly, for the foreseen
    /// promotion (`observe::select`); `None`: not asked (no Redis credentials), no
    /// answer, or not a replica.
    fn replica_offset(&self, _redis: &Addr) -> Option<u64> {
        None
    }

    /// `SENTINEL FAILOVER <master_name>` at `sentinel`: it promotes the replica it
    /// selects (`redis-ha switchover` leaves it one). Refused (`-INPROG`, `-NOGOODSLAVE`)
    /// is a `Protocol` error with Sentinel's own words.
    fn failover(&self, sentinel: &Addr, master_name: &str) -> Result<(), SentinelError>;
}

/// `INFO replication` of one Redis: what the status screen shows of a replica's lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replication {
    /// `master` or `slave`.
    pub(crate) role: String,
    /// `master_repl_offset` of a master, `slave_repl_offset` of a replica.
    pub(crate) offset: Option<u64>,
    /// A replica's `master_host`/`master_port`.
    pub(crate) master: Option<Addr>,
    /// A replica's `master_link_status` is `up`.
    pub(crate) link_up: Option<bool>,
    /// `repl_backlog_histlen`: how much replication stream the server keeps. A replica
    /// starts a new, empty backlog at a full resync, so 0 there says its master has
    /// streamed it nothing since.
    pub(crate) backlog: Option<u64>,
}

impl Replication {
    /// A master's `master_repl_offset`: what it has acknowledged so far (None: not a
    /// master, or no offset).
    pub(crate) fn master_offset(&self) -> Option<u64> {
        self.offset.filter(|_| self.role == "master")
    }
}

/// Asks one Redis server about its replication, and sets the one setting a switchover
/// changes.
pub(crate) trait RedisServers {
    fn replication(&self, redis: &Addr) -> Result<Replication, SentinelError>;
    /// `CONFIG GET replica-priority`.
    fn priority(&self, redis: &Addr) -> Result<u32, SentinelError>;
    /// `CONFIG SET replica-priority` (not written to its config file).
    fn set_priority(&self, redis: &Addr, priority: u32) -> Result<(), SentinelError>;
}
