//! Fakes of the `Sentinels` and `Cluster` effects for the unit tables of every program
//! that observes the cluster (sync, guard, status), and their addresses: Redis and
//! Sentinel `n` live on 10.0.0.n.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use crate::cluster::{
    Cib, Cluster, ClusterError, ClusterState, NodeName, PriorityRecord, Role, RoleValue, Write,
};
use crate::config::Config;
use crate::resolve::Resolved;
use crate::sentinel::{
    Addr, Candidacy, MasterView, Peer, ReplicaView, SentinelError, SentinelView, Sentinels,
};

/// A config following `redis-ha` through Sentinel 1, node N's Redis on 10.0.0.N, with
/// `extra` lines.
pub(crate) fn config(extra: &str) -> Config {
    let text = format!(
        "master_name = redis-ha\nsentinel = 10.0.0.1:26379\n\
         node node1 = 10.0.0.1\nnode node2 = 10.0.0.2\nnode node3 = 10.0.0.3\n{extra}"
    );
    Config::parse(&text, "test").unwrap()
}

/// Name resolution that knows no name.
pub(crate) fn no_dns(names: &[&str]) -> Vec<Resolved> {
    vec![Resolved::Addrs(Vec::new()); names.len()]
}

pub(crate) fn addr(host: &str, port: u16) -> Addr {
    Addr {
        host: host.into(),
        port,
    }
}

pub(crate) fn redis(n: u8) -> Addr {
    addr(&format!("10.0.0.{n}"), 6379)
}

pub(crate) fn sentinel(n: u8) -> Addr {
    addr(&format!("10.0.0.{n}"), 26379)
}

/// Sentinel `n`'s id (`SENTINEL MYID`).
pub(crate) fn sentinel_id(n: u8) -> String {
    format!("{n:040}")
}

/// Sentinel `n` as another Sentinel knows it.
pub(crate) fn peer(n: u8) -> Peer {
    Peer {
        addr: sentinel(n),
        id: Some(sentinel_id(n)),
    }
}

type Answers = BTreeMap<Addr, Result<SentinelView, String>>;

/// Sentinels 1..=3, each answering with the same configuration unless told otherwise.
/// Behind a mutex: the Sentinels of one round are asked at once, from several threads.
pub(crate) struct FakeSentinels {
    state: Mutex<AskedState>,
}

struct AskedState {
    views: Answers,
    /// Answers from the fourth question on (a sync asking again while it waits).
    then: Option<Answers>,
    asked: u32,
    /// What the replicas themselves say of their offsets.
    offsets: BTreeMap<Addr, u64>,
    /// Sentinels that keep each question waiting this long before they answer.
    slow: BTreeMap<Addr, Duration>,
}

impl FakeSentinels {
    /// All three Sentinels see `master` at `epoch` with the other two as synced replicas,
    /// except those listed in `down_replicas`.
    pub(crate) fn agreeing(master: u8, epoch: u64, down_replicas: &[u8]) -> Self {
        let views = (1..=3)
            .map(|s| (sentinel(s), Ok(view(s, master, epoch, down_replicas))))
            .collect();
        FakeSentinels {
            state: Mutex::new(AskedState {
                views,
                then: None,
                asked: 0,
                offsets: BTreeMap::new(),
                slow: BTreeMap::new(),
            }),
        }
    }

    /// From the fourth question on, every Sentinel answers `f(its view)`.
    pub(crate) fn later(&self, f: impl Fn(&mut SentinelView)) {
        let mut state = self.state.lock().unwrap();
        let mut then = state.views.clone();
        for v in then.values_mut().flatten() {
            f(v);
        }
        state.then = Some(then);
    }

    /// Redis `n` answers with `offset` when asked directly.
    pub(crate) fn replica_says(&self, n: u8, offset: u64) {
        self.state.lock().unwrap().offsets.insert(redis(n), offset);
    }

    pub(crate) fn set(&self, s: u8, answer: Result<SentinelView, String>) {
        self.state.lock().unwrap().views.insert(sentinel(s), answer);
    }

    /// Sentinel `s` keeps every question waiting `wait` before it answers (the others
    /// answer meanwhile).
    pub(crate) fn slow(&self, s: u8, wait: Duration) {
        self.state.lock().unwrap().slow.insert(sentinel(s), wait);
    }
}

/// All three Sentinels see `master` objectively down, its replicas' links down for
/// `link_down` (a failover about to begin).
pub(crate) fn master_lost(master: u8, link_down: Duration) -> FakeSentinels {
    let s = FakeSentinels::agreeing(master, 0, &[]);
    for n in 1..=3 {
        let mut v = view(n, master, 0, &[]);
        v.master.flags = vec!["master".into(), "s_down".into(), "o_down".into()];
        for r in &mut v.replicas {
            r.link_ok = false;
            r.link_down = link_down;
        }
        s.set(n, Ok(v));
    }
    s
}

/// Redis `master` as a Sentinel of three with quorum 2 and down-after 2 s describes it,
/// with `flags` (comma-separated).
pub(crate) fn master_view(master: u8, epoch: u64, flags: &str) -> MasterView {
    MasterView {
        addr: redis(master),
        flags: flags.split(',').map(String::from).collect(),
        config_epoch: epoch,
        num_other_sentinels: 2,
        quorum: 2,
        down_after: Duration::from_secs(2),
        failover_timeout: Duration::from_secs(10),
        failover_state: None,
        last_ok_ping: Duration::ZERO,
        s_down_for: None,
        master_for: None,
    }
}

/// Replica `n` of master 1, which died with its link 2.1 s ago, as a Sentinel that found
/// the master down 300 ms ago lists it: INFO 100 ms old (taken after), everything the
/// failover leader weighs known (`observe::select`).
pub(crate) fn candidate(n: u8, priority: u32, offset: u64, run_id: &str) -> ReplicaView {
    ReplicaView {
        addr: redis(n),
        flags: vec!["slave".into()],
        link_ok: false,
        master: Some(redis(1)),
        repl_offset: Some(offset),
        link_down: Duration::from_millis(2100),
        candidacy: Candidacy {
            priority: Some(priority),
            run_id: Some(run_id.into()),
            info_age: Some(Duration::from_millis(100)),
            last_ok_ping: Some(Duration::from_millis(300)),
        },
    }
}

/// Sentinel `s`'s view of master 1 with `flags` (down there for 300 ms if `s_down`) and
/// these replicas, knowing the other two Sentinels.
pub(crate) fn master1_view(s: u8, flags: &str, replicas: Vec<ReplicaView>) -> SentinelView {
    let mut master = master_view(1, 0, flags);
    master.s_down_for = flags
        .contains("s_down")
        .then_some(Duration::from_millis(300));
    SentinelView {
        sentinel: sentinel(s),
        id: Some(sentinel_id(s)),
        master,
        replicas,
        sentinels: (1..=3).filter(|&o| o != s).map(peer).collect(),
    }
}

/// Sentinel `s`'s view: `master` at `epoch`, the other two Redis its synced replicas
/// unless listed in `down_replicas` (then `s_down`, disconnected).
pub(crate) fn view(s: u8, master: u8, epoch: u64, down_replicas: &[u8]) -> SentinelView {
    SentinelView {
        sentinel: sentinel(s),
        id: Some(sentinel_id(s)),
        master: master_view(master, epoch, "master"),
        replicas: (1..=3)
            .filter(|&r| r != master)
            .map(|r| {
                let down = down_replicas.contains(&r);
                ReplicaView {
                    addr: redis(r),
                    flags: if down {
                        vec!["slave".into(), "s_down".into(), "disconnected".into()]
                    } else {
                        vec!["slave".into()]
                    },
                    link_ok: !down,
                    master: Some(redis(master)),
                    repl_offset: Some(1),
                    link_down: Duration::ZERO,
                    candidacy: Default::default(),
                }
            })
            .collect(),
        sentinels: (1..=3).filter(|&o| o != s).map(peer).collect(),
    }
}

impl Sentinels for FakeSentinels {
    fn view(&self, s: &Addr, master_name: &str) -> Result<SentinelView, SentinelError> {
        if master_name != "redis-ha" {
            return Err(SentinelError::UnknownMaster {
                addr: s.clone(),
                name: master_name.into(),
            });
        }
        let mut state = self.state.lock().unwrap();
        state.asked += 1;
        if state.asked == 4
            && let Some(then) = state.then.take()
        {
            state.views = then;
        }
        let answer = match state.views.get(s) {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(reason)) => Err(SentinelError::Unreachable {
                addr: s.clone(),
                reason: reason.clone(),
            }),
            None => Err(SentinelError::Unreachable {
                addr: s.clone(),
                reason: "unknown".into(),
            }),
        };
        let wait = state.slow.get(s).copied();
        drop(state);
        if let Some(wait) = wait {
            std::thread::sleep(wait);
        }
        answer
    }

    fn replica_offset(&self, redis: &Addr) -> Option<u64> {
        self.state.lock().unwrap().offsets.get(redis).copied()
    }

    /// These Sentinels never fail over (`switchover`'s tests wrap them in ones that do).
    fn failover(&self, s: &Addr, _: &str) -> Result<(), SentinelError> {
        Err(SentinelError::Protocol {
            addr: s.clone(),
            reason: "the fake Sentinels do not fail over".into(),
        })
    }
}

/// A cluster of node1..3 whose writes are recorded; WriteBlock runs on every node that is
/// not primary from the `block_after`-th read after the first write on (Pacemaker takes
/// a moment to start it).
pub(crate) struct FakeCluster {
    pub(crate) quorate: bool,
    pub(crate) block_after: u32,
    /// A node another sync (another node's) makes primary at our first read after a write.
    pub(crate) intruder: Option<&'static str>,
    /// Why the CIB cannot be read, if it cannot.
    pub(crate) unreadable: Option<&'static str>,
    /// The configuration orders the read blocks' starts before a write block's stop.
    pub(crate) reads_ordered: bool,
    state: Mutex<ClusterRecord>,
}

#[derive(Default)]
struct ClusterRecord {
    roles: BTreeMap<NodeName, Option<RoleValue>>,
    holds: BTreeMap<NodeName, u64>,
    priorities: BTreeMap<NodeName, String>,
    transient: BTreeMap<NodeName, RoleValue>,
    /// Set by a test; else where the rules put it, as the write blocks.
    read_blocks: Option<BTreeSet<NodeName>>,
    writes: Vec<String>,
    /// Reads since the first write.
    polls: u32,
    /// The number of nodes carrying `primary`, checked after every write.
    max_primaries: usize,
    epoch: Option<u64>,
}

impl ClusterRecord {
    fn set_role(&mut self, node: &NodeName, role: Role) {
        self.roles.insert(node.clone(), Some(RoleValue::Is(role)));
        let primaries = self
            .roles
            .values()
            .filter(|v| v.as_ref().and_then(RoleValue::role) == Some(Role::Primary))
            .count();
        self.max_primaries = self.max_primaries.max(primaries);
    }
}

impl FakeCluster {
    pub(crate) fn new(roles: &[Option<&str>]) -> Self {
        let roles = roles
            .iter()
            .enumerate()
            .map(|(i, r)| (NodeName(format!("node{}", i + 1)), r.map(RoleValue::parse)))
            .collect();
        FakeCluster {
            quorate: true,
            block_after: 2,
            intruder: None,
            unreadable: None,
            reads_ordered: false,
            state: Mutex::new(ClusterRecord {
                roles,
                ..ClusterRecord::default()
            }),
        }
    }

    /// Every node's permanent role, as text.
    pub(crate) fn roles(&self) -> Vec<Option<String>> {
        let state = self.state.lock().unwrap();
        state
            .roles
            .values()
            .map(|r| r.as_ref().map(ToString::to_string))
            .collect()
    }

    /// The writes (and, once something was written, the reads) in order.
    pub(crate) fn writes(&self) -> Vec<String> {
        self.state.lock().unwrap().writes.clone()
    }

    pub(crate) fn clear_writes(&self) {
        self.state.lock().unwrap().writes.clear();
    }

    pub(crate) fn max_primaries(&self) -> usize {
        self.state.lock().unwrap().max_primaries
    }

    pub(crate) fn set_epoch(&self, epoch: Option<u64>) {
        self.state.lock().unwrap().epoch = epoch;
    }

    /// A `redis_role` with a lifetime on `node`.
    pub(crate) fn set_transient(&self, node: &str, value: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .transient
            .insert(NodeName(node.into()), RoleValue::parse(value));
    }

    /// Where RedisLBReadBlock runs.
    pub(crate) fn set_read_blocks(&self, nodes: &[&str]) {
        let mut state = self.state.lock().unwrap();
        state.read_blocks = Some(nodes.iter().map(|n| NodeName(n.to_string())).collect());
    }
}

impl Cluster for FakeCluster {
    fn cib(&self) -> Result<Cib, ClusterError> {
        if let Some(reason) = self.unreadable {
            return Err(ClusterError::Transient {
                command: "cibadmin --query".into(),
                reason: reason.into(),
            });
        }
        let mut state = self.state.lock().unwrap();
        let written = !state.writes.is_empty();
        if written {
            state.polls += 1;
            state.writes.push("read".into());
        }
        if let Some(other) = self.intruder.filter(|_| state.polls == 1) {
            state
                .roles
                .insert(NodeName(other.into()), Some(RoleValue::Is(Role::Primary)));
        }
        let primary =
            |v: &Option<RoleValue>| v.as_ref().and_then(RoleValue::role) == Some(Role::Primary);
        // Where the rules put it: at once before any write (a settled cluster), from the
        // `block_after`-th read after one.
        let started = !written || state.polls >= self.block_after;
        let write_blocks = state
            .roles
            .iter()
            .filter(|(_, v)| started && !primary(v))
            .map(|(n, _)| n.clone())
            .collect();
        let serves = |v: &Option<RoleValue>| {
            matches!(
                v.as_ref().and_then(RoleValue::role),
                Some(Role::Primary | Role::Replica)
            )
        };
        let read_blocks = state.read_blocks.clone().unwrap_or_else(|| {
            state
                .roles
                .iter()
                .filter(|(_, v)| started && !serves(v))
                .map(|(n, _)| n.clone())
                .collect()
        });
        Ok(Cib {
            state: ClusterState {
                quorate: self.quorate,
                roles: state.roles.clone(),
                applied_epoch: state.epoch,
                write_blocks,
                read_blocks,
                online: state.roles.keys().cloned().collect(),
                holds: state.holds.clone(),
                priorities_left: state.priorities.clone(),
                homes: Default::default(),
                reads_ordered: self.reads_ordered,
            },
            transient_roles: state.transient.clone(),
        })
    }

    /// Under one lock, so nobody reads half of it, and recorded as one entry: one CIB
    /// transaction (`node1 epoch=1; node1=fail`).
    fn write(&self, _: &ClusterState, writes: &[(NodeName, Write)]) -> Result<(), ClusterError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap();
        let mut done = Vec::new();
        for (node, write) in writes {
            match *write {
                Write::Epoch(epoch) => {
                    done.push(format!("{node} epoch={epoch}"));
                    state.epoch = Some(epoch);
                }
                Write::Role(role) => {
                    done.push(format!("{node}={role}"));
                    state.set_role(node, role);
                }
            }
        }
        state.writes.push(done.join("; "));
        Ok(())
    }

    fn set_hold(&self, node: &NodeName, until: Option<u64>) -> Result<(), ClusterError> {
        let mut state = self.state.lock().unwrap();
        state.writes.push(match until {
            Some(u) => format!("{node} hold={u}"),
            None => format!("{node} hold lifted"),
        });
        match until {
            Some(u) => state.holds.insert(node.clone(), u),
            None => state.holds.remove(node),
        };
        Ok(())
    }

    fn set_priority_record(
        &self,
        node: &NodeName,
        record: Option<&PriorityRecord>,
    ) -> Result<(), ClusterError> {
        let mut state = self.state.lock().unwrap();
        match record {
            Some(r) => {
                state.writes.push(format!("{node} priorities={r}"));
                state.priorities.insert(node.clone(), r.to_string());
            }
            None => {
                state.writes.push(format!("{node} priorities deleted"));
                state.priorities.remove(node);
            }
        }
        Ok(())
    }

    fn set_role(&self, node: &NodeName, role: Role) -> Result<(), ClusterError> {
        let mut state = self.state.lock().unwrap();
        state.writes.push(format!("{node}={role}"));
        state.set_role(node, role);
        Ok(())
    }
}
